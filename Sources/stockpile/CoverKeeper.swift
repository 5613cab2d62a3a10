import Foundation
import Logging
import ServiceLifecycle
import StockpileCore
import StockpilePostgres

/// Keeps the cover snapshot on today's date while `serve` runs: built at start when missing or
/// stale, rebuilt after midnight (in the service's zone), and its dirty positions refreshed every
/// few seconds so requests seldom pay for a refresh themselves (they still refresh first when
/// something changed, so no answer is stale). Until today's snapshot exists, requests compute.
struct CoverKeeper: Service {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let logger: Logger
    var interval: Duration = .seconds(10)

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            let cover = PostgresCover(database, scope: .system("cover-keeper"), timeZone: timeZone)
            while !Task.isCancelled {
                do {
                    let today = LocalDate(Date(), in: timeZone)
                    if let snapshot = try await cover.snapshot(), snapshot.asOf == today, snapshot.timeZone == timeZone.identifier {
                        try await cover.refreshSnapshot()
                    } else {
                        let started = ContinuousClock.now
                        let positions = try await cover.rebuildSnapshot(asOf: today)
                        logger.info("cover snapshot built", metadata: ["as_of": "\(today)", "positions": "\(positions)",
                                                                       "seconds": "\(ContinuousClock.now - started)"])
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("cover snapshot upkeep failed; requests compute cover directly meanwhile", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
