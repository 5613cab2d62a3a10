import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import PQ
import Prometheus
import ServiceLifecycle
import StockpileCore
import StockpileHTTP
import StockpilePostgres

/// Options every database-using command shares.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "Folder of the embedded PostgreSQL cluster, used when DATABASE_URL is not set.")
    var dataDir: String = ProcessInfo.processInfo.environment["STOCKPILE_DATA_DIR"] ?? "./.stockpile"

    var databaseURL: String? { ProcessInfo.processInfo.environment["DATABASE_URL"] }

    func open(_ logger: Logger) throws -> DatabaseRuntime {
        try DatabaseRuntime.open(databaseURL: databaseURL, dataDirectory: dataDir, logger: logger)
    }

    /// For the one-shot commands: the database (embedded cluster started if need be), migrated,
    /// with a one-connection pool, closed and stopped again when `body` ends.
    func withDatabase<T>(poolSize: Int = 1, _ body: (StockpileDatabase) async throws -> T) async throws -> T {
        let logger = makeLogger()
        let runtime = try open(logger)
        defer { runtime.close() }
        try StockpileDatabase.migrate(runtime.location, logger: logger)
        let db = StockpileDatabase(location: runtime.location, poolSize: poolSize, logger: logger)
        do {
            let value = try await body(db)
            await db.shutdown()
            return value
        } catch {
            await db.shutdown()
            throw error
        }
    }
}

enum Environment {
    /// The zone dates are reckoned in (STOCKPILE_TIME_ZONE, default Asia/Shanghai).
    /// When an order on the road is overdue (STOCKPILE_TRANSIT_KMH, STOCKPILE_TRANSIT_MIN_HOURS).
    static func transit() throws -> TransitRule {
        do {
            return try TransitRule(kmh: ProcessInfo.processInfo.environment["STOCKPILE_TRANSIT_KMH"],
                                   minimumHours: ProcessInfo.processInfo.environment["STOCKPILE_TRANSIT_MIN_HOURS"])
        } catch { throw ValidationError(error.reason) }
    }

    static var timeZone: TimeZone {
        ProcessInfo.processInfo.environment["STOCKPILE_TIME_ZONE"].flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "Asia/Shanghai")!
    }
    static var today: LocalDate { LocalDate(Date(), in: timeZone) }
}

func makeLogger(_ label: String = "stockpile") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}


