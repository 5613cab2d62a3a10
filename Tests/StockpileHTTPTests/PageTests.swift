import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// The web pages (issue 7): sign-in by cookie with CSRF, the dashboard, the facility page and the
/// stock-entry form, whose double submission counts once.
@Suite(.serialized) struct PageTests {
    /// A browser's cookie jar, reduced to what the pages set.
    struct Browser {
        let client: AuthorizedClient
        var cookies: [String: String] = [:]

        init(_ client: AuthorizedClient) { self.client = client.with(nil) }

        mutating func request(_ uri: String, method: HTTPRequest.Method = .get, form: [String: String]? = nil) async throws -> TestResponse {
            var headers: HTTPFields = [:]
            if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }
            var body: ByteBuffer?
            if let form {
                headers[.contentType] = "application/x-www-form-urlencoded"
                body = ByteBuffer(string: form.map { key, value in
                    "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                }.joined(separator: "&"))
            }
            let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
            for header in response.headers[values: .setCookie] {
                let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = pair.count > 1 ? String(pair[1]) : ""
                cookies[String(pair[0])] = value.isEmpty ? nil : value
            }
            return response
        }

        var csrf: String { cookies["sp_csrf"] ?? "" }

        /// What the outbox script sends: JSON, the cookies, and the CSRF token in a header.
        func json(_ uri: String, _ object: [String: Any], csrfHeader: String?) async throws -> TestResponse {
            var headers: HTTPFields = [.contentType: "application/json"]
            if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }
            if let csrfHeader { headers[HTTPField.Name("X-CSRF-Token")!] = csrfHeader }
            return try await client.execute(uri: uri, method: .post, headers: headers, body: StockpileHTTPTests.json(object))
        }

        mutating func signIn(_ token: String) async throws -> TestResponse {
            _ = try await request("/login")
            return try await request("/login", method: .post, form: ["csrf": csrf, "token": token])
        }
    }

    static func html(_ response: TestResponse) -> String { String(buffer: response.body) }

    /// The value of the hidden field `name` in a page.
    static func hidden(_ name: String, in page: String) -> String? {
        guard let range = page.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    @Test func pagesNeedASignedInSession() async throws {
        let service = try await TestService()
        try await service.test { client in
            var browser = Browser(client)
            let dashboard = try await browser.request("/?region=D")
            #expect(dashboard.status == .seeOther)
            #expect(dashboard.headers[.location] == "/login?next=%2F%3Fregion%3DD")
            #expect(try await browser.request("/entry").status == .seeOther)
            #expect(try await browser.request("/facilities/H").status == .seeOther)
            // A bearer token is for the API; the pages do not take it (and the API does not take the cookie).
            #expect(try await client.execute(uri: "/", method: .get).status == .seeOther)

            let bad = try await browser.signIn("sp_not-a-token")
            #expect(bad.status == .unauthorized)
            #expect(Self.html(bad).contains("令牌无效"))
            // Without the CSRF token the login form is refused, whatever the token.
            let forged = try await browser.request("/login", method: .post, form: ["csrf": "0", "token": service.admin])
            #expect(forged.status == .forbidden)
            #expect(browser.cookies["sp_session"] == nil)

            let good = try await browser.signIn(service.admin)
            #expect(good.status == .seeOther)
            #expect(good.headers[.location] == "/")
            let session = good.headers[values: .setCookie].first { $0.hasPrefix("sp_session=") } ?? ""
            #expect(session.contains("HttpOnly") && session.contains("SameSite=Strict"))
            #expect(try await browser.request("/api/v1/items").status == .unauthorized)
            #expect(try await browser.request("/").status == .ok)

            #expect(try await browser.request("/logout", method: .post, form: ["csrf": browser.csrf]).status == .seeOther)
            #expect(try await browser.request("/").status == .seeOther)
        }
    }

    @Test func dashboardShowsBandsShortfallsAndTotals() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { client in
            var browser = Browser(client)
            _ = try await browser.signIn(service.commandD)
            let response = try await browser.request("/")
            #expect(response.status == .ok)
            let page = Self.html(response)
            #expect(page.contains("<html lang=\"zh-CN\">"))
            #expect(page.contains("指挥中心"))
            // Every heat-map cell links to its facility and names its band in the title.
            #expect(page.contains("href=\"/facilities/H\" title=\"第一区人民医院 · N95口罩 · "))
            #expect(page.contains("class=\"heat\""))
            #expect(page.contains("id=\"shortfalls\""))
            #expect(page.contains("第一区"))
            #expect(response.headers[.init("Server-Timing")!] != nil)

            // One item across the region (issue 18): the heat map and totals of that item only, the filter kept.
            #expect(page.contains("title=\"第一区人民医院 · 医用外科口罩 · "))
            let n95 = Self.html(try await browser.request("/?item=N95"))
            #expect(n95.contains("<option value=\"N95\" selected>"))
            #expect(n95.contains("title=\"第一区人民医院 · N95口罩 · ") && !n95.contains("· 医用外科口罩 · "))
            #expect(n95.contains("?item=N95&amp;sort=facility"))
            // An item that does not exist is an empty selection, not an error.
            let unknown = try await browser.request("/?item=%3Cscript%3E")
            #expect(unknown.status == .ok)
            #expect(!Self.html(unknown).contains("<script>"))

            let english = try await browser.request("/?lang=en&sort=facility&designated=true")
            let text = Self.html(english)
            #expect(text.contains("<html lang=\"en\">"))
            #expect(text.contains("Command centre"))
            #expect(!text.contains("href=\"/facilities/W\""))
            // The language is remembered.
            #expect(Self.html(try await browser.request("/")).contains("<html lang=\"en\">"))
        }
    }

