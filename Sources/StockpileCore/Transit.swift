import Foundation

/// How long an order may be on the road before it is overdue (issue 17, part 3: 截留, supplies
/// held back on the way). The expected time is the distance at a configured speed, but never less
/// than a minimum (loading, paperwork, a night's stop); an order dispatched and not received by
/// then is overdue, and the days since are how late it is.
public struct TransitRule: Sendable, Equatable {
    /// Average road speed, km/h, stops included (STOCKPILE_TRANSIT_KMH, default 30).
    public var kmh: Double
    /// The least time any order is given, hours (STOCKPILE_TRANSIT_MIN_HOURS, default 24).
    public var minimumHours: Double

    public static let standard = TransitRule(kmh: 30, minimumHours: 24)
    public static let kmhRange: ClosedRange<Double> = 1...200
    public static let minimumHoursRange: ClosedRange<Double> = 0...720

    public init(kmh: Double, minimumHours: Double) {
        self.kmh = kmh
        self.minimumHours = minimumHours
    }

    /// From the environment's texts, or why not.
    public init(kmh kmhText: String?, minimumHours hoursText: String?) throws(FieldError) {
        let kmh = try Self.number(kmhText, default: Self.standard.kmh, range: Self.kmhRange, name: "STOCKPILE_TRANSIT_KMH")
        let hours = try Self.number(hoursText, default: Self.standard.minimumHours, range: Self.minimumHoursRange, name: "STOCKPILE_TRANSIT_MIN_HOURS")
        self.init(kmh: kmh, minimumHours: hours)
    }

    static func number(_ text: String?, default value: Double, range: ClosedRange<Double>, name: String) throws(FieldError) -> Double {
        guard let text, !text.isEmpty else { return value }
        guard let n = Double(text), n.isFinite, range.contains(n) else {
            throw FieldError(field: name, reason: "\(name): a number from \(range.lowerBound) to \(range.upperBound) (got \(text.prefix(20)))")
        }
        return n
    }

    /// Hours an order of this distance is expected to take.
    public func expectedHours(distanceKm: Double) -> Double {
        max(minimumHours, max(0, distanceKm.isFinite ? distanceKm : 0) / kmh)
    }

    /// When it is due, dispatched at `dispatched`.
    public func due(dispatched: Date, distanceKm: Double) -> Date {
        dispatched.addingTimeInterval(expectedHours(distanceKm: distanceKm) * 3600)
    }

    /// Whole and part days past due at `now` (nil: not overdue).
    public func daysOverdue(dispatched: Date, distanceKm: Double, now: Date) -> Double? {
        let late = now.timeIntervalSince(due(dispatched: dispatched, distanceKm: distanceKm))
        return late > 0 ? late / 86400 : nil
    }
}
