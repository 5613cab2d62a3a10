import Foundation
import HTTPTypes
import HummingbirdTesting
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Donations (社会捐赠, issue 17 part 2): received into the ledger and held for inspection (待检),
/// counted in cover only once released by an inspection (质检); a failed inspection writes the stock
/// off; the register says what arrived, what passed and where it went.
@Suite struct DonationAPITests {
    static func donation(_ id: String = UUID().uuidString, facility: String = "W", lines: [[String: Any]]? = nil) -> [String: Any] {
        ["id": id, "donor": "某某慈善基金会", "donor_kind": "organisation", "contact": "张三 138", "certificate": "JZ-2026-118",
         "facility": facility,
         "lines": lines ?? [["item": "N95", "lot": "DN1", "expiry": "2028-06-30", "quantity": 100],
                            ["item": "MASK", "lot": "DN2", "expiry": "2028-01-31", "quantity": 50]]]
    }

    @Test func aDonationIsHeldInspectedAndThenCounted() async throws {
        let service = try await TestService()
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles(["demand": "facility_code,item_code,full_load_daily\nW,N95,1\n"])
        let physical = { @Sendable () async throws -> Int64 in
            var filter = CoverFilter()
            filter.facility = "W"
            filter.item = "N95"
            return try await PostgresCover(service.database, scope: .system("test"), timeZone: TimeZone(identifier: "Asia/Shanghai")!)
                .positions(filter, asOf: LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!)).first?.physicalQty ?? -1
        }
        try await service.test { admin in
            let clerk = admin.with(service.clerkW)
            let id = UUID().uuidString
            let recorded = try await clerk.post("/api/v1/donations", Self.donation(id))
            #expect(recorded.status == .created, "\(String(buffer: recorded.body))")
            #expect(body(recorded)["status"] as? String == "inspecting")
            let donationID = (body(recorded)["donation"] as? [String: Any])?["id"] as? Int ?? 0
            // In the ledger as receipts, marked as a donation, and held: not usable, not counted.
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE kind = 'receipt' AND reason LIKE 'donation: %'") == 2)
            #expect(try service.scalar("SELECT count(*) AS n FROM lots WHERE lot_number IN ('DN1', 'DN2') AND quarantined") == 2)
            #expect(try await physical() == 0)
            let issue = try await clerk.post("/api/v1/movements", movement("issue", 1, lot: "DN1", facility: "W"))
            #expect(issue.status == .conflict, "\(String(buffer: issue.body))")
            // The same request again is a replay; the same id with another body is refused.
            let again = try await clerk.post("/api/v1/donations", Self.donation(id))
            #expect(again.status == .ok && (body(again)["donation"] as? [String: Any])?["id"] as? Int == donationID)
            var other = Self.donation(id)
            other["donor"] = "别人"
            #expect(try await clerk.post("/api/v1/donations", other).status == .conflict)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 2)

            // Inspection is the command centre's: a clerk may not; a failed line needs its reason.
            #expect(try await clerk.post("/api/v1/donations/\(donationID)/inspect", ["lines": [["line": 1, "result": "passed"]]]).status == .forbidden)
            let command = admin.with(service.commandD)
            let noReason = try await command.post("/api/v1/donations/\(donationID)/inspect", ["lines": [["line": 2, "result": "failed"]]])
            #expect(noReason.status == .badRequest && errorOf(noReason).field == "lines[0].note")
            let inspected = try await command.post("/api/v1/donations/\(donationID)/inspect", ["lines": [
                ["line": 1, "result": "passed", "note": "外观、证书齐全"], ["line": 2, "result": "failed", "note": "包装破损受潮"],
            ]])
            #expect(inspected.status == .ok, "\(String(buffer: inspected.body))")
            #expect(body(inspected)["status"] as? String == "done")
            // Passed: released and counted. Failed: written off as damage, nothing left.
            #expect(try await physical() == 100)
            #expect(try service.scalar("SELECT count(*) AS n FROM lots WHERE lot_number IN ('DN1', 'DN2') AND quarantined") == 0)
            #expect(try service.scalar("SELECT b.quantity AS n FROM balances b JOIN lots l ON l.id = b.lot_id WHERE l.lot_number = 'DN2'") == 0)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE kind = 'adjustment' AND reason LIKE 'damage: 捐赠质检不合格%'") == 1)
            // Again with the same results: a replay; with another: refused.
            #expect(try await command.post("/api/v1/donations/\(donationID)/inspect", ["lines": [["line": 1, "result": "passed"]]]).status == .ok)
            #expect(try await command.post("/api/v1/donations/\(donationID)/inspect", ["lines": [["line": 1, "result": "failed", "note": "x"]]]).status == .conflict)
            #expect(try service.scalar("SELECT count(*) AS n FROM audit_log WHERE action IN ('donation.record', 'donation.inspect')") == 3)

            // Where it went: an order that ships the donated lot from W.
            try TestDatabase.ownerConnection(service.location).execute("""
                INSERT INTO reallocation_orders (request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by)
                SELECT gen_random_uuid(), i.id, w.id, h.id, 30, 14.5, current_date, 'test'
                FROM items i, facilities w, facilities h WHERE i.code = 'N95' AND w.code = 'W' AND h.code = 'H';
                INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity)
                SELECT (SELECT max(id) FROM reallocation_orders), 1, l.id, 30 FROM lots l WHERE l.lot_number = 'DN1';
                """)
            let order = try service.scalar("SELECT max(id) AS n FROM reallocation_orders")
            #expect(try await admin.post("/api/v1/reallocations/\(order)/approve", [:]).status == .ok)
            #expect(try await admin.post("/api/v1/reallocations/\(order)/dispatch", [:]).status == .ok)
            let register = body(try await command.get("/api/v1/donations"))["donations"] as? [[String: Any]] ?? []
            let lines = (register.first?["donation"] as? [String: Any])?["lines"] as? [[String: Any]] ?? []
            #expect((lines.first?["shipped"] as? [[String: Any]])?.first?["to"] as? String == "H")
            #expect(lines.last?["written_off"] as? Int == 50 && lines.last?["result"] as? String == "failed")
            let csv = String(buffer: try await command.get("/api/v1/donations?format=csv").body)
            #expect(csv.hasPrefix("\u{FEFF}捐赠编号") && csv.contains("合格") && csv.contains("不合格") && csv.contains("→H 30"))
            // Another facility's clerk sees none of it.
            #expect((body(try await admin.with(service.clerkH).get("/api/v1/donations"))["donations"] as? [Any])?.isEmpty == true)
            // The register page and its CSV, for the command centre; nothing of it for H's clerk.
            var browser = PageTests.Browser(admin)
            _ = try await browser.signIn(service.commandD)
            let page = PageTests.html(try await browser.request("/donations"))
            #expect(page.contains("id=\"donations\"") && page.contains("某某慈善基金会") && page.contains("insp-passed") && page.contains("insp-failed")
                    && page.contains("包装破损受潮") && page.contains("→ H 30"))
            let download = try await browser.request("/donations/csv")
            #expect(download.status == .ok && String(buffer: download.body).contains("JZ-2026-118"))
            var clerkH = PageTests.Browser(admin)
            _ = try await clerkH.signIn(service.clerkH)
            #expect(!PageTests.html(try await clerkH.request("/donations")).contains("某某慈善基金会"))
        }
        #expect(try await service.mismatches() == 0)
    }

    @Test func aBadDonationIsRefusedByFieldAndChangesNothing() async throws {
        let service = try await TestService()
        try await service.test { admin in
            let clerk = admin.with(service.clerkW)
            let before = try service.ledgerState()
            var noDonor = Self.donation()
            noDonor.removeValue(forKey: "donor")
            let cases: [([String: Any], String, HTTPResponse.Status)] = [
                (noDonor, "donor", .badRequest),
                (Self.donation(lines: []), "lines", .badRequest),
                (Self.donation(lines: [["item": "N95", "lot": "A", "expiry": "2028-06-30", "quantity": 0]]), "lines[0].quantity", .badRequest),
                (Self.donation(lines: [["item": "N95", "lot": "A", "expiry": "2028-06-30", "quantity": 1.5]]), "lines[0].quantity", .badRequest),
                (Self.donation(lines: [["item": "N95", "lot": "A", "expiry": "2028-06-30", "quantity": 1],
                                       ["item": "N95", "lot": "A", "expiry": "2028-06-30", "quantity": 2]]), "lines[1].lot", .badRequest),
                (Self.donation(lines: [["item": "NOSUCH", "lot": "A", "expiry": "2028-06-30", "quantity": 1]]), "lines[0].item", .unprocessableContent),
                // An item that expires needs the new lot's expiry: the whole donation is refused, line 2 named.
                (Self.donation(lines: [["item": "N95", "lot": "OK", "expiry": "2028-06-30", "quantity": 1],
                                       ["item": "N95", "lot": "NOEXP", "quantity": 1]]), "lines[1].expiry", .badRequest),
                (Self.donation(facility: "H"), "facility", .forbidden),
            ]
            for (request, field, status) in cases {
                let refused = try await clerk.post("/api/v1/donations", request)
                #expect(refused.status == status && errorOf(refused).field == field, "\(field): \(String(buffer: refused.body))")
            }
            #expect(try service.ledgerState() == before)
            #expect(try service.scalar("SELECT count(*) AS n FROM donations") == 0)
            #expect(try await admin.post("/api/v1/donations/999/inspect", ["lines": [["line": 1, "result": "passed"]]]).status == .notFound)
        }
    }

    /// The page: a clerk records a donation with the form (a resubmission counts once), the command
    /// centre inspects its line from the register.
    @Test func aDonationIsRecordedAndInspectedFromItsPage() async throws {
        let service = try await TestService()
        try await service.test { client in
            var clerk = PageTests.Browser(client)
            _ = try await clerk.signIn(service.clerkW)
            let page = PageTests.html(try await clerk.request("/donations"))
            #expect(page.contains("id=\"record-donation\"") && page.contains("name=\"item.5\""))
            let id = PageTests.hidden("id", in: page) ?? ""
            var form = ["csrf": clerk.csrf, "id": id, "donor": "李四", "donor_kind": "person", "contact": "139", "certificate": "",
                        "facility": "W", "item.0": "N95", "lot.0": "PG1", "expiry.0": "2028-06-30", "quantity.0": "40"]
            for i in 1..<6 { form["item.\(i)"] = ""; form["lot.\(i)"] = ""; form["expiry.\(i)"] = ""; form["quantity.\(i)"] = "" }
            for _ in 0..<2 {
                let sent = try await clerk.request("/donations", method: .post, form: form)
                #expect(sent.status == .seeOther, "\(PageTests.html(sent).prefix(300))")
            }
            #expect(try service.scalar("SELECT count(*) AS n FROM donations") == 1)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE reason = 'donation: 李四'") == 1)
            // A line without its quantity: the form again, saying which, nothing recorded.
            var bad = form
            bad["id"] = UUID().uuidString
            bad["quantity.0"] = ""
            let refused = try await clerk.request("/donations", method: .post, form: bad)
            #expect(refused.status == .badRequest && PageTests.html(refused).contains("lines[0].quantity"))
            #expect(try service.scalar("SELECT count(*) AS n FROM donations") == 1)
            // No inspection buttons for the clerk; the command centre inspects.
            #expect(!PageTests.html(try await clerk.request("/donations")).contains("class=\"inline inspect\""))
            var command = PageTests.Browser(client)
            _ = try await command.signIn(service.commandD)
            let register = PageTests.html(try await command.request("/donations"))
            #expect(register.contains("class=\"inline inspect\"") && !register.contains("id=\"record-donation\""))
            let donation = try service.scalar("SELECT id AS n FROM donations")
            let failedNoNote = try await command.request("/donations/\(donation)/inspect", method: .post,
                                                          form: ["csrf": command.csrf, "line": "1", "result": "failed", "note": ""])
            #expect(failedNoNote.status == .badRequest)
            let passed = try await command.request("/donations/\(donation)/inspect", method: .post,
                                                    form: ["csrf": command.csrf, "line": "1", "result": "passed", "note": "合格"])
            #expect(passed.status == .seeOther)
            #expect(PageTests.html(try await command.request("/donations")).contains("insp-passed"))
            #expect(try service.scalar("SELECT count(*) AS n FROM lots WHERE lot_number = 'PG1' AND quarantined") == 0)
        }
    }
}
