import Foundation
import PQ
import StockpileCore

/// Orders of the cover query. Unbounded days (no demand) sort as the best cover, last.
public enum CoverSort: String, CaseIterable, Sendable {
    case shortfall, physicalDays = "physical_days", totalDays = "total_days", facility, item

    /// The same order in SQL (codes compare bytewise, as Swift's String comparison does for them).
    var orderBy: String {
        switch self {
        case .shortfall: return "shortfall_qty DESC, facility_code, item_code"
        case .physicalDays: return "physical_days NULLS LAST, facility_code, item_code"
        case .totalDays: return "total_days NULLS LAST, facility_code, item_code"
        case .facility: return "facility_code, item_code"
        case .item: return "item_code, facility_code"
        }
    }

    public func sorted(_ rows: [CoverRow]) -> [CoverRow] {
        let days = { (d: Double?) in d ?? .infinity }
        switch self {
        case .shortfall: return rows.sorted { ($0.shortfallQty, $1.facility, $1.item) > ($1.shortfallQty, $0.facility, $0.item) }
        case .physicalDays: return rows.sorted { (days($0.physicalDays), $0.facility, $0.item) < (days($1.physicalDays), $1.facility, $1.item) }
        case .totalDays: return rows.sorted { (days($0.totalDays), $0.facility, $0.item) < (days($1.totalDays), $1.facility, $1.item) }
        case .facility: return rows.sorted { ($0.facility, $0.item) < ($1.facility, $1.item) }
        case .item: return rows.sorted { ($0.item, $0.facility) < ($1.item, $1.facility) }
        }
    }
}

/// One page of the cover query.
public struct CoverQuery: Sendable {
    public var filter: CoverFilter
    public var band: CoverBand?
    public var sort: CoverSort
    public var limit: Int
    public var offset: Int
    public var asOf: LocalDate
    public var surge: Double
    /// Cover as it stood at the end of `asOf` (a past date), from the ledgers up to then; else today's balances (SPEC).
    public var asStood: Bool
    public init(filter: CoverFilter = CoverFilter(), band: CoverBand? = nil, sort: CoverSort = .shortfall, limit: Int = 100,
                offset: Int = 0, asOf: LocalDate, surge: Double = 1, asStood: Bool = false) {
        self.filter = filter; self.band = band; self.sort = sort; self.limit = limit; self.offset = offset
        self.asOf = asOf; self.surge = surge; self.asStood = asStood
    }
}

public struct CoverPage: Sendable {
    /// Rows matching the filters, before paging.
    public var total: Int
    public var rows: [CoverRow]
    /// Where the numbers came from: "snapshot", "database" (computed in PostgreSQL for this
    /// request) or "service" (gathered per position and computed by StockpileCore).
    public var source: String
    /// Which server answered, and how far behind the primary it may be (the read replica, issue 15).
    public var origin: ReadOrigin = .primary
}

/// The set-based path: the formulas of sql/0005_cover.sql run over many positions in one statement.
enum CoverSQL {
    /// Whether lot `l` is held at balance `b`'s facility: the flag first, so only lots with an
    /// active hold pay for looking its scope up (sql/0015).
    static let held = "(l.quarantined AND stockpile_lot_held(l.id, b.facility_id))"
    /// The end of day $1 in zone $2: what cover "as it stood" reads the ledgers up to.
    static let endOfDay = "(($1::date + 1)::timestamp AT TIME ZONE $2)"
    /// A lot usable as it stood (`x`: its quantity and hold then, `l`: the lot).
    static let stoodUsable = "(NOT x.held AND (l.expiry IS NULL OR l.expiry > $1::date))"
    /// SPEC.md's demand window, T−28 … T−1 (stockpile_observed_demand walks the same 28 days).
    static let windowDays = 28
    static let lockKey = 7_262_001

    /// The filters over facilities `f` and items `i`, with parameters $4 region, $5 facility,
    /// $6 item, $7 category, $8 designated (and the `subtree` CTE below).
    static let filterClause = """
        stockpile_in_scope(f.id)
        AND ($4::text IS NULL OR f.region_id IN (SELECT id FROM subtree))
        AND ($5::text IS NULL OR f.code = $5) AND ($6::text IS NULL OR i.code = $6)
        AND ($7::text IS NULL OR i.category = $7) AND ($8::boolean IS NULL OR f.designated = $8)
        """
    static let subtree = """
        subtree AS (
            SELECT id FROM regions WHERE code = $4
            UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
        )
        """

