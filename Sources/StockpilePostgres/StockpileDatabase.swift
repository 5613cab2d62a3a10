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

    public init(location: DatabaseLocation, poolSize: Int = 8, requestTimeoutMilliseconds: Int = 60_000,
                logger: Logger = Logger(label: "stockpile.db")) {
        self.location = location
        self.logger = logger
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
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

    public func shutdown() async { await pool.shutdown() }

    /// A pooled connection with `scope` put on it first: every query the service sends runs under a
    /// scope, and row-level security checks it (sql/0003_access.sql).
    public func withConnection<T: Sendable>(_ scope: AccessScope, _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let parameters = scope.applyParameters
        return try await pool.withConnection { connection in
            try connection.query(AccessScope.applySQL, parameters)
            return try body(connection)
        }
    }

    /// A transaction under `scope` (see `withConnection`).
    public func transaction<T: Sendable>(_ scope: AccessScope, isolation: PQConnection.Isolation = .readCommitted,
                                         retryOnConnectionLoss: Bool = false,
                                         _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let parameters = scope.applyParameters
        return try await pool.transaction(isolation: isolation, retryOnConnectionLoss: retryOnConnectionLoss) { connection in
            try connection.query(AccessScope.applySQL, parameters)
            return try body(connection)
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
