import Foundation
import HummingbirdTesting
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Issue 17, part 3 (no interception, 截留): an order late on the road is listed with its days
/// overdue (API, orders page, dashboard); a receipt that came in short is listed with its reason
/// and summed per sender, receiver and month.
@Suite struct TransitAPITests {
    @Test func anOverdueOrderAndAShortReceiptAreListed() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { admin in
            // TestService's order 1: 10 N95 of lot KEPT from H to W, 14.5 km.
            #expect(try await admin.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            #expect(try await admin.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)
            let orders = { (token: String) in body(try await admin.with(token).get("/api/v1/transit/overdue"))["orders"] as? [[String: Any]] ?? [] }
            // Just dispatched: 14.5 km is well within the day every order is given.
            #expect(try await orders(service.admin).isEmpty)
            // Fifty hours on the road: a day and a bit past due.
            try TestDatabase.ownerConnection(service.location).execute("UPDATE reallocation_orders SET dispatched_at = now() - interval '50 hours' WHERE id = 1")
            for token in [service.admin, service.clerkH, service.clerkW, service.commandD] {
                let late = try await orders(token)
                #expect(late.count == 1 && late.first?["id"] as? Int == 1 && late.first?["in_transit"] as? Int == 10, "\(late)")
                let days = late.first?["days_overdue"] as? Double ?? 0
                #expect((1.0...1.2).contains(days), "\(days)")
            }
            let answer = body(try await admin.get("/api/v1/transit/overdue"))
            #expect(answer["kmh"] as? Double == 30 && answer["minimum_hours"] as? Double == 24)

            // Received 7 of 10: no longer overdue, listed as short with its reason.
            let received = try await admin.with(service.clerkW).post("/api/v1/reallocations/1/receive",
                                                                     ["lines": [["lot": "KEPT", "received": 7]], "reason": "运输途中破损 3 只"])
            #expect(received.status == .ok, "\(String(buffer: received.body))")
            #expect(try await orders(service.admin).isEmpty)
            let short = body(try await admin.with(service.commandD).get("/api/v1/transit/short"))
            let receipts = short["receipts"] as? [[String: Any]] ?? []
            #expect(receipts.count == 1 && receipts.first?["lost"] as? Int == 3 && receipts.first?["dispatched"] as? Int == 10)
            #expect((receipts.first?["reasons"] as? String)?.contains("破损") == true)
            let summary = short["summary"] as? [[String: Any]] ?? []
            #expect(summary.count == 1 && summary.first?["from"] as? String == "H" && summary.first?["to"] as? String == "W"
                    && summary.first?["lost"] as? Int == 3 && (summary.first?["month"] as? String)?.count == 7)
        }
    }

    @Test func thePagesShowWhatIsLateAndWhatCameInShort() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { admin in
            #expect(try await admin.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            #expect(try await admin.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)
            try TestDatabase.ownerConnection(service.location).execute("UPDATE reallocation_orders SET dispatched_at = now() - interval '4 days' WHERE id = 1")
            var browser = PageTests.Browser(admin)
            _ = try await browser.signIn(service.commandD)
            let orders = PageTests.html(try await browser.request("/orders"))
            #expect(orders.contains("id=\"overdue\"") && orders.contains("data-order=\"1\"") && orders.contains("<strong>3.0</strong>"))
            let dashboard = PageTests.html(try await browser.request("/"))
            #expect(dashboard.contains("id=\"overdue-notice\"") && dashboard.contains("1 张调拨单逾期未签收"))
            _ = try await admin.with(service.clerkW).post("/api/v1/reallocations/1/receive", ["lines": [["lot": "KEPT", "received": 9]], "reason": "丢失 1 只"])
            let after = PageTests.html(try await browser.request("/orders"))
            #expect(!after.contains("id=\"overdue\"") && after.contains("id=\"short\"") && after.contains("丢失 1 只"))
        }
    }

    /// The nightly report carries both: the order overdue on the road, and after its receipt, the
    /// receiver holding the allocated stock far above its target while H, in the same region, is short.
    @Test func theNightlyReportListsOverdueOrdersAndHoarding() async throws {
        let service = try await TestService(reserves: true)
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles(["demand": "facility_code,item_code,full_load_daily\nH,N95,5\nW,N95,0.05\n"])
        let today = LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!)
        try await service.test { admin in
            #expect(try await admin.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            #expect(try await admin.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)
            try TestDatabase.ownerConnection(service.location).execute("UPDATE reallocation_orders SET dispatched_at = now() - interval '3 days' WHERE id = 1")
            var nightly = PostgresNightly(service.database, scope: .system("test"))
            nightly.transit = .standard
            let first = try await nightly.run(asOf: today, region: nil).report
            #expect(first.overdue?.map(\.order) == [1] && (first.overdue?.first?.daysOverdue ?? 0) >= 1.9, "\(String(describing: first.overdue))")
            #expect(first.hoarding == [])

            #expect(try await admin.with(service.clerkW).post("/api/v1/reallocations/1/receive", [:]).status == .ok)
            let second = try await nightly.replace(asOf: today, region: nil).report
            #expect(second.overdue == [])
            let flagged = second.hoarding ?? []
            #expect(flagged.count == 1 && flagged.first?.facility == "W" && flagged.first?.received == 10 && flagged.first?.physicalQty == 10
                    && (flagged.first?.regionShortfallQty ?? 0) > 0 && flagged.first?.shortFacilities == 1, "\(flagged)")

            // Stored and read back: the JSON, each section's CSV.
            let json = body(try await admin.get("/api/v1/reports/nightly/\(today)"))
            #expect((json["hoarding"] as? [[String: Any]])?.first?["facility"] as? String == "W")
            #expect((json["overdue"] as? [Any])?.isEmpty == true)
            let csv = String(buffer: try await admin.get("/api/v1/reports/nightly/\(today)?format=csv&section=hoarding").body)
            #expect(csv.contains("超储数量") && csv.contains("第一区储备库"))
        }
    }
}