    /// CTEs computing the cover of the positions in a CTE named `positions` (facility_id, item_id),
    /// ending in `computed`, with the columns of cover_positions. $1 as_of, $2 time zone, $3 surge.
    /// `restricted`: only the listed positions' stock and history are read (else all of it, for a
    /// full rebuild, where scanning everything once beats millions of lookups).
    ///
    /// `asStood` (issue 17, part 5): cover as it stood at the end of day $1, read from the ledgers up
    /// to then instead of today's balances. Each lot's quantity is the sum of its movements before
    /// the end of that day, and a lot is held if a hold was in force then. The demand window stops
    /// there too. A contract's remaining quantity adds back the call-offs recorded since. Plans,
    /// targets and pledges are read as they stand now; they keep no history. Without it, the text
    /// is what it always was.
    static func compute(restricted: Bool, asStood: Bool = false) -> String {
        func only(_ alias: String) -> String {
            restricted ? "AND (\(alias).facility_id, \(alias).item_id) IN (SELECT facility_id, item_id FROM positions)" : ""
        }
        let usable = "(NOT \(held) AND (l.expiry IS NULL OR l.expiry > $1::date))"
        let stock = asStood ? """
            stock AS (
                SELECT x.facility_id, x.item_id, stockpile_clamp(sum(x.quantity)) AS on_hand,
                       array_agg(x.quantity ORDER BY l.expiry NULLS LAST, l.id) FILTER (WHERE \(stoodUsable)) AS lot_q,
                       array_agg(l.expiry - $1::date ORDER BY l.expiry NULLS LAST, l.id) FILTER (WHERE \(stoodUsable)) AS lot_e
                FROM (
                    SELECT m.facility_id, m.item_id, m.lot_id, stockpile_clamp(sum(m.quantity)) AS quantity,
                           stockpile_lot_held_at(m.lot_id, m.facility_id, \(endOfDay)) AS held
                    FROM movements m WHERE m.occurred_at < \(endOfDay) \(only("m"))
                    GROUP BY 1, 2, 3 HAVING sum(m.quantity) > 0
                ) x JOIN lots l ON l.id = x.lot_id
                GROUP BY x.facility_id, x.item_id
            ),
            """ : """
            stock AS (
                SELECT b.facility_id, b.item_id, stockpile_clamp(sum(b.quantity)) AS on_hand,
                       array_agg(b.quantity ORDER BY l.expiry NULLS LAST, l.id) FILTER (WHERE \(usable)) AS lot_q,
                       array_agg(l.expiry - $1::date ORDER BY l.expiry NULLS LAST, l.id) FILTER (WHERE \(usable)) AS lot_e
                FROM balances b JOIN lots l ON l.id = b.lot_id
                WHERE b.quantity > 0 \(only("b"))
                GROUP BY b.facility_id, b.item_id
            ),
            """
        let remaining = asStood
            ? "k.committed - k.called_off + coalesce((SELECT sum(co.quantity) FROM contract_calloffs co WHERE co.contract_id = k.id AND co.recorded_at >= \(endOfDay)), 0)"
            : "k.committed - k.called_off"
        return """
            pos AS (
                SELECT p.facility_id, p.item_id, f.code AS facility_code, i.code AS item_code,
                       coalesce(i.target_days, ct.target_days, 30) AS target_days
                FROM positions p JOIN facilities f ON f.id = p.facility_id JOIN items i ON i.id = p.item_id
                LEFT JOIN category_targets ct ON ct.category = i.category
            ),
            \(stock)buckets AS (
                -- Day 0..27 of the window; 28 gathers everything from as_of on.
                SELECT m.facility_id, m.item_id,
                       least((m.occurred_at AT TIME ZONE $2)::date - ($1::date - \(windowDays)), \(windowDays)) AS day,
                       stockpile_clamp(sum(m.quantity)) AS net,
                       stockpile_clamp(coalesce(sum(m.quantity) FILTER (WHERE m.kind IN ('receipt', 'transfer_in')), 0)) AS received,
                       stockpile_clamp(coalesce(-sum(m.quantity) FILTER (WHERE m.kind = 'issue'), 0)) AS issued
                FROM movements m
                WHERE m.occurred_at >= ($1::date - \(windowDays))::timestamp AT TIME ZONE $2 \(only("m"))
                      \(asStood ? "AND m.occurred_at < \(endOfDay)" : "")
                GROUP BY 1, 2, 3
            ),
            history AS (
                SELECT facility_id, item_id, array_agg(day ORDER BY day) AS days, array_agg(net ORDER BY day) AS nets,
                       array_agg(received ORDER BY day) AS received, array_agg(issued ORDER BY day) AS issued
                FROM buckets GROUP BY 1, 2
            ),
            contract_totals AS (
                SELECT k.facility_id, k.item_id, stockpile_clamp(sum(greatest(0, \(remaining)))) AS qty
                FROM contracts k JOIN pos ON pos.facility_id = k.facility_id AND pos.item_id = k.item_id
                WHERE k.valid_from <= $1::date AND $1::date <= k.valid_to AND k.lead_time_days <= pos.target_days
                GROUP BY 1, 2
            ),
            capacity_totals AS (
                SELECT c.facility_id, c.item_id, stockpile_clamp(sum(c.daily_capacity::numeric * greatest(0, pos.target_days - c.ramp_up_days))) AS qty
                FROM capacity_pledges c JOIN pos ON pos.facility_id = c.facility_id AND pos.item_id = c.item_id
                WHERE c.certified AND c.valid_from <= $1::date AND $1::date <= c.valid_to
                GROUP BY 1, 2
            ),
            computed AS (
                SELECT pos.facility_id, pos.item_id, pos.facility_code, pos.item_code, c.daily_demand,
                       obs.observed AS observed_demand, dp.full_load_daily::float8 AS full_load_demand, pos.target_days,
                       c.physical_qty, c.physical_days, c.expiring_qty, coalesce(kt.qty, 0) AS contract_qty, c.contract_days,
                       coalesce(pt.qty, 0) AS capacity_qty, c.capacity_days, c.total_days, c.shortfall_qty,
                       c.contract_shortfall_qty, c.band
                FROM pos
                LEFT JOIN stock s ON s.facility_id = pos.facility_id AND s.item_id = pos.item_id
                LEFT JOIN history h ON h.facility_id = pos.facility_id AND h.item_id = pos.item_id
                LEFT JOIN demand_plans dp ON dp.facility_id = pos.facility_id AND dp.item_id = pos.item_id
                LEFT JOIN contract_totals kt ON kt.facility_id = pos.facility_id AND kt.item_id = pos.item_id
                LEFT JOIN capacity_totals pt ON pt.facility_id = pos.facility_id AND pt.item_id = pos.item_id
                CROSS JOIN LATERAL stockpile_observed_demand(coalesce(s.on_hand, 0), h.days, h.nets, h.received, h.issued) AS obs(observed)
                CROSS JOIN LATERAL stockpile_position_cover(s.lot_q, s.lot_e, obs.observed, dp.full_load_daily::float8, $3::float8,
                                                            pos.target_days, coalesce(kt.qty, 0), coalesce(pt.qty, 0)) AS c
            )
            """
    }

