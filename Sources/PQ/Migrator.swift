import Foundation
import Logging

/// Applies `NNNN_name.sql` files in order, each once, each in its own transaction, and records
/// them in `schema_migrations`. An advisory lock keeps two migrating processes from racing.
public struct Migrator: Sendable {
    public let directory: URL
    public init(directory: URL) { self.directory = directory }

    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public func migrations() throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".sql") }
            .sorted()
        return try files.map { file in
            guard let version = Int(file.prefix { $0.isNumber }) else {
                throw PQError.client("migration file \(file) does not start with a version number")
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            return Migration(version: version, name: String(file.dropLast(4)), sql: sql)
        }
    }

    /// Returns the names of the migrations it applied now.
    @discardableResult
    public func migrate(_ connection: PQConnection, logger: Logger? = nil) throws -> [String] {
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """)
        var applied: [String] = []
        for migration in try migrations() {
            let done: Bool = try connection.transaction { c in
                // The lock is released at COMMIT; a second migrator waits here, then sees the row.
                try c.query("SELECT pg_advisory_xact_lock(7242001)")
                if try c.query("SELECT 1 FROM schema_migrations WHERE version = $1", [migration.version]).first != nil {
                    return false
                }
                try c.execute(migration.sql)
                try c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name])
                return true
            }
            if done {
                applied.append(migration.name)
                logger?.info("applied migration", metadata: ["migration": "\(migration.name)"])
            }
        }
        return applied
    }
}
