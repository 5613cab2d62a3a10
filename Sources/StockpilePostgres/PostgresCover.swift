import Foundation
import PQ
import StockpileCore

/// One facility × item row of the cover query (SPEC.md "Cover query").
public struct CoverRow: Sendable, Codable, Equatable {
    public var facility: String
    public var facilityName: String
    public var region: String
    public var designated: Bool
    public var item: String
    public var itemName: String
    public var category: ItemCategory
    public var dailyDemand: Double
    public var observedDemand: Double
    public var fullLoadDemand: Double?
    public var targetDays: Int
    public var physicalQty: Int64
    public var physicalDays: Double?
    public var expiringQty: Double
    public var contractQty: Int64
    public var contractDays: Double?
    public var capacityQty: Int64
    public var capacityDays: Double?
    public var totalDays: Double?
    public var shortfallQty: Int64
    public var contractShortfallQty: Int64
    public var band: CoverBand
    /// In transit to this facility on dispatched reallocation orders: on its way, not yet physical.
    public var inboundQty: Int64 = 0

    enum CodingKeys: String, CodingKey {
        case facility, region, designated, item, category, band
        case facilityName = "facility_name", itemName = "item_name", dailyDemand = "daily_demand",
             observedDemand = "observed_demand", fullLoadDemand = "full_load_demand", targetDays = "target_days",
             physicalQty = "physical_qty", physicalDays = "physical_days", expiringQty = "expiring_qty",
             contractQty = "contract_qty", contractDays = "contract_days", capacityQty = "capacity_qty",
             capacityDays = "capacity_days", totalDays = "total_days", shortfallQty = "shortfall_qty",
             contractShortfallQty = "contract_shortfall_qty", inboundQty = "inbound_qty"
    }
}

public struct CoverFilter: Sendable {
    public var facility: String?
    public var region: String?
    public var item: String?
    public var category: ItemCategory?
    public var designated: Bool?
    public init(facility: String? = nil, region: String? = nil, item: String? = nil, category: ItemCategory? = nil, designated: Bool? = nil) {
        self.facility = facility; self.region = region; self.item = item; self.category = category; self.designated = designated
    }
}

