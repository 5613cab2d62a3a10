import Foundation

/// A query parameter as libpq receives it: text (format 0) or binary (format 1).
public enum PQValue: Sendable, Equatable {
    case null
    case text(String)
    case binary([UInt8])
}

/// Anything that can be passed as a query parameter.
public protocol PQEncodable: Sendable {
    var pqValue: PQValue { get }
}

extension String: PQEncodable { public var pqValue: PQValue { .text(self) } }
extension Int: PQEncodable { public var pqValue: PQValue { .text(String(self)) } }
extension Int64: PQEncodable { public var pqValue: PQValue { .text(String(self)) } }
extension Int32: PQEncodable { public var pqValue: PQValue { .text(String(self)) } }
extension Double: PQEncodable { public var pqValue: PQValue { .text(String(self)) } }
extension Bool: PQEncodable { public var pqValue: PQValue { .text(self ? "t" : "f") } }
extension UUID: PQEncodable { public var pqValue: PQValue { .text(uuidString.lowercased()) } }
extension Date: PQEncodable {
    /// Sent as an ISO-8601 instant with milliseconds; the server parses it into timestamptz.
    public var pqValue: PQValue { .text(PQTimestamp.format(self)) }
}
extension Optional: PQEncodable where Wrapped: PQEncodable {
    public var pqValue: PQValue { self?.pqValue ?? .null }
}
extension PQValue: PQEncodable { public var pqValue: PQValue { self } }

/// A value read from a text-format result column.
public protocol PQDecodable {
    static func decode(pqText: String?) throws -> Self
}

extension PQDecodable {
    static func required(_ text: String?) throws -> String {
        guard let text else { throw PQError.client("unexpected NULL for \(Self.self)") }
        return text
    }
}

extension String: PQDecodable { public static func decode(pqText: String?) throws -> String { try required(pqText) } }
extension Int: PQDecodable {
    public static func decode(pqText: String?) throws -> Int {
        guard let value = Int(try required(pqText)) else { throw PQError.client("not an integer: \(pqText ?? "")") }
        return value
    }
}
extension Int64: PQDecodable {
    public static func decode(pqText: String?) throws -> Int64 {
        guard let value = Int64(try required(pqText)) else { throw PQError.client("not an integer: \(pqText ?? "")") }
        return value
    }
}
extension Double: PQDecodable {
    public static func decode(pqText: String?) throws -> Double {
        guard let value = Double(try required(pqText)) else { throw PQError.client("not a number: \(pqText ?? "")") }
        return value
    }
}
extension Bool: PQDecodable {
    public static func decode(pqText: String?) throws -> Bool {
        switch try required(pqText) {
        case "t", "true": return true
        case "f", "false": return false
        case let other: throw PQError.client("not a boolean: \(other)")
        }
    }
}
extension UUID: PQDecodable {
    public static func decode(pqText: String?) throws -> UUID {
        guard let value = UUID(uuidString: try required(pqText)) else { throw PQError.client("not a uuid: \(pqText ?? "")") }
        return value
    }
}
extension Date: PQDecodable {
    public static func decode(pqText: String?) throws -> Date {
        let text = try required(pqText)
        guard let value = PQTimestamp.parse(text) else { throw PQError.client("not a timestamp: \(text)") }
        return value
    }
}
extension Optional: PQDecodable where Wrapped: PQDecodable {
    public static func decode(pqText: String?) throws -> Wrapped? {
        guard let pqText else { return nil }
        return try Wrapped.decode(pqText: pqText)
    }
}

/// Timestamps cross the wire as text. Sessions are set to UTC with ISO DateStyle (see PQConnection),
/// so the server prints `2026-11-22 06:00:00.123+00`.
public enum PQTimestamp {
    public static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    public static func parse(_ text: String) -> Date? {
        // "YYYY-MM-DD HH:MM:SS[.ffffff]+00"
        var s = text.replacingOccurrences(of: " ", with: "T")
        if s.hasSuffix("+00") { s = String(s.dropLast(3)) + "Z" }
        if let date = try? Date(s, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) { return date }
        return try? Date(s, strategy: .iso8601)
    }
}

/// Arrays travel as PostgreSQL array literals (`{"a","b",NULL}`), each element quoted and escaped,
/// so a batch is one parameter per column rather than one statement per row.
extension Array: PQEncodable where Element: PQEncodable {
    public var pqValue: PQValue {
        var literal = "{"
        for (i, element) in enumerated() {
            if i > 0 { literal += "," }
            switch element.pqValue {
            case .null:
                literal += "NULL"
            case .text(let text):
                literal += "\""
                for c in text.unicodeScalars {
                    if c == "\"" || c == "\\" { literal += "\\" }
                    literal.unicodeScalars.append(c)
                }
                literal += "\""
            case .binary:
                preconditionFailure("binary values cannot be array elements here")
            }
        }
        return .text(literal + "}")
    }
}
