import Foundation
import Synchronization
import PQ
import StockpileTestSupport
import Testing

@Suite(.serialized) struct PQConnectionTests {
    let location = try! TestDatabase.freshLocation()

    func connect() throws -> PQConnection { try TestDatabase.ownerConnection(location) }

    @Test func parametersTravelOutsideTheSQLText() throws {
        let c = try connect()
        let tricky = "'; DROP TABLE movements; -- 口罩 \"quoted\" \\ back"
        let row = try #require(try c.query("SELECT $1::text AS t, $2::int AS i, $3::bool AS b, $4::text AS n, $5::float8 AS d",
                                           [tricky, 42, true, Optional<String>.none, 2.5]).first)
        #expect(try row.decode("t", as: String.self) == tricky)
        #expect(try row.decode("i", as: Int.self) == 42)
        #expect(try row.decode("b", as: Bool.self) == true)
        #expect(try row.decode("n", as: String?.self) == nil)
        #expect(try row.decode("d", as: Double.self) == 2.5)
        #expect(try c.query("SELECT count(*) AS n FROM movements").first?.decode("n", as: Int.self) == 0)
    }

    /// Integer arrays go unquoted (PQValue.swift): the server reads back every value sent.
    @Test func integerArraysReadBackAsTheyWereSent() throws {
        let c = try connect()
        let values: [Int64] = [.min, -123_456_789, -1, 0, 9, 10, 99, 100, 4_294_967_296, .max]
        let row = try #require(try c.query("SELECT $1::bigint[] = $2::bigint[] AS same, $1::bigint[]::text AS t",
                                           [values, values.map(String.init)]).first)
        #expect(try row.decode("same", as: Bool.self))
        #expect(try row.decode("t", as: String.self) == "{" + values.map(String.init).joined(separator: ",") + "}")
    }

    /// A prepared statement is prepared once per session, answers with each call's own values,
    /// survives a reconnect (a new session prepares it again), and a statement the server refuses
    /// to prepare is refused on every call, never remembered.
    @Test func preparedStatementsArePreparedOncePerSession() throws {
        let c = try connect()
        let sql = "SELECT $1::int * 2 AS doubled, $2::text AS label"
        let count = "SELECT count(*) AS n FROM pg_prepared_statements"
        for (n, label) in [(1, "一"), (21, "'; DROP TABLE movements; --")] {
            let row = try #require(try c.queryPrepared(sql, [n, label]).first)
            #expect(try row.decode("doubled", as: Int.self) == 2 * n)
            #expect(try row.decode("label", as: String.self) == label)
        }
        #expect(try c.query(count).first?.decode("n", as: Int.self) == 1)
        try c.reconnect()
        #expect(try c.query(count).first?.decode("n", as: Int.self) == 0)
        #expect(try c.queryPrepared(sql, [5, "x"]).first?.decode("doubled", as: Int.self) == 10)
        for _ in 0..<2 {
            let error = #expect(throws: PQError.self) { try c.queryPrepared("SELECT $1::int FROM no_such_table", [1]) }
            #expect(error?.sqlState == "42P01")
        }
        let failed = #expect(throws: PQError.self) { try c.queryPrepared("SELECT 1 / $1::int AS q", [0]) }
        #expect(failed?.sqlState == "22012")
        #expect(try c.queryPrepared("SELECT 1 / $1::int AS q", [1]).first?.decode("q", as: Int.self) == 1)
        #expect(try c.query(count).first?.decode("n", as: Int.self) == 2)
        // Gone from the session, or no longer fitting the schema: prepared afresh, the call answers.
        try c.execute("DEALLOCATE ALL")
        #expect(try c.queryPrepared(sql, [3, "b"]).first?.decode("doubled", as: Int.self) == 6)
        try c.execute("CREATE TEMP TABLE shape (a int)")
        try c.execute("INSERT INTO shape VALUES (7)")
        #expect(try c.queryPrepared("SELECT * FROM shape").first?.decode("a", as: Int.self) == 7)
        try c.execute("ALTER TABLE shape ADD COLUMN b int DEFAULT 8")
        #expect(try c.queryPrepared("SELECT * FROM shape").first?.decode("b", as: Int.self) == 8)
    }

    @Test func scanReadsRowsInPlaceByPosition() throws {
        let c = try connect()
        var seen: [(String, Int64, Double, Bool, Int64?, String?)] = []
        let sql = "SELECT n::text || '号', n::bigint * 1000000000, n / 4.0, n % 2 = 0, NULLIF(n, 2)::bigint, "
            + "CASE WHEN n = 3 THEN NULL ELSE $1 END FROM generate_series(1, 3) n ORDER BY n"
        try c.scan(sql, ["批号,\"1\""]) { row in
            seen.append((row.string(0), row.int64(1), row.double(2), row.bool(3), row.int64OrNil(4), row.stringOrNil(5)))
        }
        #expect(seen.map(\.0) == ["1号", "2号", "3号"])
        #expect(seen.map(\.1) == [1_000_000_000, 2_000_000_000, 3_000_000_000])
        #expect(seen.map(\.2) == [0.25, 0.5, 0.75])
        #expect(seen.map(\.3) == [false, true, false])
        #expect(seen.map(\.4) == [1, nil, 3])
        #expect(seen.map(\.5) == ["批号,\"1\"", "批号,\"1\"", nil])
        #expect(throws: PQError.self) { try c.scan("SELECT 1/0", []) { _ in } }
    }

    /// The streamed binary read: every width of integer and float, text, booleans and NULLs as
    /// stored; parameters as escaped literals that no value can break out of (an attacker's quote,
    /// a backslash, a `$2` inside a value, Chinese text); an error raised halfway through the rows
    /// reaches the caller and leaves the connection usable; a body that throws stops the read.
    @Test func copyRowsStreamsBinaryRowsWithLiteralParameters() throws {
        let c = try connect()
        try c.execute("CREATE TEMP TABLE victims (k int)")
        let tricky = "'); DROP TABLE victims; -- 批号 \\ $2 \"q\""
        var seen: [(Int64, Int64, Int64, Double, Double, Bool, String?, String)] = []
        let sql = "SELECT n::int2, (n * 100000)::int4, (n::bigint * -3000000000), n / 4.0::float8, (n / 2.0)::float4, n % 2 = 0, "
            + "CASE WHEN n = 3 THEN NULL ELSE $1 END, $3 || n FROM generate_series(1, 3) n WHERE $2::int IS NULL ORDER BY n -- ends in a comment"
        try c.copyRows(sql, [tricky, nil as Int?, "号"]) { row in
            #expect(row.count == 8)
            seen.append((row.int64(0), row.int64(1), row.int64(2), row.double(3), row.double(4), row.bool(5), row.stringOrNil(6), row.string(7)))
        }
        #expect(seen.map(\.0) == [1, 2, 3])
        #expect(seen.map(\.1) == [100_000, 200_000, 300_000])
        #expect(seen.map(\.2) == [-3_000_000_000, -6_000_000_000, -9_000_000_000])
        #expect(seen.map(\.3) == [0.25, 0.5, 0.75])
        #expect(seen.map(\.4) == [0.5, 1.0, 1.5])
        #expect(seen.map(\.5) == [false, true, false])
        #expect(seen.map(\.6) == [tricky, tricky, nil])
        #expect(seen.map(\.7) == ["号1", "号2", "号3"])
        #expect(try c.query("SELECT count(*) AS n FROM victims").first?.decode("n", as: Int.self) == 0)

        // A division by zero at the 50,000th row: the rows before it came, then the error.
        var before = 0
        let error = #expect(throws: PQError.self) {
            try c.copyRows("SELECT 1 / (50000 - n) FROM generate_series(1, 100000) n") { _ in before += 1 }
        }
        #expect(error?.sqlState == "22012")
        #expect(before > 0 && before < 50000)
        #expect(try c.query("SELECT 1 AS one").first?.decode("one", as: Int.self) == 1)

        // The body refuses a row: that error, the rest drained, the connection usable.
        struct Enough: Error {}
        var taken = 0
        #expect(throws: Enough.self) {
            try c.copyRows("SELECT n FROM generate_series(1, 100000) n") { _ in taken += 1; if taken == 10 { throw Enough() } }
        }
        #expect(taken == 10)
        #expect(try c.query("SELECT 2 AS two").first?.decode("two", as: Int.self) == 2)
        // A placeholder without its parameter is refused before anything is sent.
        #expect(throws: PQError.self) { try c.copyRows("SELECT $2::int", [1]) { _ in } }
    }

    /// The server ends the session halfway through the rows (what a crash or a failover looks
    /// like from here): a lost connection, for the pool to replace, never rows taken for all.
    @Test func copyRowsEndedHalfwayIsALostConnection() throws {
        let c = try connect(), killer = try connect()
        var taken = 0
        let error = #expect(throws: PQError.self) {
            try c.copyRows("SELECT n FROM generate_series(1, 5000000) n") { _ in
                taken += 1
                if taken == 1000 { try killer.query("SELECT pg_terminate_backend($1::int)", [Int(c.backendPID)]) }
            }
        }
        #expect(error?.isConnectionFailure == true, "\(String(describing: error))")
        #expect(taken >= 1000 && taken < 5_000_000)
        #expect(c.isBroken)
        try c.reconnect()
        #expect(try c.query("SELECT 3 AS three").first?.decode("three", as: Int.self) == 3)
    }

    @Test func binaryParametersUseFormatOne() throws {
        let c = try connect()
        let bytes: [UInt8] = [0, 1, 2, 255, 0]
        let row = try #require(try c.query("SELECT length($1::bytea) AS n, encode($1::bytea, 'hex') AS h", [PQValue.binary(bytes)]).first)
        #expect(try row.decode("n", as: Int.self) == 5)
        #expect(try row.decode("h", as: String.self) == "000102ff00")
    }

    @Test func timestampsRoundTrip() throws {
        let c = try connect()
        let now = Date(timeIntervalSince1970: 1_795_000_000.123)
        let back = try #require(try c.query("SELECT $1::timestamptz AS t", [now]).first).decode("t", as: Date.self)
        #expect(abs(back.timeIntervalSince(now)) < 0.001)
    }

    @Test func errorsCarrySQLState() throws {
        let c = try connect()
        try c.execute("CREATE TEMP TABLE u (k int PRIMARY KEY)")
        try c.query("INSERT INTO u VALUES ($1)", [1])
        let error = #expect(throws: PQError.self) { try c.query("INSERT INTO u VALUES ($1)", [1]) }
        #expect(error?.sqlState == "23505")
        #expect(error?.constraint == "u_pkey")
        #expect(error?.isConnectionFailure == false)
        let syntax = #expect(throws: PQError.self) { try c.query("SELEC 1") }
        #expect(syntax?.sqlState == "42601")
    }

    @Test func transactionsRetrySerializationFailures() throws {
        let c = try connect()
        try c.execute("CREATE TEMP TABLE attempts (n int)")
        // Fails with 40001 on the first two attempts, succeeds on the third.
        let value: Int = try c.transaction { c in
            try c.query("INSERT INTO attempts VALUES (1)")
            let n = try c.query("SELECT count(*) AS n FROM attempts").first!.decode("n", as: Int.self)
            try c.execute("COMMIT")   // keep the attempt counted across the rollback
            try c.execute("BEGIN")
            let total = try c.query("SELECT count(*) AS n FROM attempts").first!.decode("n", as: Int.self)
            if total < 3 { try c.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$") }
            return n + total
        }
        #expect(value >= 4)
        #expect(try c.query("SELECT count(*) AS n FROM attempts").first!.decode("n", as: Int.self) == 3)
        #expect(c.transactionStatus == .idle)

        // Other errors are not retried.
        try c.execute("TRUNCATE attempts")
        #expect(throws: PQError.self) {
            try c.transaction { c in
                try c.query("INSERT INTO attempts VALUES (1)")
                try c.query("SELECT 1/0")
            }
        }
        #expect(try c.query("SELECT count(*) AS n FROM attempts").first!.decode("n", as: Int.self) == 0)
    }

    @Test func copyInLoadsRowsWithSpecialCharacters() throws {
        let c = try connect()
        try c.execute("CREATE TEMP TABLE t (a text, b int)")
        let rows: [[String?]] = (0..<5000).map { ["行\t\($0)\n\\x", $0 % 7 == 0 ? nil : String($0)] }
        let copied = try c.copyIn("COPY t FROM STDIN", rows: rows)
        #expect(copied == 5000)
        let row = try #require(try c.query("SELECT a, b FROM t WHERE a = $1", ["行\t7\n\\x"]).first)
        #expect(try row.decode("b", as: Int?.self) == nil)
        #expect(try c.query("SELECT count(b) AS n FROM t").first!.decode("n", as: Int.self) == 5000 - 715)
        // A bad row fails the COPY with the server's SQLSTATE, and the connection stays usable.
        let error = #expect(throws: PQError.self) { try c.copyIn("COPY t FROM STDIN", rows: [["x", "not a number"]]) }
        #expect(error?.sqlState == "22P02")
        #expect(try c.query("SELECT 1 AS one").first!.decode("one", as: Int.self) == 1)
    }
}

