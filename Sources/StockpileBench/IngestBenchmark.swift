import Foundation
import Hummingbird
import Logging
import PQ
import StockpileCore
import StockpileHTTP
import StockpilePostgres

/// `stockpile bench ingest`: movements per second through the HTTP API with N concurrent clients,
/// next to pgbench running the very same SQL (`record_movement`) with N clients against the same
/// database, in the same run, alternating round by round so both see the same machine.
public struct IngestBenchmark: Sendable {
    public struct Options: Sendable {
        public var clients = 16
        public var seconds = 8.0
        public var rounds = 3
        public var batchSize = 100
        public var poolSize = 16
        public init() {}
    }

    public struct Round: Sendable {
        public var httpSingle: Double
        public var pgbenchSingle: Double
        public var httpBatch: Double
        public var pgbenchBatch: Double
        /// pgbench's bare INSERT into a ledger + UPDATE of a balance, one transaction each: the
        /// physical limit of one movement per transaction on this machine (issue 18).
        public var pgbenchBare: Double
        public var latencies: [Double]
    }

    let embedded: EmbeddedPostgres
    let options: Options
    let logger: Logger

    public init(embedded: EmbeddedPostgres, options: Options, logger: Logger) {
        self.embedded = embedded
        self.options = options
        self.logger = logger
    }

