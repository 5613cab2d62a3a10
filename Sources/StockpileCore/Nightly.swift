import Foundation

// The nightly reorder report (SPEC.md "Nightly reorder report"): after tonight's reallocation
// orders, what each position still lacks is met, in this order, by contract call-offs, capacity
// activation and procurement. Pure arithmetic over plain values; PostgresNightly gathers them.

/// A position as the report explains it: the numbers every line carries.
public struct NightlyPosition: Sendable, Codable, Equatable {
    public var facility: String
    public var facilityName: String
    public var item: String
    public var itemName: String
    public var dailyDemand: Double
    public var observedDemand: Double
    public var fullLoadDemand: Double?
    public var targetDays: Int
    public var physicalQty: Int64
    public var physicalDays: Double?
    public var contractQty: Int64
    public var contractDays: Double?
    public var capacityQty: Int64
    public var capacityDays: Double?
    public var shortfallQty: Int64

    public init(facility: String, facilityName: String, item: String, itemName: String, dailyDemand: Double, observedDemand: Double,
                fullLoadDemand: Double?, targetDays: Int, physicalQty: Int64, physicalDays: Double?, contractQty: Int64,
                contractDays: Double?, capacityQty: Int64, capacityDays: Double?, shortfallQty: Int64) {
        self.facility = facility; self.facilityName = facilityName; self.item = item; self.itemName = itemName
        self.dailyDemand = dailyDemand; self.observedDemand = observedDemand; self.fullLoadDemand = fullLoadDemand
        self.targetDays = targetDays; self.physicalQty = physicalQty; self.physicalDays = physicalDays
        self.contractQty = contractQty; self.contractDays = contractDays; self.capacityQty = capacityQty
        self.capacityDays = capacityDays; self.shortfallQty = shortfallQty
    }

    /// Which demand the cover used: the planned full load when it is at least the observed.
    public var demandBasis: String {
        if let full = fullLoadDemand, full >= observedDemand, full > 0 { return "full_load" }
        return "observed"
    }

    enum CodingKeys: String, CodingKey {
        case facility, item
        case facilityName = "facility_name", itemName = "item_name", dailyDemand = "daily_demand", observedDemand = "observed_demand",
             fullLoadDemand = "full_load_demand", targetDays = "target_days", physicalQty = "physical_qty",
             physicalDays = "physical_days", contractQty = "contract_qty", contractDays = "contract_days",
             capacityQty = "capacity_qty", capacityDays = "capacity_days", shortfallQty = "shortfall_qty"
    }
}

/// A supplier contract backing a position, as the reorder sees it.
public struct ReorderContract: Sendable, Codable, Equatable {
    public var code: String
    public var supplier: String
    public var local: Bool
    public var leadTimeDays: Int
    public var committed: Int64
    public var calledOff: Int64
    public var validFrom: LocalDate
    public var validTo: LocalDate
    public init(code: String, supplier: String, local: Bool, leadTimeDays: Int, committed: Int64, calledOff: Int64,
                validFrom: LocalDate, validTo: LocalDate) {
        self.code = code; self.supplier = supplier; self.local = local; self.leadTimeDays = leadTimeDays
        self.committed = committed; self.calledOff = calledOff; self.validFrom = validFrom; self.validTo = validTo
    }
    public var remaining: Int64 { max(0, committed - calledOff) }
    public func isValid(on date: LocalDate) -> Bool { validFrom <= date && date <= validTo }
}

/// A manufacturer's pledge backing a position.
public struct ReorderPledge: Sendable, Codable, Equatable {
    public var code: String
    public var manufacturer: String
    public var local: Bool
    public var certified: Bool
    public var dailyCapacity: Int64
    public var rampUpDays: Int
    public var validFrom: LocalDate
    public var validTo: LocalDate
    public init(code: String, manufacturer: String, local: Bool, certified: Bool, dailyCapacity: Int64, rampUpDays: Int,
                validFrom: LocalDate, validTo: LocalDate) {
        self.code = code; self.manufacturer = manufacturer; self.local = local; self.certified = certified
        self.dailyCapacity = dailyCapacity; self.rampUpDays = rampUpDays; self.validFrom = validFrom; self.validTo = validTo
    }
}

