import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PQ
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

@Suite(.serialized) struct MovementAPITests {
    @Test func recordReplayConflictAndReadBack() async throws {
        let service = try await TestService()
        try await service.test { client in
            let id = UUID().uuidString
            let receipt = movement("receipt", 500, lot: "A1", id: id, extra: ["reason": "采购入库"])
            let first = try await client.post("/api/v1/movements", receipt)
            #expect(first.status == .created)
            let recorded = body(first)["movement"] as? [String: Any]
            #expect(recorded?["balance_after"] as? Int == 500)
            #expect(recorded?["id"] as? String == id.lowercased())

            let replay = try await client.post("/api/v1/movements", receipt)
            #expect(replay.status == .ok)
            #expect((body(replay)["movement"] as? [String: Any])?["replay"] as? Bool == true)

            var changed = receipt
            changed["quantity"] = 501
            let conflict = try await client.post("/api/v1/movements", changed)
            #expect(conflict.status == .conflict)
            #expect(errorOf(conflict).code == "id_conflict")

            let tooMuch = try await client.post("/api/v1/movements", movement("issue", 501, lot: "A1"))
            #expect(tooMuch.status == .conflict)
            #expect(errorOf(tooMuch).code == "insufficient_stock")
            #expect(errorOf(tooMuch).message?.contains("only 500 on hand") == true)
            #expect(errorOf(tooMuch).field == "quantity")

            let issue = try await client.post("/api/v1/movements", movement("issue", 120, lot: "A1"))
            #expect(issue.status == .created)

            let stock = try await client.execute(uri: "/api/v1/facilities/H/stock", method: .get)
            let lots = body(stock)["lots"] as? [[String: Any]] ?? []
            #expect(lots.count == 1)
            #expect(lots.first?["quantity"] as? Int == 380)
            #expect(lots.first?["expiry"] as? String == "2028-06-30")
            #expect(lots.first?["item_name"] as? String == "N95口罩")

            let missing = try await client.execute(uri: "/api/v1/facilities/NOPE/stock", method: .get)
            #expect(missing.status == .notFound)

            let page = try await client.execute(uri: "/api/v1/movements?facility=H&item=N95&limit=1", method: .get)
            #expect((body(page)["movements"] as? [Any])?.count == 1)
            let next = try #require(body(page)["next"] as? String)
            let page2 = try await client.execute(uri: "/api/v1/movements?facility=H&item=N95&limit=5&after=\(next)", method: .get)
            #expect((body(page2)["movements"] as? [[String: Any]])?.first?["quantity"] as? Int == -120)
        }
        #expect(try await service.mismatches() == 0)
    }

    @Test func aBatchIsRecordedInOrderAndReplayedWhole() async throws {
        let service = try await TestService()
        try await service.test { client in
            let batch: [String: Any] = ["movements": [
                movement("receipt", 100, lot: "BT"), movement("issue", 30, lot: "BT"),
                movement("count", 65, lot: "BT"), movement("adjustment", 5, lot: "BT", extra: ["reason": "found: 盘盈"]),
            ]]
            let first = try await client.post("/api/v1/movements/batch", batch)
            #expect(first.status == .created)
            #expect(body(first)["recorded"] as? Int == 4)
            let outcomes = body(first)["movements"] as? [[String: Any]] ?? []
            #expect(outcomes.map { $0["balance_after"] as? Int } == [100, 70, 65, 70])
            #expect(outcomes.map { $0["quantity"] as? Int } == [100, -30, -5, 5])
            let ids = (batch["movements"] as! [[String: Any]]).map { ($0["id"] as! String).lowercased() }
            #expect(outcomes.map { $0["id"] as? String } == ids)
            // The answer is written by hand (BatchOutput.json): exactly these keys, as JSON.
            #expect(Set(body(first).keys) == ["movements", "recorded", "replayed"] && body(first)["replayed"] as? Int == 0)
            #expect(outcomes.allSatisfy { Set($0.keys) == ["id", "quantity", "balance_after", "replay"] && $0["replay"] as? Bool == false })
            // The whole batch again (a client that never saw the answer): all replays, nothing changes.
            let again = try await client.post("/api/v1/movements/batch", batch)
            #expect(again.status == .ok)
            #expect(body(again)["replayed"] as? Int == 4 && body(again)["recorded"] as? Int == 0)
            #expect((body(again)["movements"] as? [[String: Any]])?.allSatisfy { $0["replay"] as? Bool == true } == true)
            #expect((body(again)["movements"] as? [[String: Any]])?.map { $0["balance_after"] as? Int } == [100, 70, 65, 70])
        }
        #expect(try service.scalar("SELECT sum(quantity) AS n FROM balances") == 70)
        #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 4)
    }