    public func run(print say: @escaping @Sendable (String) -> Void) async throws -> [Round] {
        let name = "bench_ingest"
        try embedded.dropDatabase(name)
        try embedded.createDatabaseIfNeeded(name)
        let location = DatabaseLocation(ownerParameters: embedded.connectionParameters(database: name))
        try StockpileDatabase.migrate(location)
        let database = StockpileDatabase(location: location, poolSize: options.poolSize, logger: logger)
        defer { try? embedded.dropDatabase(name) }

        // One facility per client so clients do not queue on each other's balance rows; the same for pgbench.
        let facilities = (0..<options.clients).map { "BENCH-\($0)" }
        _ = try await CSVImporter(database, scope: .system("bench")).importFiles([
            "regions": "code,name,parent_code\nBENCH,压测区,\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\n"
                + facilities.map { "\($0),压测医院\($0),hospital,BENCH,100,30,114,false" }.joined(separator: "\n") + "\n",
            "items": "code,name,category,unit,target_days,shelf_life_days\nBENCH,压测口罩,ppe,只,,\n",
        ])
        let ledger = PostgresLedger(database, scope: .system("bench"))
        // The lot's first receipt names its expiry (masks expire: sql/0017's rule); the measured ones need not.
        for facility in facilities {
            _ = try await ledger.record(.init(id: UUID(), facility: facility, item: "BENCH", lot: "L1", expiry: LocalDate("2031-12-31"), kind: .receipt,
                                              quantity: 1, reason: "bench", occurredAt: nil), recordedBy: "bench")
        }

        // The bare baseline's two tables: nothing of Stockpile's (no rules, triggers, scope or audit).
        try await database.asOwner { owner in
            try owner.execute("""
                CREATE TABLE bench_bare_ledger (id uuid PRIMARY KEY, client integer NOT NULL, quantity bigint NOT NULL, recorded_at timestamptz NOT NULL);
                CREATE TABLE bench_bare_balances (client integer PRIMARY KEY, quantity bigint NOT NULL);
                INSERT INTO bench_bare_balances SELECT c, 0 FROM generate_series(1, \(options.clients)) c;
                GRANT SELECT, INSERT, UPDATE ON bench_bare_ledger, bench_bare_balances TO stockpile_app;
                """)
        }

        let secret = try await PostgresTokens(database, scope: .system("bench"))
            .create(name: "bench", role: .admin, region: nil, facilities: [], validDays: 1).secret

        // The service, in this process, on an ephemeral loopback port.
        var quiet = logger
        quiet.logLevel = .warning
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = buildApplication(StockpileServices(database: database, logger: quiet, rateLimit: 1e9), settings: HTTPSettings(host: "127.0.0.1", port: 0),
                                   onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) })
        let server = Task { try await app.runService() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw LoopbackClient.Failure(description: "server did not start") }

        let scripts = try writePgbenchScripts(secret: secret)
        var rounds: [Round] = []
        say("ingest: \(options.clients) clients on 2 driver threads, \(options.seconds) s per measurement, \(options.rounds) rounds, batch \(options.batchSize); movements/s")
        say("round   http-single  pgbench-single   http-batch  pgbench-batch   pgbench-bare")
        for round in 1...options.rounds {
            let (single, latencies) = try await onOwnThread { try runHTTP(port: port, token: secret, batch: 1) }
            let pgSingle = try runPgbench(script: scripts.single, database: name) * 1
            let (batch, _) = try await onOwnThread { try runHTTP(port: port, token: secret, batch: options.batchSize) }
            let pgBatch = try runPgbench(script: scripts.batch, database: name) * Double(options.batchSize)
            let pgBare = try runPgbench(script: scripts.bare, database: name)
            rounds.append(Round(httpSingle: single, pgbenchSingle: pgSingle, httpBatch: batch, pgbenchBatch: pgBatch, pgbenchBare: pgBare,
                                latencies: latencies))
            say(String(format: "%5d %12.0f %15.0f %12.0f %14.0f %14.0f", round, single, pgSingle, batch, pgBatch, pgBare))
        }
        server.cancel()
        _ = await server.result
        let mismatches = try await ledger.mismatches()
        await database.shutdown()

        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        let single = median(rounds.map(\.httpSingle)), pgSingle = median(rounds.map(\.pgbenchSingle))
        let batch = median(rounds.map(\.httpBatch)), pgBatch = median(rounds.map(\.pgbenchBatch)), pgBare = median(rounds.map(\.pgbenchBare))
        let latencies = rounds.flatMap(\.latencies).sorted()
        say(String(format: "median %11.0f %15.0f %12.0f %14.0f %14.0f", single, pgSingle, batch, pgBatch, pgBare))
        say(String(format: "single-movement requests: %.2f of pgbench (target ≥ 0.80, issue 18), %.2f of a bare INSERT + UPDATE per transaction",
                   single / pgSingle, single / pgBare))
        say(String(format: "batch endpoint: %.0f movements/s (target ≥ 20000), %.2f of pgbench running the same statements (token, scope, %d-movement batch)",
                    batch, batch / pgBatch, options.batchSize))
        if !latencies.isEmpty {
            say(String(format: "single-request latency: p50 %.2f ms, p99 %.2f ms", latencies[latencies.count / 2] * 1000,
                        latencies[min(latencies.count - 1, latencies.count * 99 / 100)] * 1000))
        }
        say(mismatches.isEmpty ? "ledger sums to balances after the run: ok" : "LEDGER MISMATCH at \(mismatches.count) positions")
        return rounds
    }

    /// Runs `clients` keep-alive connections, posting for `seconds`, spread over two driver threads
    /// that wait with poll() (as pgbench -j 2 does). Returns movements/s and the request latencies.
    func runHTTP(port: Int, token: String, batch: Int) throws -> (Double, [Double]) {
        let deadline = ContinuousClock.now + .milliseconds(Int(options.seconds * 1000))
        let results = ResultBox()
        let group = DispatchGroup()
        let started = ContinuousClock.now
        let drivers = min(2, options.clients)
        for driver in 0..<drivers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    let mine = Array(stride(from: driver, to: options.clients, by: drivers))
                    let connections = try mine.map { _ in try LoopbackClient(port: port, token: token) }
                    var random = SystemRandomNumberGenerator()
                    var sentAt = [ContinuousClock.Instant](repeating: .now, count: mine.count)
                    var count = 0
                    var latencies: [Double] = []
                    func post(_ slot: Int) throws {
                        var body: [UInt8]
                        if batch == 1 {
                            body = Self.movementBytes(facility: mine[slot], random: &random)
                        } else {
                            body = Array(#"{"movements":["#.utf8)
                            for i in 0..<batch {
                                if i > 0 { body.append(44) }
                                body += Self.movementBytes(facility: mine[slot], random: &random)
                            }
                            body += Array("]}".utf8)
                        }
                        sentAt[slot] = .now
                        try connections[slot].send(batch == 1 ? "/api/v1/movements" : "/api/v1/movements/batch", json: body)
                    }
                    for slot in mine.indices { try post(slot) }
                    var waiting = Set(mine.indices)
                    var fds = connections.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
                    while !waiting.isEmpty {
                        guard poll(&fds, nfds_t(fds.count), 1000) >= 0 else { throw LoopbackClient.Failure(description: "poll failed") }
                        for slot in fds.indices where fds[slot].revents != 0 && waiting.contains(slot) {
                            guard let status = try connections[slot].receive() else { continue }
                            guard status == 201 else { throw LoopbackClient.Failure(description: "status \(status)") }
                            let elapsed = ContinuousClock.now - sentAt[slot]
                            latencies.append(elapsed.inSeconds)
                            count += batch
                            if ContinuousClock.now < deadline { try post(slot) } else { waiting.remove(slot) }
                        }
                    }
                    results.add(count: count, latencies: batch == 1 ? latencies : [])
                } catch {
                    results.fail("\(error)")
                }
            }
            thread.start()
        }
        group.wait()
        if let failure = results.failure { throw LoopbackClient.Failure(description: "load client: \(failure)") }
        let elapsed = ContinuousClock.now - started
        let seconds = elapsed.inSeconds
        return (Double(results.count) / seconds, results.latencies)
    }

    /// One movement's JSON, built byte-wise with a random v4 id: the load client should spend as
    /// little of the shared two cores as it can, so the figures are the service's.
    static func movementBytes(facility: Int, random: inout SystemRandomNumberGenerator) -> [UInt8] {
        var out = Array(#"{"id":""#.utf8)
        let hex = Array("0123456789abcdef".utf8)
        var a = random.next() as UInt64, b = random.next() as UInt64
        a = (a & ~0xF000) | 0x4000                       // version 4
        b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000 // variant 10
        for (i, word) in [a, b].enumerated() {
            for nibble in 0..<16 {
                let position = i * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { out.append(45) }
                out.append(hex[Int((word >> UInt64(60 - nibble * 4)) & 0xF)])
            }
        }
        out += Array(#"","facility":"BENCH-"#.utf8) + Array(String(facility).utf8)
            + Array(#"","item":"BENCH","lot":"L1","kind":"receipt","quantity":1,"reason":"bench"}"#.utf8)
        return out
    }


    /// The statements the service sends for each request: the token lookup
    /// (PostgresTokens.authenticateSQL), the scope (AccessScope.applySQL), then `record_movement`
    /// for one movement (PostgresLedger.recordSQL) or `record_movements` with one array per column
    /// for a batch, asking for the columns the service asks for — the arrays built server-side
    /// here, since pgbench cannot bind them.
    func writePgbenchScripts(secret: String) throws -> (single: String, batch: String, bare: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stockpile-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let single = directory.appendingPathComponent("single.sql")
        let batch = directory.appendingPathComponent("batch.sql")
        // pgbench has no bind parameters: the values go in as literals (the secret is a throwaway bench token).
        let access = PostgresTokens.authenticateSQL.replacingOccurrences(of: "$1", with: "'\(secret)'")
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ") + ";\n"
            + "SELECT set_config('stockpile.scope', 'all', false), set_config('stockpile.facility_ids', '{}', false), "
            + "set_config('stockpile.token', 'bench', false), set_config('stockpile.client', '127.0.0.1', false), "
            + "set_config('statement_timeout', '60000', false);\n"
        try (access + """
            SELECT * FROM record_movement(gen_random_uuid(), 'BENCH-' || :client_id, 'BENCH', 'L1', NULL::date, 'receipt', 1, 'bench', NULL::timestamptz, 'pgbench');

            """).write(to: single, atomically: true, encoding: .utf8)
        let n = options.batchSize
        try (access + """
            SELECT \(PostgresLedger.outcomeColumns) FROM record_movements(ARRAY(SELECT gen_random_uuid() FROM generate_series(1, \(n))), array_fill('BENCH-' || :client_id, ARRAY[\(n)]), array_fill('BENCH'::text, ARRAY[\(n)]), array_fill('L1'::text, ARRAY[\(n)]), array_fill(NULL::date, ARRAY[\(n)]), array_fill('receipt'::text, ARRAY[\(n)]), array_fill(1::bigint, ARRAY[\(n)]), array_fill('bench'::text, ARRAY[\(n)]), array_fill(NULL::timestamptz, ARRAY[\(n)]), 'pgbench');

            """).write(to: batch, atomically: true, encoding: .utf8)
        let bare = directory.appendingPathComponent("bare.sql")
        try """
            BEGIN;
            INSERT INTO bench_bare_ledger VALUES (gen_random_uuid(), :client_id + 1, 1, now());
            UPDATE bench_bare_balances SET quantity = quantity + 1 WHERE client = :client_id + 1;
            COMMIT;

            """.write(to: bare, atomically: true, encoding: .utf8)
        return (single.path, batch.path, bare.path)
    }

    /// Transactions per second from pgbench with the same number of clients, as the service's role.
    func runPgbench(script: String, database: String) throws -> Double {
        guard let pgbench = EmbeddedPostgres.findBinary("pgbench") else { throw LoopbackClient.Failure(description: "pgbench not found") }
        let output = try Subprocess.run(pgbench, [
            "-n", "-c", String(options.clients), "-j", "2", "-T", String(Int(options.seconds.rounded())), "-f", script,
            "-h", embedded.socketDirectory.path, "-p", String(embedded.port), "-U", embedded.superuser, database,
        ], environment: ["PGOPTIONS": "-c role=stockpile_app"])
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
              let tps = Double(line.dropFirst(6).prefix { $0 != " " }) else {
            throw LoopbackClient.Failure(description: "could not read pgbench output: \(output)")
        }
        return tps
    }
}

/// Counts from the load threads.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var count = 0
    private(set) var latencies: [Double] = []
    private(set) var failure: String?

    func add(count: Int, latencies: [Double]) {
        lock.lock(); defer { lock.unlock() }
        self.count += count
        self.latencies += latencies
    }

    func fail(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        if failure == nil { failure = message }
    }
}