/// One proposed call-off: how much of which contract, and why it came in this order.
public struct CallOff: Sendable, Codable, Equatable {
    public var contract: String
    public var supplier: String
    public var local: Bool
    public var leadTimeDays: Int
    /// Committed − called off so far: the most it may call.
    public var remaining: Int64
    /// What the position still lacked when this contract's turn came.
    public var needBefore: Int64
    public var quantity: Int64
    enum CodingKeys: String, CodingKey {
        case contract, supplier, local, remaining, quantity
        case leadTimeDays = "lead_time_days", needBefore = "need_before"
    }
}

/// One pledge to switch on: what it yields within the target horizon, and how much of it is needed.
public struct Activation: Sendable, Codable, Equatable {
    public var pledge: String
    public var manufacturer: String
    public var local: Bool
    public var dailyCapacity: Int64
    public var rampUpDays: Int
    /// daily capacity × (N − ramp-up): its output within the target horizon.
    public var yieldQty: Int64
    public var needBefore: Int64
    public var quantity: Int64
    /// Days of production after ramp-up that `quantity` takes: ceil(quantity ÷ daily capacity).
    public var productionDays: Int
    enum CodingKeys: String, CodingKey {
        case pledge, manufacturer, local, quantity
        case dailyCapacity = "daily_capacity", rampUpDays = "ramp_up_days", yieldQty = "yield_qty", needBefore = "need_before",
             productionDays = "production_days"
    }
}

/// One of tonight's reallocation orders to a position: which order, from where, how much.
public struct ReallocationSource: Sendable, Codable, Equatable {
    public var order: Int64
    public var from: String
    public var quantity: Int64
    public init(order: Int64, from: String, quantity: Int64) { self.order = order; self.from = from; self.quantity = quantity }
}

/// What one position still lacks after tonight's orders, and how it is met.
public struct ReorderLine: Sendable, Codable, Equatable {
    public var position: NightlyPosition
    /// Coming to it on tonight's reallocation orders: their sum, and each order.
    public var reallocated: Int64
    public var reallocatedFrom: [ReallocationSource]
    /// Already in transit to it (dispatched, not yet received).
    public var inbound: Int64
    /// shortfall − reallocated − inbound, at least 0: what the steps below meet.
    public var need: Int64
    public var callOffs: [CallOff]
    public var activations: [Activation]
    public var procurement: Int64
    enum CodingKeys: String, CodingKey {
        case position, reallocated, inbound, need, activations, procurement
        case callOffs = "call_offs", reallocatedFrom = "reallocated_from"
    }
}

/// A position whose contract reserve is below target once tonight's call-offs are taken out.
public struct ContractGapLine: Sendable, Codable, Equatable {
    public struct Contract: Sendable, Codable, Equatable {
        public var code: String
        public var supplier: String
        public var remaining: Int64
        public var leadTimeDays: Int
        public var validTo: LocalDate
        /// "valid", "expired", "not_yet_valid" or "lead_time_over_target" (as of the report's date).
        public var status: String
        enum CodingKeys: String, CodingKey { case code, supplier, remaining, status, leadTimeDays = "lead_time_days", validTo = "valid_to" }
    }
    public var position: NightlyPosition
    public var calledOffTonight: Int64
    /// Contract quantity that counts, after tonight's call-offs.
    public var contractQtyAfter: Int64
    public var contractDaysAfter: Double?
    /// ceil(max(0, N − days after) × d): what to contract for.
    public var gapQty: Int64
    /// Contracts to renew: expired, or ending within the target horizon.
    public var renew: [String]
    /// The contract to expand: the first valid one in call-off order (nil: a new contract is needed).
    public var expand: String?
    public var contracts: [Contract]
    enum CodingKeys: String, CodingKey {
        case position, renew, expand, contracts
        case calledOffTonight = "called_off_tonight", contractQtyAfter = "contract_qty_after", contractDaysAfter = "contract_days_after",
             gapQty = "gap_qty"
    }
}

/// A lot that the FEFO walk says will expire before its holder uses it.
public struct ExpiringLotLine: Sendable, Codable, Equatable {
    public var facility: String
    public var facilityName: String
    public var item: String
    public var itemName: String
    public var lot: String
    public var expiry: LocalDate
    public var daysToExpiry: Int
    public var onHand: Int64
    public var dailyDemand: Double
    /// What the walk leaves of this lot at its expiry (rounded up to whole units).
    public var unconsumedQty: Int64
    /// The nearest facility that would use it before it expires (nil: none in scope would).
    public var moveTo: String?
    public var moveToName: String?
    public var distanceKm: Double?
    public var moveToDailyDemand: Double?
    public var moveToPhysicalDays: Double?
    /// floor((days to expiry − its physical days) × its demand), at most the unconsumed quantity.
    public var moveToUsableQty: Int64?