    /// Each kind of bad input gets its documented 4xx and changes nothing.
    @Test func badInputIsRefusedAndChangesNothing() async throws {
        let service = try await TestService()
        try await service.test { client in
            try await client.post("/api/v1/movements", movement("receipt", 100, lot: "B1"))
            let before = try service.ledgerState()

            func expectRefused(_ request: @autoclosure () async throws -> TestResponse, _ status: HTTPResponse.Status,
                               code: String, field: String?, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let response = try await request()
                #expect(response.status == status, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
                #expect(errorOf(response).code == code, sourceLocation: sourceLocation)
                if let field { #expect(errorOf(response).field == field, sourceLocation: sourceLocation) }
                #expect(errorOf(response).message?.isEmpty == false, sourceLocation: sourceLocation)
                #expect(try service.ledgerState() == before, "the ledger changed", sourceLocation: sourceLocation)
            }

            let raw = { (text: String) in
                try await client.execute(uri: "/api/v1/movements", method: .post, headers: [.contentType: "application/json"],
                                         body: ByteBuffer(string: text))
            }
            try await expectRefused(try await raw("{\"id\": "), .badRequest, code: "malformed_json", field: nil)
            try await expectRefused(try await raw(""), .badRequest, code: "invalid", field: nil)
            try await expectRefused(try await raw("[1,2]"), .badRequest, code: "invalid", field: nil)
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 5, facility: "NOPE")),
                                    .unprocessableContent, code: "unknown_reference", field: "facility")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 5, item: "NOPE")),
                                    .unprocessableContent, code: "unknown_reference", field: "item")
            try await expectRefused(try await client.post("/api/v1/movements", movement("issue", 5, lot: "NOPE")),
                                    .unprocessableContent, code: "unknown_reference", field: "lot")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", -5, lot: "B1")),
                                    .badRequest, code: "invalid", field: "quantity")
            try await expectRefused(try await client.post("/api/v1/movements", movement("issue", 0, lot: "B1")),
                                    .badRequest, code: "invalid", field: "quantity")
            try await expectRefused(try await client.post("/api/v1/movements", movement("issue", 1.5, lot: "B1")),
                                    .badRequest, code: "invalid", field: "quantity")
            try await expectRefused(try await client.post("/api/v1/movements", movement("issue", "ten", lot: "B1")),
                                    .badRequest, code: "invalid", field: "quantity")
            try await expectRefused(try await client.post("/api/v1/movements", movement("issue", 1, lot: "B1", id: "not-a-uuid")),
                                    .badRequest, code: "invalid", field: "id")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 1, lot: "B2", extra: ["expiry": "31/12/2027"])),
                                    .badRequest, code: "invalid", field: "expiry")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 1, lot: "B2", extra: ["occurred_at": "2026-11-01 09:00"])),
                                    .badRequest, code: "invalid", field: "occurred_at")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 1, lot: "B1", extra: ["expiry": "2029-01-01"])),
                                    .unprocessableContent, code: "expiry_mismatch", field: "expiry")
            try await expectRefused(try await client.post("/api/v1/movements", movement("transfer_in", 1, lot: "B1")),
                                    .badRequest, code: "invalid", field: "kind")
            try await expectRefused(try await client.post("/api/v1/movements", movement("adjustment", 1, lot: "B1", extra: ["reason": "oops"])),
                                    .badRequest, code: "invalid", field: "reason")
            try await expectRefused(try await client.post("/api/v1/movements", movement("adjustment", 1, lot: "B1", extra: ["reason": "found\u{3000}"])),
                                    .badRequest, code: "invalid", field: "reason")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 1, lot: "B1", extra: ["reason": "a\u{0}b"])),
                                    .badRequest, code: "invalid", field: "reason")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 1, lot: "B1", extra: ["occurred_at": "0000-06-01T00:00:00Z"])),
                                    .badRequest, code: "invalid", field: "occurred_at")
            try await expectRefused(try await client.post("/api/v1/movements", movement("receipt", 2_000_000_000, lot: "B1")),
                                    .badRequest, code: "invalid", field: "quantity")
            try await expectRefused(try await client.execute(uri: "/api/v1/import/items", method: .post,
                                                             body: ByteBuffer(bytes: Array("code,name,category,unit,target_days,shelf_life_days\nX,".utf8) + [0xC7, 0xE5, 0xBD, 0xE0] + Array(",ppe,只,,\n".utf8))),
                                    .unprocessableContent, code: "invalid_csv", field: nil)
            let big = ByteBuffer(repeating: UInt8(ascii: "a"), count: 2 << 20)
            try await expectRefused(try await client.execute(uri: "/api/v1/movements", method: .post, body: big),
                                    .contentTooLarge, code: "too_large", field: nil)
            try await expectRefused(try await client.execute(uri: "/api/v1/nothing", method: .get), .notFound, code: "not_found", field: nil)
            try await expectRefused(try await client.execute(uri: "/api/v1/movements?limit=0", method: .get), .badRequest, code: "invalid", field: "limit")
            try await expectRefused(try await client.execute(uri: "/api/v1/movements?since=yesterday", method: .get), .badRequest, code: "invalid", field: "since")
            try await expectRefused(try await client.execute(uri: "/api/v1/movements?after=junk", method: .get), .badRequest, code: "invalid", field: "after")

            // A batch with one bad movement applies none of them, and says which.
            let batch: [String: Any] = ["movements": [movement("issue", 1, lot: "B1"), movement("issue", 1000, lot: "B1")]]
            try await expectRefused(try await client.post("/api/v1/movements/batch", batch), .conflict, code: "insufficient_stock",
                                    field: "movements[1].quantity")
            let invalidBatch: [String: Any] = ["movements": [movement("issue", 1, lot: "B1"), movement("issue", 1, lot: "B1", id: "x")]]
            try await expectRefused(try await client.post("/api/v1/movements/batch", invalidBatch), .badRequest, code: "invalid",
                                    field: "movements[1].id")
            try await expectRefused(try await client.post("/api/v1/movements/batch", ["movements": []]), .badRequest, code: "invalid",
                                    field: "movements")
        }
    }

    @Test func sqlInATextFieldIsStoredVerbatim() async throws {
        let service = try await TestService()
        let hostile = "'); DELETE FROM balances; DROP TABLE movements; --"
        try await service.test { client in
            let response = try await client.post("/api/v1/movements", movement("receipt", 7, lot: "X'1\"; --", extra: ["reason": hostile]))
            #expect(response.status == .created)
            let recorded = body(response)["movement"] as? [String: Any]
            #expect(recorded?["reason"] as? String == hostile)
            #expect(recorded?["lot"] as? String == "X'1\"; --")
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE reason = '\(hostile.replacingOccurrences(of: "'", with: "''"))'") == 1)
        #expect(try service.scalar("SELECT sum(quantity) AS n FROM balances") == 7)
    }

    @Test func theSameMovementPostedTenTimesAtOnceIsAppliedOnce() async throws {
        let service = try await TestService()
        try await service.test { client in
            try await client.post("/api/v1/movements", movement("receipt", 1000, lot: "C1"))
            let issue = json(movement("issue", 37, lot: "C1"))
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await client.execute(uri: "/api/v1/movements", method: .post, headers: [.contentType: "application/json"], body: issue).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 1)
            #expect(statuses.filter { $0 == .ok }.count == 9)
        }
        #expect(try service.scalar("SELECT sum(quantity) AS n FROM balances") == 963)
        #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 2)
    }

    /// 16 writers × 500 movements, 20% of them replays of earlier ones, random issue sizes:
    /// afterwards the ledger sums to the balances and nothing is negative.
    @Test func concurrentWritersWithReplaysKeepTheLedgerExact() async throws {
        let service = try await TestService(poolSize: 8)
        let lots = ["D1", "D2", "D3", "D4"]
        try await service.test { client in
            for lot in lots { try await client.post("/api/v1/movements", movement("receipt", 2000, lot: lot)) }
            let outcome = try await withThrowingTaskGroup(of: (accepted: Int, refused: Int, replays: Int, net: Int).self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        var random = SystemRandomNumberGenerator()
                        var sent: [[String: Any]] = []
                        var result = (accepted: 0, refused: 0, replays: 0, net: 0)
                        for i in 0..<500 {
                            let m: [String: Any]
                            if !sent.isEmpty && Int.random(in: 0..<5, using: &random) == 0 {
                                m = sent.randomElement(using: &random)!
                            } else {
                                let lot = lots[(writer + i) % lots.count]
                                m = Int.random(in: 0..<3, using: &random) == 0
                                    ? movement("receipt", Int.random(in: 1...60, using: &random), lot: lot)
                                    : movement("issue", Int.random(in: 1...90, using: &random), lot: lot)
                            }
                            let response = try await client.post("/api/v1/movements", m)
                            switch response.status {
                            case .created:
                                result.accepted += 1
                                sent.append(m)
                                result.net += ((body(response)["movement"] as? [String: Any])?["quantity"] as? Int) ?? 0
                            case .ok: result.replays += 1
                            case .conflict: result.refused += 1   // not enough stock at that moment
                            default: Issue.record("unexpected \(response.status): \(String(buffer: response.body))")
                            }
                        }
                        return result
                    }
                }
                return try await group.reduce(into: (accepted: 0, refused: 0, replays: 0, net: 0)) {
                    $0.accepted += $1.accepted; $0.refused += $1.refused; $0.replays += $1.replays; $0.net += $1.net
                }
            }
            #expect(outcome.accepted + outcome.refused + outcome.replays == 16 * 500)
            #expect(outcome.replays > 1000)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == Int64(lots.count + outcome.accepted))
            #expect(try service.scalar("SELECT sum(quantity) AS n FROM balances") == Int64(2000 * lots.count + outcome.net))
        }
        #expect(try await service.mismatches() == 0)
        #expect(try service.scalar("SELECT count(*) AS n FROM balances WHERE quantity < 0") == 0)
        #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE balance_after < 0") == 0)
    }

    /// Killing the pool's server connections mid-load: the service reconnects, and every movement
    /// it acknowledged is in the ledger.
    @Test func killedConnectionsLoseNoAcknowledgedMovement() async throws {
        let service = try await TestService(poolSize: 4)
        try await service.test { client in
            try await client.post("/api/v1/movements", movement("receipt", 100_000, lot: "K1"))
            let killer = Task {
                let admin = try TestDatabase.ownerConnection(service.location)
                var killed = 0
                for _ in 0..<8 {
                    try await Task.sleep(for: .milliseconds(60))
                    killed += try admin.query("""
                        SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                        WHERE datname = current_database() AND application_name = 'stockpile' AND pid <> pg_backend_pid()
                        """).first!.decode("n", as: Int.self)
                }
                return killed
            }
            let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var ids: [String] = []
                        for _ in 0..<100 {
                            let m = movement("issue", 1, lot: "K1")
                            // A client retries what the service could not confirm (503), with the same id.
                            for _ in 0..<5 {
                                let response = try await client.post("/api/v1/movements", m)
                                if response.status == .created || response.status == .ok {
                                    ids.append((m["id"] as! String).lowercased())
                                    break
                                }
                                #expect(response.status == .serviceUnavailable, "\(String(buffer: response.body))")
                            }
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            let killed = try await killer.value
            #expect(killed > 0)
            #expect(acknowledged.count == 800)
            let stored = try service.scalar("SELECT count(*) AS n FROM movements WHERE kind = 'issue'")
            #expect(stored == 800)
            #expect(try service.scalar("SELECT sum(quantity) AS n FROM balances") == 100_000 - 800)
        }
        #expect(try await service.mismatches() == 0)
    }
}

