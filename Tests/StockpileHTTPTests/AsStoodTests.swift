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

/// Issue 17, part 5: cover as it stood on a past date. The district's history ends on 2026-11-21;
/// its cover for 2026-11-25 is saved while nothing has happened since (that is the snapshot of that
/// date). Then stock arrives and leaves, a lot is held, a contract is called off and a shipment goes
/// on the road, all today. Cover as it stood on 2026-11-25 must still equal the saved one, row for
/// row, while today's balances for that date have moved.
@Suite(.serialized) struct AsStoodTests {
    static let date = "2026-11-25"

    static func canonical(_ rows: [[String: Any]]) throws -> [String] {
        try rows.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
    }

    @Test func coverAsItStoodEqualsTheSnapshotSavedThatDay() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        // The district without stock.csv: its counts are today's, and this test is about a day before them.
        var files: [String: String] = [:]
        for name in CSVImporter.fileOrder where name != "stock" {
            if let text = try? String(contentsOf: TestDatabase.districtA.appendingPathComponent("\(name).csv"), encoding: .utf8) { files[name] = text }
        }
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(files)
        let admin = try await PostgresTokens(database, scope: .system("test")).create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            func cover(_ extra: String = "") async throws -> [[String: Any]] {
                let response = try await client.execute(uri: "/api/v1/cover?as_of=\(Self.date)&limit=10000&sort=facility\(extra)", method: .get)
                #expect(response.status == .ok)
                return body(response)["rows"] as? [[String: Any]] ?? []
            }
            let saved = try await cover()
            #expect(saved.count > 100)
            // Before anything happens since, as it stood and as it stands agree.
            #expect(try Self.canonical(try await cover("&as_stood=true")) == Self.canonical(saved))

            // Today: a receipt and an issue, a hold, a call-off, a shipment on the road.
            let stocked = saved.first { ($0["physical_qty"] as? Int ?? 0) > 100 }!
            let facility = stocked["facility"] as! String, item = stocked["item"] as! String
            let stock = body(try await client.execute(uri: "/api/v1/facilities/\(facility)/stock", method: .get))
            let lot = (stock["lots"] as? [[String: Any]] ?? []).first { $0["item"] as? String == item && ($0["quantity"] as? Int ?? 0) > 3 }?["lot"] as? String
            #expect(lot != nil)
            #expect(try await client.post("/api/v1/movements", ["id": UUID().uuidString, "facility": facility, "item": item, "lot": "NEW-1",
                                                                "expiry": "2029-01-31", "kind": "receipt", "quantity": 777]).status == .created)
            if let lot {
                #expect(try await client.post("/api/v1/movements", ["id": UUID().uuidString, "facility": facility, "item": item, "lot": lot,
                                                                    "kind": "issue", "quantity": 3]).status == .created)
                #expect(try await client.post("/api/v1/lots/\(item)/\(lot)/hold", ["reason": "质检"]).status == .created)
            }
            #expect(try await client.post("/api/v1/contracts/K0001/calloffs", ["id": UUID().uuidString, "quantity": 1000, "note": "test"]).status == .created)
            let created = try await client.post("/api/v1/reallocations", ["id": UUID().uuidString, "as_of": Self.date])
            let shipments = Set((body(created)["orders"] as? [[String: Any]] ?? []).compactMap { $0["shipment"] as? Int })
            #expect(!shipments.isEmpty)
            if let shipment = shipments.min() {
                #expect(try await client.post("/api/v1/shipments/\(shipment)/approve", [:]).status == .ok)
                #expect(try await client.post("/api/v1/shipments/\(shipment)/dispatch", ["carrier": "测试"]).status == .ok)
            }

            // Today's balances for that date have moved; cover as it stood has not.
            let now = try await cover()
            #expect(try Self.canonical(now) != Self.canonical(saved))
            #expect(now.contains { ($0["inbound_qty"] as? Int ?? 0) > 0 })
            let stood = try await client.execute(uri: "/api/v1/cover?as_of=\(Self.date)&limit=10000&sort=facility&as_stood=true", method: .get)
            #expect(body(stood)["as_stood"] as? Bool == true)
            let stoodRows = body(stood)["rows"] as? [[String: Any]] ?? []
            #expect(try Self.canonical(stoodRows) == Self.canonical(saved))
            // One facility's rows, through the same path.
            let one = try await cover("&as_stood=true&facility=\(facility)")
            #expect(try Self.canonical(one) == Self.canonical(saved.filter { $0["facility"] as? String == facility }))

            // What as_stood refuses: today or later, a what-if, a word that is not true or false, a roll-up.
            let today = LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!)
            for bad in ["as_of=\(today)&as_stood=true", "as_of=\(today.adding(days: 3))&as_stood=true",
                        "as_of=\(Self.date)&as_stood=true&surge=2", "as_of=\(Self.date)&as_stood=yes"] {
                let refused = try await client.execute(uri: "/api/v1/cover?\(bad)", method: .get)
                #expect(refused.status == .badRequest, "\(bad)")
            }
            #expect(try await client.execute(uri: "/api/v1/cover/rollup?as_of=\(Self.date)&as_stood=true", method: .get).status == .badRequest)
        }
    }
}
