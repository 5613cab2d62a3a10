import Foundation
import Logging
import Metrics
import PQ
import ServiceLifecycle
import Synchronization

/// Keeps the embedded PostgreSQL that `serve` uses running (issue 15): if it dies (killed, out of
/// memory, stopped by another command that had started it), it is started again within a second
/// or two of being startable, logged and counted (`stockpile_embedded_postgres_restarts_total`).
/// Meanwhile `/readyz` is red and requests answer 503 with Retry-After; the pool's dead connections
/// are replaced on their next use.
final class ClusterWatchdog: Service, Sendable {
    let embedded: EmbeddedPostgres
    let logger: Logger
    let interval: Duration
    let restarts = Counter(label: "stockpile_embedded_postgres_restarts_total")
    /// Whether this watchdog started the cluster at least once (so `serve` stops it at exit).
    let restarted = Atomic<Bool>(false)

    init(embedded: EmbeddedPostgres, logger: Logger, interval: Duration = .seconds(1)) {
        self.embedded = embedded
        self.logger = logger
        self.interval = interval
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            var down: ContinuousClock.Instant?
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                guard !Task.isCancelled else { return }
                do {
                    if try self.embedded.isRunning() { down = nil; continue }
                    let since = down ?? ContinuousClock.now
                    down = since
                    self.logger.error("embedded PostgreSQL is not running; starting it again", metadata: ["data": "\(self.embedded.clusterDirectory.path)"])
                    if try self.embedded.start() {
                        self.restarted.store(true, ordering: .relaxed)
                        self.restarts.increment()
                        self.logger.warning("restarted embedded PostgreSQL", metadata: ["seconds_down_at_least": "\(ContinuousClock.now - since)"])
                    }
                    down = nil
                } catch {
                    self.logger.error("could not restart embedded PostgreSQL; trying again", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