    /// `moveTo`: the faster consumer found for it, what it would use, and how far it is.
    public init(position p: NightlyPosition, lot: String, expiry: LocalDate, asOf: LocalDate, onHand: Int64, unconsumedQty: Int64,
                moveTo: (consumer: Reorder.Consumer, usable: Int64, distanceKm: Double)?) {
        facility = p.facility; facilityName = p.facilityName; item = p.item; itemName = p.itemName
        self.lot = lot; self.expiry = expiry; daysToExpiry = asOf.days(until: expiry); self.onHand = onHand
        dailyDemand = p.dailyDemand; self.unconsumedQty = unconsumedQty
        self.moveTo = moveTo?.consumer.site.code; moveToName = moveTo?.consumer.name; distanceKm = moveTo?.distanceKm
        moveToDailyDemand = moveTo?.consumer.dailyDemand; moveToPhysicalDays = moveTo?.consumer.physicalDays
        moveToUsableQty = moveTo?.usable
    }
    enum CodingKeys: String, CodingKey {
        case facility, item, lot, expiry
        case facilityName = "facility_name", itemName = "item_name", daysToExpiry = "days_to_expiry", onHand = "on_hand",
             dailyDemand = "daily_demand", unconsumedQty = "unconsumed_qty", moveTo = "move_to", moveToName = "move_to_name",
             distanceKm = "distance_km", moveToDailyDemand = "move_to_daily_demand", moveToPhysicalDays = "move_to_physical_days",
             moveToUsableQty = "move_to_usable_qty"
    }
}

/// A position whose cover is not to be trusted: nothing recorded there for a week.
public struct StaleLine: Sendable, Codable, Equatable {
    public var facility: String
    public var facilityName: String
    public var item: String
    public var itemName: String
    public var physicalQty: Int64
    public var dailyDemand: Double
    /// The local date of its last movement of any kind (a count included); nil: never.
    public var lastMovement: LocalDate?
    public var lastCount: LocalDate?
    public var daysSince: Int?
    public init(facility: String, facilityName: String, item: String, itemName: String, physicalQty: Int64, dailyDemand: Double,
                lastMovement: LocalDate?, lastCount: LocalDate?, daysSince: Int?) {
        self.facility = facility; self.facilityName = facilityName; self.item = item; self.itemName = itemName
        self.physicalQty = physicalQty; self.dailyDemand = dailyDemand; self.lastMovement = lastMovement; self.lastCount = lastCount
        self.daysSince = daysSince
    }
    enum CodingKeys: String, CodingKey {
        case facility, item
        case facilityName = "facility_name", itemName = "item_name", physicalQty = "physical_qty", dailyDemand = "daily_demand",
             lastMovement = "last_movement", lastCount = "last_count", daysSince = "days_since"
    }
}

/// Tonight's reallocation order, as the report lists it.
public struct NightlyOrder: Sendable, Codable, Equatable {
    public var id: Int64
    public var item: String
    public var from: String
    public var to: String
    public var quantity: Int64
    public var distanceKm: Double
    public var lots: String
    /// The shipment (one truck, sender → receiver) it travels in; nil in reports stored before shipments.
    public var shipment: Int64?
    public init(id: Int64, item: String, from: String, to: String, quantity: Int64, distanceKm: Double, lots: String, shipment: Int64? = nil) {
        self.id = id; self.item = item; self.from = from; self.to = to; self.quantity = quantity; self.distanceKm = distanceKm; self.lots = lots
        self.shipment = shipment
    }
    enum CodingKeys: String, CodingKey { case id, item, from, to, quantity, lots, shipment, distanceKm = "distance_km" }
}

/// Per item: the shortfall and how each step meets it.
public struct NightlyItemSummary: Sendable, Codable, Equatable {
    public var item: String
    public var shortfall: Int64 = 0
    public var reallocated: Int64 = 0
    public var inbound: Int64 = 0
    public var calledOff: Int64 = 0
    public var activated: Int64 = 0
    public var procurement: Int64 = 0
    public init(item: String) { self.item = item }
    enum CodingKeys: String, CodingKey {
        case item, shortfall, reallocated, inbound, activated, procurement
        case calledOff = "called_off"
    }
}

