import Foundation
import Logging
import Metrics
import PQ
import Synchronization

/// Where one read was answered, and how stale it may be: what cover responses, the dashboard and
/// `/metrics` report (issue 15, part 3).
public struct ReadOrigin: Sendable, Equatable, Codable {
    /// "standby" when the connection that answered was in recovery (`pg_is_in_recovery()`), else "primary".
    public var servedBy: String
    /// How far behind the primary the answer may be, in seconds: 0 on the primary; on the standby the
    /// time since the primary last had WAL the standby had not replayed (see `ReadReplica.lag`).
    public var lagSeconds: Double
    /// Why a read that could have gone to the replica went to the primary (nil when it did not, or no replica is set up).
    public var fallback: String?

    public static let primary = ReadOrigin(servedBy: "primary", lagSeconds: 0, fallback: nil)

    enum CodingKeys: String, CodingKey { case servedBy = "served_by", lagSeconds = "lag_seconds", fallback }
}

/// A position in the primary's WAL (an LSN, `X/Y` in SQL).
public struct WALPosition: Sendable, Comparable {
    public var value: UInt64
    public init(_ text: String) { value = ReadReplica.lsn(text) }
    public static func < (a: WALPosition, b: WALPosition) -> Bool { a.value < b.value }
}

/// The read replica (DATABASE_READ_URL): a pool on a hot standby, and what is known of its lag.
///
/// Lag is measured without writing anything: every `sample` reads the primary's WAL position
/// (`pg_current_wal_insert_lsn()`) and then the standby's replay position, and keeps the primary's recent
/// positions with their times. The standby has everything the primary had at the newest sampled
/// time whose position it has replayed; its lag is how long before the measurement that was (0
/// when it has replayed the newest position). An idle primary therefore shows no lag (unlike
/// `now() − pg_last_xact_replay_timestamp()`, which grows while nothing is written), and a standby
/// that stops replaying shows lag growing by the second. A lag not measured for longer than the
/// allowed lag (the primary or the standby not answering) counts as too old to trust.
public final class ReadReplica: Sendable {
    public let pool: PQPool
    /// Past this lag (STOCKPILE_MAX_REPLICA_LAG, seconds) reads go to the primary.
    public let maxLagSeconds: Double
    let logger: Logger

    public struct Status: Sendable, Equatable {
        /// The standby answered the last sample.
        public var up: Bool
        /// It was in recovery (a hot standby): a server that is not is never read from as a replica.
        public var inRecovery: Bool
        public var lagSeconds: Double
        public var lagBytes: Int64
        /// Why reads are not going to it now (nil when they are).
        public var notUsedBecause: String?
        public var usable: Bool { notUsedBecause == nil }
    }

    private struct State {
        /// The primary's WAL positions as sampled, oldest first (two minutes of them at most).
        var primaryPositions: [(at: ContinuousClock.Instant, lsn: UInt64)] = []
        /// The newest sampled time the standby was known to hold everything of.
        var caughtUpAt: ContinuousClock.Instant?
        /// The last sample at which both the primary and the standby answered.
        var measuredAt: ContinuousClock.Instant?
        var up = false
        var inRecovery = false
        var lagBytes: Int64 = 0
        var failure: String? = "not sampled yet"
    }

    private let state = Mutex(State())
    private let lagGauge = Gauge(label: "stockpile_replica_lag_seconds")
    private let lagBytesGauge = Gauge(label: "stockpile_replica_lag_bytes")
    private let upGauge = Gauge(label: "stockpile_replica_up")
    private let inUseGauge = Gauge(label: "stockpile_replica_in_use")
    private let standbyReads = Counter(label: "stockpile_reads_total", dimensions: [("served_by", "standby")])
    private let primaryReads = Counter(label: "stockpile_reads_total", dimensions: [("served_by", "primary")])

    public init(parameters: [(String, String)], poolSize: Int, maxLagSeconds: Double, logger: Logger) {
        // A short checkout wait: a replica whose pool is saturated is a reason to read elsewhere, not to queue.
        self.pool = PQPool(.init(parameters: parameters, size: poolSize, checkoutTimeout: .seconds(2)), logger: logger)
        self.maxLagSeconds = maxLagSeconds
        self.logger = logger
    }

    /// What is known now (lag keeps growing between samples that cannot confirm the standby caught up).
    public var status: Status {
        let now = ContinuousClock.now
        return state.withLock { s in
            var lag = Double.infinity
            if let measured = s.measuredAt, let caughtUp = s.caughtUpAt { lag = max(0, Self.seconds(measured - caughtUp)) }
            var reason = s.failure
            if reason == nil, let measured = s.measuredAt, Self.seconds(now - measured) > maxLagSeconds {
                reason = "the replica's lag has not been measured for \(Self.describe(Self.seconds(now - measured)))"
            } else if reason == nil, lag > maxLagSeconds {
                reason = "the replica is \(Self.describe(lag)) behind (more than \(Self.describe(maxLagSeconds)))"
            }
            return Status(up: s.up, inRecovery: s.inRecovery, lagSeconds: lag, lagBytes: s.lagBytes, notUsedBecause: reason)
        }
    }