    static let columns = """
        facility_id, item_id, facility_code, item_code, daily_demand, observed_demand, full_load_demand, target_days,
        physical_qty, physical_days, expiring_qty, contract_qty, contract_days, capacity_qty, capacity_days, total_days,
        shortfall_qty, contract_shortfall_qty, band
        """

    /// What a row needs besides the numbers, joined from master data (`cp`: the numbers).
    /// What is in transit to a position (`alias` has facility_id and item_id).
    static func inbound(_ alias: String) -> String {
        """
        (SELECT stockpile_clamp(coalesce(sum(t.quantity), 0)) FROM in_transit t
         WHERE t.to_facility_id = \(alias).facility_id AND t.item_id = \(alias).item_id AND t.quantity > 0) AS inbound_qty
        """
    }

    /// What was in transit to a position at the end of day $1: the transit ledger's movements up to then.
    static func inboundAsStood(_ alias: String) -> String {
        """
        (SELECT stockpile_clamp(coalesce(sum(tm.quantity), 0)) FROM transit_movements tm JOIN reallocation_orders o ON o.id = tm.order_id
         WHERE o.to_facility_id = \(alias).facility_id AND o.item_id = \(alias).item_id AND tm.recorded_at < \(endOfDay)) AS inbound_qty
        """
    }

