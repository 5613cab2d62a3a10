import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PQ
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Issue 17, part 1: a plan turned into shipments (one per sender → receiver), approved in one
/// audited step (a region's part first, then the rest), dispatched and received by shipment with a
/// partial receipt on one line, the ledger and transit checked after each step; the tokens that may
/// not; the page and the printable 调拨单.
@Suite(.serialized) struct ShipmentTests {
    @Test func aPlanBecomesShipmentsApprovedInOneStepDispatchedAndReceivedByShipment() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let tokens = PostgresTokens(database, scope: .system("test"))
        let admin = try await tokens.create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        let location = database.location
        @Sendable func scalar(_ sql: String, _ parameters: [any PQEncodable] = []) throws -> Int64 {
            try TestDatabase.ownerConnection(location).query(sql, parameters).rows[0].decode("n")
        }
        @Sendable func onHand(_ facility: String) throws -> Int64 {
            try scalar("SELECT coalesce(sum(b.quantity), 0)::bigint AS n FROM balances b JOIN facilities f ON f.id = b.facility_id WHERE f.code = $1",
                       [facility])
        }
        @Sendable func ledgerIsExact() async throws {
            #expect(try await PostgresLedger(database, scope: .system("test")).mismatches().isEmpty)
            #expect(try await PostgresReallocations.integrityViolations(database) == [])
        }
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let plan = UUID().uuidString.lowercased()
            let created = try await client.post("/api/v1/reallocations", ["id": plan, "as_of": "2026-11-22"])
            #expect(created.status == .created)
            let orders = body(created)["orders"] as? [[String: Any]] ?? []
            // One shipment per sender → receiver pair, every order in its pair's.
            var pairs: [String: Set<Int>] = [:]
            for order in orders {
                pairs["\(order["from"]!)→\(order["to"]!)", default: []].insert(order["shipment"] as? Int ?? -1)
            }
            #expect(pairs.values.allSatisfy { $0.count == 1 && !$0.contains(-1) })
            #expect(Set(pairs.values.flatMap { $0 }).count == pairs.count)
            let listed = body(try await client.execute(uri: "/api/v1/shipments?plan=\(plan)&limit=1000", method: .get))["shipments"]
                as? [[String: Any]] ?? []
            #expect(listed.count == pairs.count && listed.count < orders.count)
            #expect(listed.allSatisfy { $0["status"] as? String == "proposed" })
            #expect(listed.map { ($0["orders"] as? [Any])?.count ?? 0 }.reduce(0, +) == orders.count)
            // The truck the test follows: the one with the most orders.
            let truck = listed.max { ($0["orders"] as? [Any])?.count ?? 0 < ($1["orders"] as? [Any])?.count ?? 0 }!
            let truckID = truck["id"] as! Int, from = truck["from"] as! String, to = truck["to"] as! String
            let truckOrders = truck["orders"] as! [[String: Any]]
            #expect(truckOrders.count >= 2)
            let truckQuantity = truckOrders.map { $0["quantity"] as! Int }.reduce(0, +)
            #expect(truck["quantity"] as? Int == truckQuantity)

