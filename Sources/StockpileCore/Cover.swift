import Foundation

// Days of cover (SPEC.md "Cover"): the numbers every screen and report is built on. Pure
// functions over plain values, so they are tested by hand-worked cases and compared with the
// database's computation of the same thing.

/// A lot's stock at one facility, as the cover computation sees it.
public struct LotStock: Sendable, Equatable {
    public var quantity: Int64
    /// nil: the lot does not expire.
    public var expiry: LocalDate?
    /// Held for quality inspection or recall: not usable.
    public var quarantined: Bool

    public init(quantity: Int64, expiry: LocalDate?, quarantined: Bool = false) {
        self.quantity = quantity
        self.expiry = expiry
        self.quarantined = quarantined
    }
}

/// What the FEFO walk finds.
public struct PhysicalCover: Sendable, Equatable {
    /// nil when daily demand is 0: the stock lasts indefinitely.
    public var days: Double?
    /// What the walk cannot consume before expiry: waste unless it moves to a faster consumer.
    public var expiringQuantity: Double
    /// On-hand in lots that are neither expired at `as_of` nor quarantined.
    public var usableQuantity: Int64
}

public enum Cover {
    /// The FEFO walk: usable lots (not expired at `asOf` — a lot expiring on or before it is
    /// expired — and not quarantined) in expiry order, `t` starting at 0; each lot adds
    /// min(q/d, max(0, e − t)) where e is its days to expiry (∞ without expiry).
    public static func physical(lots: [LotStock], dailyDemand d: Double, asOf: LocalDate) -> PhysicalCover {
        let quantity = lots.filter { isUsable($0, asOf: asOf) }.saturatingSum(\.quantity)
        guard d > 0 else { return PhysicalCover(days: nil, expiringQuantity: 0, usableQuantity: quantity) }
        var t = 0.0
        var expiring = 0.0
        for step in walk(lots: lots, dailyDemand: d, asOf: asOf) {
            t += step.days
            expiring += step.unconsumed
        }
        return PhysicalCover(days: t, expiringQuantity: roundQuantity(expiring), usableQuantity: quantity)
    }

    static func isUsable(_ lot: LotStock, asOf: LocalDate) -> Bool {
        !lot.quarantined && lot.quantity > 0 && (lot.expiry.map { $0 > asOf } ?? true)
    }

    /// One usable lot's part in the FEFO walk: `index` into the lots walked, the days it adds, and
    /// what of it is still there when it expires (the nightly report's expiring lots).
    public struct WalkStep: Sendable, Equatable {
        public var index: Int
        public var days: Double
        public var unconsumed: Double
    }

    /// The FEFO walk lot by lot, over the usable lots in walk order (earliest expiry first, lots that
    /// never expire last). Demand must be above 0.
    public static func walk(lots: [LotStock], dailyDemand d: Double, asOf: LocalDate) -> [WalkStep] {
        let ordered = lots.indices.filter { isUsable(lots[$0], asOf: asOf) }.sorted { i, j in
            switch (lots[i].expiry, lots[j].expiry) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            default: return false
            }
        }
        var t = 0.0
        var steps: [WalkStep] = []
        for i in ordered {
            let q = Double(lots[i].quantity)
            let lasts = q / d
            guard let expiry = lots[i].expiry else {
                steps.append(WalkStep(index: i, days: lasts, unconsumed: 0))
                t += lasts
                continue
            }
            let used = min(lasts, max(0, Double(asOf.days(until: expiry)) - t))
            steps.append(WalkStep(index: i, days: used, unconsumed: max(0, q - used * d)))
            t += used
        }
        return steps
    }

    /// ceil(max(0, N − days) × d), with the product rounded to 6 decimals first so floating-point
    /// noise (2500.0000000001) cannot move the ceiling. 0 when demand is 0 (days unbounded).
    public static func shortfall(days: Double?, targetDays: Int, dailyDemand d: Double) -> Int64 {
        guard let days, d > 0 else { return 0 }
        return Int64(saturating: roundQuantity(max(0, Double(targetDays) - days) * d).rounded(.up))
    }

    /// Days a quantity covers at a daily demand; nil (unbounded) when demand is 0.
    public static func days(_ quantity: Double, dailyDemand d: Double) -> Double? {
        d > 0 ? quantity / d : nil
    }

    public static func roundQuantity(_ value: Double) -> Double {
        (value * 1_000_000).rounded() / 1_000_000
    }
}

/// The bands shared by every screen and report: stockout (0), <3d, 3–7d, 7–14d, 14–N, ≥N.
public enum CoverBand: String, Sendable, Codable, CaseIterable {
    case stockout
    case under3 = "<3d"
    case from3to7 = "3-7d"
    case from7to14 = "7-14d"
    case from14toTarget = "14-N"
    case atTarget = ">=N"

    /// nil days (no demand) is at target.
    public init(days: Double?, targetDays: Int) {
        guard let days else { self = .atTarget; return }
        switch days {
        case ...0: self = .stockout
        case ..<3: self = .under3
        case ..<7: self = .from3to7
        case ..<14: self = .from7to14
        case ..<Double(targetDays): self = .from14toTarget
        default: self = .atTarget
        }
    }
}

/// Target days: the item's own, else its category's, else 30 (SPEC: infectious-disease PPE 90).
public struct TargetPolicy: Sendable {
    public var byCategory: [ItemCategory: Int]
    public static let standard = TargetPolicy(byCategory: [.ppe: 90])
    public init(byCategory: [ItemCategory: Int]) { self.byCategory = byCategory }

