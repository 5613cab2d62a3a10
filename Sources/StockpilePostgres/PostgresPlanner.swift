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
        public init(lot: String, expiry: String?, quantity: Int64) { self.lot = lot; self.expiry = expiry; self.quantity = quantity }
    }
    public var item: String
    public var from: String
    public var to: String
    public var quantity: Int64
    public var distanceKm: Double
    public var lines: [Line]
    enum CodingKeys: String, CodingKey { case item, from, to, quantity, lines, distanceKm = "distance_km" }
    public init(item: String, from: String, to: String, quantity: Int64, distanceKm: Double, lines: [Line]) {
        self.item = item; self.from = from; self.to = to; self.quantity = quantity; self.distanceKm = distanceKm; self.lines = lines
    }
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
    /// Whether the inputs may come from the read replica: for a plan that is only shown (the plan
    /// preview); a plan that becomes orders reads the primary.
    public var readsFromReplica = false

    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    /// Positions that need or may give: a superset (the surplus is decided in StockpileCore).
    /// Columns by position: the read goes through `copyRows`, which streams them in binary.
    static func candidates(from source: String) -> String {
        """
        SELECT cp.item_id, cp.facility_id, cp.physical_qty::int8, cp.daily_demand::float8, cp.target_days, cp.shortfall_qty::int8
        FROM \(source) cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
        WHERE (cp.shortfall_qty > 0 OR cp.physical_qty > cp.target_days * cp.daily_demand - 1)
          AND (cp.shortfall_qty > 0 OR cp.physical_qty > 0)  -- nothing to give, nothing needed (14% of a city)
          AND f.latitude IS NOT NULL AND f.longitude IS NOT NULL AND \(CoverSQL.filterClause)
        """
    }

    /// Every usable lot in scope; the planner keeps the donors'. Read from the ledger's balances
    /// directly, not through cover, so the one query serves a snapshot date and a computed one
    /// alike. Unordered: a city has millions, and sorting them by code on the server took longer
    /// than reading them (the few lots of each position are put in order as they are gathered).
    /// The lots themselves (numbers, expiry) are read once each, not on each of millions of balances.
    static let usableLots = """
        WITH RECURSIVE \(CoverSQL.subtree)
        SELECT b.item_id, b.facility_id, b.lot_id, b.quantity::int8
        FROM balances b JOIN lots l ON l.id = b.lot_id JOIN facilities f ON f.id = b.facility_id JOIN items i ON i.id = b.item_id
        WHERE b.quantity > 0 AND NOT \(CoverSQL.held) AND (l.expiry IS NULL OR l.expiry > $1::date)
          AND f.latitude IS NOT NULL AND f.longitude IS NOT NULL AND \(CoverSQL.filterClause)
          AND $2::text IS NOT NULL AND $3::float8 > 0  -- the cover queries' parameters; time zone and surge do not bear on lots
        """

    /// What the planner works from, per item: the positions that need or may give, donors with
    /// their usable lots (earliest expiry first; a lot's expiry date is as-of plus its days).
    public struct Inputs: Sendable, Codable {
        public var positions: [String: [PlanPosition]]
    }

    /// Positions as read: per item (its code), the positions and their facilities' ids.
    struct ReadPositions: Sendable {
        var items: [Int64: Int] = [:]
        var codes: [String] = []
        var positions: [[PlanPosition]] = []
        var facilities: [[Int64]] = []
        /// Each facility's place in code order.
        var facilityRanks: [Int64: Int] = [:]
    }

    /// Usable lots as read: column by column, one entry a balance.
    struct ReadLots: Sendable {
        var items: [Int64] = [], facilities: [Int64] = [], lots: [PlanLot] = []
    }

    public func inputs(_ request: PlanRequest) async throws -> Inputs {
        let cover = PostgresCover(database, scope: scope, timeZone: timeZone)
        let zone = timeZone.identifier
        let parameters: [any PQEncodable] = [request.asOf.description, zone, 1.0, request.region, nil as String?, request.item,
                                             nil as String?, nil as Bool?]
        let (useSnapshot, refreshed) = try await cover.snapshotState(asOf: request.asOf)
        // A city has millions of positions and lots: both are streamed in binary (`copyRows`) and
        // taken apart while the server produces the rest, positions and lots on two connections at
        // once. (Read whole as text first, the client's parsing came after the server's 4.7 s.)
        async let positionsRead: (ReadPositions, ReadOrigin) = database.read(scope, preferReplica: readsFromReplica, replayed: refreshed) { c in
            if let region = request.region, try c.query("SELECT 1 FROM regions WHERE code = $1", [region]).rows.isEmpty {
                throw Refusal(kind: .notFound, field: "region", description: "no region \(region)")
            }
            if let item = request.item, try c.query("SELECT 1 FROM items WHERE code = $1", [item]).rows.isEmpty {
                throw Refusal(kind: .notFound, field: "item", description: "no item \(item)")
            }
            let sql: String
            // The snapshot as this connection sees it: a replica may not have replayed today's
            // rebuild yet, and reading a snapshot that is not current would find no positions at all.
            let snapshotHere = try useSnapshot && c.query("SELECT \(CoverSQL.snapshotCurrent) AS current",
                                                          [request.asOf.description, zone, 1.0]).rows[0].decode("current", as: Bool.self)
            if snapshotHere {
                sql = "WITH RECURSIVE \(CoverSQL.subtree)\n\(Self.candidates(from: "cover_positions")) \(CoverSQL.snapshotCheck)"
            } else {
                sql = """
                    WITH RECURSIVE \(CoverSQL.subtree),
                    positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i WHERE \(CoverSQL.filterClause)),
                    \(CoverSQL.compute(restricted: true))
                    \(Self.candidates(from: "computed"))
                    """
            }
            // By item id, and each position's facility id beside it, for joining the lots after.
            var items: [Int64: Int] = [:]
            var read = ReadPositions()
            // Codes, places and designation once per facility and item, not on each of millions of
            // rows (a third of the read was parsing coordinates and codes over and over).
            var sites: [Int64: (site: PlanSite, designated: Bool)] = [:], itemCodes: [Int64: String] = [:]
            try c.scan("SELECT id, code, latitude, longitude, designated FROM facilities WHERE latitude IS NOT NULL AND longitude IS NOT NULL") { row in
                sites[row.int64(0)] = (PlanSite(code: row.string(1), latitude: row.double(2), longitude: row.double(3)), row.bool(4))
            }
            try c.scan("SELECT id, code FROM items") { row in itemCodes[row.int64(0)] = row.string(1) }
            for (rank, facility) in sites.keys.sorted(by: { sites[$0]!.site.code < sites[$1]!.site.code }).enumerated() {
                read.facilityRanks[facility] = rank
            }
            try c.copyRows(sql, parameters) { row in
                let itemID = row.int64(0), facilityID = row.int64(1)
                guard let (site, designated) = sites[facilityID], let code = itemCodes[itemID] else { return }
                let n = items[itemID] ?? {
                    items[itemID] = read.codes.count
                    read.codes.append(code); read.positions.append([]); read.facilities.append([])
                    return read.codes.count - 1
                }()
                read.positions[n].append(PlanPosition(site: site, designated: designated, usable: row.int64(2), dailyDemand: row.double(3),
                                                      targetDays: Int(row.int64(4)), shortfall: row.int64(5)))
                read.facilities[n].append(facilityID)
            }
            read.items = items
            return read
        }
        // As they come: item id, facility id and the lot, gathered per position below.
        async let lotsRead: (ReadLots, ReadOrigin) = database.read(scope, preferReplica: readsFromReplica, replayed: refreshed) { c in
            var read = ReadLots()
            var lots: [Int64: PlanLot] = [:]
            try c.scan("SELECT id, lot_number, expiry - $1::date FROM lots", [request.asOf.description]) { row in
                lots[row.int64(0)] = PlanLot(lot: row.string(1), quantity: 0, expiryDays: row.int64OrNil(2).map { Int($0) })
            }
            try c.copyRows(Self.usableLots, [request.asOf.description, zone, 1.0, request.region, nil as String?, request.item,
                                             nil as String?, nil as Bool?]) { row in
                guard var lot = lots[row.int64(2)] else { return }
                lot.quantity = row.int64(3)
                read.items.append(row.int64(0)); read.facilities.append(row.int64(1)); read.lots.append(lot)
            }
            return read
        }
        let positions = try await positionsRead.0, lots = try await lotsRead.0
        // Each lot to its item's list (by row), then the items side by side: donors get their lots,
        // earliest expiry first (then by lot number, as orders list them), and every item's
        // positions go in facility order. Done item by item on one core this took 1.5–1.9 s of a
        // city's 6.
        let lotRows = lots.items.enumerated().reduce(into: [[Int]](repeating: [], count: positions.codes.count)) { rows, lot in
            if let n = positions.items[lot.element] { rows[n].append(lot.offset) }
        }
        let ranks = positions.facilityRanks
        let gathered = Mutex([[PlanPosition]](repeating: [], count: positions.codes.count))
        DispatchQueue.concurrentPerform(iterations: positions.codes.count) { n in
            var mine = positions.positions[n]
            let facilities = positions.facilities[n]
            var donorAt: [Int64: Int] = [:]
            for k in mine.indices where mine[k].surplus > 0 {
                donorAt[facilities[k]] = k
                mine[k].lots = []
            }
            for row in lotRows[n] {
                if let k = donorAt[lots.facilities[row]] { mine[k].lots!.append(lots.lots[row]) }
            }
            for k in donorAt.values where mine[k].lots!.count > 1 {
                mine[k].lots!.sort { ($0.expiryDays ?? .max, $0.lot) < ($1.expiryDays ?? .max, $1.lot) }
            }
            // In facility order: rows come in whatever order the server's scan gives, and equal-cost
            // plans would otherwise differ from one run to the next.
            let rank = facilities.map { ranks[$0]! }
            let ordered = mine.indices.sorted { rank[$0] < rank[$1] }.map { mine[$0] }
            gathered.withLock { $0[n] = ordered }
        }
        let all = gathered.withLock { $0 }
        var byItem: [String: [PlanPosition]] = [:]
        for (n, code) in positions.codes.enumerated() { byItem[code] = all[n] }
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
            // Items are independent: solved side by side on every core (GCD's threads, not Swift's
            // pool), the slowest first so that no core is left with one of them at the end: those
            // short of stock but nearly balanced (their searches go far), then by pairs.
            let names = byItem.keys.sorted()
            let effort = names.map { Reallocation.effort(byItem[$0]!) }
            let order = names.indices.sorted { a, b in
                effort[a].balanced != effort[b].balanced ? effort[a].balanced : effort[a].pairs > effort[b].pairs
            }
            let solved = Mutex([(summary: ItemPlanSummary, orders: [PlannedOrder])?](repeating: nil, count: names.count))
            DispatchQueue.concurrentPerform(iterations: names.count) { k in
                let n = order[k], item = names[n]
                let (plan, donors, receivers) = Reallocation.plan(byItem[item]!, options: PlanOptions(maxDistanceKm: request.maxDistanceKm,
                                                                                                    minimumOrder: request.minOrder))
                let summary = ItemPlanSummary(item: item, donors: donors.count, receivers: receivers.count, needBefore: plan.needBefore,
                                              covered: plan.covered, weightedCovered: plan.weightedCovered, unmet: plan.unmet,
                                              quantityKm: plan.quantityKm)
                // An item's lots share a few expiry dates among millions of lines: each written once.
                var expiryText: [Int: String] = [:]
                func expiry(_ days: Int) -> String {
                    if let text = expiryText[days] { return text }
                    let text = request.asOf.adding(days: days).description
                    expiryText[days] = text
                    return text
                }
                let orders = plan.flows.map { flow in
                    let donor = donors[flow.donor]
                    let lines = flow.lots.map { part -> PlannedOrder.Line in
                        let lot = donor.lots![part.lot]
                        return PlannedOrder.Line(lot: lot.lot, expiry: lot.expiryDays.map(expiry), quantity: part.quantity)
                    }
                    return PlannedOrder(item: item, from: donor.site.code, to: receivers[flow.receiver].site.code, quantity: flow.quantity,
                                        distanceKm: (flow.distanceKm * 1000).rounded() / 1000, lines: lines)
                }
                solved.withLock { $0[n] = (summary, orders) }
            }
            let results = solved.withLock { $0 }.map { $0! }
            return (results.map(\.summary), results.flatMap(\.orders))
        }
        let total = ItemPlanSummary(item: request.item ?? "", donors: summaries.reduce(0) { $0 + $1.donors },
                                    receivers: summaries.reduce(0) { $0 + $1.receivers },
                                    needBefore: summaries.reduce(0) { $0 + $1.needBefore }, covered: summaries.reduce(0) { $0 + $1.covered },
                                    weightedCovered: summaries.reduce(0) { $0 + $1.weightedCovered }, unmet: summaries.reduce(0) { $0 + $1.unmet },
                                    quantityKm: summaries.reduce(0) { $0 + $1.quantityKm })
        return ReallocationPlan(asOf: request.asOf, region: request.region, items: summaries, orders: orders, summary: total)
    }
}
