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
    static func candidates(from source: String) -> String {
        """
        SELECT cp.item_code AS item, cp.facility_code AS facility, f.latitude, f.longitude, f.designated, cp.physical_qty,
               cp.daily_demand, cp.target_days, cp.shortfall_qty
        FROM \(source) cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
        WHERE (cp.shortfall_qty > 0 OR cp.physical_qty > cp.target_days * cp.daily_demand - 1)
          AND f.latitude IS NOT NULL AND f.longitude IS NOT NULL AND \(CoverSQL.filterClause)
        """
    }

    /// What the planner works from, per item: the positions that need or may give, donors with
    /// their usable lots (earliest expiry first), and each lot's expiry date by "item|facility".
    public struct Inputs: Sendable {
        public var positions: [String: [PlanPosition]]
        public var expiries: [String: [String: String]]
    }

    public func inputs(_ request: PlanRequest) async throws -> Inputs {
        let cover = PostgresCover(database, scope: scope, timeZone: timeZone)
        let zone = timeZone.identifier
        let parameters: [any PQEncodable] = [request.asOf.description, zone, 1.0, request.region, nil as String?, request.item,
                                             nil as String?, nil as Bool?]
        let useSnapshot = try await cover.snapshotIsCurrent(asOf: request.asOf)
        let rows: [PQRow] = try await database.withConnection(scope) { c in
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
            return try c.query(sql, parameters).rows
        }
        var byItem: [String: [PlanPosition]] = [:]
        for row in rows {
            let position = PlanPosition(site: PlanSite(code: try row.decode("facility"), latitude: try row.decode("latitude"),
                                                       longitude: try row.decode("longitude")),
                                        designated: try row.decode("designated"), usable: try row.decode("physical_qty"),
                                        dailyDemand: try row.decode("daily_demand"), targetDays: try row.decode("target_days"),
                                        shortfall: try row.decode("shortfall_qty"))
            byItem[try row.decode("item", as: String.self), default: []].append(position)
        }
        // The donors' usable lots, earliest expiry first.
        let donorKeys = byItem.flatMap { item, positions in positions.filter { $0.surplus > 0 }.map { (item, $0.site.code) } }
        let asOf = request.asOf
        let lotRows: [PQRow] = donorKeys.isEmpty ? [] : try await database.withConnection(scope) { c in
            try c.query("""
                SELECT i.code AS item, f.code AS facility, l.lot_number AS lot, l.expiry::text AS expiry, l.expiry - $3::date AS days, b.quantity
                FROM unnest($1::text[], $2::text[]) AS d(item, facility)
                JOIN items i ON i.code = d.item JOIN facilities f ON f.code = d.facility
                JOIN balances b ON b.facility_id = f.id AND b.item_id = i.id JOIN lots l ON l.id = b.lot_id
                WHERE b.quantity > 0 AND NOT l.quarantined AND (l.expiry IS NULL OR l.expiry > $3::date)
                ORDER BY i.code, f.code, l.expiry NULLS LAST, l.lot_number
                """, [donorKeys.map(\.0), donorKeys.map(\.1), asOf.description]).rows
        }
        var lots: [String: [PlanLot]] = [:], expiries: [String: [String: String]] = [:]
        for row in lotRows {
            let key = "\(try row.decode("item", as: String.self))|\(try row.decode("facility", as: String.self))"
            let lot: String = try row.decode("lot")
            lots[key, default: []].append(PlanLot(lot: lot, quantity: try row.decode("quantity"), expiryDays: try row.decode("days")))
            if let expiry: String = try row.decode("expiry") { expiries[key, default: [:]][lot] = expiry }
        }
        for (item, positions) in byItem {
            byItem[item] = positions.map { p in
                var p = p
                if p.surplus > 0 { p.lots = lots["\(item)|\(p.site.code)"] ?? [] }
                return p
            }
        }
        return Inputs(positions: byItem, expiries: expiries)
    }

    public func plan(_ request: PlanRequest) async throws -> ReallocationPlan {
        let inputs = try await self.inputs(request)
        let byItem = inputs.positions, expiries = inputs.expiries

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
                    let key = "\(item)|\(donor.site.code)"
                    let lines = flow.lots.map { part -> PlannedOrder.Line in
                        let lot = donor.lots![part.lot]
                        return PlannedOrder.Line(lot: lot.lot, expiry: expiries[key]?[lot.lot], quantity: part.quantity)
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
