import Foundation
import Logging
import PQ
import StockpileCore

/// Where the commands find their database: DATABASE_URL when set, otherwise the embedded cluster
/// under the data folder — started for this run unless `serve` (or another command) has it running.
public struct DatabaseRuntime: Sendable {
    public let location: DatabaseLocation
    public let embedded: EmbeddedPostgres?
    /// True when this process started the embedded cluster and so must stop it.
    public let startedCluster: Bool

    public static func open(databaseURL: String?, dataDirectory: String, logger: Logger) throws -> DatabaseRuntime {
        if let url = databaseURL, !url.isEmpty {
            return DatabaseRuntime(location: DatabaseLocation(url: url), embedded: nil, startedCluster: false)
        }
        let directory = URL(fileURLWithPath: dataDirectory, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        let embedded = EmbeddedPostgres(dataDirectory: directory.absoluteURL, logger: logger)
        let started = try embedded.start()
        if !started { logger.info("using the embedded PostgreSQL already running", metadata: ["data": "\(embedded.clusterDirectory.path)"]) }
        return DatabaseRuntime(location: DatabaseLocation(ownerParameters: embedded.connectionParameters()),
                               embedded: embedded, startedCluster: started)
    }

    /// Stops the embedded cluster if this process started it.
    public func close() {
        if startedCluster { try? embedded?.stop() }
    }

    /// Loads the demo district unless the database already has facilities. Returns whether it loaded.
    @discardableResult
    public static func loadDemoIfEmpty(_ database: StockpileDatabase, today: LocalDate, logger: Logger) async throws -> Bool {
        let empty = try await database.withConnection(.system("demo")) { c in
            try c.query("SELECT NOT EXISTS (SELECT 1 FROM facilities) AS empty").first!.decode("empty", as: Bool.self)
        }
        guard empty else { return false }
        let summary = try await CSVImporter(database, scope: .system("demo")).importFiles(DemoDistrict.csvFiles(today: today), recordedBy: "demo")
        // Its last 30 days as they stood, rebuilt from its history, so the trends page has a month
        // to draw from the first day (the nightly run adds each day from then on).
        let trends = PostgresTrends(database, scope: .system("demo"))
        for back in (1...30).reversed() { _ = try await trends.recordAsStood(asOf: today.adding(days: -back)) }
        logger.info("loaded the demo district", metadata: [
            "facilities": "\(summary.files["facilities.csv"]?.rows ?? 0)",
            "movements": "\(summary.files["movements.csv"]?.rows ?? 0)",
            "history_days": "30",
        ])
        return true
    }
}
