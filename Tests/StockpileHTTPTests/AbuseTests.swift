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

/// Issue 14, tried as an attacker, a careless clerk and a fuzzer would: one case per attack, each
/// refused with its documented status, the ledger unchanged by every refusal, and conservation
/// (`stockpile check`, `integrityViolations`) intact after each.
@Suite(.serialized) struct AbuseTests {
    func conserved(_ service: TestService) async throws {
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }

    func balance(_ service: TestService, _ facility: String, _ lot: String) throws -> Int64 {
        try TestDatabase.ownerConnection(service.location).query("""
            SELECT coalesce(sum(b.quantity), 0)::bigint AS n FROM balances b JOIN facilities f ON f.id = b.facility_id
            JOIN lots l ON l.id = b.lot_id WHERE f.code = $1 AND l.lot_number = $2
            """, [facility, lot]).rows[0].decode("n")
    }

    /// Point 1: a clerk records movements under the ids dispatch and receipt used to compute
    /// (md5 of "stockpile/dispatch/<order>/<line>"); the transfers are still written, exactly once.
    @Test func transferIdsCannotBeTakenFirst() async throws {
        let service = try await TestService(reserves: true)
        let owner = try TestDatabase.ownerConnection(service.location)
        func oldID(_ word: String) throws -> String {
            try owner.query("SELECT md5('stockpile/' || $1 || '/1/1')::uuid::text AS id", [word]).rows[0].decode("id")
        }
        let dispatchID = try oldID("dispatch"), receiptID = try oldID("receipt")
        try await service.test { client in
            #expect(try await client.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            let clerkH = client.with(service.clerkH), clerkW = client.with(service.clerkW)
            // The donor's clerk takes the dispatch's old id with a receipt of 5 into the same lot.
            let squat = try await clerkH.post("/api/v1/movements", movement("receipt", 5, lot: "KEPT", id: dispatchID,
                                                                              extra: ["expiry": "2028-01-31"]))
            #expect(squat.status == .created)
            #expect(try balance(service, "H", "KEPT") == 45)
            let dispatched = try await clerkH.post("/api/v1/reallocations/1/dispatch", [:])
            #expect(dispatched.status == .ok)
            // The donor gave the 10 it shipped: 40 + 5 − 10.
            #expect(try balance(service, "H", "KEPT") == 35)
            // A replayed dispatch writes nothing more.
            #expect(try await clerkH.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)
            #expect(try balance(service, "H", "KEPT") == 35)
            try await conserved(service)

            // The receiver's clerk takes the receipt's old id with a receipt of its own.
            let squat2 = try await clerkW.post("/api/v1/movements", movement("receipt", 3, lot: "KEPT", id: receiptID,
                                                                               facility: "W", extra: ["expiry": "2028-01-31"]))
            #expect(squat2.status == .created)
            let received = try await clerkW.post("/api/v1/reallocations/1/receive", [:])
            #expect(received.status == .ok && body(received)["status"] as? String == "received")
            #expect(try balance(service, "W", "KEPT") == 13)
            try await conserved(service)
            // Transfers are not a kind a client may record.
            let forged = try await clerkW.post("/api/v1/movements", movement("transfer_in", 3, lot: "KEPT", facility: "W"))
            #expect(forged.status == .badRequest && errorOf(forged).field == "kind")
        }
        // Each transfer is tied to its line, once, under an id nobody chose.
        #expect(try service.scalar("SELECT count(*) AS n FROM transfer_movements WHERE order_id = 1") == 2)
        #expect(try service.scalar("""
            SELECT count(*) AS n FROM transfer_movements t JOIN movements m ON m.id = t.movement_id
            WHERE m.id::text IN (md5('stockpile/dispatch/1/1')::uuid::text, md5('stockpile/receipt/1/1')::uuid::text)
            """) == 0)
    }

    /// Point 1: what the old trick left behind (stock in transit with no transfer_out at the
    /// donor) is found and named by the check; so is a receipt that does not add up.
    @Test func checkNamesABrokenLine() async throws {
        let service = try await TestService(reserves: true)
        try await conserved(service)
        // Order 1 made to look dispatched into transit without the donor giving anything.
        try TestDatabase.ownerConnection(service.location).execute("""
            SELECT set_config('stockpile.scope', 'all', false);
            UPDATE reallocation_orders SET status = 'dispatched' WHERE id = 1;
            INSERT INTO transit_movements (order_id, line_no, kind, quantity, recorded_by) VALUES (1, 1, 'dispatch', 10, 'forger');
            INSERT INTO in_transit (order_id, line_no, item_id, lot_id, from_facility_id, to_facility_id, quantity)
            SELECT 1, 1, o.item_id, rl.lot_id, o.from_facility_id, o.to_facility_id, 10
            FROM reallocation_orders o JOIN reallocation_lines rl ON rl.order_id = o.id WHERE o.id = 1;
            """)
        let violations = try await PostgresReallocations.integrityViolations(service.database)
        #expect(violations.contains { $0.kind == "dispatch" && $0.subject == "order 1 line 1" })
        // Each ledger still sums to its balance, and so does every lot: only the line-by-line proof sees it.
        #expect(try await service.mismatches() == 0)
        #expect(violations.count == 1)
    }
}

/// Point 3: holds hold, and have a scope.
@Suite(.serialized) struct HoldAbuseTests {
    @Test func aHeldLotIsNotIssuedDispatchedOrPlanned() async throws {
        let service = try await TestService(reserves: true)
        let commandC = try await PostgresTokens(service.database, scope: .system("test"))
            .create(name: "command-c", role: .command, region: "C", facilities: [], validDays: 1).secret
        try await service.test { admin in
            let clerkH = admin.with(service.clerkH), commandD = admin.with(service.commandD)
            #expect(try await admin.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            let held = try await admin.post("/api/v1/lots/N95/KEPT/hold", ["reason": "召回"])
            #expect(held.status == .created && body(held)["quarantined"] as? Bool == true)
            let before = try service.ledgerState()

            // An issue, alone or in a batch, and a dispatch: 409 lot_held, nothing written.
            let issue = try await clerkH.post("/api/v1/movements", movement("issue", 1, lot: "KEPT"))
            #expect(issue.status == .conflict && errorOf(issue).code == "lot_held" && errorOf(issue).field == "lot")
            #expect(errorOf(issue).message?.contains("召回") == true)
            let batch = try await clerkH.post("/api/v1/movements/batch", ["movements": [
                movement("receipt", 2, lot: "NEW1"), movement("issue", 1, lot: "KEPT")]])
            #expect(batch.status == .conflict && errorOf(batch).code == "lot_held" && errorOf(batch).field == "movements[1].lot")
            let dispatch = try await clerkH.post("/api/v1/reallocations/1/dispatch", [:])
            #expect(dispatch.status == .conflict && errorOf(dispatch).code == "lot_held")
            #expect(try service.ledgerState() == before)
            #expect(try service.scalar("SELECT count(*) AS n FROM in_transit") == 0)

            // The command centre of D may not lift the city-wide recall; the city's may not either.
            for token in [service.commandD, commandC] {
                let lifted = try await admin.with(token).post("/api/v1/lots/N95/KEPT/release", [:])
                #expect(lifted.status == .forbidden && errorOf(lifted).message?.contains("召回") == true)
            }
            #expect(try service.scalar("SELECT count(*) AS n FROM lot_holds WHERE released_at IS NULL") == 1)

            // A count and a damage write-off of held stock are still recorded.
            #expect(try await clerkH.post("/api/v1/movements", movement("adjustment", 1, lot: "KEPT", extra: ["reason": "damage: 召回销毁"])).status == .created)

            // The planner does not offer it: H has 39 N95 in KEPT and nothing else to give.
            let plan = try await admin.post("/api/v1/reallocations/plan", ["item": "N95"])
            #expect(plan.status == .ok)
            let lots = ((body(plan)["orders"] as? [[String: Any]]) ?? []).flatMap { ($0["lines"] as? [[String: Any]]) ?? [] }.map { $0["lot"] as? String }
            #expect(!lots.contains("KEPT"))

            // The administrator lifts it; the dispatch goes through.
            #expect(try await admin.post("/api/v1/lots/N95/KEPT/release", [:]).status == .created)
            #expect(try await clerkH.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)

            // A command token's hold covers its subtree; the city's command centre (wider) lifts it,
            // and D's own may lift it too; each step is in D's audit log.
            let regional = try await commandD.post("/api/v1/lots/N95/KEPT/hold", ["reason": "待检"])
            #expect(regional.status == .created)
            #expect(((body(regional)["holds"] as? [[String: Any]])?.first?["region"] as? String) == "D")
            #expect(try await clerkH.post("/api/v1/movements", movement("issue", 1, lot: "KEPT")).status == .conflict)
            #expect(try await admin.with(commandC).post("/api/v1/lots/N95/KEPT/release", [:]).status == .created)
            #expect(try await clerkH.post("/api/v1/movements", movement("issue", 1, lot: "KEPT")).status == .created)
            let audit = try await commandD.execute(uri: "/api/v1/audit?limit=50", method: .get)
            let actions = ((body(audit)["entries"] as? [[String: Any]]) ?? []).compactMap { $0["action"] as? String }
            #expect(actions.filter { $0 == "lot.hold" }.count == 2 && actions.filter { $0 == "lot.release" }.count == 2)
        }
        #expect(try await service.mismatches() == 0)
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }
}
