import Foundation
import Logging
import StockpileCore
import StockpilePostgres

/// `stockpile bench nightly`: the nightly reorder report on a database `stockpile generate` filled,
/// timed phase by phase. Each round first removes that date's report and the orders it created (as
/// the owner), so every round does the whole run rather than return the stored report.
public struct NightlyBenchmark: Sendable {
    public struct Options: Sendable {
        public var rounds = 1
        public var region: String?
        /// Run even on a database `stockpile generate` did not make (it deletes that date's report and its orders).
        public var allowRealData = false
        public init() {}
    }

    let database: StockpileDatabase
    let timeZone: TimeZone
    let options: Options

    public init(database: StockpileDatabase, timeZone: TimeZone, options: Options) {
        self.database = database
        self.timeZone = timeZone
        self.options = options
    }

    public func run(print say: @escaping @Sendable (String) -> Void) async throws {
        let snapshot = try await CoverBenchmark.generatedSnapshot(database, timeZone: timeZone, allowRealData: options.allowRealData,
                                                                  benchmark: "bench nightly",
                                                                  writes: "delete the nightly report of its cover snapshot's date and that report's orders")
        let date = snapshot.asOf, region = options.region
        let key = region ?? "*"
        let facilities: Int = try await database.withConnection(.system("bench")) { c in
            try c.query("SELECT count(*) AS n FROM facilities").rows[0].decode("n")
        }
        say("nightly report of \(date)\(region.map { ", region \($0)" } ?? ""): \(facilities) facilities, \(snapshot.positions) positions in the cover snapshot")
        for round in 1...max(1, options.rounds) {
            let removed: Int = try await database.asOwner { owner in
                // Row-level security binds the owner too (FORCE) unless it is a superuser.
                try owner.query("SELECT set_config('stockpile.scope', 'all', false)")
                // Every generation's orders (replaces included), and those of a first run that died before storing.
                var requests: [String] = try owner.query("SELECT request_id::text AS id FROM nightly_reports WHERE as_of = $1::date AND scope = $2",
                                                         [date.description, key]).rows.map { try $0.decode("id") }
                requests.append(try PostgresNightly.requestID(owner, asOf: date, region: region, generation: 1).uuidString.lowercased())
                let ids = "{" + requests.joined(separator: ",") + "}"
                try owner.query("DELETE FROM nightly_lines WHERE as_of = $1::date AND scope = $2", [date.description, key])
                try owner.query("DELETE FROM nightly_reports WHERE as_of = $1::date AND scope = $2", [date.description, key])
                try owner.query("DELETE FROM reallocation_lines WHERE order_id IN (SELECT id FROM reallocation_orders WHERE request_id = ANY ($1::uuid[]))",
                                [ids])
                let removed = try owner.query("DELETE FROM reallocation_orders WHERE request_id = ANY ($1::uuid[])", [ids]).affectedRows
                try owner.query("DELETE FROM shipments WHERE request_id = ANY ($1::uuid[])", [ids])
                // The round must not pay for this cleanup: with a city's 1.67 million orders gone,
                // autovacuum took these tables in the middle of the next round, on one of the two
                // cores the planner and the inserts were using. A real night follows no such delete.
                if removed > 0 {
                    try owner.execute("VACUUM (ANALYZE) reallocation_lines, reallocation_orders, shipments, nightly_lines, nightly_reports")
                }
                return removed
            }
            let started = ContinuousClock.now
            let result = try await PostgresNightly(database, scope: .system("bench"), timeZone: timeZone).run(asOf: date, region: region) { p in
                say(String(format: "  %7.1f s  ", p.elapsed.inSeconds) + "\(p.phase.rawValue) (\(p.positions) positions)")
            }
            let seconds = (ContinuousClock.now - started).inSeconds
            let size: Int = try await database.withConnection(.system("bench")) { c in
                try c.query("""
                    SELECT (SELECT length(report::text) FROM nightly_reports WHERE as_of = $1::date AND scope = $2 AND generation = 1)
                           + (SELECT coalesce(sum(length(lines)), 0) FROM nightly_lines WHERE as_of = $1::date AND scope = $2 AND generation = 1) AS n
                    """, [date.description, key]).rows[0].decode("n")
            }
            let r = result.report
            say("round \(round) (removed \(removed) orders of an earlier run): " + String(format: "%.1f s", seconds))
            // The store phase is what the report's own phases leave of the whole run.
            var phases = r.phases
            phases[NightlyPhase.store.rawValue] = seconds - r.phases.values.reduce(0, +)
            for phase in NightlyPhase.allCases {
                if let t = phases[phase.rawValue] {
                    say("  " + phase.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: " %8.2f s", t))
                }
            }
            say("  \(r.positions) positions, \(r.orders.count) orders in \(r.shipments ?? 0) shipments, \(r.reorders.count) short positions, \(r.contractGaps.count) contract gaps, "
                + "\(r.expiringLots.count) expiring lots, \(r.stale.count) stale; stored as \(size / 1_000_000) MB of JSON")
        }
    }
}