    /// One measurement: the primary's position first, then the standby's replay position.
    public func sample(primary: PQPool) async {
        let primaryLSN: UInt64? = try? await primary.withConnection { c in
            // The insert position, not the write position: with synchronous_commit off a commit can
            // return before its record is written, and the standby would look caught up without it.
            try Self.lsn(c.query("SELECT pg_current_wal_insert_lsn()::text AS lsn").rows[0].decode("lsn", as: String.self))
        }
        let sampledAt = ContinuousClock.now
        let standby: Result<(inRecovery: Bool, replayed: UInt64?), any Error> = await {
            do {
                return .success(try await pool.withConnection { c in
                    let row = try c.query("""
                        SELECT pg_is_in_recovery() AS recovery,
                               coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text AS replayed
                        """).rows[0]
                    // pg_current_wal_lsn() fails in recovery; coalesce only evaluates it on a primary.
                    return (try row.decode("recovery", as: Bool.self), Self.lsn(try row.decode("replayed", as: String.self)))
                })
            } catch {
                return .failure(error)
            }
        }()
        state.withLock { s in
            if let primaryLSN {
                s.primaryPositions.append((sampledAt, primaryLSN))
                s.primaryPositions.removeAll { sampledAt - $0.at > .seconds(120) }
            }
            switch standby {
            case .failure(let error):
                s.up = false
                s.failure = "the replica is unreachable: \(error)"
            case .success(let answer):
                s.up = true
                s.inRecovery = answer.inRecovery
                if !answer.inRecovery {
                    s.failure = "the replica is not a standby (not in recovery)"
                } else if primaryLSN == nil {
                    // Without the primary's position nothing new is measured: the last measurement ages.
                    s.failure = s.measuredAt == nil ? "the primary's WAL position could not be read" : nil
                } else {
                    s.failure = nil
                }
                if answer.inRecovery, let primaryLSN, let replayed = answer.replayed {
                    s.measuredAt = sampledAt
                    s.lagBytes = Int64(clamping: primaryLSN &- min(primaryLSN, replayed))
                    if let held = s.primaryPositions.last(where: { $0.lsn <= replayed }) {
                        s.caughtUpAt = max(s.caughtUpAt ?? held.at, held.at)
                    }
                }
            }
        }
        let now = status
        lagGauge.record(now.lagSeconds.isFinite ? now.lagSeconds : -1)
        lagBytesGauge.record(now.lagBytes)
        upGauge.record(now.up ? 1 : 0)
        inUseGauge.record(now.usable ? 1 : 0)
    }

    /// Samples every `interval` until cancelled (serve runs this).
    public func monitor(primary: PQPool, interval: Duration = .seconds(1)) async {
        var wasUsable: Bool?
        while !Task.isCancelled {
            await sample(primary: primary)
            let now = status
            if now.usable != wasUsable {
                if now.usable {
                    logger.info("reads go to the replica", metadata: ["lag_seconds": "\(Self.describe(now.lagSeconds))"])
                } else {
                    logger.warning("reads go to the primary", metadata: ["reason": "\(now.notUsedBecause ?? "")"])
                }
                wasUsable = now.usable
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// The replica had not replayed what the request needs within `waitForReplay`'s moment.
    struct Behind: Error, CustomStringConvertible {
        var description: String { "the replica had not yet replayed what this request just refreshed on the primary" }
    }

    /// Waits (up to half a second) until the standby has replayed `position`; throws `Behind` if
    /// it has not. Outside the read's own transaction, whose snapshot would otherwise predate it.
    func waitForReplay(of position: WALPosition) async throws {
        let deadline = ContinuousClock.now + .milliseconds(500)
        while true {
            let replayed = try await pool.withConnection { c in
                WALPosition(try c.query("SELECT coalesce(pg_last_wal_replay_lsn(), '0/0')::text AS lsn").rows[0].decode("lsn", as: String.self))
            }
            if replayed >= position { return }
            if ContinuousClock.now > deadline { throw Behind() }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// A read failed on the replica: reads go to the primary until a sample finds it answering again.
    func failed(_ error: any Error) {
        state.withLock { s in
            s.up = false
            s.failure = "the replica failed a read: \(error)"
        }
        upGauge.record(0)
        inUseGauge.record(0)
    }

    func counted(_ origin: ReadOrigin) -> ReadOrigin {
        (origin.servedBy == "standby" ? standbyReads : primaryReads).increment()
        return origin
    }

    /// A failed read on the replica that the primary should answer instead: the replica (or its
    /// connection) is gone, it is not a standby, or replay cancelled the query. Refusals and
    /// timeouts would be the same on the primary, so they are not retried there.
    static func shouldReadElsewhere(_ error: any Error) -> Bool {
        guard let error = error as? PQError else { return false }
        if error.isConnectionFailure { return true }
        guard let state = error.sqlState else { return false }
        // 0A000: what a standby says of a table it cannot read (an UNLOGGED one).
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "25006", "40001", "53300", "0A000"].contains(state)
    }

    static func lsn(_ text: String) -> UInt64 {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16) else { return 0 }
        return high << 32 | low
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func describe(_ seconds: Double) -> String {
        seconds.isFinite ? String(format: "%.1f s", seconds) : "unknown"
    }
}