@Suite struct OperationsTests {
    @Test func healthReadinessMetricsAndTheOpenAPIDocument() async throws {
        let service = try await TestService(poolSize: 1)
        try await service.test { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .ok)
            let document = try await client.execute(uri: "/openapi.yaml", method: .get)
            let yaml = String(buffer: document.body)
            // Every route the service answers is in the document, with its method.
            for route in StockpileAPI.routes {
                let pathLine = "  \(route.path):\n"
                let start = try #require(yaml.range(of: pathLine), "\(route.path) is missing from openapi.yaml")
                let rest = yaml[start.upperBound...]
                let block = rest.prefix { _ in true }.split(separator: "\n").prefix { $0.hasPrefix("    ") }
                #expect(block.contains { $0.hasPrefix("    \(route.method.lowercased()):") }, "\(route.method) \(route.path) is missing")
            }
        }
    }

    @Test func importOverHTTP() async throws {
        let service = try await TestService(poolSize: 2)
        try await service.test { client in
            let csv = "code,name,category,unit,target_days,shelf_life_days\nGOWN,一次性防护服,ppe,套,,\n"
            let ok = try await client.execute(uri: "/api/v1/import/items", method: .post, body: ByteBuffer(string: csv))
            #expect(ok.status == .ok)
            let bad = try await client.execute(uri: "/api/v1/import/items", method: .post,
                                               body: ByteBuffer(string: csv + "BAD,坏,weapon,件,,\n"))
            #expect(bad.status == .unprocessableContent)
            #expect(errorOf(bad).field == "category")
            #expect(errorOf(bad).message?.contains("row 3") == true)
            #expect(try await client.execute(uri: "/api/v1/import/nope", method: .post, body: ByteBuffer(string: csv)).status == .notFound)
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM items") == 3)
    }
}
