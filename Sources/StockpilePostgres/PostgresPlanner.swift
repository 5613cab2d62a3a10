import Foundation
import PQ
import StockpileCore
import Synchronization

/// One proposed allocation order (调拨单) of a plan: from a donor to a receiver, one item, by lot.
public struct PlannedOrder: Sendable, Codable, Equatable {
    public struct Line: Sendable, Codable, Equatable {
        public var lot: String
        public var expiry: String?
        public var quantity: Int64
    }
    public var item: String
    public var from: String
    public var to: String
    public var quantity: Int64
    public var distanceKm: Double
    public var lines: [Line]
    enum CodingKeys: String, CodingKey { case item, from, to, quantity, lines, distanceKm = "distance_km" }
}

/// One item's plan: what was short, what the plan covers, at what transport.
public struct ItemPlanSummary: Sendable, Codable, Equatable {
    public var item: String
    public var donors: Int
    public var receivers: Int
    public var needBefore: Int64
    public var covered: Int64
    public var weightedCovered: Int64
    public var unmet: Int64
    public var quantityKm: Double
    enum CodingKeys: String, CodingKey {
        case item, donors, receivers, covered, unmet
        case needBefore = "need_before", weightedCovered = "weighted_covered", quantityKm = "qty_km"
    }
}

public struct ReallocationPlan: Sendable, Codable {
    public var asOf: LocalDate
    public var region: String?
    public var items: [ItemPlanSummary]
    public var orders: [PlannedOrder]
    public var summary: ItemPlanSummary
    enum CodingKeys: String, CodingKey { case region, items, orders, summary, asOf = "as_of" }
}

public struct PlanRequest: Sendable {
    public var asOf: LocalDate
    public var region: String?
    public var item: String?
    public var maxDistanceKm: Double?
    public var minOrder: Int64
    public init(asOf: LocalDate, region: String? = nil, item: String? = nil, maxDistanceKm: Double? = nil, minOrder: Int64 = 0) {
        self.asOf = asOf; self.region = region; self.item = item; self.maxDistanceKm = maxDistanceKm; self.minOrder = minOrder
    }
}

