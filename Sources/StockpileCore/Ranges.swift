import Foundation

/// The documented range of every number a client sends, by API, CSV or command line (README
/// "Ranges", and each field's minimum and maximum in openapi.yaml). Outside it: 400 with the field.
///
/// Each bound is far above any real figure and far enough below Int64's limit that no sum or
/// product the service computes from them overflows: a lot's balance stays at most 10¹², a pledge
/// yields at most 10⁸ × 3650 ≈ 3.7 × 10¹¹ within a target, a demand of 10⁹ a day × surge 100 ×
/// 3650 days is a shortfall of 3.7 × 10¹⁴. Sums over a city saturate instead (`Int64.saturating…`,
/// `stockpile_clamp` in SQL), so a value that slipped in before these bounds is reported by
/// `stockpile check`, never fatal.
public enum Ranges {
    /// One movement (a count may be 0; the other kinds need at least 1).
    public static let movementQuantity: ClosedRange<Int64> = 0...1_000_000_000
    /// On hand of one lot at one facility, enforced by the ledger (sql/0016).
    public static let lotBalance: Int64 = 1_000_000_000_000
    /// A contract's committed and called-off quantities.
    public static let contractQuantity: ClosedRange<Int64> = 0...10_000_000_000
    public static let callOffQuantity: ClosedRange<Int64> = 1...10_000_000_000
    /// A pledge's output per day.
    public static let dailyCapacity: ClosedRange<Int64> = 0...100_000_000
    /// Lead time and ramp-up, in days.
    public static let leadDays: ClosedRange<Int> = 0...3650
    public static let targetDays: ClosedRange<Int> = 1...3650
    public static let shelfLifeDays: ClosedRange<Int> = 1...36_500
    public static let beds: ClosedRange<Int> = 0...100_000
    /// Planned full-load demand, units per day.
    public static let dailyDemand: ClosedRange<Double> = 0...1e9
    public static let perBedDay: ClosedRange<Double> = 0...1e6
    public static let surge: ClosedRange<Double> = 0.01...100
    public static let minOrder: ClosedRange<Int64> = 0...1_000_000_000
    /// Above 0 (exclusive): half the Earth's circumference is about 20,037 km.
    public static let maxDistanceKm: ClosedRange<Double> = 0...40_000
    /// What a receipt of one order line says arrived (also at most the line's quantity).
    public static let received: ClosedRange<Int64> = 0...1_000_000_000
    public static let tokenDays: ClosedRange<Int> = 1...3660
}

extension Int64 {
    /// `self + other`, held at Int64's bounds instead of trapping.
    public func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self × other`, held at Int64's bounds instead of trapping.
    public func saturatingMultiply(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }

    /// A computed quantity as a whole number: NaN is 0, and beyond Int64 it is held at the bound
    /// (`Int64(x)` would stop the process).
    public init(saturating value: Double) {
        if value.isNaN { self = 0 } else if value >= 9.2e18 { self = .max } else if value <= -9.2e18 { self = .min } else { self = Int64(value) }
    }
}

extension Sequence {
    /// The sum of a quantity over the elements, saturating (see `Int64.saturatingAdd`).
    public func saturatingSum(_ quantity: (Element) -> Int64) -> Int64 {
        reduce(Int64(0)) { $0.saturatingAdd(quantity($1)) }
    }
}

/// Text bounds, in UTF-8 bytes: one character may carry any number of combining marks, so a bound
/// in characters let a one-"character" lot number of 6 KB through to an index that refused it.
public enum TextBounds {
    /// Codes and numbers: facility, item, lot, region, contract, pledge, token name.
    public static let code = 128
    /// Names: of facilities, items, regions, units, suppliers, manufacturers.
    public static let name = 512
    /// Reasons and notes.
    public static let note = 1500

    /// `text` trimmed (unless `trim` is false), without control characters (tab and newline allowed
    /// in notes), at most `maxBytes` bytes; `required`: not empty.
    public static func check(_ text: String, field: String, maxBytes: Int, required: Bool = true,
                             multiline: Bool = false, trim: Bool = true) throws(FieldError) -> String {
        let trimmed = trim ? Self.trimmed(text) : text
        if required && trimmed.isEmpty { throw FieldError(field: field, reason: "required") }
        guard trimmed.utf8.count <= maxBytes else {
            throw FieldError(field: field, reason: "at most \(maxBytes) bytes of UTF-8 (\(maxBytes / 3) Chinese characters), not \(trimmed.utf8.count)")
        }
        // Unicode's control characters (category Cc) are exactly U+0000–U+001F and U+007F–U+009F,
        // a set the standard keeps fixed: compared as numbers, not looked up per character.
        guard !trimmed.unicodeScalars.contains(where: {
            ($0.value < 0x20 || (0x7F...0x9F).contains($0.value)) && !(multiline && ($0 == "\t" || $0 == "\n" || $0 == "\r"))
        }) else {
            throw FieldError(field: field, reason: "must not contain control characters")
        }
        return trimmed
    }

    /// `text` without white space at either end: what Foundation's `trimmingCharacters(in:)` returns
    /// for `.whitespacesAndNewlines`, or for `.whitespaces` when `newlines` is false. Its sets are
    /// listed here (Unicode's space separators, tab, U+200B as Foundation has it, and the line
    /// breaks); a test compares every scalar with Foundation's. Foundation's bridges every string
    /// to UTF-16 first: on the batch endpoint that was a sixth of the service's time (issue 18).
    public static func trimmed(_ text: String, newlines: Bool = true) -> String {
        func isSpace(_ s: Unicode.Scalar) -> Bool {
            switch s.value {
            case 0x09, 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000: return true
            case 0x0A...0x0D, 0x85, 0x2028, 0x2029: return newlines
            default: return false
            }
        }
        let scalars = text.unicodeScalars
        guard let first = scalars.first, let last = scalars.last, isSpace(first) || isSpace(last) else { return text }
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, isSpace(scalars[start]) { start = scalars.index(after: start) }
        while end > start, isSpace(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        return String(scalars[start..<end])
    }
}