@main
struct Stockpile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Emergency medical supply reserves (应急医疗物资储备).",
        subcommands: [Serve.self, Migrate.self, Import.self, Export.self, Demo.self, Check.self, Token.self, Plan.self, Nightly.self, Generate.self, Bench.self,
                      Standby.self, History.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP service (migrates first; loads the demo district into an empty database).")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Address to listen on (STOCKPILE_HOST).") var host = ProcessInfo.processInfo.environment["STOCKPILE_HOST"] ?? "127.0.0.1"
    @Option(help: "Port to listen on (STOCKPILE_PORT).") var port = Int(ProcessInfo.processInfo.environment["STOCKPILE_PORT"] ?? "") ?? 8080
    @Option(help: "Database connections (STOCKPILE_POOL_SIZE).") var poolSize = Int(ProcessInfo.processInfo.environment["STOCKPILE_POOL_SIZE"] ?? "") ?? 16
    @Flag(help: "Do not load the demo district into an empty database.") var noDemo = false
    @Option(help: "Longest a request's statement may run, in seconds, before it is cancelled with 503 (STOCKPILE_STATEMENT_TIMEOUT).")
    var statementTimeout = Int(ProcessInfo.processInfo.environment["STOCKPILE_STATEMENT_TIMEOUT"] ?? "") ?? 60
    @Option(help: "Serve HTTPS with this certificate chain, PEM, the server's certificate first (STOCKPILE_TLS_CERT); needs --tls-key.")
    var tlsCert = ProcessInfo.processInfo.environment["STOCKPILE_TLS_CERT"]
    @Option(help: "The certificate's private key, PEM (STOCKPILE_TLS_KEY).")
    var tlsKey = ProcessInfo.processInfo.environment["STOCKPILE_TLS_KEY"]
    @Flag(help: "People reach the service over HTTPS through a proxy in front of it: Secure cookies and HSTS without TLS here (STOCKPILE_HTTPS_PROXY=1).")
    var behindHttpsProxy = ProcessInfo.processInfo.environment["STOCKPILE_HTTPS_PROXY"] == "1"

    func validate() throws {
        guard (1...3600).contains(statementTimeout) else { throw ValidationError("--statement-timeout: from 1 to 3600 seconds") }
        guard (0...65_535).contains(port) else { throw ValidationError("--port: from 0 to 65535") }
        guard (1...1000).contains(poolSize) else { throw ValidationError("--pool-size: from 1 to 1000 connections") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    func run() async throws {
        let logger = makeLogger()
        // The certificate first: a bad file stops serve before it starts the database.
        var settings = HTTPSettings(host: host, port: port)
        if let tlsCert, let tlsKey {
            do {
                settings = try settings.https(certificateFile: tlsCert, keyFile: tlsKey)
            } catch {
                throw ValidationError("TLS: \(error)")
            }
            logger.info("serving HTTPS", metadata: ["certificate": "\(tlsCert)"])
        }
        // When an order on the road is overdue: checked before anything starts, like the certificate.
        let transit = try Environment.transit()
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let runtime = try database.open(logger)
        defer { runtime.close() }
        try StockpileDatabase.migrate(runtime.location, logger: logger)
        let replica = try readReplica(logger)
        let db = StockpileDatabase(location: runtime.location, poolSize: poolSize, requestTimeoutMilliseconds: statementTimeout * 1000,
                                   replica: replica, logger: logger)
        if !noDemo {
            try await DatabaseRuntime.loadDemoIfEmpty(db, today: Environment.today, logger: logger)
        }
        let rateLimit = Double(ProcessInfo.processInfo.environment["STOCKPILE_RATE_LIMIT"] ?? "") ?? 200
        var services = StockpileServices(database: db, metrics: registry, timeZone: Environment.timeZone, logger: logger,
                                         rateLimit: rateLimit)
        services.https = tlsCert != nil || behindHttpsProxy
        services.transit = transit
        let app = buildApplication(services, settings: settings)
        let keeper = CoverKeeper(database: db, timeZone: Environment.timeZone, logger: logger)
        var running: [any Service] = [app, keeper]
        if let replica { running.append(ReplicaMonitor(replica: replica, primary: db.pool)) }
        // The embedded cluster is supervised: restarted when it dies (and then stopped at exit).
        let watchdog = runtime.embedded.map { ClusterWatchdog(embedded: $0, logger: logger) }
        if let watchdog { running.append(watchdog) }
        defer { if let watchdog, watchdog.restarted.load(ordering: .relaxed), !runtime.startedCluster { try? runtime.embedded?.stop() } }
        // STOCKPILE_NIGHTLY_AT (default 02:00 local; "off" when a systemd timer runs `stockpile nightly` instead).
        let nightlyAt = ProcessInfo.processInfo.environment["STOCKPILE_NIGHTLY_AT"] ?? "02:00"
        if nightlyAt != "off" {
            guard let schedule = NightlySchedule(nightlyAt, timeZone: Environment.timeZone) else {
                throw ValidationError("STOCKPILE_NIGHTLY_AT: a local time HH:MM, or off")
            }
            running.append(NightlyScheduler(database: db, schedule: schedule, logger: logger))
        }
        let group = ServiceGroup(configuration: .init(services: running, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await db.shutdown()
        logger.info("stopped")
    }
}

extension Serve {
    /// DATABASE_READ_URL: a hot standby (a libpq URL, may list several hosts) for the command
    /// centre's reads, used while its lag is within STOCKPILE_MAX_REPLICA_LAG seconds (default 30).
    func readReplica(_ logger: Logger) throws -> ReadReplica? {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["DATABASE_READ_URL"], !url.isEmpty else { return nil }
        let maxLagText = environment["STOCKPILE_MAX_REPLICA_LAG"] ?? "30"
        guard let maxLag = Double(maxLagText), maxLag.isFinite, (0.5...86_400).contains(maxLag) else {
            throw ValidationError("STOCKPILE_MAX_REPLICA_LAG: seconds, from 0.5 to 86400 (got \(maxLagText))")
        }
        logger.info("command-centre reads go to the read replica while it is within its allowed lag", metadata: ["max_lag_seconds": "\(maxLag)"])
        return ReadReplica(parameters: DatabaseLocation(url: url).serviceParameters, poolSize: poolSize, maxLagSeconds: maxLag, logger: logger)
    }
}

/// Measures the read replica's lag every second while `serve` runs (ReadReplica.sample).
struct ReplicaMonitor: Service {
    let replica: ReadReplica
    let primary: PQPool

    func run() async throws {
        await cancelWhenGracefulShutdown { await replica.monitor(primary: primary) }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations from sql/.")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let logger = makeLogger()
        let runtime = try database.open(logger)
        defer { runtime.close() }
        let applied = try StockpileDatabase.migrate(runtime.location, logger: logger)
        print(applied.isEmpty ? "schema is up to date" : "applied: \(applied.joined(separator: ", "))")
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load CSV files from a folder (what `stockpile export` writes), all or nothing.",
        discussion: "Example: stockpile import ./导出")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "Folder holding any of \(CSVImporter.fileOrder.map { "\($0).csv" }.joined(separator: ", ")).") var directory: String

    func run() async throws {
        let summary: ImportSummary
        do {
            summary = try await database.withDatabase { try await CSVImporter($0, scope: .system("cli")).importDirectory(URL(fileURLWithPath: directory)) }
        } catch let error as ImportError {
            FileHandle.standardError.write(Data("import rejected, nothing loaded: \(error)\n".utf8))
            throw ExitCode(2)
        }
        for name in CSVImporter.fileOrder {
            guard let file = summary.files["\(name).csv"] else { continue }
            print("\(name).csv: \(file.rows) rows, \(file.changed) changed, \(file.unchanged) unchanged")
        }
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load the demo district (示范市) into an empty database.")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let loaded = try await database.withDatabase { db in
            try await DatabaseRuntime.loadDemoIfEmpty(db, today: Environment.today, logger: makeLogger())
        }
        print(loaded ? "demo district loaded" : "the database already has facilities; nothing loaded")
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove conservation: each ledger sums to its balance, every order line's dispatch = receipt + loss + in transit, matching the transfers at both ends, and every lot's movements sum to on hand plus in transit.")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let found = try await database.withDatabase { db in try await PostgresReallocations.integrityViolations(db) }
        // Stored values an older version let in (out of range, a lot that should expire and has no
        // date) are reported, not fatal: the stock is still conserved.
        let warnings = found.filter { $0.kind == "range" || $0.kind == "lot_expiry" }, violations = found.filter { $0.kind != "range" && $0.kind != "lot_expiry" }
        for warning in warnings.prefix(1000) { print("WARN \(warning)") }
        guard let first = violations.first else {
            print("conserved: the ledger sums to the balances, the transit ledger to what is in transit, every order line's dispatch to its receipt, loss and transit, and every lot to on hand plus in transit: ok")
            return
        }
        print("BROKEN \(first)")
        for violation in violations.dropFirst().prefix(999) { print("BROKEN \(violation)") }
        if violations.count > 1000 { print("… and \(violations.count - 1000) more") }
        print("\(violations.count) broken; the first: \(first.subject)")
        throw ExitCode(1)
    }
}

/// Fills the trends' history (issue 17, part 6) for past dates from the ledgers, as cover stood at
/// the end of each (sql/0028): for the days before the nightly run began recording, or a gap.
/// A date a nightly run recorded is rebuilt too, and marked as rebuilt.
struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild the cover history of past dates from the ledgers (for the trends page), one date after another.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "First date, YYYY-MM-DD.") var from: String
    @Option(help: "Last date, YYYY-MM-DD (before today).") var to: String

    func run() async throws {
        guard let first = LocalDate(from), let last = LocalDate(to), first <= last, (1900...9000).contains(first.year) else {
            throw ValidationError("--from and --to: dates YYYY-MM-DD from 1900 on, --from not after --to")
        }
        let zone = Environment.timeZone
        guard last < LocalDate(Date(), in: zone) else { throw ValidationError("--to: a date before today (the nightly run records today)") }
        guard first.days(until: last) < 3660 else { throw ValidationError("--from: at most ten years before --to") }
        try await database.withDatabase { db in
            let trends = PostgresTrends(db, scope: .system("history"), timeZone: zone)
            var date = first
            while date <= last {
                let started = ContinuousClock.now
                let rows = try await trends.recordAsStood(asOf: date)
                print(String(format: "%@: %d region × item rows, %.1f s", date.description, rows, (ContinuousClock.now - started).inSeconds))
                date = date.adding(days: 1)
            }
        }
    }
}