public struct NightlyReport: Sendable, Codable, Equatable {
    public var asOf: LocalDate
    /// The region subtree it covers; nil: everything.
    public var region: String?
    public var generatedAt: String
    /// The id tonight's reallocation orders were created under (a rerun replays it).
    public var requestID: String
    public var positions: Int
    public var orders: [NightlyOrder]
    public var reorders: [ReorderLine]
    public var contractGaps: [ContractGapLine]
    public var expiringLots: [ExpiringLotLine]
    public var stale: [StaleLine]
    /// 截留 (issue 17): orders overdue on the road, and receivers holding allocated stock far above
    /// target while others in their region are short. Optional so reports stored before them read.
    public var overdue: [OverdueLine]?
    public var hoarding: [HoardingLine]?
    /// 轮换 (issue 17): reserve warehouses' lots sent where they are used before they expire, each bought again.
    public var rotation: [RotationLine]?
    public var items: [NightlyItemSummary]
    /// How many shipments (trucks) tonight's orders make; nil in reports stored before shipments.
    public var shipments: Int?
    public var phases: [String: Double]

    public init(asOf: LocalDate, region: String?, generatedAt: String, requestID: String, positions: Int, orders: [NightlyOrder],
                reorders: [ReorderLine], contractGaps: [ContractGapLine], expiringLots: [ExpiringLotLine], stale: [StaleLine],
                overdue: [OverdueLine] = [], hoarding: [HoardingLine] = [], rotation: [RotationLine] = [], phases: [String: Double]) {
        self.asOf = asOf; self.region = region; self.generatedAt = generatedAt; self.requestID = requestID; self.positions = positions
        self.orders = orders; self.reorders = reorders; self.contractGaps = contractGaps; self.expiringLots = expiringLots
        self.stale = stale; self.overdue = overdue; self.hoarding = hoarding; self.rotation = rotation; self.phases = phases
        self.shipments = Set(orders.compactMap(\.shipment)).count
        var byItem: [String: NightlyItemSummary] = [:]
        for line in reorders {
            var s = byItem[line.position.item] ?? NightlyItemSummary(item: line.position.item)
            s.shortfall = s.shortfall.saturatingAdd(line.position.shortfallQty)
            s.reallocated += line.reallocated
            s.inbound += line.inbound
            s.calledOff = s.calledOff.saturatingAdd(line.callOffs.saturatingSum(\.quantity))
            s.activated = s.activated.saturatingAdd(line.activations.saturatingSum(\.quantity))
            s.procurement = s.procurement.saturatingAdd(line.procurement)
            byItem[line.position.item] = s
        }
        items = byItem.values.sorted { $0.item < $1.item }
    }

    public var procurementTotal: Int64 { items.saturatingSum(\.procurement) }
    public var callOffTotal: Int64 { items.saturatingSum(\.calledOff) }
    public var activationTotal: Int64 { items.saturatingSum(\.activated) }

    enum CodingKeys: String, CodingKey {
        case region, positions, orders, shipments, reorders, stale, overdue, hoarding, rotation, items, phases
        case asOf = "as_of", generatedAt = "generated_at", requestID = "request_id", contractGaps = "contract_gaps",
             expiringLots = "expiring_lots"
    }
}

/// An order dispatched and not received within its expected time on the road (TransitRule), as of the run.
public struct OverdueLine: Sendable, Codable, Equatable {
    public var order: Int64
    public var item: String
    public var itemName: String
    public var from: String
    public var to: String
    public var inTransit: Int64
    public var dispatchedAt: String
    public var dueAt: String
    public var daysOverdue: Double
    public init(order: Int64, item: String, itemName: String, from: String, to: String, inTransit: Int64, dispatchedAt: String,
                dueAt: String, daysOverdue: Double) {
        self.order = order; self.item = item; self.itemName = itemName; self.from = from; self.to = to; self.inTransit = inTransit
        self.dispatchedAt = dispatchedAt; self.dueAt = dueAt; self.daysOverdue = daysOverdue
    }
    enum CodingKeys: String, CodingKey {
        case order, item, from, to
        case itemName = "item_name", inTransit = "in_transit", dispatchedAt = "dispatched_at", dueAt = "due_at", daysOverdue = "days_overdue"
    }
}

