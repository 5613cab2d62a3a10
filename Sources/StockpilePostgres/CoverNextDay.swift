import Foundation
import PQ
import StockpileCore

/// One of the cover snapshot's two sets of tables (sql/0034): the live one, which requests read,
/// or tomorrow's, built ahead in the evening and switched in at midnight by swapping names.
struct SnapshotTables: Sendable {
    let positions, facilitySums, itemSums, dirty, snapshot: String
    /// Each set's writers serialise on their own lock: tomorrow's build (minutes at city scale)
    /// must not hold up the live refresh every request may run.
    let lockKey: Int
    let isLive: Bool

    static let live = SnapshotTables(positions: "cover_positions", facilitySums: "cover_facility_sums", itemSums: "cover_region_item_sums",
                                     dirty: "cover_dirty", snapshot: "cover_snapshot", lockKey: CoverSQL.lockKey, isLive: true)
    static let next = SnapshotTables(positions: "cover_positions_next", facilitySums: "cover_facility_sums_next",
                                     itemSums: "cover_region_item_sums_next", dirty: "cover_dirty_next", snapshot: "cover_snapshot_next",
                                     lockKey: CoverSQL.lockKey + 1, isLive: false)

    /// The three renames of each table pair: live ↔ next.
    static let swapNames: String = ["cover_positions", "cover_facility_sums", "cover_region_item_sums"].map { name in
        """
        ALTER TABLE \(name) RENAME TO \(name)_swap;
        ALTER TABLE \(name)_next RENAME TO \(name);
        ALTER TABLE \(name)_swap RENAME TO \(name)_next;
        """
    }.joined(separator: "\n")
}

/// What one round of snapshot upkeep did.
public enum CoverUpkeep: String, Sendable {
    case refreshed
    /// Today's snapshot built from scratch (no ready one for today): requests computed meanwhile.
    case rebuilt
    /// Tomorrow's snapshot built ahead, into the second set.
    case builtNext = "built_next"
    /// Midnight passed: tomorrow's set became today's.
    case switched
}

extension PostgresCover {
    /// The hour (in the service's zone) from which tomorrow's snapshot is built ahead. At 10,000 ×
    /// 300 a build takes about four minutes; from 23:00 it is ready long before midnight, and the
    /// changes of the last hour reach it as dirty marks.
    public static let aheadFromHour = 23

    /// What tomorrow's set holds: its date, and whether its build finished.
    public func nextSnapshot() async throws -> (asOf: LocalDate, timeZone: String, built: Bool)? {
        try await database.withConnection(.system("cover")) { c in
            try c.query("SELECT as_of::text, time_zone, built_at IS NOT NULL AS built FROM cover_snapshot_next").rows.first.map {
                (LocalDate(try $0.decode("as_of", as: String.self))!, try $0.decode("time_zone"), try $0.decode("built"))
            }
        }
    }

    /// One round of upkeep at `now` (the keeper's clock; a test moves it): switch to tomorrow's set
    /// once its day has come (or rebuild today's when none is ready), refresh what changed, and in
    /// the evening build tomorrow's set ahead and keep it refreshed.
    @discardableResult
    public func keepSnapshot(now: Date = Date(), aheadFromHour: Int = PostgresCover.aheadFromHour) async throws -> CoverUpkeep {
        let zone = timeZone.identifier
        let today = LocalDate(now, in: timeZone)
        let live = try await snapshot()
        let next = try await nextSnapshot()
        if live?.asOf != today || live?.timeZone != zone {
            if let next, next.asOf == today, next.timeZone == zone, next.built, try await switchToNextDay(asOf: today) {
                return .switched
            }
            try await rebuildSnapshot(asOf: today)
            if let stale = next, stale.asOf <= today || stale.timeZone != zone { try await dropNextDay() }
            return .rebuilt
        }
        try await refreshSnapshot()
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        guard calendar.component(.hour, from: now) >= aheadFromHour else { return .refreshed }
        let tomorrow = today.adding(days: 1)
        if next == nil || next?.asOf != tomorrow || next?.timeZone != zone || next?.built == false {
            try await buildNextDay(asOf: tomorrow)
            return .builtNext
        }
        try await database.transaction(.system("cover")) { c in _ = try Self.refresh(.next, on: c) }
        return .refreshed
    }