/// A hot standby of the embedded cluster on this machine, for trying DATABASE_READ_URL (a real
/// deployment streams from another host; see README "Read replica").
struct Standby: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make (first time) and start a streaming hot standby of the embedded cluster, and print its DATABASE_READ_URL; --stop stops it.")
    @Option(help: "Folder of the standby.") var dataDir = "./.stockpile-standby"
    @Option(help: "Folder of the embedded cluster it follows (the primary, running).") var of = ProcessInfo.processInfo.environment["STOCKPILE_DATA_DIR"] ?? "./.stockpile"
    @Flag(help: "Stop the standby instead.") var stop = false

    func run() async throws {
        let logger = makeLogger()
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let standby = EmbeddedPostgres(dataDirectory: URL(fileURLWithPath: dataDir, relativeTo: here).absoluteURL, logger: logger)
        if stop { try standby.stop(); return }
        let primary = EmbeddedPostgres(dataDirectory: URL(fileURLWithPath: of, relativeTo: here).absoluteURL, logger: logger)
        guard try primary.isRunning() else {
            throw ValidationError("the embedded cluster in \(of) is not running: start it first (stockpile serve --data-dir \(of))")
        }
        if !FileManager.default.fileExists(atPath: standby.clusterDirectory.appendingPathComponent("PG_VERSION").path) {
            logger.info("copying the primary with pg_basebackup", metadata: ["from": "\(primary.clusterDirectory.path)"])
            try standby.makeStandby(of: primary)
        }
        try standby.start()
        print("DATABASE_READ_URL='\(standby.url())'")
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage bearer tokens (stored only as hashes).",
                                                    subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print its secret, once.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "A name for the token (who or what uses it).") var name: String
        @Option(help: "warehouse, command or admin.") var role: String
        @Option(help: "A facility code a warehouse token records for (repeat for several).") var facility: [String] = []
        @Option(help: "The region at the top of a command token's subtree.") var region: String?
        @Option(help: "Days until it expires.") var days = 365

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("--role must be warehouse, command or admin") }
            do {
                let (secret, token) = try await database.withDatabase { db in
                    try await PostgresTokens(db, scope: .system("cli")).create(name: name, role: role, region: region,
                                                                             facilities: facility, validDays: days)
                }
                print("token \(token.name) (\(token.role.rawValue)) valid until \(token.expiresAt); keep this secret, it is not shown again:")
                print(secret)
            } catch let error as PostgresTokens.TokenError {
                throw ValidationError(error.description)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let tokens = try await database.withDatabase { try await PostgresTokens($0, scope: .system("cli")).list() }
            for t in tokens {
                let scope = t.role == .warehouse ? t.facilities.joined(separator: ",") : (t.region ?? "all")
                let state = t.revokedAt != nil ? "revoked" : (t.expiresAt < Date() ? "expired" : "active")
                print("\(t.name)\t\(t.role.rawValue)\t\(scope)\t\(state)\texpires \(t.expiresAt)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; it is refused from the next request on.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The token's name.") var name: String

        func run() async throws {
            let revoked = try await database.withDatabase { try await PostgresTokens($0, scope: .system("cli")).revoke(name: name) }
            print(revoked ? "revoked \(name)" : "no active token named \(name)")
            if !revoked { throw ExitCode(1) }
        }
    }
}