/// A facility that took in allocated stock (transfers received in the last 30 days) and holds far
/// more than its own target, while other facilities of its region are short of the item: the
/// surplus is what the planner would move away again.
public struct HoardingLine: Sendable, Codable, Equatable {
    public var facility: String
    public var facilityName: String
    public var item: String
    public var itemName: String
    public var received: Int64
    public var physicalQty: Int64
    public var targetQty: Int64
    public var surplusQty: Int64
    public var regionShortfallQty: Int64
    public var shortFacilities: Int
    public init(facility: String, facilityName: String, item: String, itemName: String, received: Int64, physicalQty: Int64,
                targetQty: Int64, surplusQty: Int64, regionShortfallQty: Int64, shortFacilities: Int) {
        self.facility = facility; self.facilityName = facilityName; self.item = item; self.itemName = itemName; self.received = received
        self.physicalQty = physicalQty; self.targetQty = targetQty; self.surplusQty = surplusQty
        self.regionShortfallQty = regionShortfallQty; self.shortFacilities = shortFacilities
    }
    enum CodingKeys: String, CodingKey {
        case facility, item, received
        case facilityName = "facility_name", itemName = "item_name", physicalQty = "physical_qty", targetQty = "target_qty",
             surplusQty = "surplus_qty", regionShortfallQty = "region_shortfall_qty", shortFacilities = "short_facilities"
    }

    /// "Far above": on hand beyond this many times the target quantity.
    public static let factor = 1.5
    /// Transfers received within this many days make stock "allocated".
    public static let receivedWithinDays = 30
}

public enum Reorder {
    /// SPEC.md: lots expiring within 90 days are listed.
    public static let expiryHorizonDays = 90
    /// SPEC.md: no count or movement in 7 days makes a position stale.
    public static let staleAfterDays = 7

    /// Contracts that may be called: valid on the date, and able to deliver within the target (the
    /// same contracts cover counts as contract days). Local suppliers first, then the shortest lead
    /// time, then the code, so the order never depends on how the rows arrived.
    public static func callable(_ contracts: [ReorderContract], asOf: LocalDate, targetDays: Int) -> [ReorderContract] {
        contracts.filter { $0.isValid(on: asOf) && $0.leadTimeDays <= targetDays && $0.remaining > 0 }
            .sorted { ($0.local ? 0 : 1, $0.leadTimeDays, $0.code) < ($1.local ? 0 : 1, $1.leadTimeDays, $1.code) }
    }

    /// What a pledge yields within the target horizon: daily capacity × max(0, N − ramp-up), if it is
    /// certified and valid on the date (SPEC.md capacity days count the same).
    public static func yield(_ pledge: ReorderPledge, asOf: LocalDate, targetDays: Int) -> Int64 {
        guard pledge.certified, pledge.validFrom <= asOf, asOf <= pledge.validTo else { return 0 }
        return pledge.dailyCapacity.saturatingMultiply(Int64(max(0, targetDays - pledge.rampUpDays)))
    }

    /// A short position after tonight's orders: what is still needed (shortfall − reallocated − in
    /// transit), met by call-offs, then activations, then procurement.
    public static func line(_ position: NightlyPosition, reallocatedFrom: [ReallocationSource], inbound: Int64, contracts: [ReorderContract],
                            pledges: [ReorderPledge], asOf: LocalDate) -> ReorderLine {
        let reallocated = reallocatedFrom.saturatingSum(\.quantity)
        let need = max(0, position.shortfallQty.saturatingAdd(-reallocated).saturatingAdd(-inbound))
        let met = meet(need: need, contracts: contracts, pledges: pledges, asOf: asOf, targetDays: position.targetDays)
        return ReorderLine(position: position, reallocated: reallocated, reallocatedFrom: reallocatedFrom, inbound: inbound, need: need,
                           callOffs: met.callOffs, activations: met.activations, procurement: met.procurement)
    }