    static func described(_ table: String, extra: String = "", asStood: Bool = false) -> String {
        """
        SELECT cp.*\(extra), \(asStood ? inboundAsStood("cp") : inbound("cp")), f.name AS facility_name, rg.code AS region, f.designated, i.name AS item_name, i.category
        FROM \(table) cp JOIN facilities f ON f.id = cp.facility_id JOIN regions rg ON rg.id = f.region_id JOIN items i ON i.id = cp.item_id
        """
    }

    /// The marks the live set takes, handed on to tomorrow's set while one is being built or kept
    /// (sql/0034), so it hears of every change after its build read the ledger.
    static func handedOn(_ t: SnapshotTables, _ taken: String) -> String {
        t.isLive ? """
            handed AS (INSERT INTO cover_dirty_next (facility_id, item_id)
                       SELECT facility_id, item_id FROM \(taken) WHERE EXISTS (SELECT 1 FROM cover_snapshot_next)),
            """ : ""
    }

    /// The whole city into set `t`. The dirty marks this statement can see go with it: its
    /// computation sees the same changes; later ones keep their marks.
    static func rebuild(_ t: SnapshotTables) -> String {
        """
        WITH gone AS (DELETE FROM \(t.dirty) RETURNING facility_id, item_id),
        \(handedOn(t, "gone"))
        positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i),
        \(compute(restricted: false))
        INSERT INTO \(t.positions) (\(columns)) SELECT \(columns) FROM computed
        """
    }

    /// The dirty positions, recomputed for the snapshot's date, in one statement: the marks it takes
    /// and the ledger it reads are the same moment's, so a change committed meanwhile keeps its mark.
    static func refresh(_ t: SnapshotTables) -> String {
        """
        WITH seen AS (DELETE FROM \(t.dirty) RETURNING facility_id, item_id),
        \(handedOn(t, "seen"))
        positions AS (SELECT DISTINCT s.facility_id, s.item_id FROM seen s
                      WHERE EXISTS (SELECT 1 FROM facilities f WHERE f.id = s.facility_id)
                        AND EXISTS (SELECT 1 FROM items i WHERE i.id = s.item_id)),
        \(compute(restricted: true)),
        written AS (
            INSERT INTO \(t.positions) (\(columns)) SELECT \(columns) FROM computed
            ON CONFLICT (facility_id, item_id) DO UPDATE SET
                daily_demand = EXCLUDED.daily_demand, observed_demand = EXCLUDED.observed_demand,
                full_load_demand = EXCLUDED.full_load_demand, target_days = EXCLUDED.target_days,
                physical_qty = EXCLUDED.physical_qty, physical_days = EXCLUDED.physical_days, expiring_qty = EXCLUDED.expiring_qty,
                contract_qty = EXCLUDED.contract_qty, contract_days = EXCLUDED.contract_days, capacity_qty = EXCLUDED.capacity_qty,
                capacity_days = EXCLUDED.capacity_days, total_days = EXCLUDED.total_days, shortfall_qty = EXCLUDED.shortfall_qty,
                contract_shortfall_qty = EXCLUDED.contract_shortfall_qty, band = EXCLUDED.band
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM written) AS written,
               (SELECT '{' || string_agg(DISTINCT facility_id::text, ',') || '}' FROM seen) AS facilities,
               g.regions, g.designated, g.items
        FROM (SELECT array_agg(region_id)::text AS regions, array_agg(designated)::text AS designated, array_agg(item_id)::text AS items
              FROM (SELECT DISTINCT f.region_id, f.designated, s.item_id FROM seen s JOIN facilities f ON f.id = s.facility_id) groups) g
        """
    }

    static func where_(band: Bool) -> String {
        "WHERE \(filterClause)" + (band ? " AND ($9::text IS NULL OR cp.band = $9)" : "")
    }

    /// A page from the snapshot ($1, $2: the date and zone it must have been built for).
    static func snapshotPage(_ sort: CoverSort) -> String {
        """
        WITH RECURSIVE \(subtree)
        \(described("cover_positions"))
        \(where_(band: true)) \(snapshotCheck)
        ORDER BY \(sort.orderBy.split(separator: ",").map { "cp." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
        LIMIT $10 OFFSET $11
        """
    }

    static let snapshotCurrent = "EXISTS (SELECT 1 FROM cover_snapshot s WHERE s.as_of = $1::date AND s.time_zone = $2 AND $3::float8 = 1)"
    static let snapshotCheck = "AND \(snapshotCurrent)"

