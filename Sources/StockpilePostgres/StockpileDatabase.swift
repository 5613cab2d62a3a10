import Foundation
import Logging
import PQ

/// Where the database is and how the service reaches it: the owner connection runs migrations,
/// the service's pool works as `stockpile_app`, which may append to the ledger but not rewrite it.
public struct DatabaseLocation: Sendable {
    public var ownerParameters: [(String, String)]
    public var serviceRole: String

    public init(ownerParameters: [(String, String)], serviceRole: String = "stockpile_app") {
        self.ownerParameters = ownerParameters
        self.serviceRole = serviceRole
    }

    /// A `postgresql://` URL (DATABASE_URL) or libpq keyword string.
    public init(url: String) {
        self.init(ownerParameters: [("dbname", url)])
    }

    public var serviceParameters: [(String, String)] {
        // Set the role at connection start, so every statement the service sends runs as it.
        ownerParameters + [("options", "-c role=\(serviceRole)"), ("application_name", "stockpile")]
    }
}

public final class StockpileDatabase: Sendable {
    public let location: DatabaseLocation
    public let pool: PQPool
    let logger: Logger
    /// The statement timeout of requests made with a token (STOCKPILE_STATEMENT_TIMEOUT): past it
    /// PostgreSQL cancels the statement and the client gets 503 busy.
    public let requestTimeoutMilliseconds: Int
    /// The read replica (DATABASE_READ_URL), if one is set up: see `read`.
    public let replica: ReadReplica?

    public init(location: DatabaseLocation, poolSize: Int = 8, requestTimeoutMilliseconds: Int = 60_000,
                replica: ReadReplica? = nil, logger: Logger = Logger(label: "stockpile.db")) {
        self.location = location
        self.logger = logger
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
        self.replica = replica
        self.pool = PQPool(.init(parameters: location.serviceParameters, size: poolSize), logger: logger)
    }

    /// The migrations shipped with the binary (the repository's `sql/` folder).
    public static var migrationsDirectory: URL {
        Bundle.module.url(forResource: "sql", withExtension: nil)!
    }

    /// Applies pending migrations as the owner. Returns what it applied.
    @discardableResult
    public static func migrate(_ location: DatabaseLocation, logger: Logger? = nil) throws -> [String] {
        let connection = try PQConnection(parameters: location.ownerParameters)
        return try Migrator(directory: migrationsDirectory).migrate(connection, logger: logger)
    }

    public func shutdown() async {
        await pool.shutdown()
        await replica?.pool.shutdown()
    }

    /// A pooled connection with `scope` put on it first: every query the service sends runs under a
    /// scope, and row-level security checks it (sql/0003_access.sql).
    public func withConnection<T: Sendable>(_ scope: AccessScope, _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let parameters = scope.applyParameters
        return try await pool.withConnection { connection in
            connection.callDeadline = scope.callDeadline
            try connection.queryPrepared(AccessScope.applySQL, parameters)
            return try body(connection)
        }
    }

    /// A transaction under `scope` (see `withConnection`).
    public func transaction<T: Sendable>(_ scope: AccessScope, isolation: PQConnection.Isolation = .readCommitted,
                                         retryOnConnectionLoss: Bool = false,
                                         _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let parameters = scope.applyParameters
        return try await pool.transaction(isolation: isolation, retryOnConnectionLoss: retryOnConnectionLoss) { connection in
            connection.callDeadline = scope.callDeadline
            try connection.queryPrepared(AccessScope.applySQL, parameters)
            return try body(connection)
        }
    }

    /// A read of the command centre's (cover, roll-ups, dashboard, reports, plan previews): on the
    /// replica when one is set up, answering as a standby, and within its allowed lag; otherwise,
    /// or when the replica fails mid-read, on the primary. Never for a read that decides a write
    /// (stock on hand before a dispatch): those stay in the writing transaction on the primary.
    /// With `isolation`, the body runs in one transaction of that level (a consistent view).
    /// Returns where the answer came from: `pg_is_in_recovery()` of the connection that answered.
    /// `replayed`: a primary WAL position the answer must include (what this request just wrote
    /// there, e.g. the cover snapshot's refresh); the replica is given a moment to replay it.
    public func read<T: Sendable>(_ scope: AccessScope, isolation: PQConnection.Isolation? = nil, preferReplica: Bool = true,
                                  replayed: WALPosition? = nil,
                                  _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> (T, ReadOrigin) {
        guard let replica, preferReplica else {
            return (try await Self.run(on: pool, scope, isolation, body).value, .primary)
        }
        let status = replica.status
        var fallback = status.notUsedBecause
        if status.usable {
            do {
                if let replayed { try await replica.waitForReplay(of: replayed) }
                let (value, standby) = try await Self.run(on: replica.pool, scope, isolation, body)
                return (value, replica.counted(ReadOrigin(servedBy: standby ? "standby" : "primary",
                                                          lagSeconds: standby ? status.lagSeconds : 0, fallback: nil)))
            } catch let behind as ReadReplica.Behind {
                fallback = behind.description
            } catch where ReadReplica.shouldReadElsewhere(error) {
                replica.failed(error)
                fallback = "the replica failed: \(error)"
                logger.warning("a read failed on the replica; reading from the primary", metadata: ["error": "\(error)"])
            }
        }
        let value = try await Self.run(on: pool, scope, isolation, body).value
        return (value, replica.counted(ReadOrigin(servedBy: "primary", lagSeconds: 0, fallback: fallback)))
    }

    private static func run<T: Sendable>(on pool: PQPool, _ scope: AccessScope, _ isolation: PQConnection.Isolation?,
                                         _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> (value: T, standby: Bool) {
        let parameters = scope.applyParameters
        let work: @Sendable (PQConnection) throws -> (value: T, standby: Bool) = { connection in
            connection.callDeadline = scope.callDeadline
            let standby = try connection.queryPrepared(AccessScope.applySQL + ", pg_is_in_recovery() AS in_recovery", parameters)
                .rows[0].decode("in_recovery", as: Bool.self)
            return (try body(connection), standby)
        }
        if let isolation { return try await pool.transaction(isolation: isolation, work) }
        return try await pool.withConnection(work)
    }

    /// Where the primary's WAL ends now (after something this request wrote): see `read(replayed:)`.
    public func walPosition() async throws -> WALPosition {
        try await pool.withConnection { c in
            WALPosition(try c.query("SELECT pg_current_wal_insert_lsn()::text AS lsn").rows[0].decode("lsn", as: String.self))
        }
    }

    /// A one-off connection as the schema owner, for maintenance the service role may not do
    /// (ANALYZE after bulk loads: in PostgreSQL 15 only a table's owner may analyze it).
    public func asOwner<T: Sendable>(_ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let parameters = location.ownerParameters
        return try await pool.runBlocking { try body(try PQConnection(parameters: parameters)) }
    }

    /// True when the database answers a trivial query (readiness).
    public func isReachable() async -> Bool {
        (try? await pool.withConnection { try $0.query("SELECT 1").rows.count == 1 }) ?? false
    }
}