@Suite(.serialized) struct PQPoolTests {
    let location = try! TestDatabase.freshLocation()

    func pool(size: Int, timeout: Duration = .seconds(5)) -> PQPool {
        PQPool(.init(parameters: location.ownerParameters, size: size, checkoutTimeout: timeout))
    }

    @Test func runsManyTasksOnAFixedNumberOfConnections() async throws {
        // A generous wait: what is tested is the bound on connections, and a loaded CI machine can
        // take seconds to start one (this failed once at 5 s while a benchmark held both cores).
        let pool = pool(size: 3, timeout: .seconds(60))
        let pids = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<60 {
                group.addTask { try await pool.withConnection { c in _ = try c.query("SELECT pg_sleep(0.005)"); return c.backendPID } }
            }
            return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
        }
        #expect(pids.count <= 3)
        #expect(pids.count >= 1)
        await pool.shutdown()
    }

    @Test func checkoutTimesOutWhenEveryConnectionIsBusy() async throws {
        let pool = pool(size: 1, timeout: .milliseconds(200))
        // Asked for only once the busy task holds the connection: a fixed 200 ms head start was not
        // always enough on a loaded machine (CI), and the second checkout then got it first.
        let (taken, holding) = AsyncStream<Void>.makeStream()
        let busy = Task { try await pool.withConnection { c in holding.yield(); return try c.query("SELECT pg_sleep(8)") } }
        for await _ in taken { break }
        let error = await #expect(throws: PQError.self) { try await pool.withConnection { c in try c.query("SELECT 1") } }
        #expect(error?.message.contains("no database connection free") == true)
        _ = try await busy.value
        await pool.shutdown()
    }

    @Test func replacesAKilledConnection() async throws {
        let pool = pool(size: 1)
        let pid = try await pool.withConnection { $0.backendPID }
        let admin = try TestDatabase.ownerConnection(location)
        try admin.query("SELECT pg_terminate_backend($1)", [Int(pid)])
        try await Task.sleep(for: .milliseconds(100))
        // The next use notices the dead connection and says so...
        let error = await #expect(throws: PQError.self) { try await pool.withConnection { c in try c.query("SELECT 1") } }
        #expect(error?.isConnectionFailure == true)
        // ...and the pool has replaced it by the following one.
        let newPID = try await pool.withConnection { $0.backendPID }
        #expect(newPID != pid)
        // A transaction that may be repeated survives a kill without the caller seeing it.
        try admin.query("SELECT pg_terminate_backend($1)", [Int(newPID)])
        try await Task.sleep(for: .milliseconds(100))
        let one = try await pool.transaction(retryOnConnectionLoss: true) { c in try c.query("SELECT 1 AS one").first!.decode("one", as: Int.self) }
        #expect(one == 1)
        await pool.shutdown()
    }

    @Test func aLeftOpenTransactionIsRolledBackOnReturn() async throws {
        let pool = pool(size: 1)
        try await pool.withConnection { c in
            try c.execute("CREATE TABLE IF NOT EXISTS leftover (n int)")
            try c.execute("BEGIN")
            try c.query("INSERT INTO leftover VALUES (1)")
        }
        let (status, count) = try await pool.withConnection { c in
            (c.transactionStatus, try c.query("SELECT count(*) AS n FROM leftover").first!.decode("n", as: Int.self))
        }
        #expect(status == .idle)
        #expect(count == 0)
        await pool.shutdown()
    }
}