    static let snapshotCount = """
        WITH RECURSIVE \(subtree)
        SELECT count(*) AS total, \(snapshotCurrent) AS current
        FROM cover_positions cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
        \(where_(band: true)) \(snapshotCheck)
        """

    /// The same count from the per-facility sums (tens of thousands of rows, not millions), when
    /// no facility or item is asked for: the band's own column, or all positions. Row-level
    /// security keeps the scope's own; facilities are joined only to filter by region or
    /// designation (at 10,000 × 300 the join was half of the count's 46 ms, on every whole-city page).
    static func snapshotCountFromSums(band: CoverBand?, byFacility: Bool) -> String {
        let column = band.map { CoverRollupSQL.bandColumns[CoverBand.allCases.firstIndex(of: $0)!] } ?? "positions"
        let facilities = byFacility ? """
              AND s.facility_id IN (SELECT f.id FROM facilities f WHERE ($4::text IS NULL OR f.region_id IN (SELECT id FROM subtree))
                                                                    AND ($8::boolean IS NULL OR f.designated = $8))
            """ : "AND $4::text IS NULL AND $8::boolean IS NULL"
        return """
            WITH RECURSIVE \(subtree)
            SELECT stockpile_clamp(coalesce(sum(s.\(column)), 0)) AS total, \(snapshotCurrent) AS current
            FROM cover_facility_sums s
            WHERE $5::text IS NULL AND $6::text IS NULL AND ($7::text IS NULL OR s.category = $7)
              AND ($9::text IS NULL OR $9::text IS NOT NULL) \(facilities) \(snapshotCheck)
            """
    }

    /// A page computed for this request: the filtered positions through the set-based formulas.
    static func computedPage(_ sort: CoverSort, asStood: Bool = false) -> String {
        """
        WITH RECURSIVE \(subtree),
        positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i \(where_(band: false))),
        \(compute(restricted: true, asStood: asStood)),
        matching AS (SELECT * FROM computed WHERE $9::text IS NULL OR band = $9)
        \(described("matching", extra: ", (SELECT count(*) FROM matching) AS total", asStood: asStood))
        ORDER BY \(sort.orderBy.split(separator: ",").map { "cp." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
        LIMIT $10 OFFSET $11
        """
    }
}

extension PostgresCover {
    /// What the snapshot is, if there is one.
    public struct Snapshot: Sendable, Equatable {
        public var asOf: LocalDate
        public var timeZone: String
        public var positions: Int
        public var builtAt: Date
    }

    public func snapshot() async throws -> Snapshot? {
        try await database.withConnection(.system("cover")) { c in
            try c.query("SELECT as_of::text, time_zone, positions, built_at FROM cover_snapshot").rows.first.map {
                Snapshot(asOf: LocalDate(try $0.decode("as_of", as: String.self))!, timeZone: try $0.decode("time_zone"),
                         positions: try $0.decode("positions"), builtAt: try $0.decode("built_at"))
            }
        }
    }

    /// Whether the snapshot is for `asOf` in this zone; if so, its dirty positions are refreshed first.
    /// One statement answers both questions, so a quiet snapshot costs one round trip.
    func snapshotIsCurrent(asOf: LocalDate) async throws -> Bool {
        try await snapshotState(asOf: asOf).current
    }

    /// The same, and, when a refresh wrote something, the primary's WAL position after it: a read
    /// from the replica must include it (`StockpileDatabase.read(replayed:)`). The first request of a
    /// new day finds the live snapshot a day old and tomorrow's ready: it switches them (a moment),
    /// rather than computing a city's cover for itself (minutes).
    func snapshotState(asOf: LocalDate) async throws -> (current: Bool, refreshed: WALPosition?) {
        let zone = timeZone.identifier
        let (current, dirty, ready): (Bool, Bool, Bool) = try await database.withConnection(.system("cover")) { c in
            let row = try c.query("""
                SELECT EXISTS (SELECT 1 FROM cover_snapshot WHERE as_of = $1::date AND time_zone = $2) AS current,
                       EXISTS (SELECT 1 FROM cover_dirty) AS dirty,
                       EXISTS (SELECT 1 FROM cover_snapshot_next WHERE as_of = $1::date AND time_zone = $2 AND built_at IS NOT NULL) AS ready
                """, [asOf.description, zone]).rows[0]
            return (try row.decode("current"), try row.decode("dirty"), try row.decode("ready"))
        }
        if !current {
            // A switch that fails (a lost connection, a rename refused) leaves this request to compute, as before.
            guard ready, (try? await switchToNextDay(asOf: asOf)) == true else { return (false, nil) }
            return (true, database.replica != nil ? try await database.walPosition() : nil)
        }
        guard dirty else { return (true, nil) }
        let written = try await refreshSnapshot()
        return (true, written > 0 && database.replica != nil ? try await database.walPosition() : nil)
    }

