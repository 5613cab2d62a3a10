import Foundation
import Logging
import ServiceLifecycle
import StockpileCore
import StockpilePostgres

/// Keeps the cover snapshot on today's date while `serve` runs (PostgresCover.keepSnapshot): its
/// dirty positions refreshed every few seconds, so requests seldom pay for a refresh themselves
/// (they still refresh first when something changed, so no answer is stale); from 23:00 tomorrow's
/// snapshot built ahead and kept refreshed, and switched in after midnight (by the first request of
/// the day, or here, whichever comes first). Built from scratch at start when missing or stale;
/// until today's snapshot exists, requests compute.
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
                    let started = ContinuousClock.now
                    let done = try await cover.keepSnapshot(now: Date())
                    if done != .refreshed {
                        logger.info("cover snapshot \(done.rawValue)", metadata: ["seconds": "\(ContinuousClock.now - started)"])
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