/// The planner over the database: cover gives each position's need and surplus (from the
/// snapshot when it is for this date, else computed), the ledger the donors' usable lots.
public struct PostgresPlanner: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    let timeZone: TimeZone

    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    /// Positions that need or may give: a superset (the surplus is decided in StockpileCore).
    /// Columns by position: the read goes through `scan`.
    static func candidates(from source: String) -> String {
        """
        SELECT cp.item_code, cp.facility_code, f.latitude, f.longitude, f.designated, cp.physical_qty,
               cp.daily_demand, cp.target_days, cp.shortfall_qty
        FROM \(source) cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
        WHERE (cp.shortfall_qty > 0 OR cp.physical_qty > cp.target_days * cp.daily_demand - 1)
          AND f.latitude IS NOT NULL AND f.longitude IS NOT NULL AND \(CoverSQL.filterClause)
        """
    }

    /// Every usable lot in scope, earliest expiry first per facility × item; the planner keeps the
    /// donors'. Read from the ledger's balances directly, not through cover, so the one query
    /// serves a snapshot date and a computed one alike.
    static let usableLots = """
        WITH RECURSIVE \(CoverSQL.subtree)
        SELECT i.code, f.code, l.lot_number, l.expiry::text, l.expiry - $1::date AS days, b.quantity
        FROM balances b JOIN lots l ON l.id = b.lot_id JOIN facilities f ON f.id = b.facility_id JOIN items i ON i.id = b.item_id
        WHERE b.quantity > 0 AND NOT l.quarantined AND (l.expiry IS NULL OR l.expiry > $1::date)
          AND f.latitude IS NOT NULL AND f.longitude IS NOT NULL AND \(CoverSQL.filterClause)
          AND $2::text IS NOT NULL AND $3::float8 > 0  -- the cover queries' parameters; time zone and surge do not bear on lots
        ORDER BY i.code, f.code, l.expiry NULLS LAST, l.lot_number
        """

    /// What the planner works from, per item: the positions that need or may give, donors with
    /// their usable lots (earliest expiry first; a lot's expiry date is as-of plus its days).
    public struct Inputs: Sendable, Codable {
        public var positions: [String: [PlanPosition]]
    }

    public func inputs(_ request: PlanRequest) async throws -> Inputs {
        let cover = PostgresCover(database, scope: scope, timeZone: timeZone)
        let zone = timeZone.identifier
        let parameters: [any PQEncodable] = [request.asOf.description, zone, 1.0, request.region, nil as String?, request.item,
                                             nil as String?, nil as Bool?]
        let useSnapshot = try await cover.snapshotIsCurrent(asOf: request.asOf)
        // A city has millions of positions and lots: both are read in place (`scan`), positions and
        // lots on two connections at once.
        async let positionsRead: [String: [PlanPosition]] = database.withConnection(scope) { c in
            if let region = request.region, try c.query("SELECT 1 FROM regions WHERE code = $1", [region]).rows.isEmpty {
                throw Refusal(kind: .notFound, field: "region", description: "no region \(region)")
            }
            if let item = request.item, try c.query("SELECT 1 FROM items WHERE code = $1", [item]).rows.isEmpty {
                throw Refusal(kind: .notFound, field: "item", description: "no item \(item)")
            }
            let sql: String
            if useSnapshot {
                sql = "WITH RECURSIVE \(CoverSQL.subtree)\n\(Self.candidates(from: "cover_positions")) \(CoverSQL.snapshotCheck)"
            } else {
                sql = """
                    WITH RECURSIVE \(CoverSQL.subtree),
                    positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i WHERE \(CoverSQL.filterClause)),
                    \(CoverSQL.compute(restricted: true))
                    \(Self.candidates(from: "computed"))
                    """
            }
            var byItem: [String: [PlanPosition]] = [:]
            try c.scan(sql, parameters) { row in
                let position = PlanPosition(site: PlanSite(code: row.string(1), latitude: row.double(2), longitude: row.double(3)),
                                            designated: row.bool(4), usable: row.int64(5), dailyDemand: row.double(6),
                                            targetDays: Int(row.int64(7)), shortfall: row.int64(8))
                byItem[row.string(0), default: []].append(position)
            }
            return byItem
        }
        // Rows come ordered by item and facility: each facility × item's lots are gathered as
        // they pass, without a lookup per lot.
        async let lotsRead: [String: [PlanLot]] = database.withConnection(scope) { c in
            var lots: [String: [PlanLot]] = [:]
            var key = "", gathered: [PlanLot] = []
            try c.scan(Self.usableLots, [request.asOf.description, zone, 1.0, request.region, nil as String?, request.item,
                                         nil as String?, nil as Bool?]) { row in
                let next = "\(row.string(0))|\(row.string(1))"
                if next != key {
                    if !gathered.isEmpty { lots[key] = gathered }
                    key = next
                    gathered = []
                }
                gathered.append(PlanLot(lot: row.string(2), quantity: row.int64(5), expiryDays: row.int64OrNil(4).map { Int($0) }))
            }
            if !gathered.isEmpty { lots[key] = gathered }
            return lots
        }
        var byItem = try await positionsRead
        let lots = try await lotsRead
        for (item, positions) in byItem {
            byItem[item] = positions.map { p in
                var p = p
                if p.surplus > 0 { p.lots = lots["\(item)|\(p.site.code)"] ?? [] }
                return p
            }
        }
        return Inputs(positions: byItem)
    }

    public func plan(_ request: PlanRequest) async throws -> ReallocationPlan {
        try await Self.solve(try await inputs(request), request: request)
    }

    /// The plan from inputs already read: every item solved, side by side on every core.
    public static func solve(_ inputs: Inputs, request: PlanRequest) async throws -> ReallocationPlan {
        let byItem = inputs.positions

        // Solving is CPU work that can take seconds for a city: on a thread of its own, never on
        // Swift's cooperative pool, whose few threads serve every HTTP request.
        let (summaries, orders) = try await onOwnThread { () -> ([ItemPlanSummary], [PlannedOrder]) in
            var summaries: [ItemPlanSummary] = [], orders: [PlannedOrder] = []
            // Items are independent: solved side by side on every core (GCD's threads, not Swift's pool).
            let names = byItem.keys.sorted()
            let solved = Mutex([(plan: ItemPlan, donors: [PlanPosition], receivers: [PlanPosition])?](repeating: nil, count: names.count))
            DispatchQueue.concurrentPerform(iterations: names.count) { n in
                let result = Reallocation.plan(byItem[names[n]]!, options: PlanOptions(maxDistanceKm: request.maxDistanceKm,
                                                                                      minimumOrder: request.minOrder))
                solved.withLock { $0[n] = result }
            }
            let results = solved.withLock { $0 }
            for (n, item) in names.enumerated() {
                let (plan, donors, receivers) = results[n]!
                summaries.append(ItemPlanSummary(item: item, donors: donors.count, receivers: receivers.count, needBefore: plan.needBefore,
                                                 covered: plan.covered, weightedCovered: plan.weightedCovered, unmet: plan.unmet,
                                                 quantityKm: plan.quantityKm))
                for flow in plan.flows {
                    let donor = donors[flow.donor]
                    let lines = flow.lots.map { part -> PlannedOrder.Line in
                        let lot = donor.lots![part.lot]
                        return PlannedOrder.Line(lot: lot.lot, expiry: lot.expiryDays.map { request.asOf.adding(days: $0).description },
                                                 quantity: part.quantity)
                    }
                    orders.append(PlannedOrder(item: item, from: donor.site.code, to: receivers[flow.receiver].site.code, quantity: flow.quantity,
                                               distanceKm: (flow.distanceKm * 1000).rounded() / 1000, lines: lines))
                }
            }
            return (summaries, orders)
        }
        let total = ItemPlanSummary(item: request.item ?? "", donors: summaries.reduce(0) { $0 + $1.donors },
                                    receivers: summaries.reduce(0) { $0 + $1.receivers },
                                    needBefore: summaries.reduce(0) { $0 + $1.needBefore }, covered: summaries.reduce(0) { $0 + $1.covered },
                                    weightedCovered: summaries.reduce(0) { $0 + $1.weightedCovered }, unmet: summaries.reduce(0) { $0 + $1.unmet },
                                    quantityKm: summaries.reduce(0) { $0 + $1.quantityKm })
        return ReallocationPlan(asOf: request.asOf, region: request.region, items: summaries, orders: orders, summary: total)
    }
}