    @Test func facilityPageShowsLayersLotsAndStaysInScope() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { client in
            var browser = Browser(client)
            _ = try await browser.signIn(service.clerkH)
            let response = try await browser.request("/facilities/H")
            #expect(response.status == .ok)
            let page = Self.html(response)
            #expect(page.contains("KEPT"))
            #expect(page.contains("class=\"l-physical\""))
            #expect(page.contains("class=\"l-contract\""))
            #expect(page.contains("最近登记"))
            // Another facility is, to this clerk, one that does not exist.
            #expect(try await browser.request("/facilities/W").status == .notFound)
        }
    }

    @Test func entryFormIsLabelledAndKeyboardUsable() async throws {
        let service = try await TestService()
        try await service.test { client in
            var browser = Browser(client)
            _ = try await browser.signIn(service.clerkH)
            let response = try await browser.request("/entry")
            #expect(response.status == .ok)
            let page = Self.html(response)
            // Every visible field has a <label for=…>; radio buttons sit inside theirs.
            let ids = page.matches(of: /<(?:input|select)[^>]*\bid="([^"]+)"/).map { String($0.1) }
            #expect(Set(ids).isSuperset(of: ["item", "lot", "expiry", "quantity", "facility", "reason_code", "reason"]))
            for id in ids { #expect(page.contains("<label for=\"\(id)\">"), "no label for \(id)") }
            let radios = page.matches(of: /<input type="radio"/).count
            #expect(radios == 4)
            #expect(page.matches(of: /<label class="choice"><input type="radio"/).count == radios)
            // Nothing is click-only: no inline handlers, no elements taken out of the tab order.
            for (path, text) in [("/entry", page), ("/", Self.html(try await browser.request("/"))),
                                 ("/facilities/H", Self.html(try await browser.request("/facilities/H")))] {
                #expect(!text.contains("onclick"), "\(path)")
                #expect(!text.contains("tabindex=\"-1\""), "\(path)")
                #expect(text.contains("<a class=\"skip\" href=\"#main\">"), "\(path)")
            }
            // A command token reads; it does not record.
            var command = Browser(client)
            _ = try await command.signIn(service.commandD)
            #expect(try await command.request("/entry").status == .forbidden)
        }
    }

    @Test func aReceiptSubmittedTwiceCountsOnce() async throws {
        let service = try await TestService()
        try await service.test { client in
            var browser = Browser(client)
            _ = try await browser.signIn(service.clerkH)
            let form = Self.html(try await browser.request("/entry"))
            let id = try #require(Self.hidden("id", in: form))
            #expect(UUID(uuidString: id) != nil)
            let before = try service.ledgerState()
            let receipt = ["csrf": browser.csrf, "id": id, "kind": "receipt", "facility": "H", "item": "N95", "lot": "FORM-1",
                           "expiry": "2029-01-31", "quantity": "25", "reason_code": "", "reason": "到货"]
            let first = try await browser.request("/entry", method: .post, form: receipt)
            #expect(first.status == .created)
            let confirmation = Self.html(first)
            #expect(confirmation.contains("已登记"))
            #expect(confirmation.contains("<strong id=\"lot-balance\">25</strong>"))
            // The next form has a new id.
            #expect(Self.hidden("id", in: confirmation) != id)

            let again = try await browser.request("/entry", method: .post, form: receipt)
            #expect(again.status == .ok)
            #expect(Self.html(again).contains("未重复计数"))
            #expect(Self.html(again).contains("<strong id=\"item-balance\">25</strong>"))
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == before[0] + 1)
            #expect(try service.scalar("SELECT coalesce(sum(quantity), 0) AS n FROM balances") == before[1] + 25)

            // Errors come back inline, in Chinese, with the values kept and nothing recorded.
            let after = try service.ledgerState()
            var missing = receipt
            missing["id"] = UUID().uuidString
            missing["quantity"] = ""
            let refused = try await browser.request("/entry", method: .post, form: missing)
            #expect(refused.status == .badRequest)
            #expect(Self.html(refused).contains("id=\"quantity-error\">数量必须是正整数"))
            #expect(Self.html(refused).contains("value=\"FORM-1\""))
            var adjustment = missing
            adjustment["kind"] = "adjustment"
            adjustment["quantity"] = "1"
            #expect(Self.html(try await browser.request("/entry", method: .post, form: adjustment)).contains("调整必须选择原因"))
            var tooMany = missing
            tooMany["kind"] = "issue"
            tooMany["quantity"] = "1000"
            #expect(Self.html(try await browser.request("/entry", method: .post, form: tooMany)).contains("库存不足"))
            var foreign = missing
            foreign["facility"] = "W"
            foreign["quantity"] = "1"
            #expect(try await browser.request("/entry", method: .post, form: foreign).status == .forbidden)
            var forged = missing
            forged["quantity"] = "1"
            forged["csrf"] = String(repeating: "0", count: 64)
            #expect(try await browser.request("/entry", method: .post, form: forged).status == .forbidden)
            #expect(try service.ledgerState() == after)
        }
    }

    /// The three people an order passes through, signed in: region D's command centre, H's clerk (it sends), W's (it receives).
    static func orderParties(_ client: AuthorizedClient, _ service: TestService) async throws -> (Browser, Browser, Browser) {
        var command = Browser(client), sender = Browser(client), receiver = Browser(client)
        _ = try await command.signIn(service.commandD)
        _ = try await sender.signIn(service.clerkH)
        _ = try await receiver.signIn(service.clerkW)
        return (command, sender, receiver)
    }

    @Test func ordersAreApprovedDispatchedAndReceivedFromTheirPage() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { client in
            var (command, sender, receiver) = try await Self.orderParties(client, service)
            let list = Self.html(try await command.request("/orders"))
            #expect(list.contains("待批准"))
            #expect(list.contains("<button type=\"submit\">批准 #1</button>"))
            #expect(list.contains("<label for=\"reason-1\">取消原因</label>"))
            // The clerks get no approve button, and a forged one is refused.
            #expect(!Self.html(try await sender.request("/orders")).contains("批准 #1"))
            #expect(try await sender.request("/orders/1", method: .post, form: ["csrf": sender.csrf, "action": "approve"]).status == .forbidden)
            #expect(try await command.request("/orders/1", method: .post, form: ["csrf": "x", "action": "approve"]).status == .forbidden)

            #expect(Self.html(try await command.request("/orders/1", method: .post, form: ["csrf": command.csrf, "action": "approve"]))
                .contains("#1 已批准"))
            #expect(!Self.html(try await receiver.request("/orders")).contains("发出 #1"))
            #expect(Self.html(try await sender.request("/orders")).contains("发出 #1"))
            #expect(try await receiver.request("/orders/1", method: .post, form: ["csrf": receiver.csrf, "action": "dispatch"]).status == .forbidden)
            #expect(Self.html(try await sender.request("/orders/1", method: .post, form: ["csrf": sender.csrf, "action": "dispatch"]))
                .contains("#1 在途"))
            // Received twice (a resubmitted form): counted once.
            for _ in 0..<2 {
                let received = try await receiver.request("/orders/1", method: .post, form: ["csrf": receiver.csrf, "action": "receive"])
                #expect(received.status == .ok)
                #expect(Self.html(received).contains("#1 已签收"))
            }
            #expect(try service.scalar("SELECT quantity AS n FROM balances b JOIN facilities f ON f.id = b.facility_id WHERE f.code = 'W'") == 10)
            #expect(try await service.mismatches() == 0)
        }
    }

    /// A partial receipt through the page (issue 16, part 4): each lot's quantity and the reason for
    /// the rest; without a reason it is refused and nothing moves; the ledger and transit agree after.
    @Test func aPartialReceiptIsRecordedFromTheOrdersPage() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { client in
            var (command, sender, receiver) = try await Self.orderParties(client, service)
            _ = try await command.request("/orders/1", method: .post, form: ["csrf": command.csrf, "action": "approve"])
            _ = try await sender.request("/orders/1", method: .post, form: ["csrf": sender.csrf, "action": "dispatch"])
            let list = Self.html(try await receiver.request("/orders"))
            #expect(list.contains("<label for=\"recv-1-1\">实收 KEPT</label>"))
            #expect(list.contains("name=\"line.1\" type=\"number\" inputmode=\"numeric\" min=\"0\" max=\"10\" step=\"1\" value=\"10\""))
            let atW = "SELECT coalesce(sum(b.quantity), 0) AS n FROM balances b JOIN facilities f ON f.id = b.facility_id WHERE f.code = 'W'"
            let inTransit = "SELECT coalesce(sum(quantity), 0) AS n FROM in_transit"

            // Short without a reason, and a figure out of range: refused, nothing moves.
            let noReason = try await receiver.request("/orders/1", method: .post, form: ["csrf": receiver.csrf, "action": "receive", "line.1": "7"])
            #expect(noReason.status == .badRequest)
            #expect(Self.html(noReason).contains("reason"))
            let tooMany = try await receiver.request("/orders/1", method: .post,
                                                     form: ["csrf": receiver.csrf, "action": "receive", "line.1": "11", "reason": "x"])
            #expect(tooMany.status == .badRequest && Self.html(tooMany).contains("KEPT"))
            #expect(try service.scalar(atW) == 0 && service.scalar(inTransit) == 10)

            // 7 arrived, 3 broken on the way: recorded once, even when the form is sent twice.
            for _ in 0..<2 {
                let received = try await receiver.request("/orders/1", method: .post,
                                                          form: ["csrf": receiver.csrf, "action": "receive", "line.1": "7", "reason": "运输途中破损 3 只"])
                #expect(received.status == .ok)
                #expect(Self.html(received).contains("#1 已签收"))
            }
            #expect(try service.scalar(atW) == 7)
            #expect(try service.scalar(inTransit) == 0)
            #expect(try service.scalar("SELECT received AS n FROM reallocation_lines WHERE order_id = 1") == 7)
            // Other figures for an order already received: a conflict, shown, nothing changed.
            let other = try await receiver.request("/orders/1", method: .post,
                                                   form: ["csrf": receiver.csrf, "action": "receive", "line.1": "9", "reason": "x"])
            #expect(other.status == .conflict)
            #expect(try service.scalar(atW) == 7)
            #expect(try await service.mismatches() == 0)
            #expect(try await PostgresReallocations.integrityViolations(service.database).isEmpty)
        }
    }

    @Test func theNightlyReportPageLinksThePrintablePageAndEachCSV() async throws {
        let service = try await TestService(reserves: true)
        _ = try await PostgresNightly(service.database, scope: .system("test")).run(asOf: LocalDate("2026-11-22")!, region: nil)
        try await service.test { client in
            var admin = Browser(client)
            _ = try await admin.signIn(service.admin)
            let page = Self.html(try await admin.request("/reports?date=2026-11-22"))
            #expect(page.contains("href=\"/reports/2026-11-22/print\""))
            for section in NightlyReportTables.Section.allCases {
                #expect(page.contains("href=\"/reports/2026-11-22/csv/\(section.rawValue)\""))
                let csv = try await admin.request("/reports/2026-11-22/csv/\(section.rawValue)")
                #expect(csv.status == .ok)
                #expect(String(buffer: csv.body).hasPrefix("\u{FEFF}" + NightlyReportTables.header(section)[0]))
            }
            #expect(try await admin.request("/reports/2026-11-22/print").status == .ok)
            #expect(Self.html(try await admin.request("/reports?date=2026-11-21")).contains("id=\"no-report\""))
            // The report is the command centre's: a clerk gets the "forbidden" page.
            var clerk = Browser(client)
            _ = try await clerk.signIn(service.clerkH)
            #expect(try await clerk.request("/reports").status == .forbidden)
            // The navigation links only to pages the role may open.
            let clerkNav = Self.html(try await clerk.request("/facilities/H"))
            #expect(clerkNav.contains("<a href=\"/entry\">") && !clerkNav.contains("<a href=\"/reports\">"))
            #expect(page.contains("<a href=\"/entry\">") && page.contains("<a href=\"/reports\">"))
        }
    }

    /// The entry page's offline outbox, server side: its session and CSRF endpoint, its sends under
    /// the session only (never another clerk's entries), the worker and scripts it loads, and the
    /// facility page's list of what needs attention.
    @Test func theOutboxSendsUnderItsOwnSessionOnly() async throws {
        let service = try await TestService()
        try await service.test { client in
            var browser = Browser(client)
            // Not signed in: JSON 401s, not the login page.
            #expect(try await browser.request("/entry/session").status == .unauthorized)
            #expect(try await browser.json("/entry/sync", ["movements": [movement("receipt", 1)]], csrfHeader: "x").status == .unauthorized)
            _ = try await browser.signIn(service.clerkH)
            let session = body(try await browser.request("/entry/session"))
            #expect(session["user"] as? String == "clerk-h" && session["csrf"] as? String == browser.csrf)
            let page = Self.html(try await browser.request("/entry"))
            // The page and the session endpoint name the same sign-in (entries of another are held for the clerk).
            let tag = session["session"] as? String ?? ""
            #expect(tag.count == 16 && page.contains("data-session=\"\(tag)\""))
            #expect(page.contains("id=\"outbox\"") && page.contains("data-user=\"clerk-h\"") && page.contains("/static/outbox.js"))
            for asset in ["/sw.js", "/static/outbox.js", "/static/scan.js"] {
                let response = try await browser.request(asset)
                #expect(response.status == .ok && response.headers[.contentType]?.contains("javascript") == true && response.body.readableBytes > 500, "\(asset)")
            }
            #expect(try await browser.request("/sw.js").headers[.cacheControl] == "no-cache")

            let before = try service.ledgerState()
            let mine = movement("receipt", 6, lot: "OB1", extra: ["recorded_by": "clerk-h"])
            let theirs = movement("receipt", 9, lot: "OB2", extra: ["recorded_by": "clerk-w"])
            // A stale or missing token changes nothing.
            for header in [nil, "", String(repeating: "0", count: 64)] as [String?] {
                let refused = try await browser.json("/entry/sync", ["movements": [mine]], csrfHeader: header)
                #expect(refused.status == .forbidden && errorOf(refused).field == "csrf")
            }
            #expect(try service.ledgerState() == before)
            let sent = try await browser.json("/entry/sync", ["movements": [mine, theirs]], csrfHeader: browser.csrf)
            let results = body(sent)["results"] as? [[String: Any]] ?? []
            #expect(results.map { $0["status"] as? String } == ["recorded", "refused"])
            #expect(results.last?["code"] as? String == "other_user")
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == before[0] + 1)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE recorded_by = 'clerk-h'") == 1)

            // A refused entry is listed on the facility's page for its supervisors, and the clerk resolves it from the outbox.
            let tooMany = movement("issue", 1000, lot: "OB1", extra: ["recorded_by": "clerk-h"])
            _ = try await browser.json("/entry/sync", ["movements": [tooMany]], csrfHeader: browser.csrf)
            var command = Browser(client)
            _ = try await command.signIn(service.commandD)
            let facility = Self.html(try await command.request("/facilities/H"))
            #expect(facility.contains("id=\"attention\"") && facility.contains("data-id=\"\((tooMany["id"] as! String).lowercased())\""))
            #expect(facility.contains("库存不足"))
            let resolved = try await browser.json("/entry/resolve", ["id": tooMany["id"]!, "resolution": "实发 6，已另行登记"], csrfHeader: browser.csrf)
            #expect(resolved.status == .ok, "\(String(buffer: resolved.body))")
            #expect(try await browser.json("/entry/resolve", ["id": tooMany["id"]!, "resolution": "again"], csrfHeader: browser.csrf).status == .conflict)
            #expect(!Self.html(try await command.request("/facilities/H")).contains("id=\"attention\""))
            // The resolve route wants the CSRF header too.
            #expect(try await browser.json("/entry/resolve", ["id": UUID().uuidString, "resolution": "x"], csrfHeader: nil).status == .forbidden)
            // Signing out tells the browser to drop the entry page it kept.
            let out = try await browser.request("/logout", method: .post, form: ["csrf": browser.csrf])
            #expect(out.headers[HTTPField.Name("Clear-Site-Data")!] == "\"cache\"")
            // A new sign-in is another session: another tag.
            _ = try await browser.signIn(service.clerkH)
            #expect(body(try await browser.request("/entry/session"))["session"] as? String != tag)
        }
    }

    /// Issue 17, parts 7 and 8: the heat map in the users' words (Chinese item names grouped by
    /// category, the code on hover and in English), and a what-if surge that moves bands and
    /// shortfalls on the dashboard and the facility page without writing anything.
    @Test func aWhatIfSurgeShowsHowBandsMoveAndWritesNothing() async throws {
        let service = try await TestService()
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles(["demand": "facility_code,item_code,full_load_daily\nH,N95,1\n"])
        try await service.test { client in
            #expect(try await client.post("/api/v1/movements", movement("receipt", 40, lot: "WI1")).status == .created)
            var browser = Browser(client)
            _ = try await browser.signIn(service.commandD)
            let before = try service.ledgerState()
            let plain = Self.html(try await browser.request("/"))
            #expect(plain.contains("<th scope=\"colgroup\" colspan=\"2\" class=\"cat\">防护用品</th>"))
            #expect(plain.contains("title=\"N95\" data-item=\"N95\"><span class=\"vert\">N95口罩</span>"))
            #expect(plain.contains(">防护用品</option>") && !plain.contains("id=\"whatif\""))

            let surged = Self.html(try await browser.request("/?surge=2"))
            #expect(surged.contains("id=\"whatif\"") && surged.contains("需求 ×2"))
            // The comparison's shortfall row: today's and the what-if's, the latter larger.
            let shortfall = surged.components(separatedBy: "<tr><th scope=\"row\">实物缺口</th>").dropFirst().first ?? ""
            let numbers = shortfall.components(separatedBy: "<td class=\"num\">").dropFirst().prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
            #expect(numbers.count == 2 && numbers[1] > numbers[0], "\(numbers)")
            // Sort links keep the what-if.
            #expect(surged.contains("surge=2&amp;sort=") || surged.contains("sort=shortfall&amp;surge=2") || surged.contains("surge=2"))

            let facility = Self.html(try await browser.request("/facilities/H?surge=2"))
            #expect(facility.contains("id=\"whatif\"") && facility.contains("class=\"was\""))
            for bad in ["abc", "0", "1000", "NaN", "-1"] {
                let page = Self.html(try await browser.request("/?surge=\(bad)"))
                #expect(page.contains("id=\"surge-error\"") && !page.contains("id=\"whatif\""), "\(bad)")
            }
            #expect(try service.ledgerState() == before)
            // The English view: codes across the top, the name on hover, categories in English.
            let english = Self.html(try await browser.request("/?lang=en"))
            #expect(english.contains("title=\"N95口罩\" data-item=\"N95\"><span class=\"vert\">N95</span>") && english.contains("Protective equipment"))
        }
    }

    /// The printable 调拨单 of an order: both ends' names, the lots with expiry, the signature lines;
    /// for either end, not for a stranger's id.
    @Test func anOrderPrintsAsATransferOrderWithSignatureLines() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { client in
            var clerk = Browser(client)
            _ = try await clerk.signIn(service.clerkH)
            #expect(Self.html(try await clerk.request("/orders")).contains("href=\"/orders/1/print\""))
            let page = Self.html(try await clerk.request("/orders/1/print"))
            #expect(page.contains("应急物资调拨单") && page.contains("No. 1") && page.contains("第一区人民医院 (H)") && page.contains("第一区储备库 (W)"))
            #expect(page.contains("<td>KEPT</td><td>2028-01-31</td><td class=\"num\">10</td>"))
            #expect(page.contains("调出单位（签字/盖章）") && page.contains("承运人（签字）") && page.contains("调入单位（签字/盖章）"))
            var receiver = Browser(client)
            _ = try await receiver.signIn(service.clerkW)
            #expect(try await receiver.request("/orders/1/print").status == .ok)
            for bad in ["999", "0", "abc", "-1", "99999999999999999999"] {
                #expect(try await clerk.request("/orders/\(bad)/print").status == .notFound, "\(bad)")
            }
        }
    }
}