    /// Builds the snapshot for `asOf` from scratch (every facility × item). Returns the positions.
    @discardableResult
    public func rebuildSnapshot(asOf: LocalDate) async throws -> Int {
        try await build(.live, asOf: asOf)
    }

    /// Every facility × item for `asOf` into set `t`, with its sums, in one transaction.
    func build(_ t: SnapshotTables, asOf: LocalDate) async throws -> Int {
        let zone = timeZone.identifier
        let written = try await database.transaction(.system("cover")) { c in
            try c.query("SELECT pg_advisory_xact_lock($1)", [t.lockKey])
            // Millions of positions group and sort in memory rather than in temporary files.
            try c.execute("SET LOCAL work_mem = '256MB'")
            try c.execute("TRUNCATE \(t.positions), \(t.facilitySums), \(t.itemSums)")
            let written = try c.query(CoverSQL.rebuild(t), [asOf.description, zone, 1.0]).affectedRows
            try c.execute(CoverRollupSQL.sums(only: false, t))
            try c.execute(CoverRollupSQL.itemSums(only: false, t))
            try c.query("""
                INSERT INTO \(t.snapshot) (id, as_of, time_zone, built_at, positions) VALUES (1, $1::date, $2, now(), $3)
                ON CONFLICT (id) DO UPDATE SET as_of = EXCLUDED.as_of, time_zone = EXCLUDED.time_zone,
                                               built_at = EXCLUDED.built_at, positions = EXCLUDED.positions
                """, [asOf.description, zone, written])
            return written
        }
        // Every request checks cover_dirty for work; after a rebuild it is all dead rows, which a
        // check would wade through until autovacuum came by.
        try await database.asOwner { owner in
            try owner.execute("VACUUM \(t.dirty)")
            try owner.execute("ANALYZE \(t.positions), \(t.facilitySums), \(t.itemSums)")
        }
        return written
    }

    /// Recomputes the positions marked dirty since the snapshot computed them. Returns how many.
    @discardableResult
    public func refreshSnapshot() async throws -> Int {
        try await database.transaction(.system("cover")) { c in try Self.refresh(.live, on: c) }
    }

    /// The refresh of set `t` in the caller's transaction: its marks, its date.
    static func refresh(_ t: SnapshotTables, on c: PQConnection) throws -> Int {
        guard try c.query("SELECT EXISTS (SELECT 1 FROM \(t.dirty)) AS dirty").rows[0].decode("dirty", as: Bool.self) else { return 0 }
        try c.query("SELECT pg_advisory_xact_lock($1)", [t.lockKey])
        guard let row = try c.query("SELECT as_of::text, time_zone FROM \(t.snapshot) WHERE built_at IS NOT NULL").rows.first else { return 0 }
        let asOf: String = try row.decode("as_of"), zone: String = try row.decode("time_zone")
        let result = try c.query(CoverSQL.refresh(t), [asOf, zone, 1.0]).rows[0]
        let written: Int = try result.decode("written")
        // The roll-up's per-facility sums of the facilities touched.
        let facilities: String = try result.decode("facilities", as: String?.self) ?? "{}"
        try c.query("DELETE FROM \(t.facilitySums) WHERE facility_id = ANY ($1::int[])", [facilities])
        try c.query(CoverRollupSQL.sums(only: true, t), [facilities])
        // And the per-item sums of the (region, designated, item) groups it rewrote.
        let groups: [any PQEncodable] = [try result.decode("regions", as: String?.self) ?? "{}",
                                         try result.decode("designated", as: String?.self) ?? "{}",
                                         try result.decode("items", as: String?.self) ?? "{}"]
        try c.query(CoverRollupSQL.dropItemSums(t), groups)
        try c.query(CoverRollupSQL.itemSums(only: true, t), groups)
        return written
    }