            // Approving the plan: first region D1's part by D1's command centre, then the rest by admin.
            let regionOf = Dictionary(uniqueKeysWithValues: try TestDatabase.ownerConnection(location).query(
                "SELECT f.code, r.code AS region FROM facilities f JOIN regions r ON r.id = f.region_id").rows.map {
                    (try $0.decode("code", as: String.self), try $0.decode("region", as: String.self)) })
            func inD1(_ code: String) -> Bool { regionOf[code].map { $0 == "D1" || $0.hasPrefix("D1T") } ?? false }
            let insideD1 = orders.filter { inD1($0["from"] as! String) && inD1($0["to"] as! String) }.count
            let command = try await tokens.create(name: "command-d1", role: .command, region: "D1", facilities: [], validDays: 1).secret
            let commandClient = AuthorizedClient(base: base, token: command)
            // A command token may not name another region's part, nor approve a shipment with an end outside its own.
            #expect(try await commandClient.post("/api/v1/plan-approvals", ["plan": plan, "region": "D2"]).status == .forbidden)
            if !(inD1(from) && inD1(to)) {
                let outside = try await commandClient.post("/api/v1/shipments/\(truckID)/approve", [:])
                #expect(outside.status == .forbidden || outside.status == .notFound)
            }
            let d1 = try await commandClient.post("/api/v1/plan-approvals", ["plan": plan])
            #expect(d1.status == .ok)
            #expect(body(d1)["approved"] as? Int == insideD1 && body(d1)["region"] as? String == "D1")
            #expect(try scalar("SELECT count(*) AS n FROM reallocation_orders WHERE request_id = $1 AND status = 'approved'", [UUID(uuidString: plan)!])
                    == Int64(insideD1))
            let all = try await client.post("/api/v1/plan-approvals", ["plan": plan])
            #expect(body(all)["approved"] as? Int == orders.count - insideD1 && body(all)["left_proposed"] as? Int == 0)
            #expect(body(all)["shipments"] as? Int ?? 0 > 0)
            let again = try await client.post("/api/v1/plan-approvals", ["plan": plan])
            #expect(again.status == .ok && body(again)["approved"] as? Int == 0)
            // One audit entry per approving step, none per order.
            #expect(try scalar("SELECT count(*) AS n FROM audit_log WHERE action = 'reallocation.approve_plan'") == (insideD1 > 0 ? 2 : 1))
            #expect(try scalar("SELECT count(*) AS n FROM audit_log WHERE action = 'reallocation.approve'") == 0)
            for bad: [String: Any] in [[:], ["plan": "x"], ["plan": 5]] {
                #expect(try await client.post("/api/v1/plan-approvals", bad).status == .badRequest, "\(bad)")
            }
            #expect(try await client.post("/api/v1/plan-approvals", ["plan": UUID().uuidString]).status == .notFound)
            #expect(try await client.post("/api/v1/plan-approvals", ["plan": plan, "region": "NOWHERE"]).status == .notFound)

            // Dispatch by shipment: only the sender, naming the carrier; everything leaves at once.
            let senderToken = try await tokens.create(name: "clerk-from", role: .warehouse, region: nil, facilities: [from], validDays: 1).secret
            let receiverToken = try await tokens.create(name: "clerk-to", role: .warehouse, region: nil, facilities: [to], validDays: 1).secret
            let sender = AuthorizedClient(base: base, token: senderToken), receiver = AuthorizedClient(base: base, token: receiverToken)
            #expect(try await receiver.post("/api/v1/shipments/\(truckID)/dispatch", [:]).status == .forbidden)
            #expect(try await sender.post("/api/v1/shipments/\(truckID)/approve", [:]).status == .forbidden)
            #expect(try await sender.post("/api/v1/shipments/\(truckID)/receive", [:]).status == .forbidden)
            let fromBefore = try onHand(from), toBefore = try onHand(to)
            let movementsBefore = try scalar("SELECT count(*) AS n FROM movements")
            for _ in 0..<2 {
                let dispatched = try await sender.post("/api/v1/shipments/\(truckID)/dispatch", ["carrier": "赣A·12345 张师傅"])
                #expect(dispatched.status == .ok && body(dispatched)["status"] as? String == "dispatched")
                #expect(body(dispatched)["carrier"] as? String == "赣A·12345 张师傅")
                #expect(try onHand(from) == fromBefore - Int64(truckQuantity) && onHand(to) == toBefore)
                #expect(try scalar("""
                    SELECT coalesce(sum(t.quantity), 0)::bigint AS n FROM in_transit t JOIN reallocation_orders o ON o.id = t.order_id
                    WHERE o.shipment_id = $1
                    """, [truckID]) == Int64(truckQuantity))
                try await ledgerIsExact()
            }
            let lineCount = truckOrders.map { ($0["lines"] as! [Any]).count }.reduce(0, +)
            #expect(try scalar("SELECT count(*) AS n FROM movements") == movementsBefore + Int64(lineCount))

            // Receive by shipment, one line 2 short: a reason is needed, strangers are refused, then all else arrives whole.
            let shortOrder = truckOrders[0]["id"] as! Int
            let shortLine = (truckOrders[0]["lines"] as! [[String: Any]])[0]
            let shortLot = shortLine["lot"] as! String, shortQuantity = shortLine["quantity"] as! Int
            let lines: [[String: Any]] = [["order": shortOrder, "lot": shortLot, "received": shortQuantity - 2]]
            let noReason = try await receiver.post("/api/v1/shipments/\(truckID)/receive", ["lines": lines])
            #expect(noReason.status == .badRequest && errorOf(noReason).field == "reason")
            let otherShipmentOrder = orders.first { $0["shipment"] as? Int != truckID }!["id"] as! Int
            let stranger = try await receiver.post("/api/v1/shipments/\(truckID)/receive",
                                                   ["lines": [["order": otherShipmentOrder, "lot": shortLot, "received": 1]], "reason": "x"])
            #expect(stranger.status == .badRequest && errorOf(stranger).field == "lines")
            for bad in [-1, shortQuantity + 1] {
                let refused = try await receiver.post("/api/v1/shipments/\(truckID)/receive",
                                                      ["lines": [["order": shortOrder, "lot": shortLot, "received": bad]], "reason": "x"])
                #expect(refused.status == .badRequest, "\(bad)")
            }
            #expect(try onHand(to) == toBefore)
            for _ in 0..<2 {
                let received = try await receiver.post("/api/v1/shipments/\(truckID)/receive", ["lines": lines, "reason": "两箱破损"])
                #expect(received.status == .ok && body(received)["status"] as? String == "received")
                #expect(try onHand(to) == toBefore + Int64(truckQuantity - 2))
                #expect(try scalar("""
                    SELECT coalesce(sum(t.quantity), 0)::bigint AS n FROM in_transit t JOIN reallocation_orders o ON o.id = t.order_id
                    WHERE o.shipment_id = $1
                    """, [truckID]) == 0)
                #expect(try scalar("""
                    SELECT coalesce(-sum(m.quantity), 0)::bigint AS n FROM transit_movements m JOIN reallocation_orders o ON o.id = m.order_id
                    WHERE o.shipment_id = $1 AND m.kind = 'loss'
                    """, [truckID]) == 2)
                try await ledgerIsExact()
            }

            // The short receipt names its carrier, and the summary sums per carrier.
            let short = body(try await client.execute(uri: "/api/v1/transit/short", method: .get))
            let receipt = (short["receipts"] as? [[String: Any]])?.first { $0["id"] as? Int == shortOrder }
            #expect(receipt?["carrier"] as? String == "赣A·12345 张师傅" && receipt?["shipment"] as? Int == truckID && receipt?["lost"] as? Int == 2)
            #expect((short["summary"] as? [[String: Any]])?.contains { $0["carrier"] as? String == "赣A·12345 张师傅" && $0["lost"] as? Int == 2 } == true)

            // Another shipment cancelled whole; it cannot then be dispatched.
            let other = listed.first { $0["id"] as? Int != truckID }!["id"] as! Int
            let cancelled = try await client.post("/api/v1/shipments/\(other)/cancel", ["reason": "改由合同调用"])
            #expect(cancelled.status == .ok && body(cancelled)["status"] as? String == "cancelled")
            #expect(try await client.post("/api/v1/shipments/\(other)/dispatch", [:]).status == .conflict)
            #expect(try await client.post("/api/v1/shipments/\(truckID)/cancel", [:]).status == .conflict)
            for bad in ["0", "-1", "abc", "99999999"] {
                #expect(try await client.execute(uri: "/api/v1/shipments/\(bad)", method: .get).status == .notFound, "\(bad)")
            }
            #expect(try await client.execute(uri: "/api/v1/shipments?plan=nope", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/api/v1/shipments?status=lost", method: .get).status == .badRequest)

            // The page: the truck with its carrier, the printable 调拨单 for either end, not for a stranger.
            var browser = PageTests.Browser(AuthorizedClient(base: base, token: nil))
            _ = try await browser.signIn(receiverToken)
            let page = PageTests.html(try await browser.request("/orders"))
            #expect(page.contains("data-shipment=\"\(truckID)\"") && page.contains("赣A·12345 张师傅"))
            let printed = PageTests.html(try await browser.request("/shipments/\(truckID)/print"))
            #expect(printed.contains("应急物资调拨单") && printed.contains("No. S\(truckID)") && printed.contains("赣A·12345 张师傅"))
            #expect(printed.contains("承运人（签字）") && printed.contains("(\(from))") && printed.contains("(\(to))"))
            #expect(printed.contains("<td class=\"num\">\(truckQuantity)</td><td class=\"num\">\(truckQuantity - 2)</td>"))
            let strangerCode = regionOf.keys.sorted().first { $0 != from && $0 != to }!
            let strangerToken = try await tokens.create(name: "clerk-stranger", role: .warehouse, region: nil, facilities: [strangerCode], validDays: 1).secret
            var strangerBrowser = PageTests.Browser(AuthorizedClient(base: base, token: nil))
            _ = try await strangerBrowser.signIn(strangerToken)
            #expect(try await strangerBrowser.request("/shipments/\(truckID)/print").status == .notFound)
        }
    }

    /// The page's path: the command centre approves a whole plan with one button, the sender
    /// dispatches the shipment with its carrier, the receiver receives it with one line short.
    @Test func aShipmentGoesThroughItsPage() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { client in
            var (command, sender, receiver) = try await PageTests.orderParties(client, service)
            let list = PageTests.html(try await command.request("/orders"))
            guard let range = list.range(of: "action=\"/plans/"), let shipment = list.range(of: "data-shipment=\"") else {
                Issue.record("no plan to approve, or no shipment, on the orders page")
                return
            }
            let plan = String(list[range.upperBound...].prefix { $0 != "/" })
            let id = String(list[shipment.upperBound...].prefix { $0 != "\"" })
            #expect(try await sender.request("/plans/\(plan)/approve", method: .post, form: ["csrf": sender.csrf]).status == .forbidden)
            #expect(try await command.request("/plans/\(plan)/approve", method: .post, form: ["csrf": "x"]).status == .forbidden)
            // A plan id that is not one, a shipment id that is not a number, an unknown action: refused, nothing approved.
            let untouched = try service.ledgerState()
            #expect(try await command.request("/plans/not-a-plan/approve", method: .post, form: ["csrf": command.csrf]).status == .badRequest)
            #expect(try await command.request("/plans/\(UUID().uuidString)/approve", method: .post, form: ["csrf": command.csrf]).status == .notFound)
            #expect(try await command.request("/shipments/abc", method: .post, form: ["csrf": command.csrf, "action": "approve"]).status == .badRequest)
            #expect(try await command.request("/shipments/\(id)", method: .post, form: ["csrf": command.csrf, "action": "explode"]).status == .badRequest)
            #expect(PageTests.html(try await command.request("/orders")).contains("action=\"/plans/\(plan)/approve\""))
            #expect(try service.ledgerState() == untouched)
            let approved = PageTests.html(try await command.request("/plans/\(plan)/approve", method: .post, form: ["csrf": command.csrf]))
            #expect(approved.contains("已批准") && approved.contains("id=\"order-message\""))
            #expect(!PageTests.html(try await command.request("/orders")).contains("action=\"/plans/\(plan)/approve\""))
            #expect(PageTests.html(try await sender.request("/orders")).contains("发出 S\(id)"))
            #expect(try await receiver.request("/shipments/\(id)", method: .post, form: ["csrf": receiver.csrf, "action": "dispatch"]).status == .forbidden)
            let dispatched = PageTests.html(try await sender.request("/shipments/\(id)", method: .post,
                                                                     form: ["csrf": sender.csrf, "action": "dispatch", "carrier": "赣A·54321"]))
            #expect(dispatched.contains("调拨单 S\(id) 在途"))
            let receiving = PageTests.html(try await receiver.request("/orders"))
            guard let field = receiving.range(of: "name=\"line.") else {
                Issue.record("no receive line on the receiver's page")
                return
            }
            let name = "line." + String(receiving[field.upperBound...].prefix { $0 != "\"" })
            let before = try service.ledgerState()
            let tooMany = try await receiver.request("/shipments/\(id)", method: .post,
                                                     form: ["csrf": receiver.csrf, "action": "receive", name: "999999", "reason": "x"])
            #expect(tooMany.status == .badRequest && PageTests.html(tooMany).contains("received must be"))
            #expect(try service.ledgerState() == before)
            let received = PageTests.html(try await receiver.request("/shipments/\(id)", method: .post,
                                                                     form: ["csrf": receiver.csrf, "action": "receive", name: "7", "reason": "破损"]))
            #expect(received.contains("调拨单 S\(id) 已签收"))
            #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
        }
    }

    /// The nightly run counts tonight's orders as shipments: in the run, the stored report, its CSV and its page.
    @Test func theNightlyReportCountsShipments() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let admin = try await PostgresTokens(database, scope: .system("test")).create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let run = try await PostgresNightly(database, scope: .system("test")).run(asOf: LocalDate("2026-11-22")!, region: nil)
        let pairs = Set(run.report.orders.map { "\($0.from)→\($0.to)" })
        #expect(run.report.orders.count > pairs.count && pairs.count > 0)
        #expect(run.report.shipments == pairs.count)
        #expect(Set(run.report.orders.compactMap(\.shipment)).count == pairs.count)
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let stored = body(try await client.execute(uri: "/api/v1/reports/nightly/2026-11-22", method: .get))
            #expect(stored["shipments"] as? Int == pairs.count)
            #expect((stored["orders"] as? [[String: Any]])?.allSatisfy { $0["shipment"] is Int } == true)
            let csv = String(buffer: try await client.execute(uri: "/api/v1/reports/nightly/2026-11-22?format=csv&section=orders", method: .get).body)
            #expect(csv.contains("车次(调拨单)") && csv.contains(",S\(run.report.orders[0].shipment!)"))
            var browser = PageTests.Browser(AuthorizedClient(base: base, token: nil))
            _ = try await browser.signIn(admin)
            let page = PageTests.html(try await browser.request("/reports?date=2026-11-22"))
            #expect(page.contains("今晚调拨 \(run.report.orders.count) 条，合 \(pairs.count) 车"))
            let printable = PageTests.html(try await browser.request("/reports/2026-11-22/print"))
            #expect(printable.contains("调拨单 \(run.report.orders.count) 张（合 \(pairs.count) 车）"))
        }
    }
}
