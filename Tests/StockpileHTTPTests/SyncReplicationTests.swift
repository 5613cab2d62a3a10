import Foundation
import HummingbirdTesting
import Logging
import PQ
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// The two loopholes of synchronous replication (issue 15, part 4; ../shared/research/ha-postgresql.md
/// §1.5, §3.3), on a cluster of the test's own whose synchronous standby never answers
/// (`synchronous_standby_names = 'ghost'`): every commit that wrote something waits for it. (In
/// PostgreSQL 15 a statement timeout does not end that wait: the timeout is disabled before the
/// commit. `pg_cancel_backend` does, and then the commit reports success with a WARNING.)
@Suite(.serialized) struct SyncReplicationTests {
    final class Cluster: Sendable {
        let own = OwnClusters("sync")
        let server: EmbeddedPostgres

        init() throws {
            server = own.cluster("primary")
            try server.start()
            try StockpileDatabase.migrate(DatabaseLocation(ownerParameters: server.connectionParameters()))
        }

        func superuser(_ sql: String) throws -> Int64 {
            try PQConnection(parameters: server.connectionParameters()).query(sql).rows[0].decode("n", as: Int64.self)
        }

        /// Whether commits wait for a standby that is not there. Turning it off releases the waiters.
        func waitForGhostStandby(_ on: Bool) throws {
            let c = try PQConnection(parameters: server.connectionParameters())
            try c.execute(on ? "ALTER SYSTEM SET synchronous_standby_names = 'ghost'" : "ALTER SYSTEM RESET synchronous_standby_names")
            try c.execute("SELECT pg_reload_conf()")
            Thread.sleep(forTimeInterval: 0.3)
        }

        /// Waits until some backend is waiting for the standby (at most 10 s); true if one was.
        func someoneWaitsForTheStandby() -> Bool {
            for _ in 0..<100 {
                if (try? superuser("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'")) ?? 0 > 0 { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }

        /// Cancels every wait for the standby (as an operator's pg_cancel_backend would).
        func cancelTheWaits() throws {
            _ = try superuser("SELECT count(pg_cancel_backend(pid)) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        }

        func close() { own.remove(stopping: [server]) }
    }

    @Test func aCancelledWaitIsNotAnAcknowledgementAndAReplayWaitsLikeTheOriginal() async throws {
        let cluster = try Cluster()
        defer { cluster.close() }
        let location = DatabaseLocation(ownerParameters: cluster.server.connectionParameters())
        let database = StockpileDatabase(location: location, poolSize: 4)
        let service = try await TestService(location: location, database: database)
        let count = { @Sendable (id: String) in try service.scalar("SELECT count(*) AS n FROM movements WHERE id = '\(id)'") }

        try await service.test { client in
            // 1. A commit whose wait for the standby is cancelled is answered 503 "unconfirmed", not
            // 201, though PostgreSQL reported it committed (on the primary only: the outcome is unknown).
            // The service retries it (a replay, which waits again) before answering: cancelled each time.
            try cluster.waitForGhostStandby(true)
            let first = UUID().uuidString.lowercased()
            let posting = Task { try await client.post("/api/v1/movements", movement("receipt", 500, id: first)) }
            var cancelled = 0
            while cluster.someoneWaitsForTheStandby() && cancelled < 10 {
                try cluster.cancelTheWaits()
                cancelled += 1
            }
            let unconfirmed = try await posting.value
            #expect(cancelled >= 1)
            #expect(unconfirmed.status == .serviceUnavailable, "\(String(buffer: unconfirmed.body))")
            #expect(errorOf(unconfirmed).code == "unconfirmed")
            #expect(unconfirmed.headers[.retryAfter] != nil)
            #expect(try count(first) == 1, "committed on the primary, which is why it must not be acknowledged")

            // 2. Its retry is a replay, which writes nothing of its own; it must still wait for the
            // standby (sql/0020's barrier), not answer 200 at once for a movement only the primary has.
            let replaying = Task { try await client.post("/api/v1/movements", movement("receipt", 500, id: first)) }
            #expect(cluster.someoneWaitsForTheStandby(), "the replay waits for the standby")
            let batching = Task { try await client.post("/api/v1/movements/batch", ["movements": [movement("receipt", 500, id: first)]]) }
            var waiting: Int64 = 0
            for _ in 0..<100 {
                waiting = try cluster.superuser("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
                if waiting == 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(waiting == 2, "the single replay and the batch of one replay both wait")

            // 3. The standby back (here: none required any more): both are answered as replays, and
            // the movement is in the ledger once.
            try cluster.waitForGhostStandby(false)
            let confirmed = try await replaying.value
            #expect(confirmed.status == .ok, "\(String(buffer: confirmed.body))")
            #expect((body(confirmed)["movement"] as? [String: Any])?["replay"] as? Bool == true)
            #expect(try await batching.value.status == .ok)
            #expect(try count(first) == 1)
            #expect(try service.scalar("SELECT coalesce(sum(quantity), 0) AS n FROM balances") == 500)
            #expect(try await service.mismatches() == 0)
        }
        await database.shutdown()
    }

    /// With nobody to cancel it, a commit waiting for a standby that is gone is cancelled by the
    /// service itself once the call outlives the statement timeout (1 s here) by 2 s: the request
    /// is answered 503 `unconfirmed` and its connection is free for the next request.
    @Test func aWaitForAStandbyThatIsGoneIsBoundedByTheService() async throws {
        let cluster = try Cluster()
        defer { cluster.close() }
        let location = DatabaseLocation(ownerParameters: cluster.server.connectionParameters())
        let database = StockpileDatabase(location: location, poolSize: 2, requestTimeoutMilliseconds: 1000)
        let service = try await TestService(location: location, database: database)
        try await service.test { client in
            try cluster.waitForGhostStandby(true)
            let id = UUID().uuidString.lowercased()
            let started = ContinuousClock.now
            let answer = try await client.post("/api/v1/movements", movement("receipt", 70, id: id))
            #expect(answer.status == .serviceUnavailable && errorOf(answer).code == "unconfirmed", "\(String(buffer: answer.body))")
            #expect(ContinuousClock.now - started < .seconds(30))
            // Nobody is left waiting, and reads still get a connection.
            #expect(try cluster.superuser("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == 0)
            #expect(try await client.execute(uri: "/api/v1/facilities/H/stock", method: .get).status == .ok)
            try cluster.waitForGhostStandby(false)
            let again = try await client.post("/api/v1/movements", movement("receipt", 70, id: id))
            #expect(again.status == .ok && (body(again)["movement"] as? [String: Any])?["replay"] as? Bool == true)
            #expect(try service.scalar("SELECT count(*) AS n FROM movements WHERE id = '\(id)'") == 1)
        }
        await database.shutdown()
    }
}
