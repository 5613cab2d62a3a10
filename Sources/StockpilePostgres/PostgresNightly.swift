import Foundation
import PQ
import StockpileCore
import Synchronization

/// The steps of a nightly run, in order.
public enum NightlyPhase: String, Sendable, CaseIterable {
    case lock, orders, cover, reorder, expiry, stale, interception, store
}

/// Where a run is: the phase it has just started, the positions it has taken in, the time so far.
public struct NightlyProgress: Sendable {
    public var phase: NightlyPhase
    public var positions: Int
    public var elapsed: Duration
}

public struct NightlyRun: Sendable {
    public var report: NightlyReport
    /// True when the report had already been made for this date and scope (nothing was run).
    public var replay: Bool
    /// The report's generation: 1, then one more for each replace (`PostgresNightly.replace`).
    public var generation: Int = 1
    /// Set when this run superseded a stored report.
    public var replaced: NightlyReplacement?
}

/// What a replace did to the report it superseded and to that run's orders.
public struct NightlyReplacement: Sendable, Equatable {
    public var supersededGeneration: Int
    /// The request id the superseded run's orders were created under.
    public var supersededRequestID: String
    /// Its orders still proposed, now cancelled with `reason`.
    public var cancelledOrders: Int
    /// Its orders already past proposed (approved, dispatched, received), by status: kept as they are.
    public var keptOrders: [String: Int]
    public var reason: String
    public var keptTotal: Int { keptOrders.values.reduce(0, +) }
}

/// What serve's scheduler did about a date (`PostgresNightly.scheduled`).
public enum NightlyScheduledOutcome: Sendable {
    /// Nothing run: the database has nothing to report on (the reason says why).
    case skipped(reason: String)
    /// The catch-up found the report already stored.
    case alreadyStored
    case ran(NightlyRun)
}

