import Foundation
import NIOCore
import HummingbirdTesting
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// An offline outbox sent later: POST /api/v1/movements/sync, the "needs attention" list and its
/// resolution, counts as at their time, the device clock (issue 16, part 1).
@Suite struct SyncAPITests {
    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func results(_ response: TestResponse) -> [[String: Any]] { body(response)["results"] as? [[String: Any]] ?? [] }

    @Test func eachMovementIsAnsweredOnItsOwnAndDecidedOnce() async throws {
        let service = try await TestService()
        try await service.test { admin in
            let clerk = admin.with(service.clerkH)
            let made = Date().addingTimeInterval(-3600)
            // A day offline: four that fit, and an issue larger than what is on hand.
            let outbox: [[String: Any]] = [
                movement("receipt", 100, lot: "OFF1", extra: ["occurred_at": Self.iso(made), "device_seq": 1]),
                movement("issue", 30, lot: "OFF1", extra: ["occurred_at": Self.iso(made.addingTimeInterval(60)), "device_seq": 2]),
                movement("issue", 500, lot: "OFF1", extra: ["occurred_at": Self.iso(made.addingTimeInterval(120)), "device_seq": 3]),
                movement("receipt", 20, lot: "OFF2", extra: ["occurred_at": Self.iso(made.addingTimeInterval(180)), "device_seq": 4]),
                movement("adjustment", 5, lot: "OFF1", extra: ["reason": "damage: 漏水", "occurred_at": Self.iso(made.addingTimeInterval(240)), "device_seq": 5]),
            ]
            let request: [String: Any] = ["sent_at": Self.iso(Date()), "device": "phone-1", "movements": outbox]
            let first = try await clerk.post("/api/v1/movements/sync", request)
            #expect(first.status == .ok, "\(String(buffer: first.body))")
            let answers = Self.results(first)
            #expect(answers.map { $0["status"] as? String } == ["recorded", "recorded", "refused", "recorded", "recorded"])
            #expect(answers[2]["code"] as? String == "insufficient_stock" && answers[2]["field"] as? String == "quantity")
            #expect(answers[2]["on_hand"] as? Int == 70)
            #expect(body(first)["recorded"] as? Int == 4 && body(first)["refused"] as? Int == 1)
            // The clerk's times are kept (the clock was right).
            #expect(body(first)["clock_corrected"] as? Bool == false)
            let ledger = try service.ledgerState()
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 4)
            #expect(try service.scalar("SELECT quantity AS n FROM balances b JOIN lots l ON l.id = b.lot_id WHERE l.lot_number = 'OFF1'") == 65)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE occurred_at = '\(Self.iso(made))'::timestamptz") == 1)

            // The answer was lost and the device sends it all again: the stored outcomes, nothing twice.
            let again = try await clerk.post("/api/v1/movements/sync", request)
            #expect(Self.results(again).map { $0["status"] as? String } == ["replay", "replay", "refused", "replay", "replay"])
            #expect(Self.results(again)[2]["replay"] as? Bool == true)
            #expect(try service.ledgerState() == ledger)

            // Stock arrives; the refused issue still does not post by itself on a resend.
            try await clerk.post("/api/v1/movements", movement("receipt", 1000, lot: "OFF1"))
            let later = try await clerk.post("/api/v1/movements/sync", request)
            #expect(Self.results(later)[2]["status"] as? String == "refused")
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 5)

