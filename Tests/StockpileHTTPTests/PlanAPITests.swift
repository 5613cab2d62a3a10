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

@Suite(.serialized) struct PlanAPITests {
    /// POST /api/v1/reallocations/plan on the example district: each item reaches the optimum of
    /// expected.json, and the orders keep every rule: no donor below its target, no receiver over
    /// its need, no lot expired (or held) at as_of, no lot over what is on hand.
    @Test func theExampleDistrictsPlan() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: TestDatabase.districtA.appendingPathComponent("expected.json"))) as! [String: Any]
        let asOf = expected["as_of"] as! String
        // (Decoded again inside the test client's closure, which must not capture non-Sendable values.)
        let optima = try JSONSerialization.data(withJSONObject: expected["plan"]!)
        let admin = try await PostgresTokens(database, scope: .system("test")).create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        let before = try TestDatabase.ownerConnection(database.location).query("SELECT count(*) AS n FROM movements").rows[0].decode("n", as: Int.self)
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let response = try await client.post("/api/v1/reallocations/plan", ["as_of": asOf])
            #expect(response.status == .ok)
            let plan = body(response)
            let items = Dictionary(uniqueKeysWithValues: (plan["items"] as? [[String: Any]] ?? []).map { ($0["item"] as! String, $0) })
            for (item, optimum) in try JSONSerialization.jsonObject(with: optima) as! [String: [String: Any]] {
                let mine = try #require(items[item], "\(item) missing from the plan")
                #expect(mine["weighted_covered"] as? Int == optimum["weighted_covered"] as? Int, "\(item) weighted")
                #expect(mine["covered"] as? Int == optimum["covered"] as? Int, "\(item) covered")
                let km = optimum["qty_km"] as! Double
                #expect(abs((mine["qty_km"] as? Double ?? 0) - km) <= km * 0.005, "\(item) qty_km")
            }
            let orders = plan["orders"] as? [[String: Any]] ?? []
            #expect(!orders.isEmpty)
            // Each line's expiry is its lot's (the planner carries days to expiry and dates it from as_of).
            let lotExpiry = Dictionary(uniqueKeysWithValues: try TestDatabase.ownerConnection(database.location)
                .query("SELECT i.code || '|' || l.lot_number AS key, l.expiry::text AS expiry FROM lots l JOIN items i ON i.id = l.item_id").rows
                .map { (try $0.decode("key", as: String.self), try $0.decode("expiry", as: String?.self)) })
            for order in orders {
                for line in order["lines"] as? [[String: Any]] ?? [] {
                    let key = "\(order["item"] as! String)|\(line["lot"] as! String)"
                    #expect(line["expiry"] as? String == lotExpiry[key] ?? nil, "expiry of \(key)")
                }
            }
            let cover = PostgresCover(database, scope: .system("test"))
            let rows = try await cover.positions(CoverFilter(), asOf: LocalDate(asOf)!)
            let position = Dictionary(uniqueKeysWithValues: rows.map { ("\($0.facility)|\($0.item)", $0) })
            var given: [String: Int64] = [:], received: [String: Int64] = [:], fromLot: [String: Int64] = [:]
            for order in orders {
                let item = order["item"] as! String, from = order["from"] as! String, to = order["to"] as! String
                let quantity = Int64(order["quantity"] as! Int)
                given["\(from)|\(item)", default: 0] += quantity
                received["\(to)|\(item)", default: 0] += quantity
                let lines = order["lines"] as? [[String: Any]] ?? []
                #expect(lines.reduce(0) { $0 + ($1["quantity"] as! Int) } == Int(quantity))
                let expiries = lines.map { $0["expiry"] as? String ?? "9999-12-31" }
                #expect(expiries.allSatisfy { $0 > asOf }, "an expired lot on an order from \(from)")
                #expect(expiries == expiries.sorted(), "lines of \(from)→\(to) not earliest expiry first")
                for line in lines { fromLot["\(from)|\(item)|\(line["lot"] as! String)", default: 0] += Int64(line["quantity"] as! Int) }
            }
            for (key, quantity) in given {
                let p = try #require(position[key])
                // What it keeps is at least its own target, ceil(N × d).
                let keep = Int64(Cover.roundQuantity(Double(p.targetDays) * p.dailyDemand).rounded(.up))
                #expect(quantity <= max(0, p.physicalQty - keep), "\(key) gives \(quantity) of \(p.physicalQty) and drops below its target")
            }
            for (key, quantity) in received { #expect(quantity <= position[key]!.shortfallQty, "\(key) gets more than its need") }
            let owner = try TestDatabase.ownerConnection(database.location)
            for (key, quantity) in fromLot {
                let parts = key.split(separator: "|").map(String.init)
                let onHand: Int64 = try owner.query("""
                    SELECT coalesce(sum(b.quantity), 0)::bigint AS n FROM balances b JOIN lots l ON l.id = b.lot_id
                    JOIN facilities f ON f.id = b.facility_id JOIN items i ON i.id = b.item_id
                    WHERE f.code = $1 AND i.code = $2 AND l.lot_number = $3 AND NOT l.quarantined
                    """, [parts[0], parts[1], parts[2]]).rows[0].decode("n")
                #expect(quantity <= onHand, "\(key): ships \(quantity) of \(onHand)")
            }
            // Bad input names its field; a plan stores nothing.
            let bad = try await client.post("/api/v1/reallocations/plan", ["as_of": "yesterday"])
            #expect(bad.status == .badRequest && errorOf(bad).field == "as_of")
            let unknown = try await client.post("/api/v1/reallocations/plan", ["item": "NOPE"])
            #expect(unknown.status == .notFound && errorOf(unknown).field == "item")
            // The inputs are streamed by COPY with the filters as escaped literals (PQCopyOut.swift):
            // a quote in a filter is only a name that does not exist, never SQL.
            for (field, hostile) in [("region", "x'); DELETE FROM movements; --"), ("item", "口罩' OR '1'='1"), ("region", "\\'; SELECT 1; --")] {
                let answer = try await client.post("/api/v1/reallocations/plan", [field: hostile])
                #expect(answer.status == .notFound && errorOf(answer).field == field, "\(field) \(hostile): \(answer.status)")
            }
        }
        #expect(try TestDatabase.ownerConnection(database.location).query("SELECT count(*) AS n FROM movements").rows[0].decode("n", as: Int.self) == before)
        await database.shutdown()
    }
}