    /// One position's remaining need met by call-offs, then activations, then procurement.
    public static func meet(need: Int64, contracts: [ReorderContract], pledges: [ReorderPledge], asOf: LocalDate,
                            targetDays: Int) -> (callOffs: [CallOff], activations: [Activation], procurement: Int64) {
        var rest = max(0, need)
        var callOffs: [CallOff] = []
        for k in callable(contracts, asOf: asOf, targetDays: targetDays) where rest > 0 {
            let quantity = min(rest, k.remaining)
            callOffs.append(CallOff(contract: k.code, supplier: k.supplier, local: k.local, leadTimeDays: k.leadTimeDays,
                                    remaining: k.remaining, needBefore: rest, quantity: quantity))
            rest -= quantity
        }
        // Local first, then the one that starts soonest, then the code.
        let pledges = pledges.filter { yield($0, asOf: asOf, targetDays: targetDays) > 0 }
            .sorted { ($0.local ? 0 : 1, $0.rampUpDays, $0.code) < ($1.local ? 0 : 1, $1.rampUpDays, $1.code) }
        var activations: [Activation] = []
        for p in pledges where rest > 0 {
            let output = yield(p, asOf: asOf, targetDays: targetDays)
            let quantity = min(rest, output)
            let days = Int(quantity / p.dailyCapacity + (quantity % p.dailyCapacity > 0 ? 1 : 0))
            activations.append(Activation(pledge: p.code, manufacturer: p.manufacturer, local: p.local, dailyCapacity: p.dailyCapacity,
                                          rampUpDays: p.rampUpDays, yieldQty: output, needBefore: rest, quantity: quantity,
                                          productionDays: days))
            rest -= quantity
        }
        return (callOffs, activations, rest)
    }

    /// The contract reserve once tonight's call-offs are taken out of it, and what to do about a gap:
    /// nil when it still covers the target (or there is no demand).
    public static func contractGap(_ position: NightlyPosition, contracts: [ReorderContract], calledOffTonight: Int64,
                                   asOf: LocalDate) -> ContractGapLine? {
        let d = position.dailyDemand, n = position.targetDays
        guard d > 0 else { return nil }
        let counted = contracts.filter { $0.isValid(on: asOf) && $0.leadTimeDays <= n }.saturatingSum(\.remaining)
        let after = max(0, counted.saturatingAdd(-calledOffTonight))
        let days = Cover.days(Double(after), dailyDemand: d)
        let gap = Cover.shortfall(days: days, targetDays: n, dailyDemand: d)
        guard gap > 0 else { return nil }
        let horizonEnd = asOf.adding(days: n)
        let listed = contracts.sorted { $0.code < $1.code }.map { k -> ContractGapLine.Contract in
            let status = k.validTo < asOf ? "expired" : k.validFrom > asOf ? "not_yet_valid"
                : k.leadTimeDays > n ? "lead_time_over_target" : "valid"
            return ContractGapLine.Contract(code: k.code, supplier: k.supplier, remaining: k.remaining, leadTimeDays: k.leadTimeDays,
                                            validTo: k.validTo, status: status)
        }
        // Renew what has lapsed or lapses before the horizon ends; expand the contract a call-off would use first.
        let renew = contracts.filter { $0.validTo < horizonEnd && $0.validFrom <= asOf }.map(\.code).sorted()
        let expand = contracts.filter { $0.isValid(on: asOf) && $0.leadTimeDays <= n && !renew.contains($0.code) }
            .sorted { ($0.local ? 0 : 1, $0.leadTimeDays, $0.code) < ($1.local ? 0 : 1, $1.leadTimeDays, $1.code) }.first?.code
        return ContractGapLine(position: position, calledOffTonight: calledOffTonight, contractQtyAfter: after, contractDaysAfter: days,
                               gapQty: gap, renew: renew, expand: expand, contracts: listed)
    }

    /// A facility that could take an expiring lot: where it is, how fast it uses the item, how long its own stock lasts.
    public struct Consumer: Sendable {
        public var site: PlanSite
        public var name: String
        public var dailyDemand: Double
        public var physicalDays: Double
        /// Where it is on the unit sphere: nearer by chord is nearer by great circle, without trigonometry per pair.
        let point: SIMD3<Double>
        public init(site: PlanSite, name: String, dailyDemand: Double, physicalDays: Double) {
            self.site = site; self.name = name; self.dailyDemand = dailyDemand; self.physicalDays = physicalDays
            point = Self.unitPoint(site)
        }
        static func unitPoint(_ site: PlanSite) -> SIMD3<Double> {
            let rad = Double.pi / 180, lat = site.latitude * rad, lon = site.longitude * rad
            return SIMD3(cos(lat) * cos(lon), cos(lat) * sin(lon), sin(lat))
        }
        /// What of a lot expiring in `days` it would use before expiry even after its own stock:
        /// floor((days − physical days) × d). Conservative: its own later-expiring stock would in fact come after the lot.
        public func usable(expiryDays days: Int) -> Int64 {
            guard dailyDemand > 0, physicalDays < Double(days) else { return 0 }
            return Int64(saturating: Cover.roundQuantity((Double(days) - physicalDays) * dailyDemand).rounded(.down))
        }
    }