    public func targetDays(itemOverride: Int?, category: ItemCategory) -> Int {
        itemOverride ?? byCategory[category] ?? 30
    }
}

/// One day of a position's history in the demand window.
public struct DayActivity: Sendable, Equatable {
    public var openingOnHand: Int64
    public var received: Int64
    public var issued: Int64
    public init(openingOnHand: Int64, received: Int64, issued: Int64) {
        self.openingOnHand = openingOnHand
        self.received = received
        self.issued = issued
    }
    /// Nothing on hand at the start of the day and nothing received during it.
    public var isStockout: Bool { openingOnHand <= 0 && received <= 0 }
}

public enum Demand {
    /// Observed daily demand, stockout-adjusted (as OpenLMIS does): issues over the window ÷ the
    /// window's days that were not stockout days; 0 if every day was.
    public static func observed(_ window: [DayActivity]) -> Double {
        let stocked = window.filter { !$0.isStockout }.count
        guard stocked > 0 else { return 0 }
        return Double(window.saturatingSum(\.issued)) / Double(stocked)
    }

    /// The basis for cover: max(observed, full-load), times the what-if surge factor.
    public static func basis(observed: Double, fullLoad: Double?, surge: Double = 1) -> Double {
        max(observed, fullLoad ?? 0) * surge
    }
}

/// A supplier's contract backing a facility's item (SPEC "Contract reserve").
public struct ContractReserve: Sendable, Equatable {
    public var committed: Int64
    public var calledOff: Int64
    public var leadTimeDays: Int
    public var validFrom: LocalDate
    public var validTo: LocalDate
    public var local: Bool
    public init(committed: Int64, calledOff: Int64, leadTimeDays: Int, validFrom: LocalDate, validTo: LocalDate, local: Bool) {
        self.committed = committed; self.calledOff = calledOff; self.leadTimeDays = leadTimeDays
        self.validFrom = validFrom; self.validTo = validTo; self.local = local
    }
    public var remaining: Int64 { max(0, committed - calledOff) }
    /// Counts toward cover when valid on `asOf` and able to deliver within the target.
    public func counts(asOf: LocalDate, targetDays: Int) -> Bool {
        validFrom <= asOf && asOf <= validTo && leadTimeDays <= targetDays
    }
}

/// A manufacturer's pledged output (SPEC "Capacity reserve").
public struct CapacityReserve: Sendable, Equatable {
    public var dailyCapacity: Int64
    public var rampUpDays: Int
    public var validFrom: LocalDate
    public var validTo: LocalDate
    public var certified: Bool
    public var local: Bool
    public init(dailyCapacity: Int64, rampUpDays: Int, validFrom: LocalDate, validTo: LocalDate, certified: Bool, local: Bool) {
        self.dailyCapacity = dailyCapacity; self.rampUpDays = rampUpDays
        self.validFrom = validFrom; self.validTo = validTo; self.certified = certified; self.local = local
    }
    /// What it yields within the target horizon after ramp-up, if valid and certified.
    public func yield(asOf: LocalDate, targetDays: Int) -> Int64 {
        guard certified, validFrom <= asOf, asOf <= validTo else { return 0 }
        return dailyCapacity.saturatingMultiply(Int64(max(0, targetDays - rampUpDays)))
    }
}

/// Every number of one facility × item position as of a date.
public struct PositionCover: Sendable, Equatable {
    public var dailyDemand: Double
    public var targetDays: Int
    public var physicalQuantity: Int64
    public var physicalDays: Double?
    public var expiringQuantity: Double
    public var contractQuantity: Int64
    public var contractDays: Double?
    public var capacityQuantity: Int64
    public var capacityDays: Double?
    public var totalDays: Double?
    public var shortfallQuantity: Int64
    public var contractShortfallQuantity: Int64
    public var band: CoverBand

    public init(lots: [LotStock], contracts: [ContractReserve], capacity: [CapacityReserve],
                dailyDemand: Double, targetDays n: Int, asOf: LocalDate) {
        // A demand too small to tell from zero (a what-if surge of 1e-300) is zero: days stay finite or unbounded.
        let d = dailyDemand.isFinite && dailyDemand >= 1e-9 ? dailyDemand : 0
        let physical = Cover.physical(lots: lots, dailyDemand: d, asOf: asOf)
        let contractQuantity = contracts.filter { $0.counts(asOf: asOf, targetDays: n) }.saturatingSum(\.remaining)
        let capacityQuantity = capacity.saturatingSum { $0.yield(asOf: asOf, targetDays: n) }
        self.dailyDemand = d
        targetDays = n
        physicalQuantity = physical.usableQuantity
        physicalDays = physical.days
        expiringQuantity = physical.expiringQuantity
        self.contractQuantity = contractQuantity
        contractDays = Cover.days(Double(contractQuantity), dailyDemand: d)
        self.capacityQuantity = capacityQuantity
        capacityDays = Cover.days(Double(capacityQuantity), dailyDemand: d)
        if let p = physicalDays, let c = contractDays, let k = capacityDays { totalDays = p + c + k } else { totalDays = nil }
        shortfallQuantity = Cover.shortfall(days: physicalDays, targetDays: n, dailyDemand: d)
        contractShortfallQuantity = Cover.shortfall(days: contractDays, targetDays: n, dailyDemand: d)
        band = CoverBand(days: physicalDays, targetDays: n)
    }
}