/// Cover per facility × item. PostgreSQL gathers each position's lots, its demand window (day by
/// day: on-hand at the start, received, issued), its plan and its reserves in one query; the rules
/// (the FEFO walk, stockout-adjusted demand, shortfalls) are StockpileCore's, the one implementation.
public struct PostgresCover: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    let timeZone: TimeZone

    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    static let windowDays = CoverSQL.windowDays

    static let positionsSQL = """
        WITH RECURSIVE subtree AS (
            SELECT id FROM regions WHERE $2::text IS NULL OR code = $2
            UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
        ),
        window_days AS (
            SELECT d::date AS day FROM generate_series($1::date - \(windowDays), $1::date - 1, interval '1 day') d
        ),
        positions AS (
            SELECT f.id AS facility_id, f.code AS facility, f.name AS facility_name, r.code AS region, f.designated,
                   i.id AS item_id, i.code AS item, i.name AS item_name, i.category, i.target_days,
                   (SELECT ct.target_days FROM category_targets ct WHERE ct.category = i.category) AS category_target
            FROM facilities f JOIN regions r ON r.id = f.region_id CROSS JOIN items i
            WHERE f.region_id IN (SELECT id FROM subtree) AND stockpile_in_scope(f.id)
              AND ($3::text IS NULL OR f.code = $3) AND ($4::text IS NULL OR i.code = $4)
              AND ($5::text IS NULL OR i.category = $5) AND ($6::boolean IS NULL OR f.designated = $6)
        )
        SELECT p.*,
            (SELECT dp.full_load_daily::float8 FROM demand_plans dp WHERE dp.facility_id = p.facility_id AND dp.item_id = p.item_id) AS full_load,
            \(CoverSQL.inbound("p")),
            lots.quantities, lots.expiries, lots.held,
            days.opening, days.received, days.issued,
            k.remaining, k.lead, k.k_from, k.k_to,
            c.daily, c.ramp, c.c_from, c.c_to, c.certified
        FROM positions p
        LEFT JOIN LATERAL (
            SELECT array_agg(b.quantity) AS quantities, array_agg(coalesce(l.expiry::text, '')) AS expiries, array_agg(\(CoverSQL.held)) AS held
            FROM balances b JOIN lots l ON l.id = b.lot_id
            WHERE b.facility_id = p.facility_id AND b.item_id = p.item_id AND b.quantity > 0
        ) lots ON true
        LEFT JOIN LATERAL (
            -- Each window day: on-hand at its start (everything before it), what came in, what was issued.
            SELECT array_agg(coalesce(before.total, 0) + coalesce(sum_before.net, 0) ORDER BY w.day) AS opening,
                   array_agg(coalesce(d.received, 0) ORDER BY w.day) AS received,
                   array_agg(coalesce(d.issued, 0) ORDER BY w.day) AS issued
            FROM window_days w
            CROSS JOIN LATERAL (
                SELECT sum(m.quantity) AS total FROM movements m
                WHERE m.facility_id = p.facility_id AND m.item_id = p.item_id
                  AND m.occurred_at < ($1::date - \(windowDays))::timestamp AT TIME ZONE $7
            ) before
            LEFT JOIN LATERAL (
                SELECT sum(m.quantity) AS net FROM movements m
                WHERE m.facility_id = p.facility_id AND m.item_id = p.item_id
                  AND m.occurred_at >= ($1::date - \(windowDays))::timestamp AT TIME ZONE $7
                  AND m.occurred_at < w.day::timestamp AT TIME ZONE $7
            ) sum_before ON true
            LEFT JOIN LATERAL (
                SELECT sum(m.quantity) FILTER (WHERE m.kind IN ('receipt', 'transfer_in')) AS received,
                       -sum(m.quantity) FILTER (WHERE m.kind = 'issue') AS issued
                FROM movements m
                WHERE m.facility_id = p.facility_id AND m.item_id = p.item_id
                  AND m.occurred_at >= w.day::timestamp AT TIME ZONE $7 AND m.occurred_at < (w.day + 1)::timestamp AT TIME ZONE $7
            ) d ON true
        ) days ON true
        LEFT JOIN LATERAL (
            SELECT array_agg(k.committed - k.called_off) AS remaining, array_agg(k.lead_time_days) AS lead,
                   array_agg(k.valid_from::text) AS k_from, array_agg(k.valid_to::text) AS k_to
            FROM contracts k WHERE k.facility_id = p.facility_id AND k.item_id = p.item_id
        ) k ON true
        LEFT JOIN LATERAL (
            SELECT array_agg(c.daily_capacity) AS daily, array_agg(c.ramp_up_days) AS ramp,
                   array_agg(c.valid_from::text) AS c_from, array_agg(c.valid_to::text) AS c_to, array_agg(c.certified) AS certified
            FROM capacity_pledges c WHERE c.facility_id = p.facility_id AND c.item_id = p.item_id
        ) c ON true
        ORDER BY p.facility, p.item
        """

    /// Cover of every position the filter and the scope select, as of `asOf`, with demand × `surge`.
    public func positions(_ filter: CoverFilter, asOf: LocalDate, surge: Double = 1) async throws -> [CoverRow] {
        try await positionsRead(filter, asOf: asOf, surge: surge, preferReplica: false).rows
    }

    /// The same, read from the replica when it is current (a page of cover for the command centre).
    func positionsRead(_ filter: CoverFilter, asOf: LocalDate, surge: Double, preferReplica: Bool = true) async throws -> (rows: [CoverRow], origin: ReadOrigin) {
        let parameters: [any PQEncodable] = [asOf.description, filter.region, filter.facility, filter.item,
                                             filter.category?.rawValue, filter.designated, timeZone.identifier]
        return try await database.read(scope, preferReplica: preferReplica) { c in
            try c.query(Self.positionsSQL, parameters).rows.map { row in try Self.cover(row, asOf: asOf, surge: surge) }
        }
    }

    static func ints(_ row: PQRow, _ column: String) throws -> [Int64] {
        PQArrayText.parse(try row.decode(column, as: String?.self) ?? "{}").compactMap { Int64($0) }
    }
    static func texts(_ row: PQRow, _ column: String) throws -> [String] {
        PQArrayText.parse(try row.decode(column, as: String?.self) ?? "{}")
    }
    static func bools(_ row: PQRow, _ column: String) throws -> [Bool] {
        try texts(row, column).map { $0 == "t" }
    }

    static func cover(_ row: PQRow, asOf: LocalDate, surge: Double) throws -> CoverRow {
        let category = ItemCategory(rawValue: try row.decode("category"))!
        let categoryTarget: Int? = try row.decode("category_target")
        let target = TargetPolicy(byCategory: categoryTarget.map { [category: $0] } ?? [:])
            .targetDays(itemOverride: try row.decode("target_days"), category: category)
        let quantities = try ints(row, "quantities"), expiries = try texts(row, "expiries"), held = try bools(row, "held")
        let lots = quantities.indices.map { LotStock(quantity: quantities[$0], expiry: LocalDate(expiries[$0]), quarantined: held[$0]) }
        let opening = try ints(row, "opening"), received = try ints(row, "received"), issued = try ints(row, "issued")
        let window = opening.indices.map { DayActivity(openingOnHand: opening[$0], received: received[$0], issued: issued[$0]) }
        let observed = Demand.observed(window)
        let fullLoad: Double? = try row.decode("full_load")
        let demand = Demand.basis(observed: observed, fullLoad: fullLoad, surge: surge)
        let remaining = try ints(row, "remaining"), lead = try ints(row, "lead"), kFrom = try texts(row, "k_from"), kTo = try texts(row, "k_to")
        let contracts = remaining.indices.map {
            ContractReserve(committed: remaining[$0], calledOff: 0, leadTimeDays: Int(lead[$0]),
                            validFrom: LocalDate(kFrom[$0])!, validTo: LocalDate(kTo[$0])!, local: false)
        }
        let daily = try ints(row, "daily"), ramp = try ints(row, "ramp"), cFrom = try texts(row, "c_from"), cTo = try texts(row, "c_to")
        let certified = try bools(row, "certified")
        let capacity = daily.indices.map {
            CapacityReserve(dailyCapacity: daily[$0], rampUpDays: Int(ramp[$0]), validFrom: LocalDate(cFrom[$0])!,
                            validTo: LocalDate(cTo[$0])!, certified: certified[$0], local: false)
        }
        let p = PositionCover(lots: lots, contracts: contracts, capacity: capacity, dailyDemand: demand, targetDays: target, asOf: asOf)
        return CoverRow(facility: try row.decode("facility"), facilityName: try row.decode("facility_name"), region: try row.decode("region"),
                        designated: try row.decode("designated"), item: try row.decode("item"), itemName: try row.decode("item_name"),
                        category: category, dailyDemand: p.dailyDemand, observedDemand: observed, fullLoadDemand: fullLoad,
                        targetDays: p.targetDays, physicalQty: p.physicalQuantity, physicalDays: p.physicalDays,
                        expiringQty: p.expiringQuantity, contractQty: p.contractQuantity, contractDays: p.contractDays,
                        capacityQty: p.capacityQuantity, capacityDays: p.capacityDays, totalDays: p.totalDays,
                        shortfallQty: p.shortfallQuantity, contractShortfallQty: p.contractShortfallQuantity, band: p.band,
                        inboundQty: try row.decode("inbound_qty"))
    }
}
