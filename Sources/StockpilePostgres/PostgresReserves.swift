import Foundation
import PQ
import StockpileCore

/// Changes to what cover is computed from, through the API: full-load demand plans (entered, or
/// beds × a per-bed-day rate), category targets, contracts and their call-offs, capacity pledges,
/// and holds on lots. Every change is one transaction with its audit row; the cover snapshot
/// follows through the triggers of sql/0005_cover.sql.
public struct PostgresReserves: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope

    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    // MARK: demand

    public struct DemandPlan: Sendable, Codable, Equatable {
        public var facility: String
        public var item: String
        public var fullLoadDaily: Double
        enum CodingKeys: String, CodingKey { case facility, item, fullLoadDaily = "full_load_daily" }
    }

    public func demandPlans(facility: String?, item: String?) async throws -> [DemandPlan] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT f.code AS facility, i.code AS item, dp.full_load_daily::float8 AS daily
                FROM demand_plans dp JOIN facilities f ON f.id = dp.facility_id JOIN items i ON i.id = dp.item_id
                WHERE ($1::text IS NULL OR f.code = $1) AND ($2::text IS NULL OR i.code = $2)
                ORDER BY f.code, i.code
                """, [facility, item]).rows.map(Self.plan)
        }
    }

    static func plan(_ row: PQRow) throws -> DemandPlan {
        DemandPlan(facility: try row.decode("facility"), item: try row.decode("item"), fullLoadDaily: try row.decode("daily"))
    }

    /// Sets (or with nil removes) a position's full-load daily demand.
    public func setFullLoad(facility: String, item: String, daily: Double?) async throws -> DemandPlan? {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            let (facilityID, itemID) = try Self.position(c, facility: facility, item: item)
            let plan: DemandPlan?
            if let daily {
                plan = try c.query("""
                    INSERT INTO demand_plans (facility_id, item_id, full_load_daily) VALUES ($1, $2, $3::numeric)
                    ON CONFLICT (facility_id, item_id) DO UPDATE SET full_load_daily = EXCLUDED.full_load_daily, updated_at = now()
                    RETURNING $4::text AS facility, $5::text AS item, full_load_daily::float8 AS daily
                    """, [facilityID, itemID, String(daily), facility, item]).rows.first.map(Self.plan)
            } else {
                try c.query("DELETE FROM demand_plans WHERE facility_id = $1 AND item_id = $2", [facilityID, itemID])
                plan = nil
            }
            try PostgresTokens.audit(c, scope: scope, action: daily == nil ? "demand.clear" : "demand.set", target: "\(facility)/\(item)",
                                     detail: daily.map { "full_load_daily=\($0)" }, facilityIDs: [facilityID])
            return plan
        }
    }

    /// Full-load demand of `item` = beds × `perBedDay` for every facility with beds in the region
    /// subtree (all in scope when nil). Returns the plans set.
    public func deriveFullLoad(item: String, perBedDay: Double, region: String?) async throws -> [DemandPlan] {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            guard try c.query("SELECT 1 FROM items WHERE code = $1", [item]).rows.count == 1 else {
                throw Refusal(kind: .notFound, field: "item", description: "no item \(item)")
            }
            if let region, try c.query("SELECT 1 FROM regions WHERE code = $1", [region]).rows.isEmpty {
                throw Refusal(kind: .notFound, field: "region", description: "no region \(region)")
            }
            let result = try c.query("""
                WITH RECURSIVE subtree AS (
                    SELECT id FROM regions WHERE code = $3
                    UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
                ), set AS (
                    INSERT INTO demand_plans (facility_id, item_id, full_load_daily)
                    SELECT f.id, i.id, f.beds * $2::numeric FROM facilities f, items i
                    WHERE i.code = $1 AND f.beds > 0 AND stockpile_in_scope(f.id)
                      AND ($3::text IS NULL OR f.region_id IN (SELECT id FROM subtree))
                    ON CONFLICT (facility_id, item_id) DO UPDATE SET full_load_daily = EXCLUDED.full_load_daily, updated_at = now()
                    RETURNING facility_id, full_load_daily
                )
                SELECT f.id, f.code AS facility, $1::text AS item, s.full_load_daily::float8 AS daily
                FROM set s JOIN facilities f ON f.id = s.facility_id ORDER BY f.code
                """, [item, String(perBedDay), region])
            let plans = try result.rows.map(Self.plan)
            try PostgresTokens.audit(c, scope: scope, action: "demand.derive", target: item,
                                     detail: "per_bed_day=\(perBedDay) region=\(region ?? "all") facilities=\(plans.count)",
                                     facilityIDs: try result.rows.map { try $0.decode("id") })
            return plans
        }
    }

    static func position(_ c: PQConnection, facility: String, item: String) throws -> (Int, Int) {
        guard let f = try c.query("SELECT id FROM facilities WHERE code = $1 AND stockpile_in_scope(id)", [facility]).rows.first else {
            throw Refusal(kind: .notFound, field: "facility", description: "no facility \(facility) in this token's scope")
        }
        guard let i = try c.query("SELECT id FROM items WHERE code = $1", [item]).rows.first else {
            throw Refusal(kind: .notFound, field: "item", description: "no item \(item)")
        }
        return (try f.decode("id"), try i.decode("id"))
    }

    // MARK: targets

    public struct CategoryTarget: Sendable, Codable, Equatable {
        public var category: ItemCategory
        public var targetDays: Int
        /// Whether it is set here or is the default of 30.
        public var configured: Bool
        enum CodingKeys: String, CodingKey { case category, configured, targetDays = "target_days" }
    }

    public func targets() async throws -> [CategoryTarget] {
        let configured: [String: Int] = try await database.withConnection(scope) { c in
            Dictionary(uniqueKeysWithValues: try c.query("SELECT category, target_days FROM category_targets").rows.map {
                (try $0.decode("category", as: String.self), try $0.decode("target_days", as: Int.self))
            })
        }
        return ItemCategory.allCases.map {
            CategoryTarget(category: $0, targetDays: configured[$0.rawValue] ?? 30, configured: configured[$0.rawValue] != nil)
        }
    }

    public func setTarget(category: ItemCategory, days: Int) async throws -> CategoryTarget {
        let scope = self.scope
        try await database.transaction(scope) { c in
            try c.query("""
                INSERT INTO category_targets (category, target_days) VALUES ($1, $2)
                ON CONFLICT (category) DO UPDATE SET target_days = EXCLUDED.target_days, updated_at = now()
                """, [category.rawValue, days])
            try PostgresTokens.audit(c, scope: scope, action: "target.set", target: category.rawValue, detail: "target_days=\(days)")
        }
        return CategoryTarget(category: category, targetDays: days, configured: true)
    }

    // MARK: contracts

    public struct Contract: Sendable, Codable, Equatable {
        public var code: String
        public var facility: String
        public var supplier: String
        public var item: String
        public var quantity: Int64
        public var calledOff: Int64
        public var remaining: Int64
        public var leadTimeDays: Int
        public var validFrom: String
        public var validTo: String
        public var local: Bool
        enum CodingKeys: String, CodingKey {
            case code, facility, supplier, item, quantity, remaining, local
            case calledOff = "called_off", leadTimeDays = "lead_time_days", validFrom = "valid_from", validTo = "valid_to"
        }
    }

    static let contractColumns = """
        k.code, f.code AS facility, k.supplier, i.code AS item, k.committed, k.called_off, k.lead_time_days,
        k.valid_from::text AS valid_from, k.valid_to::text AS valid_to, k.local
        """

    static func contract(_ row: PQRow) throws -> Contract {
        let committed: Int64 = try row.decode("committed"), calledOff: Int64 = try row.decode("called_off")
        return Contract(code: try row.decode("code"), facility: try row.decode("facility"), supplier: try row.decode("supplier"),
                        item: try row.decode("item"), quantity: committed, calledOff: calledOff, remaining: committed - calledOff,
                        leadTimeDays: try row.decode("lead_time_days"), validFrom: try row.decode("valid_from"),
                        validTo: try row.decode("valid_to"), local: try row.decode("local"))
    }

    public func contracts(facility: String?, item: String?) async throws -> [Contract] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT \(Self.contractColumns) FROM contracts k JOIN facilities f ON f.id = k.facility_id JOIN items i ON i.id = k.item_id
                WHERE ($1::text IS NULL OR f.code = $1) AND ($2::text IS NULL OR i.code = $2) ORDER BY k.code
                """, [facility, item]).rows.map(Self.contract)
        }
    }

    /// Creates or updates a contract by code. The called-off quantity is not an input: it starts
    /// at 0 and moves only by call-offs; a committed quantity below it is refused.
    public func putContract(code: String, facility: String, supplier: String, item: String, quantity: Int64, leadTimeDays: Int,
                            validFrom: LocalDate, validTo: LocalDate, local: Bool) async throws -> (Contract, created: Bool) {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            let (facilityID, itemID) = try Self.position(c, facility: facility, item: item)
            if let existing = try c.query("SELECT called_off, stockpile_in_scope(facility_id) AS mine FROM contracts WHERE code = $1 FOR UPDATE",
                                          [code]).rows.first {
                guard try existing.decode("mine", as: Bool.self) else {
                    throw Refusal(kind: .conflict, field: "code", description: "contract \(code) belongs to a facility outside this token's scope")
                }
                let calledOff: Int64 = try existing.decode("called_off")
                guard quantity >= calledOff else {
                    throw Refusal(kind: .conflict, field: "quantity", description: "\(calledOff) already called off; the quantity cannot be less")
                }
            }
            let row = try Self.codeTaken("contract", code) { try c.query("""
                INSERT INTO contracts AS k (code, facility_id, item_id, supplier, committed, called_off, lead_time_days, valid_from, valid_to, local)
                VALUES ($1, $2, $3, $4, $5, 0, $6, $7::date, $8::date, $9)
                ON CONFLICT (code) DO UPDATE SET facility_id = EXCLUDED.facility_id, item_id = EXCLUDED.item_id, supplier = EXCLUDED.supplier,
                    committed = EXCLUDED.committed, lead_time_days = EXCLUDED.lead_time_days, valid_from = EXCLUDED.valid_from,
                    valid_to = EXCLUDED.valid_to, local = EXCLUDED.local, updated_at = now()
                RETURNING (xmax = 0) AS created
                """, [code, facilityID, itemID, supplier, quantity, leadTimeDays, validFrom.description, validTo.description, local]).rows[0] }
            let created: Bool = try row.decode("created")
            try PostgresTokens.audit(c, scope: scope, action: created ? "contract.create" : "contract.update", target: code,
                                     detail: "\(facility)/\(item) quantity=\(quantity) lead=\(leadTimeDays) \(validFrom)…\(validTo)",
                                     facilityIDs: [facilityID])
            return (try Self.contract(code, c), created)
        }
    }

    /// Runs an upsert by code. Codes are unique city-wide, and row-level security hides another
    /// region's row, so the upsert meets it as a policy violation (42501): that is 409 "in use",
    /// not a 500 (which told a command token no more, but said it as a failure).
    static func codeTaken<T>(_ what: String, _ code: String, _ upsert: () throws -> T) throws -> T {
        do {
            return try upsert()
        } catch let error as PQError where error.sqlState == "42501" {
            throw Refusal(kind: .conflict, field: "code", description: "\(what) code \(code) is already in use outside this token's scope; choose another")
        }
    }

    static func contract(_ code: String, _ c: PQConnection) throws -> Contract {
        guard let row = try c.query("""
            SELECT \(contractColumns) FROM contracts k JOIN facilities f ON f.id = k.facility_id JOIN items i ON i.id = k.item_id
            WHERE k.code = $1
            """, [code]).rows.first else {
            throw Refusal(kind: .notFound, field: "code", description: "no contract \(code) in this token's scope")
        }
        return try contract(row)
    }

    public struct CallOff: Sendable, Codable, Equatable {
        public var id: UUID
        public var contract: String
        public var quantity: Int64
        public var note: String
        public var recordedAt: Date
        public var recordedBy: String
        enum CodingKeys: String, CodingKey { case id, contract, quantity, note, recordedAt = "recorded_at", recordedBy = "recorded_by" }
    }

    /// Records a call-off exactly once: the same id with the same body is a replay (the original
    /// comes back), with another body a conflict; never beyond what remains of the contract.
    public func callOff(contract code: String, id: UUID, quantity: Int64, note: String) async throws -> (CallOff, Contract, replay: Bool) {
        let scope = self.scope
        return try await database.transaction(scope, retryOnConnectionLoss: true) { c in
            // The contract row is the lock: concurrent call-offs against it queue here.
            guard let contract = try c.query("""
                SELECT k.id, k.committed - k.called_off AS remaining, k.facility_id FROM contracts k WHERE k.code = $1 FOR UPDATE
                """, [code]).rows.first else {
                throw Refusal(kind: .notFound, field: "contract", description: "no contract \(code) in this token's scope")
            }
            let contractID: Int = try contract.decode("id"), facilityID: Int = try contract.decode("facility_id")
            if let earlier = try c.query("""
                SELECT o.id, k.code AS contract, o.quantity, o.note, o.recorded_at, o.recorded_by
                FROM contract_calloffs o JOIN contracts k ON k.id = o.contract_id WHERE o.id = $1
                """, [id]).rows.first {
                let original = try Self.callOff(earlier)
                guard original.contract == code, original.quantity == quantity, original.note == note else {
                    throw Refusal(kind: .conflict, field: "id", description: "call-off \(id) was already recorded with a different body")
                }
                return (original, try Self.contract(code, c), true)
            }
            let remaining: Int64 = try contract.decode("remaining")
            guard quantity <= remaining else {
                throw Refusal(kind: .conflict, field: "quantity", description: "only \(remaining) left on contract \(code); cannot call off \(quantity)")
            }
            let row = try c.query("""
                INSERT INTO contract_calloffs (id, contract_id, quantity, note, recorded_by) VALUES ($1, $2, $3, $4, $5)
                RETURNING id, $6::text AS contract, quantity, note, recorded_at, recorded_by
                """, [id, contractID, quantity, note, scope.actor, code]).rows[0]
            try c.query("UPDATE contracts SET called_off = called_off + $2, updated_at = now() WHERE id = $1", [contractID, quantity])
            try PostgresTokens.audit(c, scope: scope, action: "contract.calloff", target: code, detail: "id=\(id) quantity=\(quantity)",
                                     facilityIDs: [facilityID])
            return (try Self.callOff(row), try Self.contract(code, c), false)
        }
    }

    static func callOff(_ row: PQRow) throws -> CallOff {
        CallOff(id: try row.decode("id"), contract: try row.decode("contract"), quantity: try row.decode("quantity"),
                note: try row.decode("note"), recordedAt: try row.decode("recorded_at"), recordedBy: try row.decode("recorded_by"))
    }

    public func callOffs(contract code: String) async throws -> [CallOff] {
        try await database.withConnection(scope) { c in
            _ = try Self.contract(code, c)
            return try c.query("""
                SELECT o.id, k.code AS contract, o.quantity, o.note, o.recorded_at, o.recorded_by
                FROM contract_calloffs o JOIN contracts k ON k.id = o.contract_id WHERE k.code = $1 ORDER BY o.recorded_at, o.id
                """, [code]).rows.map(Self.callOff)
        }
    }

    // MARK: capacity

    public struct Pledge: Sendable, Codable, Equatable {
        public var code: String
        public var facility: String
        public var manufacturer: String
        public var item: String
        public var dailyCapacity: Int64
        public var rampUpDays: Int
        public var validFrom: String
        public var validTo: String
        public var certified: Bool
        public var local: Bool
        public init(code: String, facility: String, manufacturer: String, item: String, dailyCapacity: Int64, rampUpDays: Int,
                    validFrom: String, validTo: String, certified: Bool, local: Bool) {
            self.code = code; self.facility = facility; self.manufacturer = manufacturer; self.item = item
            self.dailyCapacity = dailyCapacity; self.rampUpDays = rampUpDays; self.validFrom = validFrom; self.validTo = validTo
            self.certified = certified; self.local = local
        }
        enum CodingKeys: String, CodingKey {
            case code, facility, manufacturer, item, certified, local
            case dailyCapacity = "daily_capacity", rampUpDays = "ramp_up_days", validFrom = "valid_from", validTo = "valid_to"
        }
    }

    static let pledgeSelect = """
        SELECT p.code, f.code AS facility, p.manufacturer, i.code AS item, p.daily_capacity, p.ramp_up_days,
               p.valid_from::text AS valid_from, p.valid_to::text AS valid_to, p.certified, p.local
        FROM capacity_pledges p JOIN facilities f ON f.id = p.facility_id JOIN items i ON i.id = p.item_id
        """

    static func pledge(_ row: PQRow) throws -> Pledge {
        Pledge(code: try row.decode("code"), facility: try row.decode("facility"), manufacturer: try row.decode("manufacturer"),
               item: try row.decode("item"), dailyCapacity: try row.decode("daily_capacity"), rampUpDays: try row.decode("ramp_up_days"),
               validFrom: try row.decode("valid_from"), validTo: try row.decode("valid_to"), certified: try row.decode("certified"),
               local: try row.decode("local"))
    }

    public func pledges(facility: String?, item: String?) async throws -> [Pledge] {
        try await database.withConnection(scope) { c in
            try c.query("\(Self.pledgeSelect) WHERE ($1::text IS NULL OR f.code = $1) AND ($2::text IS NULL OR i.code = $2) ORDER BY p.code",
                        [facility, item]).rows.map(Self.pledge)
        }
    }

    public func putPledge(_ p: Pledge) async throws -> (Pledge, created: Bool) {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            let (facilityID, itemID) = try Self.position(c, facility: p.facility, item: p.item)
            if let existing = try c.query("SELECT stockpile_in_scope(facility_id) AS mine FROM capacity_pledges WHERE code = $1", [p.code]).rows.first,
               !(try existing.decode("mine", as: Bool.self)) {
                throw Refusal(kind: .conflict, field: "code", description: "pledge \(p.code) belongs to a facility outside this token's scope")
            }
            let created: Bool = try Self.codeTaken("pledge", p.code) { try c.query("""
                INSERT INTO capacity_pledges (code, facility_id, item_id, manufacturer, daily_capacity, ramp_up_days, valid_from, valid_to, certified, local)
                VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8::date, $9, $10)
                ON CONFLICT (code) DO UPDATE SET facility_id = EXCLUDED.facility_id, item_id = EXCLUDED.item_id,
                    manufacturer = EXCLUDED.manufacturer, daily_capacity = EXCLUDED.daily_capacity, ramp_up_days = EXCLUDED.ramp_up_days,
                    valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to, certified = EXCLUDED.certified, local = EXCLUDED.local,
                    updated_at = now()
                RETURNING (xmax = 0) AS created
                """, [p.code, facilityID, itemID, p.manufacturer, p.dailyCapacity, p.rampUpDays, p.validFrom, p.validTo, p.certified, p.local])
                .rows[0].decode("created") }
            try PostgresTokens.audit(c, scope: scope, action: created ? "capacity.create" : "capacity.update", target: p.code,
                                     detail: "\(p.facility)/\(p.item) daily=\(p.dailyCapacity) ramp=\(p.rampUpDays) certified=\(p.certified)",
                                     facilityIDs: [facilityID])
            let stored = try Self.pledge(try c.query("\(Self.pledgeSelect) WHERE p.code = $1", [p.code]).rows[0])
            return (stored, created)
        }
    }

    // MARK: holds

    /// A lot and its active holds. `quarantined`, `reason`, `since` and `by` describe the widest
    /// active hold (an administrator's before a region's); `holds` lists every active one.
    public struct LotHold: Sendable, Codable, Equatable {
        public struct Hold: Sendable, Codable, Equatable {
            public var id: Int64
            /// The region whose subtree the hold covers; nil: everywhere.
            public var region: String?
            public var reason: String
            public var since: Date
            public var by: String
        }
        public var item: String
        public var lot: String
        public var expiry: String?
        public var quarantined: Bool
        public var reason: String?
        public var since: Date?
        public var by: String?
        public var holds: [Hold]
    }

    /// A lot with the active holds this scope sees (row-level security on lot_holds: a hold shows
    /// where it applies), the widest first; `quarantined` and the rest describe that widest one.
    static let lotSelect = """
        SELECT i.code AS item, l.lot_number AS lot, l.expiry::text AS expiry, w.id IS NOT NULL AS quarantined,
               w.reason, w.placed_at AS since, w.placed_by AS by,
               (SELECT coalesce(json_agg(json_build_object('id', h.id, 'region', r.code, 'reason', h.reason,
                                                           'since', extract(epoch FROM h.placed_at), 'by', h.placed_by)
                                         ORDER BY h.region_id NULLS FIRST, h.id), '[]')::text
                FROM lot_holds h LEFT JOIN regions r ON r.id = h.region_id
                WHERE h.lot_id = l.id AND h.released_at IS NULL) AS holds
        FROM lots l JOIN items i ON i.id = l.item_id
        LEFT JOIN LATERAL (SELECT h.id, h.reason, h.placed_at, h.placed_by FROM lot_holds h
                           WHERE h.lot_id = l.id AND h.released_at IS NULL AND l.quarantined
                           ORDER BY h.region_id NULLS FIRST, h.id LIMIT 1) w ON true
        """

    static func lot(_ row: PQRow) throws -> LotHold {
        struct Stored: Decodable { var id: Int64; var region: String?; var reason: String; var since: Double; var by: String }
        let stored = try JSONDecoder().decode([Stored].self, from: Data(try row.decode("holds", as: String.self).utf8))
        return LotHold(item: try row.decode("item"), lot: try row.decode("lot"), expiry: try row.decode("expiry"),
                       quarantined: try row.decode("quarantined"), reason: try row.decode("reason"), since: try row.decode("since"),
                       by: try row.decode("by"),
                       holds: stored.map { .init(id: $0.id, region: $0.region, reason: $0.reason,
                                                 since: Date(timeIntervalSince1970: $0.since), by: $0.by) })
    }

    /// Lots, with their holds. A token that does not see everything sees the lots its facilities
    /// hold or have held (balances answers only for its scope), not every lot in the city.
    public func lots(item: String?, held: Bool?) async throws -> [LotHold] {
        let scope = self.scope
        return try await database.withConnection(scope) { c in
            try c.query("""
                \(Self.lotSelect) WHERE ($1::text IS NULL OR i.code = $1) AND ($2::boolean IS NULL OR (w.id IS NOT NULL) = $2)
                  AND ($3 OR EXISTS (SELECT 1 FROM balances b WHERE b.lot_id = l.id))
                ORDER BY i.code, l.lot_number LIMIT 10000
                """, [item, held, scope.facilities == .all]).rows.map(Self.lot)
        }
    }

    /// Puts a lot on hold (quality inspection, recall) in this token's scope: an administrator's
    /// everywhere, a command token's in its region's subtree. Held stock is not usable there: cover
    /// and the planner leave it out, issues and dispatches are refused. Holding again where a hold
    /// of the same scope is active keeps the first. Audited for every facility the hold covers.
    public func hold(item: String, lot: String, reason: String) async throws -> LotHold {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            let (lotID, regionID) = try Self.holdTarget(c, item: item, lot: lot, scope: scope)
            let placed = try c.query("""
                INSERT INTO lot_holds (lot_id, region_id, reason, placed_by) VALUES ($1, $2, $3, $4)
                ON CONFLICT (lot_id, coalesce(region_id, 0)) WHERE released_at IS NULL DO NOTHING
                """, [lotID, regionID, reason, scope.actor]).affectedRows == 1
            if placed {
                try PostgresTokens.audit(c, scope: scope, action: "lot.hold", target: "\(item)/\(lot)",
                                         detail: "\(scope.regionCode.map { "region \($0)" } ?? "everywhere"): \(reason)",
                                         facilityIDs: try Self.facilities(c, within: regionID))
            }
            return try Self.lot(try c.query("\(Self.lotSelect) WHERE l.id = $1", [lotID]).rows[0])
        }
    }

    /// Lifts the active holds on a lot that this token's scope covers: an administrator lifts any,
    /// a command token those of its own subtree. A hold of a wider scope stays, and when nothing
    /// this token may lift is held the answer is 403 naming it. Audited where each lifted hold applied.
    public func release(item: String, lot: String) async throws -> LotHold {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            let (lotID, regionID) = try Self.holdTarget(c, item: item, lot: lot, scope: scope)
            let lifted = try c.query("""
                UPDATE lot_holds h SET released_at = now(), released_by = $3
                WHERE h.lot_id = $1 AND h.released_at IS NULL
                  AND ($2::int IS NULL OR (h.region_id IS NOT NULL AND stockpile_region_within(h.region_id, $2::int)))
                RETURNING h.id, h.region_id, h.reason
                """, [lotID, regionID, scope.actor]).rows
            if lifted.isEmpty {
                if let wider = try c.query("""
                    SELECT h.id, coalesce(r.code, 'everywhere') AS region, h.reason, h.placed_by FROM lot_holds h
                    LEFT JOIN regions r ON r.id = h.region_id WHERE h.lot_id = $1 AND h.released_at IS NULL
                    ORDER BY h.region_id NULLS FIRST LIMIT 1
                    """, [lotID]).rows.first {
                    throw Refusal(kind: .forbidden, field: "lot", description: """
                        lot \(lot) is held by hold \(try wider.decode("id", as: Int64.self)) (\(try wider.decode("reason", as: String.self)), \
                        scope \(try wider.decode("region", as: String.self)), placed by \(try wider.decode("placed_by", as: String.self))); \
                        only that scope or a wider one may release it
                        """)
                }
            }
            for hold in lifted {
                let holdRegion: Int? = try hold.decode("region_id")
                try PostgresTokens.audit(c, scope: scope, action: "lot.release", target: "\(item)/\(lot)",
                                         detail: "hold \(try hold.decode("id", as: Int64.self)): \(try hold.decode("reason", as: String.self))",
                                         facilityIDs: try Self.facilities(c, within: holdRegion))
            }
            return try Self.lot(try c.query("\(Self.lotSelect) WHERE l.id = $1", [lotID]).rows[0])
        }
    }

    /// An administrator's correction of a lot's expiry (nil: it does not expire, refused for an
    /// item that expires). Cover and the snapshot follow (the cover_mark_lot trigger); audited for
    /// every facility that holds the lot, with the old date and the new.
    public func correctExpiry(item: String, lot: String, expiry: LocalDate?) async throws -> LotHold {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            guard let row = try c.query("""
                SELECT l.id, l.expiry::text AS expiry, stockpile_item_expires(i) AS expires FROM lots l JOIN items i ON i.id = l.item_id
                WHERE i.code = $1 AND l.lot_number = $2 FOR UPDATE OF l
                """, [item, lot]).rows.first else {
                throw Refusal(kind: .notFound, field: "lot", description: "no lot \(lot) of item \(item)")
            }
            let lotID: Int = try row.decode("id"), before: String? = try row.decode("expiry"), expires: Bool = try row.decode("expires")
            if expiry == nil && expires {
                throw Refusal(kind: .invalid, field: "expiry", description: "item \(item) expires: its lots need an expiry date")
            }
            if before != expiry?.description {
                try c.query("UPDATE lots SET expiry = $2::date WHERE id = $1", [lotID, expiry?.description])
                let facilities: [Int] = try c.query("SELECT DISTINCT b.facility_id FROM balances b WHERE b.lot_id = $1", [lotID])
                    .rows.map { try $0.decode("facility_id") }
                try PostgresTokens.audit(c, scope: scope, action: "lot.expiry", target: "\(item)/\(lot)",
                                         detail: "\(before ?? "never") → \(expiry?.description ?? "never")", facilityIDs: facilities)
            }
            return try Self.lot(try c.query("\(Self.lotSelect) WHERE l.id = $1", [lotID]).rows[0])
        }
    }

    /// The lot, and the region a hold of this token covers (nil: everywhere, for administrators).
    static func holdTarget(_ c: PQConnection, item: String, lot: String, scope: AccessScope) throws -> (lot: Int, region: Int?) {
        guard let row = try c.query("SELECT l.id FROM lots l JOIN items i ON i.id = l.item_id WHERE i.code = $1 AND l.lot_number = $2",
                                    [item, lot]).rows.first else {
            throw Refusal(kind: .notFound, field: "lot", description: "no lot \(lot) of item \(item)")
        }
        guard scope.role != .admin else { return (try row.decode("id"), nil) }
        guard let code = scope.regionCode,
              let region = try c.query("SELECT id FROM regions WHERE code = $1", [code]).rows.first else {
            throw Refusal(kind: .forbidden, field: nil, description: "only administrators and command tokens place or lift holds")
        }
        return (try row.decode("id"), try region.decode("id"))
    }

    /// The facilities a hold of `region` covers (nil: every facility), for the audit log.
    static func facilities(_ c: PQConnection, within region: Int?) throws -> [Int] {
        try c.query("SELECT f.id FROM facilities f WHERE $1::int IS NULL OR stockpile_region_within(f.region_id, $1::int) ORDER BY f.id",
                    [region]).rows.map { try $0.decode("id") }
    }
}
