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

/// plan → create → approve → dispatch → partial receipt on the example district, every call
/// retried, with balances, in-transit, the loss and the ledger checked after each step.
@Suite(.serialized) struct ReallocationLifecycleTests {
    @Test func aFullLifecycleWithRetries() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let admin = try await PostgresTokens(database, scope: .system("test")).create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        let location = database.location
        @Sendable func scalar(_ sql: String, _ parameters: [any PQEncodable] = []) throws -> Int64 {
            try TestDatabase.ownerConnection(location).query(sql, parameters).rows[0].decode("n")
        }
        @Sendable func balance(_ facility: String, _ lot: String) throws -> Int64 {
            try scalar("""
                SELECT coalesce(sum(b.quantity), 0)::bigint AS n FROM balances b JOIN facilities f ON f.id = b.facility_id
                JOIN lots l ON l.id = b.lot_id WHERE f.code = $1 AND l.lot_number = $2
                """, [facility, lot])
        }
        @Sendable func ledgerIsExact() async throws {
            #expect(try await PostgresLedger(database, scope: .system("test")).mismatches().isEmpty)
            #expect(try await PostgresReallocations.integrityViolations(database) == [])
        }
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let request: [String: Any] = ["id": UUID().uuidString, "as_of": "2026-11-22", "item": "N95"]
            let created = try await client.post("/api/v1/reallocations", request)
            #expect(created.status == .created)
            let orders = body(created)["orders"] as? [[String: Any]] ?? []
            #expect(orders.count >= 2 && orders.allSatisfy { $0["status"] as? String == "proposed" })
            let retried = try await client.post("/api/v1/reallocations", request)
            #expect(retried.status == .ok && body(retried)["replay"] as? Bool == true)
            #expect((body(retried)["orders"] as? [[String: Any]])?.map { $0["id"] as? Int } == orders.map { $0["id"] as? Int })

            let order = orders[0]
            let id = order["id"] as! Int, from = order["from"] as! String, to = order["to"] as! String
            let line = (order["lines"] as! [[String: Any]])[0]
            let lot = line["lot"] as! String, quantity = Int64(line["quantity"] as! Int)
            let donorBefore = try balance(from, lot), receiverBefore = try balance(to, lot)

            for _ in 0..<2 {
                let approved = try await client.post("/api/v1/reallocations/\(id)/approve", [:])
                #expect(approved.status == .ok && body(approved)["status"] as? String == "approved")
            }
            #expect(try balance(from, lot) == donorBefore)
            for _ in 0..<2 {
                let dispatched = try await client.post("/api/v1/reallocations/\(id)/dispatch", [:])
                #expect(dispatched.status == .ok && body(dispatched)["status"] as? String == "dispatched")
                #expect(try balance(from, lot) == donorBefore - quantity)
                #expect(try scalar("SELECT coalesce(sum(quantity), 0)::bigint AS n FROM in_transit WHERE order_id = $1", [id]) == quantity)
                #expect(try balance(to, lot) == receiverBefore)  // in transit is stock at neither end
                let cover = body(try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&facility=\(to)&item=N95", method: .get))
                #expect((cover["rows"] as? [[String: Any]])?.first?["inbound_qty"] as? Int == Int(quantity))
                try await ledgerIsExact()
            }
            // A cancelled order cannot be cancelled once the stock has left.
            let late = try await client.post("/api/v1/reallocations/\(id)/cancel", ["reason": "不需要了"])
            #expect(late.status == .conflict && errorOf(late).field == "status")

            // Partial receipt: 5 short, with a reason; retried; a different body is a conflict.
            let short = quantity - 5
            let noReason = try await client.post("/api/v1/reallocations/\(id)/receive", ["lines": [["lot": lot, "received": short]]])
            #expect(noReason.status == .badRequest && errorOf(noReason).field == "reason")
            for _ in 0..<2 {
                let received = try await client.post("/api/v1/reallocations/\(id)/receive",
                                                     ["lines": [["lot": lot, "received": short]], "reason": "运输破损"])
                #expect(received.status == .ok && body(received)["status"] as? String == "received")
                #expect(try balance(to, lot) == receiverBefore + short)
                #expect(try balance(from, lot) == donorBefore - quantity)
                #expect(try scalar("SELECT coalesce(sum(quantity), 0)::bigint AS n FROM in_transit WHERE order_id = $1", [id]) == 0)
                let cover = body(try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&facility=\(to)&item=N95", method: .get))
                #expect((cover["rows"] as? [[String: Any]])?.first?["inbound_qty"] as? Int == 0)
                #expect(try scalar("SELECT coalesce(-sum(quantity), 0)::bigint AS n FROM transit_movements WHERE order_id = $1 AND kind = 'loss'", [id]) == 5)
                try await ledgerIsExact()
            }
            let otherBody = try await client.post("/api/v1/reallocations/\(id)/receive", ["lines": [["lot": lot, "received": quantity]]])
            #expect(otherBody.status == .conflict)
            #expect(try balance(to, lot) == receiverBefore + short)

            // Another order: cancelled while proposed, then it cannot be dispatched.
            let second = orders[1]["id"] as! Int
            #expect(try await client.post("/api/v1/reallocations/\(second)/cancel", ["reason": "改由合同调用"]).status == .ok)
            let dispatchCancelled = try await client.post("/api/v1/reallocations/\(second)/dispatch", [:])
            #expect(dispatchCancelled.status == .conflict)

            // Dispatch fails cleanly when the donor's lot no longer holds the quantity.
            #expect(orders.count >= 3)
            if orders.count >= 3 {
                let third = orders[2]
                let thirdID = third["id"] as! Int, thirdFrom = third["from"] as! String
                let thirdLine = (third["lines"] as! [[String: Any]])[0]
                let thirdLot = thirdLine["lot"] as! String
                #expect(try await client.post("/api/v1/reallocations/\(thirdID)/approve", [:]).status == .ok)
                let onHand = try balance(thirdFrom, thirdLot)
                let drain = try await client.post("/api/v1/movements", ["id": UUID().uuidString, "facility": thirdFrom, "item": "N95",
                                                                         "lot": thirdLot, "kind": "issue", "quantity": onHand])
                #expect(drain.status == .created)
                let movementsBefore = try scalar("SELECT count(*) AS n FROM movements")
                let refused = try await client.post("/api/v1/reallocations/\(thirdID)/dispatch", [:])
                #expect(refused.status == .conflict)
                #expect(try scalar("SELECT count(*) AS n FROM movements") == movementsBefore)
                #expect(try scalar("SELECT count(*) AS n FROM in_transit WHERE order_id = $1", [thirdID]) == 0)
                let still = body(try await client.execute(uri: "/api/v1/reallocations/\(thirdID)", method: .get))
                #expect(still["status"] as? String == "approved")
            }
            // The list filters by status; every step is in the audit log.
            let received = body(try await client.execute(uri: "/api/v1/reallocations?status=received", method: .get))["orders"] as? [[String: Any]]
            #expect(received?.map { $0["id"] as? Int } == [id])
            let audit = body(try await client.execute(uri: "/api/v1/audit?limit=200", method: .get))["entries"] as? [[String: Any]] ?? []
            let actions = audit.compactMap { $0["action"] as? String }
            for action in ["reallocation.create", "reallocation.approve", "reallocation.dispatch", "reallocation.receive", "reallocation.cancel"] {
                #expect(actions.contains(action), "\(action) not audited")
            }
            try await ledgerIsExact()
        }
        await database.shutdown()
    }
}