    /// The nearest consumer that would use all of `quantity` before it expires; if none would, the one
    /// that would use the most (the nearest of those). nil when none would use any.
    /// (A slice, not a generic collection: called from another module, a generic would not be specialized.)
    public static func fasterConsumer(for quantity: Int64, expiryDays: Int, from site: PlanSite,
                                      candidates: ArraySlice<Consumer>) -> (consumer: Consumer, usable: Int64, distanceKm: Double)? {
        // A city has thousands of candidates per item and a hundred thousand expiring lots: find the
        // most any would use first (cheap arithmetic), then the nearest of those by chord, which
        // orders them as the great circle does; only the chosen one's distance is worked out.
        var most: Int64 = 0
        for c in candidates {
            let usable = min(quantity, c.usable(expiryDays: expiryDays))
            if usable > most && c.site.code != site.code { most = usable }
        }
        guard most > 0 else { return nil }
        let here = Consumer.unitPoint(site)
        var best: (index: Int, chord: Double)?
        for (i, c) in zip(candidates.indices, candidates) where min(quantity, c.usable(expiryDays: expiryDays)) == most && c.site.code != site.code {
            let d = c.point - here, chord = (d * d).sum()
            if let b = best, chord > b.chord || (chord == b.chord && c.site.code >= candidates[b.index].site.code) { continue }
            best = (i, chord)
        }
        let chosen = candidates[best!.index]
        let km = GreatCircle.km(site, chosen.site)
        return (chosen, most, (km * 1000).rounded() / 1000)
    }

    /// A position's lots that the FEFO walk leaves partly unused at expiry, expiring within the horizon:
    /// (index into `lots`, unconsumed quantity rounded up to whole units).
    public static func expiring(lots: [LotStock], dailyDemand: Double, asOf: LocalDate) -> [(index: Int, unconsumed: Int64)] {
        let horizon = asOf.adding(days: expiryHorizonDays)
        if dailyDemand <= 0 {
            // Nobody here uses it: every usable lot expiring within the horizon is waste unless it moves.
            return lots.indices.filter { i in
                let lot = lots[i]
                return !lot.quarantined && lot.quantity > 0 && lot.expiry.map { $0 > asOf && $0 <= horizon } == true
            }.map { ($0, lots[$0].quantity) }
        }
        return Cover.walk(lots: lots, dailyDemand: dailyDemand, asOf: asOf).compactMap { step in
            guard let expiry = lots[step.index].expiry, expiry <= horizon else { return nil }
            let left = Int64(saturating: Cover.roundQuantity(step.unconsumed).rounded(.up))
            return left > 0 ? (step.index, left) : nil
        }
    }
}

/// When the nightly run is due: every day at a local time of day (STOCKPILE_NIGHTLY_AT).
public struct NightlySchedule: Sendable, Equatable {
    public var hour: Int
    public var minute: Int
    public var timeZone: TimeZone

    /// "HH:MM", 00:00 … 23:59.
    public init?(_ text: String, timeZone: TimeZone) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count <= 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0..<24).contains(h), (0..<60).contains(m) else { return nil }
        hour = h; minute = m; self.timeZone = timeZone
    }

    var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    /// The instant of the run on a local date.
    public func instant(on date: LocalDate) -> Date {
        calendar.date(from: DateComponents(year: date.year, month: date.month, day: date.day, hour: hour, minute: minute))!
    }

    /// The date of the latest run due at or before `now` (the report is for that date): today once
    /// today's time has passed, else yesterday.
    public func lastDue(at now: Date) -> LocalDate {
        let today = LocalDate(now, in: timeZone)
        return instant(on: today) <= now ? today : today.adding(days: -1)
    }

    /// The next run strictly after `now`.
    public func next(after now: Date) -> (date: LocalDate, at: Date) {
        let due = lastDue(at: now).adding(days: 1)
        return (due, instant(on: due))
    }
}
