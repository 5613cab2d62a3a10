import Foundation
import Logging
import PQ
import StockpilePostgres
import Synchronization

/// The throwaway PostgreSQL cluster the database tests share: started once per test process with
/// the same EmbeddedPostgres code `serve` uses, and stopped when the process exits. Each suite
/// gets a database of its own, freshly migrated, so suites can run in parallel without resets.
public enum TestDatabase {
    static let cluster: EmbeddedPostgres = {
        let root = ProcessInfo.processInfo.environment["STOCKPILE_TEST_DATA"]
            .map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: "/tmp/stockpile-test-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        var logger = Logger(label: "stockpile.test-cluster")
        logger.logLevel = .warning
        let cluster = EmbeddedPostgres(dataDirectory: root, unsafeFastSettings: true, logger: logger)
        do {
            try cluster.start()
        } catch {
            fatalError("could not start the test PostgreSQL cluster: \(error)")
        }
        stopAtExit = cluster
        atexit {
            try? stopAtExit?.stop()
            if ProcessInfo.processInfo.environment["STOCKPILE_TEST_DATA"] == nil, let dir = stopAtExit?.dataDirectory {
                try? FileManager.default.removeItem(at: dir)
            }
        }
        return cluster
    }()

    nonisolated(unsafe) static var stopAtExit: EmbeddedPostgres?
    static let counter = Atomic<Int>(0)

    public static var embedded: EmbeddedPostgres { cluster }

    /// A new, migrated database, and a StockpileDatabase (service pool) on it.
    public static func fresh(poolSize: Int = 4) throws -> StockpileDatabase {
        let location = try freshLocation()
        return StockpileDatabase(location: location, poolSize: poolSize)
    }

    /// A new, migrated database's location (owner parameters).
    public static func freshLocation() throws -> DatabaseLocation {
        let n = counter.add(1, ordering: .relaxed).newValue
        let name = "t\(getpid())_\(n)"
        try cluster.createDatabaseIfNeeded(name)
        let location = DatabaseLocation(ownerParameters: cluster.connectionParameters(database: name))
        try StockpileDatabase.migrate(location)
        return location
    }

    /// The shared example district (../shared/examples/district-a), found from this source file.
    public static var districtA: URL {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() } // …/Sources/StockpileTestSupport/TestDatabase.swift → the repository
        return dir.deletingLastPathComponent().appendingPathComponent("shared/examples/district-a")
    }

    /// An owner connection to a test database, for checks the service role may not make.
    public static func ownerConnection(_ location: DatabaseLocation) throws -> PQConnection {
        try PQConnection(parameters: location.ownerParameters)
    }
}

/// Clusters of a test's own, for what the shared one must not get (a standby of it, logical
/// replication, a synchronous standby that never answers), under one folder removed by `remove`.
public struct OwnClusters: Sendable {
    public let folder: URL
    let logger: Logger

    public init(_ name: String) {
        folder = URL(fileURLWithPath: "/tmp/stockpile-\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        var logger = Logger(label: "stockpile.\(name)-test")
        logger.logLevel = .warning
        self.logger = logger
    }

    /// A durable cluster in `name` under the folder (not started): durable as in production, since
    /// with synchronous_commit off a commit can sit unflushed, and unsent to a standby, for a while.
    public func cluster(_ name: String) -> EmbeddedPostgres {
        EmbeddedPostgres(dataDirectory: folder.appendingPathComponent(name), logger: logger)
    }

    /// Stops `clusters` and removes the folder.
    public func remove(stopping clusters: [EmbeddedPostgres]) {
        for cluster in clusters { try? cluster.stop() }
        try? FileManager.default.removeItem(at: folder)
    }
}