struct PQTimestampTests {
    /// The hand-written wire format agrees with Foundation's calendar on random instants,
    /// before 1970 and far after it, to the microsecond.
    @Test func formatAndParseAgreeWithFoundation() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let micros = Int64.random(in: -2_000_000_000_000_000...7_000_000_000_000_000, using: &random)
            let date = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
            let text = PQTimestamp.format(date)
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let expected = String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
            #expect(text.hasPrefix(expected), "\(text) vs \(expected)")
            let back = try #require(PQTimestamp.parse(text))
            #expect(abs(back.timeIntervalSince(date)) < 0.000_002)
        }
        #expect(PQTimestamp.parse("2026-11-22 06:00:00+00") == Date(timeIntervalSince1970: 1_795_327_200))
        #expect(PQTimestamp.parse("2026-11-22 06:00:00.5+00") == Date(timeIntervalSince1970: 1_795_327_200.5))
        #expect(PQTimestamp.formatRFC3339(Date(timeIntervalSince1970: 1_795_327_200.25)) == "2026-11-22T06:00:00.250000Z")
    }

    @Test func arraysBecomeQuotedLiterals() {
        #expect(["a", "b\"c", "d\\e"].pqValue == .text(#"{"a","b\"c","d\\e"}"#))
        #expect([Optional<String>.none, "x"].pqValue == .text(#"{NULL,"x"}"#))
        // Integers unquoted, written digit by digit.
        #expect([Int64.min, -10, 0, 7, 1_000, Int64.max].pqValue == .text("{-9223372036854775808,-10,0,7,1000,9223372036854775807}"))
        #expect([Int.min, 0, 42].pqValue == .text("{-9223372036854775808,0,42}"))
        #expect([Int64]().pqValue == .text("{}"))
        #expect([Optional(Int64(5)), nil].pqValue == .text(#"{"5",NULL}"#))
    }
}