            // The same id with another body: refused as a conflict, nothing stored or changed.
            var changed = outbox[0]
            changed["quantity"] = 101
            let conflict = try await clerk.post("/api/v1/movements/sync", ["movements": [changed]])
            #expect(Self.results(conflict).first?["code"] as? String == "conflict")
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 5)

            // The refused issue waits for the clerk and the facility's supervisors; not for another facility's clerk.
            let refusedID = (outbox[2]["id"] as! String).lowercased()
            for token in [service.clerkH, service.commandD, service.admin] {
                let open = body(try await admin.with(token).get("/api/v1/attention"))["submissions"] as? [[String: Any]] ?? []
                #expect(open.map { $0["id"] as? String } == [refusedID])
                #expect(open.first?["on_hand"] as? Int == 70 && open.first?["submitted_by"] as? String == "clerk-h")
            }
            #expect((body(try await admin.with(service.clerkW).get("/api/v1/attention"))["submissions"] as? [Any])?.isEmpty == true)
            // Another facility's clerk cannot close it; a supervisor can, once, with words.
            #expect(try await admin.with(service.clerkW).post("/api/v1/attention/\(refusedID)/resolve", ["resolution": "x"]).status == .notFound)
            #expect(try await admin.with(service.commandD).post("/api/v1/attention/\(refusedID)/resolve", ["resolution": " "]).status == .badRequest)
            #expect(try await admin.with(service.commandD).post("/api/v1/attention/\(refusedID)/resolve", ["resolution": "实际发出 65，已另行登记"]).status == .ok)
            #expect(try await admin.with(service.commandD).post("/api/v1/attention/\(refusedID)/resolve", ["resolution": "again"]).status == .conflict)
            #expect((body(try await clerk.get("/api/v1/attention"))["submissions"] as? [Any])?.isEmpty == true)
            #expect(try service.scalar("SELECT count(*) AS n FROM audit_log WHERE action = 'submission.resolve'") == 1)
        }
        #expect(try await service.mismatches() == 0)
    }

    @Test func oneBadLineDoesNotHoldBackTheRest() async throws {
        let service = try await TestService()
        try await service.test { admin in
            let clerk = admin.with(service.clerkH)
            let noID: [String: Any] = ["facility": "H", "item": "N95", "lot": "A", "kind": "receipt", "quantity": 1]
            let outbox: [[String: Any]] = [
                movement("receipt", "十", lot: "BAD1"),                 // a word where a number belongs
                movement("receipt", 5, lot: "GOOD1"),
                noID,
                movement("receipt", 5, lot: "W1", facility: "W"),       // another facility's
                movement("receipt", 5, lot: "GOOD2", item: "NOSUCH"),   // an unknown item
                movement("receipt", 7, lot: "GOOD3"),
                movement("receipt", 5, lot: "OLD", extra: ["occurred_at": "1970-01-01T08:00:00+08:00"]),
            ]
            let response = try await clerk.post("/api/v1/movements/sync", ["movements": outbox])
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let answers = Self.results(response)
            #expect(answers.map { $0["status"] as? String } == ["refused", "recorded", "refused", "refused", "refused", "recorded", "refused"])
            #expect(answers.map { $0["code"] as? String } == ["invalid", nil, "invalid", "forbidden", "not_found", nil, "invalid"])
            #expect(answers.map { $0["field"] as? String } == ["quantity", nil, "id", "facility", "item", nil, "occurred_at"])
            #expect((answers[6]["reason"] as? String)?.contains("clock") == true)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 2)
            // The refusals with an id of the clerk's facility are kept for a person; the other facility's is not stored.
            let open = body(try await clerk.get("/api/v1/attention"))["submissions"] as? [[String: Any]] ?? []
            #expect(Set(open.compactMap { $0["field"] as? String }) == ["quantity", "item", "occurred_at"])
        }
        // The envelope itself: a clear 400 naming the field, nothing recorded.
        try await service.test { admin in
            for bad: [String: Any] in [[:], ["movements": []], ["movements": "x"], ["sent_at": "yesterday", "movements": [movement("receipt", 1)]],
                                       ["movements": Array(repeating: movement("receipt", 1), count: 1001)]] {
                let refused = try await admin.post("/api/v1/movements/sync", bad)
                #expect(refused.status == .badRequest, "\(String(buffer: refused.body))")
            }
            #expect(try service.scalar("SELECT count(*) AS n FROM movement_submissions WHERE outcome = 'recorded'") == 2)
        }
    }

    @Test func aWrongDeviceClockIsMeasuredAndCorrected() async throws {
        let service = try await TestService()
        try await service.test { admin in
            let clerk = admin.with(service.clerkH)
            // The device runs two days fast: it made the entry "an hour before sending" by its clock.
            let skew: TimeInterval = 2 * 86400
            let sent = Date().addingTimeInterval(skew)
            let entry = movement("receipt", 10, lot: "SKEW", extra: ["occurred_at": Self.iso(sent.addingTimeInterval(-3600))])
            let first = try await clerk.post("/api/v1/movements/sync", ["sent_at": Self.iso(sent), "movements": [entry]])
            #expect(body(first)["clock_corrected"] as? Bool == true)
            let offset = body(first)["clock_offset_seconds"] as? Double ?? 0
            #expect(abs(offset + skew) < 30)
            #expect(Self.results(first).first?["status"] as? String == "recorded")
            // Recorded about an hour ago by the server's clock.
            let age = try service.scalar("SELECT extract(epoch FROM now() - occurred_at)::bigint AS n FROM movements WHERE quantity = 10")
            #expect((3500...3700).contains(age), "\(age)")
            #expect(try service.scalar("SELECT round(clock_offset_s)::bigint AS n FROM movement_submissions") == Int64(offset.rounded()))
            // Resent after the clock was put right: the same entry, a replay, not a conflict.
            let resent = try await clerk.post("/api/v1/movements/sync", ["sent_at": Self.iso(Date()), "movements": [entry]])
            #expect(Self.results(resent).first?["status"] as? String == "replay")
            // Without sent_at a future time is refused with a hint at the clock.
            let future = movement("receipt", 1, lot: "F", extra: ["occurred_at": Self.iso(Date().addingTimeInterval(3 * 86400))])
            let refused = Self.results(try await clerk.post("/api/v1/movements/sync", ["movements": [future]])).first
            #expect(refused?["field"] as? String == "occurred_at" && (refused?["reason"] as? String)?.contains("clock") == true)
        }
    }

    @Test func aCountMadeOfflineIsOnHandAtItsTime() async throws {
        let service = try await TestService()
        try await service.test { admin in
            let clerk = admin.with(service.clerkH)
            let now = Date()
            let balance = { (lot: String) in try service.scalar("SELECT b.quantity AS n FROM balances b JOIN lots l ON l.id = b.lot_id WHERE l.lot_number = '\(lot)'") }
            try await clerk.post("/api/v1/movements", movement("receipt", 100, lot: "CNT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-3 * 3600))]))
            // Online, an hour ago, 30 went out.
            try await clerk.post("/api/v1/movements", movement("issue", 30, lot: "CNT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-3600))]))
            // Offline, two hours ago, the shelf held 80: on hand now is 80 - 30.
            let count = movement("count", 80, lot: "CNT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-2 * 3600))])
            let answer = Self.results(try await clerk.post("/api/v1/movements/sync", ["movements": [count]])).first
            #expect(answer?["status"] as? String == "recorded")
            #expect(try balance("CNT") == 50)
            #expect((answer?["movement"] as? [String: Any])?["quantity"] as? Int == -20)
            // An issue from before the count, arriving after it: recorded, and flagged for a person.
            let late = movement("issue", 5, lot: "CNT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-150 * 60))])
            let flagged = Self.results(try await clerk.post("/api/v1/movements/sync", ["movements": [late]])).first
            #expect(flagged?["status"] as? String == "recorded" && flagged?["attention"] as? String == "before_count")
            #expect(try balance("CNT") == 45)
            let open = body(try await clerk.get("/api/v1/attention?facility=H"))["submissions"] as? [[String: Any]] ?? []
            #expect(open.first?["attention"] as? String == "before_count")
            // A count that later issues would take below zero is refused, with on hand.
            let tooLow = movement("count", 10, lot: "CNT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-1.5 * 3600))])
            let refused = Self.results(try await clerk.post("/api/v1/movements/sync", ["movements": [tooLow]])).first
            #expect(refused?["status"] as? String == "refused" && refused?["code"] as? String == "insufficient_stock")
            #expect(refused?["on_hand"] as? Int == 45)
            // A count from before the count that stands changes nothing, and says so.
            let superseded = movement("count", 10, lot: "CNT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-2.5 * 3600))])
            let old = Self.results(try await clerk.post("/api/v1/movements/sync", ["movements": [superseded]])).first
            #expect(old?["status"] as? String == "recorded" && old?["attention"] as? String == "before_count")
            #expect((old?["movement"] as? [String: Any])?["quantity"] as? Int == 0)
            #expect(try balance("CNT") == 45)

            // The all-or-nothing batch takes counts the same way, its own later lines included.
            try await clerk.post("/api/v1/movements", movement("receipt", 100, lot: "BAT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-3 * 3600))]))
            let batch = try await clerk.post("/api/v1/movements/batch", ["movements": [
                movement("receipt", 10, lot: "BAT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-3600))]),
                movement("count", 90, lot: "BAT", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-2 * 3600))]),
            ]])
            #expect(batch.status == .created, "\(String(buffer: batch.body))")
            #expect(try balance("BAT") == 100)
            // A count made now is what it always was: on hand becomes the figure.
            try await clerk.post("/api/v1/movements", movement("count", 42, lot: "BAT"))
            #expect(try balance("BAT") == 42)
            // Two counts in one batch, the later-timed first: the later one stands, as one at a time.
            try await clerk.post("/api/v1/movements", movement("receipt", 10, lot: "TWO", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-3 * 3600))]))
            let twoCounts = try await clerk.post("/api/v1/movements/batch", ["movements": [
                movement("count", 5, lot: "TWO", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-60))]),
                movement("count", 8, lot: "TWO", extra: ["occurred_at": Self.iso(now.addingTimeInterval(-120))]),
            ]])
            #expect(twoCounts.status == .created, "\(String(buffer: twoCounts.body))")
            #expect(try balance("TWO") == 5)
            // A device clock a minute fast: its receipt is stored at now, so a count made after it is not undone by it.
            try await clerk.post("/api/v1/movements", movement("receipt", 3, lot: "BAT", extra: ["occurred_at": Self.iso(Date().addingTimeInterval(120))]))
            try await clerk.post("/api/v1/movements", movement("count", 20, lot: "BAT"))
            #expect(try balance("BAT") == 20)
        }
        #expect(try await service.mismatches() == 0)
    }

    @Test func twoSendsOfOneEntryAtOnceRecordItOnce() async throws {
        let service = try await TestService()
        // As JSON text: the same 20 ids in every send.
        let entries = String(buffer: json(["movements": (0..<20).map { movement("receipt", 3, lot: "RACE\($0 % 4)") }]))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await service.test { admin in
                        let response = try await admin.with(service.clerkH).execute(uri: "/api/v1/movements/sync", method: .post,
                                                                                    headers: [.contentType: "application/json"], body: ByteBuffer(string: entries))
                        #expect(response.status == .ok)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 20)
        #expect(try service.scalar("SELECT sum(quantity)::bigint AS n FROM balances") == 60)
        #expect(try service.scalar("SELECT count(*) AS n FROM movement_submissions") == 20)
    }

    /// What an odd entry does: refused on its own, kept or not as the answer says, and never
    /// stopping the entries after it, on the first send or any resend.
    @Test func oddEntriesAreRefusedOneByOneAndNeverJamTheRest() async throws {
        let service = try await TestService()
        try await service.test { admin in
            let clerk = admin.with(service.clerkH)
            var noFacility = movement("receipt", 1, lot: "NF")
            noFacility.removeValue(forKey: "facility")
            let outbox: [[String: Any]] = [
                noFacility,
                movement("receipt", 1, lot: "NUL\u{0}LOT"),
                movement("receipt", 1, lot: "Y0", extra: ["occurred_at": "0000-01-01T00:00:00Z"]),
                movement("count", 0, lot: "NEVER-BROUGHT-IN"),
                movement("receipt", 4, lot: "AFTER"),
            ]
            for round in 1...2 {
                let response = try await clerk.post("/api/v1/movements/sync", ["movements": outbox])
                #expect(response.status == .ok, "round \(round): \(String(buffer: response.body))")
                let results = Self.results(response)
                #expect(results.map { $0["status"] as? String } == ["refused", "refused", "refused", "refused", round == 1 ? "recorded" : "replay"], "\(results)")
                #expect(results.map { $0["field"] as? String } == ["facility", "lot", "occurred_at", "lot", nil])
                #expect(results[0]["stored"] as? Bool == false && results[3]["stored"] as? Bool == true)
            }
            // The zero count brought no lot into being.
            #expect(try service.scalar("SELECT count(*) AS n FROM lots WHERE lot_number = 'NEVER-BROUGHT-IN'") == 0)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements") == 1)

            // An id another facility's clerk already used: a conflict for this one, by either path, never a 5xx.
            let id = UUID().uuidString
            #expect(try await clerk.post("/api/v1/movements", movement("receipt", 2, lot: "MINE", id: id)).status == .created)
            let other = admin.with(service.clerkW)
            let plain = try await other.post("/api/v1/movements", movement("receipt", 2, lot: "THEIRS", id: id, facility: "W"))
            #expect(plain.status == .conflict, "\(String(buffer: plain.body))")
            let synced = Self.results(try await other.post("/api/v1/movements/sync", ["movements": [movement("receipt", 2, lot: "THEIRS", id: id, facility: "W")]]))
            #expect(synced.first?["code"] as? String == "conflict" && synced.first?["status"] as? String == "refused")
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE facility_id = (SELECT id FROM facilities WHERE code = 'W')") == 0)
        }
        #expect(try await service.mismatches() == 0)
    }
}