/// The nightly reorder report over the database: exactly once per date and scope. The run holds a
/// transaction-scoped advisory lock on (date, scope) on a connection of its own from the first
/// step to the last, and stores the report in that transaction; tonight's reallocation orders are
/// created under a request id derived from (date, scope, generation) and a secret of the database
/// (sql/0013), so a run that died after creating them replays them on the next try instead of
/// planning a second set, and no client can create orders under that id first.
///
/// A replace supersedes the stored report under the same lock: the next generation is run, and in
/// the transaction that stores it the old report is marked superseded (it stays, readable by its
/// generation) and the old run's orders still proposed are cancelled.
public struct PostgresNightly: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    let timeZone: TimeZone
    /// When an order on the road is overdue, for the report's 截留 section.
    public var transit = TransitRule.standard

    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    /// The key a report is stored under: the region's code, or "*" for everything.
    static func scopeKey(_ region: String?) -> String { region ?? "*" }

    /// The run's name for a date and scope: its advisory lock, which every run and replace of that
    /// date and scope takes, and (with the generation) its orders' request id come from it.
    public static func runName(asOf: LocalDate, region: String?) -> String { "stockpile/nightly/\(asOf)/\(scopeKey(region))" }

    /// The request id of a generation's orders: the same on every try of that generation (a rerun
    /// finds the orders of a run that died), but keyed with the database's secret (sql/0013), so a
    /// client cannot compute it and POST /api/v1/reallocations under it first — which, with the old
    /// `md5(name)`, made the nightly run take that client's orders for its own.
    public static func requestID(_ c: PQConnection, asOf: LocalDate, region: String?, generation: Int) throws -> UUID {
        try c.query("SELECT nightly_request_id($1) AS id", ["\(runName(asOf: asOf, region: region))/\(generation)"]).rows[0].decode("id")
    }

    /// The field of the refusal a run gives when there is nothing to report on.
    public static let nothingToReportField = "positions"

    /// Why a run for `region` (nil: everything) would be a report of nothing, or nil when it would
    /// not: no stock ever recorded (a balance row is made by the first movement and stays) and no
    /// demand plan in the scope. Two index probes, however large the city.
    static func nothingToReport(_ c: PQConnection, asOf: LocalDate, region: String?) throws -> String? {
        let any: Bool = try c.query("""
            WITH RECURSIVE subtree AS (
                SELECT id FROM regions WHERE $1::text IS NULL OR code = $1::text
                UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
            )
            SELECT EXISTS (SELECT 1 FROM balances b JOIN facilities f ON f.id = b.facility_id WHERE f.region_id IN (SELECT id FROM subtree))
                OR EXISTS (SELECT 1 FROM demand_plans d JOIN facilities f ON f.id = d.facility_id WHERE f.region_id IN (SELECT id FROM subtree))
                AS any
            """, [region]).rows[0].decode("any")
        guard !any else { return nil }
        return "nothing to report for \(asOf)\(region.map { " in region \($0)" } ?? ""): no stock has been recorded and there are no "
            + "demand plans\(region == nil ? "" : " there"); import data first (stockpile import DIR), then run it"
    }

    /// The stored report of a date and scope, if the run has completed. A command token may read
    /// only reports of its own subtree (403 above it; row-level security says the same again).
    /// `lines`: only these sections' lines ("reorders", "contract_gaps", "expiring_lots", "stale";
    /// nil: all), for a reader that wants one section of a city's report, not millions of other lines.
    /// `generation`: a superseded report, by its generation (nil: the current one).
    public func stored(asOf: LocalDate, region: String?, generation: Int? = nil, lines: Set<String>? = nil) async throws -> NightlyReport? {
        let scope = self.scope
        return try await database.withConnection(scope) { c in
            try Self.requireRegion(c, region, scope: scope)
            return try Self.load(c, date: asOf.description, key: Self.scopeKey(region), generation: generation, lines: lines)?.report
        }
    }

    /// Whether a current report is stored for the date and scope (its header only: a city's lines
    /// take over a minute and gigabytes to read).
    public func isStored(asOf: LocalDate, region: String?) async throws -> Bool {
        let scope = self.scope
        return try await database.withConnection(scope) { c in
            try Self.requireRegion(c, region, scope: scope)
            return try Self.current(c, date: asOf.description, key: Self.scopeKey(region)) != nil
        }
    }

    /// The generation and request id of the current (not superseded) report of a date and scope.
    static func current(_ c: PQConnection, date: String, key: String) throws -> (generation: Int, requestID: UUID)? {
        try c.query("""
            SELECT generation, request_id FROM nightly_reports WHERE as_of = $1::date AND scope = $2::text AND superseded_at IS NULL
            """, [date, key]).rows.first.map { (try $0.decode("generation"), try $0.decode("request_id")) }
    }

    /// The report stored under (date, scope) — the current one, or `generation` — with its
    /// generation and request id: its header with every section's lines put back in order.
    /// Tonight's orders are read whatever `lines` asks for: they were part of the header until 0010.
    static func load(_ c: PQConnection, date: String, key: String, generation wanted: Int? = nil,
                     lines: Set<String>? = nil) throws -> (report: NightlyReport, generation: Int, requestID: UUID)? {
        guard let header = try c.query("""
            SELECT report::text AS report, generation, request_id FROM nightly_reports
            WHERE as_of = $1::date AND scope = $2::text AND (CASE WHEN $3::int IS NULL THEN superseded_at IS NULL ELSE generation = $3::int END)
            """, [date, key, wanted]).rows.first else { return nil }
        var report = try JSONDecoder().decode(NightlyReport.self, from: Data(try header.decode("report", as: String.self).utf8))
        let generation: Int = try header.decode("generation"), requestID: UUID = try header.decode("request_id")
        let sections = lines.map { "{" + $0.sorted().joined(separator: ",") + "}" }
        for row in try c.query("""
            SELECT section, lines FROM nightly_lines
            WHERE as_of = $1::date AND scope = $2 AND generation = $4
              AND ($3::text[] IS NULL OR section = ANY ($3::text[]) OR section = 'orders')
            ORDER BY section, n
            """, [date, key, sections, generation]).rows {
            try append(Data(try row.decode("lines", as: String.self).utf8), section: try row.decode("section"), to: &report)
        }
        return (report, generation, requestID)
    }

    /// Lines a row of nightly_lines holds.
    static let linesPerRun = 1_000

    /// Stores the sections of a report that do not depend on its orders, in the caller's
    /// transaction, before its header row: the run does this while its orders are still being
    /// written on another connection. The lines' reference to the header is checked at commit
    /// (sql/0041), by when `store` has written it.
    static func storeEarlySections(_ c: PQConnection, reorders: [ReorderLine], contractGaps: [ContractGapLine],
                                   expiringLots: [ExpiringLotLine], stale: [StaleLine], overdue: [OverdueLine],
                                   hoarding: [HoardingLine], date: String, key: String, generation: Int) throws {
        try c.execute("SET CONSTRAINTS nightly_lines_as_of_scope_generation_fkey DEFERRED")
        try storeLines(c, "reorders", reorders, date: date, key: key, generation: generation)
        try storeLines(c, "contract_gaps", contractGaps, date: date, key: key, generation: generation)
        try storeLines(c, "expiring_lots", expiringLots, date: date, key: key, generation: generation)
        try storeLines(c, "stale", stale, date: date, key: key, generation: generation)
        try storeLines(c, "overdue", overdue, date: date, key: key, generation: generation)
        try storeLines(c, "hoarding", hoarding, date: date, key: key, generation: generation)
    }

    /// Stores a report in the caller's transaction after `storeEarlySections`: the header row, then
    /// the lines of its orders and rotation, a run of them a row.
    static func store(_ c: PQConnection, _ report: NightlyReport, date: String, key: String, generation: Int, requestID: UUID,
                      actor: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var header = report
        header.orders = []; header.reorders = []; header.contractGaps = []; header.expiringLots = []; header.stale = []
        header.overdue = []; header.hoarding = []; header.rotation = []
        try c.query("""
            WITH RECURSIVE subtree AS (
                SELECT id FROM regions WHERE $2::text = '*' OR code = $2::text
                UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
            )
            INSERT INTO nightly_reports (as_of, scope, generation, request_id, facility_ids, report, positions, orders, reorder_lines,
                                         procurement_qty, created_by)
            SELECT $1::date, $2, $10, $3, coalesce((SELECT array_agg(f.id ORDER BY f.id) FROM facilities f
                                                    WHERE f.region_id IN (SELECT id FROM subtree)), '{}'),
                   $4::jsonb, $5, $6, $7, $8, $9
            """, [date, key, requestID, String(decoding: try encoder.encode(header), as: UTF8.self), report.positions,
                  report.orders.count, report.reorders.filter { $0.need > 0 }.count, report.procurementTotal, actor, generation])
        try storeLines(c, "orders", report.orders, date: date, key: key, generation: generation)
        try storeLines(c, "rotation", report.rotation ?? [], date: date, key: key, generation: generation)
    }

    /// One section's lines, `linesPerRun` a row. A city's lines are gigabytes of JSON: they are
    /// encoded on every core, a batch of runs at a time (so they are never all in memory at once),
    /// the next batch while this one is inserted. Encoding and inserting in turn left a core idle
    /// for a quarter of the store at city scale: the connection's thread waits on PostgreSQL
    /// while it compresses and writes, and PostgreSQL waits while the batch is encoded.
    static func storeLines<Line: NightlyLineEncodable>(_ c: PQConnection, _ section: String, _ lines: [Line], date: String, key: String,
                                                       generation: Int) throws {
        let runs = stride(from: 0, to: lines.count, by: linesPerRun).map { lines[$0..<min($0 + linesPerRun, lines.count)] }
        let batch = 64
        func encoded(from first: Int) -> Prebuilt<[Result<String, any Error>]>? {
            guard first < runs.count else { return nil }
            let part = Array(runs[first..<min(first + batch, runs.count)])
            return Prebuilt {
                let encoded = Mutex([Result<String, any Error>](repeating: .success(""), count: part.count))
                DispatchQueue.concurrentPerform(iterations: part.count) { i in
                    let run = Result { try NightlyLineJSON.run(part[i]) }
                    encoded.withLock { $0[i] = run }
                }
                return encoded.withLock { $0 }
            }
        }
        var next = encoded(from: 0)
        for first in stride(from: 0, to: runs.count, by: batch) {
            let these = next!.value
            next = encoded(from: first + batch)
            for (i, run) in these.enumerated() {
                try c.query("INSERT INTO nightly_lines (as_of, scope, generation, section, n, lines) VALUES ($1::date, $2, $6, $3, $4, $5)",
                            [date, key, section, first + i, try run.get(), generation])
            }
        }
    }

    static func nightlyOrder(_ o: ReallocationOrder) -> NightlyOrder {
        NightlyOrder(id: o.id, item: o.item, from: o.from, to: o.to, quantity: o.quantity, distanceKm: o.distanceKm,
                     lots: o.lines.map { "\($0.lot)×\($0.quantity)" }.joined(separator: ", "), shipment: o.shipment)
    }

    static func requireRegion(_ c: PQConnection, _ region: String?, scope: AccessScope) throws {
        if let region {
            guard try !c.query("SELECT 1 FROM regions WHERE code = $1", [region]).rows.isEmpty else {
                throw Refusal(kind: .notFound, field: "region", description: "no region \(region)")
            }
        }
        guard scope.role == .command else { return }
        guard let own = scope.regionCode, let region else {
            throw Refusal(kind: .forbidden, field: "region", description: "a command token reads reports of its own region's subtree")
        }
        let inside: Bool = try c.query("""
            WITH RECURSIVE up AS (
                SELECT id, parent_id, code FROM regions WHERE code = $1
                UNION SELECT r.id, r.parent_id, r.code FROM regions r JOIN up ON r.id = up.parent_id
            )
            SELECT EXISTS (SELECT 1 FROM up WHERE code = $2) AS inside
            """, [region, own]).rows[0].decode("inside")
        guard inside else {
            throw Refusal(kind: .forbidden, field: "region", description: "region \(region) is outside this token's region \(own)")
        }
    }

    /// Runs the report for `asOf` over `region` (nil: everything in scope), or returns the stored one.
    /// `progress` is told at the start of every phase; if it throws, the run stops there and stores nothing.
    /// Refuses (409, field `positions`) a scope with nothing to report on: no stock, no demand plans.
    public func run(asOf: LocalDate, region: String?,
                    progress: @escaping @Sendable (NightlyProgress) throws -> Void = { _ in }) async throws -> NightlyRun {
        try await perform(asOf: asOf, region: region, replacing: nil, progress: progress)
    }

    /// Supersedes the stored report of `asOf` and `region` with a new run (the next generation), for
    /// when the data it was made from has been corrected. Under the run's lock, so it is exactly
    /// once: a replace that finds, once it holds the lock, that another replace has superseded the
    /// report it was asked to replace returns that one's report (replay) instead of running again.
    /// The new report, the old one's superseded mark, the cancellation of the old run's orders that
    /// are still proposed and the audit entry commit together; orders already approved, dispatched
    /// or received are kept, and counted. No stored report: 404 (it replaces; it does not make the
    /// first one — `run` does). Admins and jobs only.
    public func replace(asOf: LocalDate, region: String?,
                        progress: @escaping @Sendable (NightlyProgress) throws -> Void = { _ in }) async throws -> NightlyRun {
        let scope = self.scope
        guard scope.role == .admin, scope.facilities == .all else {
            throw Refusal(kind: .forbidden, field: nil, description: "only an admin may replace a nightly report")
        }
        let date = asOf.description, key = Self.scopeKey(region)
        // The report this replace is about: the current one as the request arrives, read before
        // waiting for the lock, so a replace that completes while this one waits is not replaced again.
        let asked: Int? = try await database.withConnection(scope) { c in
            try Self.requireRegion(c, region, scope: scope)
            return try Self.current(c, date: date, key: key)?.generation
        }
        guard let asked else {
            throw Refusal(kind: .notFound, field: "date",
                          description: "no nightly report for \(date)\(region.map { " in region \($0)" } ?? "") to replace; run it first (stockpile nightly --date \(date))")
        }
        return try await perform(asOf: asOf, region: region, replacing: asked, progress: progress)
    }

    /// serve's run of a date (`region` everything): with `onlyIfMissing` (the catch-up at start) it
    /// does nothing when the report is stored; it skips, storing nothing, a database with nothing
    /// to report on — a fresh one, before its first import — so that day's report is not frozen empty.
    public func scheduled(asOf: LocalDate, onlyIfMissing: Bool,
                          progress: @escaping @Sendable (NightlyProgress) throws -> Void = { _ in }) async throws -> NightlyScheduledOutcome {
        if onlyIfMissing, try await isStored(asOf: asOf, region: nil) { return .alreadyStored }
        do {
            return .ran(try await run(asOf: asOf, region: nil, progress: progress))
        } catch let refusal as Refusal where refusal.field == Self.nothingToReportField {
            return .skipped(reason: refusal.description)
        }
    }

    /// A run: `replacing` is the generation a replace supersedes (nil: a plain run).
    func perform(asOf: LocalDate, region: String?, replacing asked: Int?,
                 progress: @escaping @Sendable (NightlyProgress) throws -> Void) async throws -> NightlyRun {
        let started = ContinuousClock.now
        var phases: [String: Double] = [:]
        var phaseStarted = started
        var current = NightlyPhase.lock
        var positions = 0
        func tick(_ processed: Int) throws {
            try progress(NightlyProgress(phase: current, positions: processed, elapsed: ContinuousClock.now - started))
        }
        func enter(_ phase: NightlyPhase) throws {
            let now = ContinuousClock.now
            if phase != .lock { phases[current.rawValue] = (now - phaseStarted).inSeconds }
            current = phase
            phaseStarted = now
            try progress(NightlyProgress(phase: phase, positions: positions, elapsed: now - started))
        }
        let scope = self.scope, zone = timeZone.identifier, key = Self.scopeKey(region)
        let date = asOf.description

        try enter(.lock)
        // A connection of its own, outside the pool: it holds the lock and the report's transaction
        // for the whole run while the planner and the order creation use pooled connections.
        let connection = try await onOwnThread { try PQConnection(parameters: self.database.location.serviceParameters) }
        let run = RunConnection(connection)
        enum Start: Sendable {
            case stored(NightlyReport, generation: Int)
            case empty(String)
            case fresh(generation: Int, superseding: (generation: Int, requestID: UUID)?, requestID: UUID)
        }
        let start: Start = try await run.blocking { c in
            try c.query(AccessScope.applySQL, scope.applyParameters)
            try Self.requireRegion(c, region, scope: scope)
            try c.execute("BEGIN")
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [Self.runName(asOf: asOf, region: region)])
            let standing = try Self.current(c, date: date, key: key)
            var superseding: (generation: Int, requestID: UUID)?
            if let asked {
                // Another replace got the lock first and superseded the report this one was asked to: its report stands.
                guard let standing, standing.generation == asked else {
                    guard let stored = try Self.load(c, date: date, key: key) else {
                        throw Refusal(kind: .notFound, field: "date", description: "no nightly report for \(date) to replace")
                    }
                    return .stored(stored.report, generation: stored.generation)
                }
                superseding = standing
            } else if standing != nil, let stored = try Self.load(c, date: date, key: key) {
                return .stored(stored.report, generation: stored.generation)
            }
            if let why = try Self.nothingToReport(c, asOf: asOf, region: region) { return .empty(why) }
            let generation = try superseding.map { $0.generation + 1 } ?? c.query("""
                SELECT coalesce(max(generation), 0) + 1 AS g FROM nightly_reports WHERE as_of = $1::date AND scope = $2
                """, [date, key]).rows[0].decode("g", as: Int.self)
            return .fresh(generation: generation, superseding: superseding,
                          requestID: try Self.requestID(c, asOf: asOf, region: region, generation: generation))
        }
        let generation: Int, superseding: (generation: Int, requestID: UUID)?, requestID: UUID
        switch start {
        case .stored(let report, let stored):
            _ = try await run.blocking { c in try c.execute("COMMIT") }
            return NightlyRun(report: report, replay: true, generation: stored)
        case .empty(let why):
            _ = try await run.blocking { c in try c.execute("ROLLBACK") }
            throw Refusal(kind: .conflict, field: Self.nothingToReportField, description: why)
        case .fresh(let g, let s, let id):
            (generation, superseding, requestID) = (g, s, id)
        }

        // Tonight's cover, and the stale positions read from it, are gathered on the run's own
        // connection while the plan is solved and its orders stored on pooled ones: neither reads
        // what the other writes (cover counts what is in transit, never what is proposed), and at
        // 10,000 facilities × 300 items the two took a minute and a half and a minute, one after
        // the other, each mostly on one core of two. The cover and stale phases' times are the
        // waits for them after the plan. If the orders fail, leaving this scope waits for the
        // gathering to finish before the run's connection (and its lock) is let go.
        try enter(.orders)
        let snapshot = try await PostgresCover(database, scope: scope, timeZone: timeZone).snapshotIsCurrent(asOf: asOf)
        let parameters: [any PQEncodable] = [date, zone, 1.0, region, nil as String?, nil as String?, nil as String?, nil as Bool?]
        async let coverRead: (NightlyInputs, [StaleLine]) = run.blocking { c in
            // Tonight's cover once, in a table of this transaction: every section reads it.
            try c.execute(NightlySQL.createCoverTable)
            try c.query(NightlySQL.fillCoverTable(fromSnapshot: snapshot), parameters)
            try c.execute("ANALYZE nightly_cover")
            // Tonight's sums per region and item, for the trends (issue 17, part 6), in the run's transaction.
            try PostgresTrends.recordNightly(c, asOf: asOf)
            let gathered = try NightlyInputs.gather(c, asOf: asOf, zone: zone)
            // The ledger's last movements group in memory (a city's 3 million positions), not in temporary files.
            try c.execute("SET LOCAL work_mem = '256MB'")
            let stale = try c.query(NightlySQL.stale(regional: region != nil), [date, zone, Reorder.staleAfterDays]).rows.map { row in
                StaleLine(facility: try row.decode("facility"), facilityName: try row.decode("facility_name"), item: try row.decode("item"),
                          itemName: try row.decode("item_name"), physicalQty: try row.decode("physical_qty"),
                          dailyDemand: try row.decode("daily_demand"),
                          lastMovement: try row.decode("last_movement", as: String?.self).flatMap(LocalDate.init),
                          lastCount: try row.decode("last_count", as: String?.self).flatMap(LocalDate.init),
                          daysSince: try row.decode("days_since"))
            }
            return (gathered, stale)
        }
        // The orders are stored (their own transaction, on a pooled connection: one PostgreSQL
        // backend inserting for over a minute at city scale) while the report is made from them
        // on the other core: their ids are drawn before they are stored. The store phase waits
        // for them, then stores the rotation's orders in their shipments.
        let reallocations = PostgresReallocations(database, scope: scope, timeZone: timeZone)
        let prepared = try await reallocations.prepare(requestID: requestID, plan: PlanRequest(asOf: asOf, region: region))
        async let written = reallocations.write(prepared)
        let planned = prepared.orders()

        try enter(.cover)
        let (gathered, stale) = try await coverRead
        positions = gathered.positions

        try enter(.reorder)
        let (reorders, gaps) = try Self.reorderSections(planned, gathered: gathered, asOf: asOf, tick: tick)
        let orders = planned.filter { $0.purpose != "rotation" }.map(Self.nightlyOrder)

        try enter(.expiry)
        let expiring = gathered.expiringLots(asOf: asOf)
        let warehouses: Set<String> = Set(try await run.blocking { c in
            try c.query("SELECT code FROM facilities WHERE kind = 'warehouse'").rows.map { try $0.decode("code", as: String.self) }
        })
        var rotation = Self.rotationLines(planned, expiring: expiring, warehouses: warehouses)

        try enter(.stale)
        // (Read with tonight's cover, above.)

        try enter(.interception)
        let rule = transit
        let (overdue, hoarding): ([OverdueLine], [HoardingLine]) = try await run.blocking { c in
            // As the report's scope: orders with an end in its region, positions of tonight's cover.
            let overdue = try PostgresInterception.overdue(c, rule, now: Date(), region: region, limit: nil).map { o in
                OverdueLine(order: o.id, item: o.item, itemName: o.itemName, from: o.from, to: o.to, inTransit: o.inTransit,
                            dispatchedAt: PQTimestamp.formatRFC3339(o.dispatchedAt), dueAt: PQTimestamp.formatRFC3339(o.dueAt),
                            daysOverdue: o.daysOverdue)
            }
            let hoarding = try c.query(NightlySQL.hoarding, [date, zone, HoardingLine.receivedWithinDays, HoardingLine.factor]).rows.map { row in
                HoardingLine(facility: try row.decode("facility"), facilityName: try row.decode("facility_name"), item: try row.decode("item"),
                             itemName: try row.decode("item_name"), received: try row.decode("received"), physicalQty: try row.decode("physical_qty"),
                             targetQty: try row.decode("target_qty"), surplusQty: try row.decode("surplus_qty"),
                             regionShortfallQty: try row.decode("region_shortfall_qty"), shortFacilities: try row.decode("short_facilities"))
            }
            return (overdue, hoarding)
        }

        try enter(.store)
        // Seven in ten of the report's lines (3.9 of 5.5 million at city scale) do not depend on the
        // orders: they are stored now, in the run's transaction, while the orders are still being
        // written (the wait for those used to leave a core idle, and the whole report's store came after).
        try await run.blocking { c in
            try Self.storeEarlySections(c, reorders: reorders, contractGaps: gaps, expiringLots: expiring, stale: stale,
                                        overdue: overdue, hoarding: hoarding, date: date, key: key, generation: generation)
        }
        try progress(NightlyProgress(phase: .store, positions: positions, elapsed: ContinuousClock.now - started))
        // A rerun's orders are the ones it found stored (`planned` is them). Otherwise nothing else
        // can store this request's orders first: the run's lock serialises runs, and no client can
        // take the run's id (sql/0013). Were it to happen, the report made above would name ids
        // that were not stored: the run stops, and the next one replays what was.
        if let other = try await written, !prepared.replay {
            throw Refusal(kind: .conflict, field: "date",
                          description: "\(other.count) orders were stored under tonight's request id while this run made its report; run it again")
        }
        // Rotation (轮换, issue 17 part 4): the reserve warehouses' expiring lots that a faster
        // consumer uses in time, less what tonight's plan already moves of them, as proposed orders
        // under tonight's request id (in its shipments), each with a replacement purchase.
        let rotated = try await reallocations.storeRotation(
            requestID: requestID, orders: Rotation.orders(rotation).map { o in
                PlannedOrder(item: o.item, from: o.from, to: o.to, quantity: o.quantity, distanceKm: o.distanceKm,
                             lines: o.lots.map { PlannedOrder.Line(lot: $0.lot, expiry: $0.expiry.description, quantity: $0.quantity) })
            }, asOf: asOf)
        for i in rotation.indices {
            rotation[i].order = rotated.first { $0.from == rotation[i].warehouse && $0.to == rotation[i].to && $0.item == rotation[i].item }?.id
        }
        // The phases' times are the report's; storing it is timed by whoever runs it (bench nightly).
        let report = NightlyReport(asOf: asOf, region: region, generatedAt: PQTimestamp.formatRFC3339(Date()),
                                   requestID: requestID.uuidString.lowercased(), positions: positions, orders: orders + rotated.map(Self.nightlyOrder),
                                   reorders: reorders, contractGaps: gaps, expiringLots: expiring, stale: stale,
                                   overdue: overdue, hoarding: hoarding, rotation: rotation, phases: phases)
        let lines = reorders.filter { $0.need > 0 }.count, orderCount = orders.count
        let replaced: NightlyReplacement? = try await run.blocking { c in
            var replaced: NightlyReplacement?
            if let superseding {
                // Last before the new report, so the old one's orders are locked only for the moment
                // it takes: an approval racing this either lands first (and its order is kept) or
                // finds the order cancelled.
                replaced = try Self.supersede(c, date: date, key: key, generation: superseding.generation,
                                              requestID: superseding.requestID, by: generation, scope: scope, zone: zone)
            }
            try Self.store(c, report, date: date, key: key, generation: generation, requestID: requestID, actor: scope.actor)
            try PostgresTokens.audit(c, scope: scope, action: "nightly.report", target: "\(date) \(key)",
                                     detail: "generation \(generation): \(orderCount) orders, \(lines) reorder lines, procurement \(report.procurementTotal)")
            _ = try c.execute("COMMIT")
            return replaced
        }
        return NightlyRun(report: report, replay: false, generation: generation, replaced: replaced)
    }

    /// The reorder lines of tonight's short positions, less what tonight's orders bring them, and
    /// the contract gaps (what to renew or expand) of every position.
    static func reorderSections(_ created: [ReallocationOrder], gathered: NightlyInputs, asOf: LocalDate,
                                tick: (Int) throws -> Void) throws -> (reorders: [ReorderLine], gaps: [ContractGapLine]) {
        var reallocated: [PositionKey: [ReallocationSource]] = [:]
        for order in created where order.purpose != "rotation" {
            reallocated[PositionKey(facility: order.to, item: order.item), default: []]
                .append(ReallocationSource(order: order.id, from: order.from, quantity: order.quantity))
        }
        var reorders: [ReorderLine] = [], gaps: [ContractGapLine] = []
        for (done, row) in gathered.rows.enumerated() {
            if done > 0 && done % 50_000 == 0 { try tick(done) }
            let k = PositionKey(facility: row.position.facility, item: row.position.item)
            let contracts = gathered.contracts[k] ?? []
            var calledOff: Int64 = 0
            if row.position.shortfallQty > 0 {
                let line = Reorder.line(row.position, reallocatedFrom: reallocated[k] ?? [], inbound: row.inbound, contracts: contracts,
                                        pledges: gathered.pledges[k] ?? [], asOf: asOf)
                calledOff = line.callOffs.reduce(0) { $0 + $1.quantity }
                reorders.append(line)
            }
            if row.contractShortfall > 0 || calledOff > 0,
               let gap = Reorder.contractGap(row.position, contracts: contracts, calledOffTonight: calledOff, asOf: asOf) {
                gaps.append(gap)
            }
        }
        return (reorders, gaps)
    }

    /// The rotation lines: the reserve warehouses' expiring lots that a faster consumer uses in
    /// time, less what tonight's plan already moves of them.
    static func rotationLines(_ created: [ReallocationOrder], expiring: [ExpiringLotLine], warehouses: Set<String>) -> [RotationLine] {
        // Only what the warehouses' lines read: what tonight's orders send from a warehouse, and to a
        // facility one of its lots would go to (keys for all 1.67 M orders of a city took 7 s).
        let sentTo = Set(expiring.lazy.filter { warehouses.contains($0.facility) }
            .compactMap { e in e.moveTo.map { PositionKey(facility: $0, item: e.item) } })
        var plannedOut: [String: Int64] = [:], plannedIn: [String: Int64] = [:]
        for o in created where o.purpose != "rotation" {
            if sentTo.contains(PositionKey(facility: o.to, item: o.item)) { plannedIn["\(o.to)|\(o.item)", default: 0] += o.quantity }
            guard warehouses.contains(o.from) else { continue }
            for l in o.lines { plannedOut["\(o.from)|\(o.item)|\(l.lot)", default: 0] += l.quantity }
        }
        return Rotation.lines(expiring: expiring, warehouses: warehouses, plannedOut: plannedOut, plannedIn: plannedIn)
    }

    /// Marks the report of `generation` superseded and cancels its run's orders that are still
    /// proposed, in the caller's transaction; audited as `nightly.replace` with who did it.
    static func supersede(_ c: PQConnection, date: String, key: String, generation: Int, requestID: UUID, by next: Int,
                          scope: AccessScope, zone: String) throws -> NightlyReplacement {
        try c.query("""
            UPDATE nightly_reports SET superseded_at = now(), superseded_by = $4
            WHERE as_of = $1::date AND scope = $2 AND generation = $3 AND superseded_at IS NULL
            """, [date, key, generation, scope.actor])
        let reason: String = try c.query("""
            SELECT 'superseded by the nightly report rerun of ' || $1 || ' at ' || to_char(now() AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI:SS')
                   || ' (generation ' || $3::int || ')' AS reason
            """, [date, zone, next]).rows[0].decode("reason")
        let cancelled = try c.query("""
            UPDATE reallocation_orders SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2, cancel_reason = $3
            WHERE request_id = $1 AND status = 'proposed'
            """, [requestID, scope.actor, reason]).affectedRows
        var kept: [String: Int] = [:]
        for row in try c.query("""
            SELECT status, count(*) AS n FROM reallocation_orders
            WHERE request_id = $1 AND status IN ('approved', 'dispatched', 'received') GROUP BY status
            """, [requestID]).rows {
            kept[try row.decode("status")] = try row.decode("n")
        }
        let replacement = NightlyReplacement(supersededGeneration: generation, supersededRequestID: requestID.uuidString.lowercased(),
                                             cancelledOrders: cancelled, keptOrders: kept, reason: reason)
        try PostgresTokens.audit(c, scope: scope, action: "nightly.replace", target: "\(date) \(key)",
                                 detail: "generation \(generation) → \(next): \(cancelled) proposed orders cancelled, \(replacement.keptTotal) kept"
                                     + (kept.isEmpty ? "" : " (" + kept.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"))
        return replacement
    }
}

/// The run's own connection. Used by one task at a time (the run awaits each call), each call on a
/// thread of its own so libpq's blocking calls stay off Swift's cooperative pool.
final class RunConnection: @unchecked Sendable {
    let connection: PQConnection
    init(_ connection: PQConnection) { self.connection = connection }
    func blocking<T: Sendable>(_ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let connection = self.connection
        return try await onOwnThread { try body(connection) }
    }
}

/// A facility × item, as the run's dictionaries key it: the two codes, not "facility|item" built for
/// each of millions of rows (an allocation each; at city scale a third of the reorder phase went to
/// hashing those keys and comparing their bytes, scattered over the heap).
struct PositionKey: Hashable, Sendable {
    var facility: String
    var item: String
}

/// What the run reads from tonight's cover table, per position.
struct NightlyInputs: Sendable {
    struct Row: Sendable {
        var position: NightlyPosition
        /// nil: the facility has no coordinates (it cannot be offered an expiring lot).
        var site: PlanSite?
        var inbound: Int64
        var contractShortfall: Int64
    }
    struct LotRow: Sendable {
        var lot: String
        var stock: LotStock
    }
    var positions = 0
    /// Positions short of target or of contract reserve, and those that could take an expiring lot.
    var rows: [Row] = []
    var contracts: [PositionKey: [ReorderContract]] = [:]
    var pledges: [PositionKey: [ReorderPledge]] = [:]
    /// Positions holding a lot that expires within the horizon: their position and those lots.
    var lotPositions: [(position: NightlyPosition, site: PlanSite?, lots: [LotRow])] = []

    /// Read in place by column position (a city has millions of these rows); `NightlySQL.described`
    /// gives the first 17 columns of the positions and lots queries, in this order.
    static func gather(_ c: PQConnection, asOf: LocalDate, zone: String) throws -> NightlyInputs {
        var inputs = NightlyInputs()
        inputs.positions = try c.query("SELECT count(*) AS n FROM nightly_cover").rows[0].decode("n")
        try c.scan(NightlySQL.positions, [Reorder.expiryHorizonDays]) { row in
            inputs.rows.append(Row(position: position(row), site: site(row), inbound: row.int64(18), contractShortfall: row.int64(17)))
        }
        try c.scan(NightlySQL.contracts) { row in
            inputs.contracts[PositionKey(facility: row.string(0), item: row.string(1)), default: []].append(ReorderContract(
                code: row.string(2), supplier: row.string(3), local: row.bool(4), leadTimeDays: Int(row.int64(5)),
                committed: row.int64(6), calledOff: row.int64(7), validFrom: LocalDate(row.string(8))!, validTo: LocalDate(row.string(9))!))
        }
        try c.scan(NightlySQL.pledges) { row in
            inputs.pledges[PositionKey(facility: row.string(0), item: row.string(1)), default: []].append(ReorderPledge(
                code: row.string(2), manufacturer: row.string(3), local: row.bool(4), certified: row.bool(5),
                dailyCapacity: row.int64(6), rampUpDays: Int(row.int64(7)), validFrom: LocalDate(row.string(8))!,
                validTo: LocalDate(row.string(9))!))
        }
        var index: [PositionKey: Int] = [:]
        try c.scan(NightlySQL.lots, [asOf.description, Reorder.expiryHorizonDays]) { row in
            let k = PositionKey(facility: row.string(0), item: row.string(4))
            let lot = LotRow(lot: row.string(17), stock: LotStock(quantity: row.int64(19), expiry: row.stringOrNil(18).flatMap(LocalDate.init)))
            if let i = index[k] {
                inputs.lotPositions[i].lots.append(lot)
            } else {
                index[k] = inputs.lotPositions.count
                inputs.lotPositions.append((position(row), site(row), [lot]))
            }
        }
        return inputs
    }

    static func site(_ row: PQRowView) -> PlanSite? {
        guard let latitude = row.doubleOrNil(2), let longitude = row.doubleOrNil(3) else { return nil }
        return PlanSite(code: row.string(0), latitude: latitude, longitude: longitude)
    }

    static func position(_ row: PQRowView) -> NightlyPosition {
        NightlyPosition(facility: row.string(0), facilityName: row.string(1), item: row.string(4), itemName: row.string(5),
                        dailyDemand: row.double(6), observedDemand: row.double(7), fullLoadDemand: row.doubleOrNil(8),
                        targetDays: Int(row.int64(9)), physicalQty: row.int64(10), physicalDays: row.doubleOrNil(11),
                        contractQty: row.int64(12), contractDays: row.doubleOrNil(13), capacityQty: row.int64(14),
                        capacityDays: row.doubleOrNil(15), shortfallQty: row.int64(16))
    }

    /// Each lot the FEFO walk leaves partly unused within the horizon, with the nearest facility in
    /// scope that would use it before it expires. A city has about 9,000 candidates per item and a
    /// hundred thousand such lots: each item's candidates are sorted by their own physical days, so
    /// a lot is offered only to those whose stock runs out before it expires (the others would use
    /// none of it), and the positions are shared out over every core.
    func expiringLots(asOf: LocalDate) -> [ExpiringLotLine] {
        var consumers: [String: [Reorder.Consumer]] = [:]
        for row in rows where row.position.dailyDemand > 0 {
            guard let site = row.site, let days = row.position.physicalDays, days < Double(Reorder.expiryHorizonDays) else { continue }
            consumers[row.position.item, default: []].append(Reorder.Consumer(site: site, name: row.position.facilityName,
                                                                           dailyDemand: row.position.dailyDemand, physicalDays: days))
        }
        for item in consumers.keys { consumers[item]!.sort { $0.physicalDays < $1.physicalDays } }
        let lotPositions = self.lotPositions, byItem = consumers
        let found = Mutex([[ExpiringLotLine]](repeating: [], count: lotPositions.count))
        DispatchQueue.concurrentPerform(iterations: lotPositions.count) { n in
            let (position, site, lots) = lotPositions[n]
            let candidates = byItem[position.item] ?? []
            var lines: [ExpiringLotLine] = []
            for (i, unconsumed) in Reorder.expiring(lots: lots.map(\.stock), dailyDemand: position.dailyDemand, asOf: asOf) {
                let lot = lots[i], expiry = lot.stock.expiry!
                let days = asOf.days(until: expiry)
                var before = 0, after = candidates.count // the first whose own stock lasts until the expiry
                while before < after {
                    let middle = (before + after) / 2
                    if candidates[middle].physicalDays < Double(days) { before = middle + 1 } else { after = middle }
                }
                let to = site.flatMap { Reorder.fasterConsumer(for: unconsumed, expiryDays: days, from: $0, candidates: candidates[..<before]) }
                lines.append(ExpiringLotLine(position: position, lot: lot.lot, expiry: expiry, asOf: asOf, onHand: lot.stock.quantity,
                                             unconsumedQty: unconsumed, moveTo: to))
            }
            found.withLock { $0[n] = lines }
        }
        return found.withLock { $0 }.joined()
            .sorted { ($0.expiry, $0.facility, $0.item, $0.lot) < ($1.expiry, $1.facility, $1.item, $1.lot) }
    }
}

enum NightlySQL {
    /// Tonight's cover of every position in the scope, as a table of the run's transaction: from the
    /// snapshot when it is for this date, else computed with the set-based formulas.
    /// (A table, then an INSERT: CREATE TABLE AS takes no parameters.)
    static let createCoverTable = "CREATE TEMP TABLE nightly_cover (LIKE cover_positions) ON COMMIT DROP"
    static func fillCoverTable(fromSnapshot: Bool) -> String {
        if fromSnapshot {
            return """
                WITH RECURSIVE \(CoverSQL.subtree)
                INSERT INTO nightly_cover (\(CoverSQL.columns))
                SELECT \(CoverSQL.columns) FROM (
                    SELECT cp.* FROM cover_positions cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
                    WHERE \(CoverSQL.filterClause) \(CoverSQL.snapshotCheck)
                ) s
                """
        }
        return """
            WITH RECURSIVE \(CoverSQL.subtree),
            positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i WHERE \(CoverSQL.filterClause)),
            \(CoverSQL.compute(restricted: true))
            INSERT INTO nightly_cover (\(CoverSQL.columns)) SELECT \(CoverSQL.columns) FROM computed
            """
    }

    /// The first columns of the positions and lots queries, read by position (`NightlyInputs.position`).
    static let described = """
        f.code AS facility, f.name AS facility_name, f.latitude, f.longitude, i.code AS item, i.name AS item_name,
        nc.daily_demand, nc.observed_demand, nc.full_load_demand, nc.target_days, nc.physical_qty, nc.physical_days,
        nc.contract_qty, nc.contract_days, nc.capacity_qty, nc.capacity_days, nc.shortfall_qty
        """
    static let joined = "nightly_cover nc JOIN facilities f ON f.id = nc.facility_id JOIN items i ON i.id = nc.item_id"
    /// Positions whose reserves the reorder and the contract gaps read.
    static let needing = "(nc.shortfall_qty > 0 OR nc.contract_shortfall_qty > 0)"

    /// Short positions, positions short of contract reserve, and those that could take an expiring
    /// lot ($1: the horizon in days; their stock runs out before it).
    static let positions = """
        SELECT \(described), nc.contract_shortfall_qty,
               \(CoverSQL.inbound("nc"))
        FROM \(joined)
        WHERE \(needing) OR (nc.daily_demand > 0 AND nc.physical_days < $1)
        ORDER BY i.code, f.code
        """

    static let contracts = """
        SELECT f.code AS facility, i.code AS item, k.code, k.supplier, k.local, k.lead_time_days, k.committed, k.called_off,
               k.valid_from::text AS valid_from, k.valid_to::text AS valid_to
        FROM \(joined) JOIN contracts k ON k.facility_id = nc.facility_id AND k.item_id = nc.item_id
        WHERE \(needing)
        """

    static let pledges = """
        SELECT f.code AS facility, i.code AS item, p.code, p.manufacturer, p.local, p.certified, p.daily_capacity, p.ramp_up_days,
               p.valid_from::text AS valid_from, p.valid_to::text AS valid_to
        FROM \(joined) JOIN capacity_pledges p ON p.facility_id = nc.facility_id AND p.item_id = nc.item_id
        WHERE nc.shortfall_qty > 0
        """

    /// The usable lots expiring within the horizon ($1 as_of, $2 days) of the positions where the
    /// walk may leave some unused: no demand there, or cover found some expiring stock. Lots that
    /// expire later (or never) come after them in the FEFO walk, so they change nothing for them.
    static let lots = """
        SELECT \(described), l.lot_number AS lot, l.expiry::text AS expiry, b.quantity
        FROM \(joined)
        JOIN balances b ON b.facility_id = nc.facility_id AND b.item_id = nc.item_id JOIN lots l ON l.id = b.lot_id
        WHERE b.quantity > 0 AND NOT \(CoverSQL.held) AND l.expiry > $1::date AND l.expiry <= $1::date + $2::int
          AND (nc.daily_demand = 0 OR nc.expiring_qty > 0)
        ORDER BY f.code, i.code, l.expiry, l.lot_number
        """

    /// Positions with stock or demand and no movement of any kind (a count included) from D − 7
    /// through D ($1 as_of, $2 zone, $3 days), with their last movement and last count before D ends.
    /// Positions that received transfers within $3 days up to the report's date ($1, zone $2) and
    /// hold more than $4 × their target quantity, where other facilities of the same region are short.
    static let hoarding = """
        WITH received AS (
            SELECT m.facility_id, m.item_id, sum(m.quantity)::bigint AS received FROM movements m
             WHERE m.kind = 'transfer_in'
               AND m.occurred_at >= ($1::date - $3::int)::timestamp AT TIME ZONE $2
               AND m.occurred_at < ($1::date + 1)::timestamp AT TIME ZONE $2
             GROUP BY m.facility_id, m.item_id
        ), short AS (
            SELECT f.region_id, nc.item_id, nc.facility_id, nc.shortfall_qty FROM nightly_cover nc JOIN facilities f ON f.id = nc.facility_id
             WHERE nc.shortfall_qty > 0
        )
        SELECT f.code AS facility, f.name AS facility_name, i.code AS item, i.name AS item_name, r.received, nc.physical_qty,
               ceil(nc.daily_demand * nc.target_days)::bigint AS target_qty,
               (nc.physical_qty - ceil(nc.daily_demand * nc.target_days))::bigint AS surplus_qty,
               s.shortfall::bigint AS region_shortfall_qty, s.facilities::int AS short_facilities
          FROM \(joined)
          JOIN received r ON r.facility_id = nc.facility_id AND r.item_id = nc.item_id
          CROSS JOIN LATERAL (
              SELECT coalesce(sum(sh.shortfall_qty), 0) AS shortfall, count(*) AS facilities FROM short sh
               WHERE sh.region_id = f.region_id AND sh.item_id = nc.item_id AND sh.facility_id <> nc.facility_id
          ) s
         WHERE nc.daily_demand > 0 AND nc.physical_qty > $4::float8 * nc.daily_demand * nc.target_days AND s.facilities > 0
         ORDER BY surplus_qty DESC, f.code, i.code
        """

    /// Positions with stock or demand and no movement in the $3 days up to the report's date ($1,
    /// zone $2), with their last movement and last count. The last movements come from one pass over
    /// the ledger, grouped: a lookup per position (a lateral max, and the last count made it read
    /// every movement of the position) took 201 s for a city whose 2.6 million positions had all gone quiet.
    ///
    /// A region's report groups only its facilities' movements; the whole city's groups them all
    /// without asking: the positions come from tonight's cover either way (and row-level security
    /// keeps a scope's movements its own). At 10,000 × 300, matching 14 million movements to the
    /// cover's facilities before grouping them made the query 20.7 s instead of 15.3 s.
    static func stale(regional: Bool) -> String { """
        WITH last AS (
            SELECT m.facility_id, m.item_id, max(m.occurred_at) AS at, max(m.occurred_at) FILTER (WHERE m.kind = 'count') AS count_at
            FROM movements m
            WHERE m.occurred_at < ($1::date + 1)::timestamp AT TIME ZONE $2
              \(regional ? "AND m.facility_id IN (SELECT DISTINCT facility_id FROM nightly_cover)" : "")
            GROUP BY m.facility_id, m.item_id
        )
        SELECT f.code AS facility, f.name AS facility_name, i.code AS item, i.name AS item_name, nc.physical_qty, nc.daily_demand,
               (last.at AT TIME ZONE $2)::date::text AS last_movement, (last.count_at AT TIME ZONE $2)::date::text AS last_count,
               $1::date - (last.at AT TIME ZONE $2)::date AS days_since
        FROM \(joined)
        LEFT JOIN last ON last.facility_id = nc.facility_id AND last.item_id = nc.item_id
        WHERE (nc.physical_qty > 0 OR nc.daily_demand > 0)
          AND (last.at IS NULL OR last.at < ($1::date - $3::int)::timestamp AT TIME ZONE $2)
        ORDER BY f.code, i.code
        """
    }
}