    /// One page of cover: from the snapshot when it is for this date (and no surge), refreshed
    /// first; else computed for this request, per position in Swift for one facility, set-based in
    /// PostgreSQL for more.
    public func page(_ query: CoverQuery) async throws -> CoverPage {
        let zone = timeZone.identifier
        let f = query.filter
        let parameters: [any PQEncodable] = [query.asOf.description, zone, query.surge, f.region, f.facility, f.item,
                                             f.category?.rawValue, f.designated, query.band?.rawValue, query.limit, query.offset]
        if !query.asStood, query.surge == 1, case let state = try await snapshotState(asOf: query.asOf), state.current {
            let sort = query.sort
            let countSQL = f.facility == nil && f.item == nil
                ? CoverSQL.snapshotCountFromSums(band: query.band, byFacility: f.region != nil || f.designated != nil) : CoverSQL.snapshotCount
            // One repeatable-read view for the page and its count; the count also says whether the
            // snapshot is still this date's (a rebuild for another date may have committed meanwhile).
            // On a replica the snapshot is the one it has replayed: a replica behind a rebuild for
            // another date says "not current" here and the page is computed from its data instead.
            let (found, origin): (CoverPage?, ReadOrigin) = try await database.read(scope, isolation: .repeatableRead, replayed: state.refreshed) { c in
                let rows = try c.query(CoverSQL.snapshotPage(sort), parameters).rows.map(Self.describedRow)
                let counted = try c.query(countSQL, Array(parameters.prefix(9))).rows[0]
                guard try counted.decode("current", as: Bool.self) else { return nil }
                return CoverPage(total: try counted.decode("total"), rows: rows, source: "snapshot")
            }
            if var found { found.origin = origin; return found }
        }
        if f.facility != nil && !query.asStood {
            var (rows, origin) = try await positionsRead(f, asOf: query.asOf, surge: query.surge)
            if let band = query.band { rows = rows.filter { $0.band == band } }
            rows = query.sort.sorted(rows)
            return CoverPage(total: rows.count, rows: Array(rows.dropFirst(query.offset).prefix(query.limit)), source: "service", origin: origin)
        }
        let sql = CoverSQL.computedPage(query.sort, asStood: query.asStood)
        var (page, origin) = try await database.read(scope) { c in
            let result = try c.query(sql, parameters)
            var total = 0
            if let first = result.rows.first { total = try first.decode("total") }
            return CoverPage(total: total, rows: try result.rows.map(Self.describedRow), source: "database")
        }
        page.origin = origin
        return page
    }

    /// Every position the filter selects, computed set-based in PostgreSQL (the path many positions take).
    public func positionsInDatabase(_ filter: CoverFilter, asOf: LocalDate, surge: Double = 1) async throws -> [CoverRow] {
        let parameters: [any PQEncodable] = [asOf.description, timeZone.identifier, surge, filter.region, filter.facility,
                                             filter.item, filter.category?.rawValue, filter.designated, nil as String?, 100_000_000, 0]
        return try await database.withConnection(scope) { c in
            try c.query(CoverSQL.computedPage(.facility), parameters).rows.map(Self.describedRow)
        }
    }

    static func describedRow(_ row: PQRow) throws -> CoverRow {
        CoverRow(facility: try row.decode("facility_code"), facilityName: try row.decode("facility_name"), region: try row.decode("region"),
                 designated: try row.decode("designated"), item: try row.decode("item_code"), itemName: try row.decode("item_name"),
                 category: ItemCategory(rawValue: try row.decode("category"))!, dailyDemand: try row.decode("daily_demand"),
                 observedDemand: try row.decode("observed_demand"), fullLoadDemand: try row.decode("full_load_demand"),
                 targetDays: try row.decode("target_days"), physicalQty: try row.decode("physical_qty"),
                 physicalDays: try row.decode("physical_days"), expiringQty: try row.decode("expiring_qty"),
                 contractQty: try row.decode("contract_qty"), contractDays: try row.decode("contract_days"),
                 capacityQty: try row.decode("capacity_qty"), capacityDays: try row.decode("capacity_days"),
                 totalDays: try row.decode("total_days"), shortfallQty: try row.decode("shortfall_qty"),
                 contractShortfallQty: try row.decode("contract_shortfall_qty"), band: CoverBand(rawValue: try row.decode("band"))!,
                 inboundQty: try row.decode("inbound_qty"))
    }
}