    /// Builds the snapshot of `asOf` (tomorrow) into the second set. First, in a transaction of its
    /// own, it says so: from then on the live refresh hands every mark it takes on to the second set,
    /// so nothing committed after the build read the ledger is missed.
    @discardableResult
    public func buildNextDay(asOf: LocalDate) async throws -> Int {
        let zone = timeZone.identifier
        try await database.transaction(.system("cover")) { c in
            try c.query("""
                INSERT INTO cover_snapshot_next (id, as_of, time_zone, built_at, positions) VALUES (1, $1::date, $2, NULL, 0)
                ON CONFLICT (id) DO UPDATE SET as_of = EXCLUDED.as_of, time_zone = EXCLUDED.time_zone, built_at = NULL, positions = 0
                """, [asOf.description, zone])
        }
        return try await build(.next, asOf: asOf)
    }

    /// Tomorrow's set given up (its date went by without it, or the zone changed): emptied, and
    /// no longer handed marks.
    func dropNextDay() async throws {
        try await database.transaction(.system("cover")) { c in
            try c.query("SELECT pg_advisory_xact_lock($1)", [SnapshotTables.next.lockKey])
            try c.execute("DELETE FROM cover_snapshot_next")
            try c.execute("TRUNCATE cover_positions_next, cover_facility_sums_next, cover_region_item_sums_next, cover_dirty_next")
        }
    }

    /// Midnight: tomorrow's set, refreshed with its last marks, becomes the live one by renaming
    /// the tables, in one transaction of milliseconds (the national feed is sent the new day's sums).
    /// Renames need the tables' owner. Returns false when the switch could not be made now (a long
    /// reader held a table past the lock timeout, or the set is not for `asOf`); the caller computes.
    public func switchToNextDay(asOf: LocalDate) async throws -> Bool {
        let zone = timeZone.identifier
        let switched = try await database.asOwner { owner -> Bool in
            do {
                return try owner.transaction { c in
                    // A reader holding a table for long must not make every new request queue behind the rename.
                    try c.execute("SET LOCAL lock_timeout = '3s'")
                    try c.query("SELECT set_config('stockpile.scope', 'all', true)")
                    try c.query("SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)", [SnapshotTables.live.lockKey, SnapshotTables.next.lockKey])
                    if try c.query("SELECT 1 FROM cover_snapshot WHERE as_of = $1::date AND time_zone = $2", [asOf.description, zone]).rows.first != nil {
                        return true   // another request or the keeper switched first
                    }
                    guard try c.query("SELECT 1 FROM cover_snapshot_next WHERE as_of = $1::date AND time_zone = $2 AND built_at IS NOT NULL",
                                      [asOf.description, zone]).rows.first != nil else { return false }
                    _ = try Self.refresh(.next, on: c)
                    try c.execute(SnapshotTables.swapNames)
                    try c.execute("""
                        INSERT INTO cover_snapshot (id, as_of, time_zone, built_at, positions)
                        SELECT 1, as_of, time_zone, built_at, positions FROM cover_snapshot_next
                        ON CONFLICT (id) DO UPDATE SET as_of = EXCLUDED.as_of, time_zone = EXCLUDED.time_zone,
                                                       built_at = EXCLUDED.built_at, positions = EXCLUDED.positions;
                        DELETE FROM cover_snapshot_next;
                        DELETE FROM cover_dirty_next;
                        """)
                    return true
                }
            } catch let error as PQError where error.sqlState == "55P03" {
                return false
            }
        }
        if switched {
            // Not on the request's time: the national feed's reload (0.9 s at 10,000 facilities) and
            // emptying yesterday's tables, now the second set.
            let cover = self
            Task.detached { try? await cover.afterSwitch() }
        }
        return switched
    }

    /// After a switch: the national feed is sent the new day's sums whole, under the live set's
    /// lock (so no refresh's trigger writes the feed meanwhile); yesterday's tables are emptied.
    public func afterSwitch() async throws {
        try await database.transaction(.system("cover")) { c in
            try c.query("SELECT pg_advisory_xact_lock($1)", [SnapshotTables.live.lockKey])
            try c.execute("SELECT national_cover_reload()")
        }
        try await database.asOwner { owner in
            try owner.transaction { c in
                try c.execute("SET LOCAL lock_timeout = '3s'")
                try c.query("SELECT set_config('stockpile.scope', 'all', true), pg_advisory_xact_lock($1)", [SnapshotTables.next.lockKey])
                // Unless a build of the next day has begun since (it empties them itself).
                guard try c.query("SELECT 1 FROM cover_snapshot_next").rows.isEmpty else { return }
                try c.execute("TRUNCATE cover_positions_next, cover_facility_sums_next, cover_region_item_sums_next")
            }
        }
    }
}