/// A backend that dies hard (SIGKILL, the OOM killer) leaves libpq's "server closed the connection
/// unexpectedly", with no SQLSTATE: that is a lost connection (503 and a retry), not an internal
/// error (issue 15). On a cluster of its own: killing a backend makes PostgreSQL reset every session.
@Suite(.serialized) struct KilledBackendTests {
    @Test func aBackendKilledHardIsALostConnection() throws {
        let directory = TestDatabase.embedded.dataDirectory.deletingLastPathComponent().appendingPathComponent("killed-backend-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let cluster = EmbeddedPostgres(dataDirectory: directory, unsafeFastSettings: true)
        try cluster.start()
        defer { try? cluster.stop(); try? FileManager.default.removeItem(at: directory) }
        let connection = try PQConnection(parameters: cluster.connectionParameters(database: "postgres"))
        let pid: Int = try connection.query("SELECT pg_backend_pid() AS pid").rows[0].decode("pid")
        // Killed while it works on a query (as the load test saw it): the answer libpq gives that query.
        let outcome = Mutex<Result<Void, PQError>?>(nil)
        let worker = Thread {
            do { _ = try connection.query("SELECT pg_sleep(5)"); outcome.withLock { $0 = .success(()) } } catch let error as PQError {
                outcome.withLock { $0 = .failure(error) }
            } catch {}
        }
        worker.start()
        Thread.sleep(forTimeInterval: 0.8)
        #expect(kill(pid_t(pid), SIGKILL) == 0)
        for _ in 0..<50 where outcome.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.1) }
        switch outcome.withLock({ $0 }) {
        case .failure(let error)?: #expect(error.isConnectionFailure, "\(error)")
        case .success?: Issue.record("a query on a killed backend succeeded")
        case nil: Issue.record("the query on the killed backend never returned")
        }
        // The cluster recovers by itself; a new connection works.
        var recovered = false
        for _ in 0..<50 where !recovered {
            recovered = (try? PQConnection(parameters: cluster.connectionParameters(database: "postgres")).query("SELECT 1 AS one")) != nil
            if !recovered { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(recovered)
    }
}
