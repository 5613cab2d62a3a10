import Foundation

/// The kinds of ledger movement (SPEC.md "Movement").
public enum MovementKind: String, Codable, Sendable, CaseIterable {
    case receipt, issue, adjustment, count
    case transferOut = "transfer_out"
    case transferIn = "transfer_in"

    /// Kinds warehouse staff record directly; transfers come from allocation orders.
    public static let recordable: [MovementKind] = [.receipt, .issue, .adjustment, .count]
}

/// Why stock was adjusted. The code comes first in the reason text, optionally followed by
/// `: free text` (e.g. `damage: 仓库漏水`); it decides the sign of the adjustment.
public enum AdjustmentReason: String, Sendable, CaseIterable {
    case loss, damage, expired, found

    /// Losses, damage and expiry write-offs take stock away; found stock adds to it.
    public var sign: Int64 { self == .found ? 1 : -1 }

    public init?(reasonText: String) {
        // Trim exactly what the database's adjustment_adds() trims (spaces and tabs), so both agree on the sign.
        let code = reasonText.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        self.init(rawValue: String(code.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()))
    }
}

/// A movement as a client asks for it, after validation: every field well-formed.
public struct MovementRequest: Sendable, Equatable {
    public var id: UUID
    public var facility: String
    public var item: String
    public var lot: String
    public var expiry: LocalDate?
    public var kind: MovementKind
    /// The magnitude for receipt, issue and adjustment; the counted figure for count.
    public var quantity: Int64
    public var reason: String
    /// When it happened; nil means now. May be in the past for offline entry.
    public var occurredAt: Date?

    public init(id: UUID, facility: String, item: String, lot: String, expiry: LocalDate?, kind: MovementKind,
                quantity: Int64, reason: String, occurredAt: Date?) {
        self.id = id
        self.facility = facility
        self.item = item
        self.lot = lot
        self.expiry = expiry
        self.kind = kind
        self.quantity = quantity
        self.reason = reason
        self.occurredAt = occurredAt
    }
}

/// A validation failure: which field, and why. Turned into a 400 (or a CSV row error).
public struct FieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String
    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }
    public var description: String { "\(field): \(reason)" }
}

/// The loose form a movement arrives in (JSON body, CSV row, form post): every field optional text
/// or number, so that validation, not the decoder, says what is wrong with it.
public struct MovementDraft: Sendable {
    public var id: String?
    public var facility: String?
    public var item: String?
    public var lot: String?
    public var expiry: String?
    public var kind: String?
    public var quantity: Double?
    public var reason: String?
    public var occurredAt: String?

    public init(id: String? = nil, facility: String? = nil, item: String? = nil, lot: String? = nil, expiry: String? = nil,
                kind: String? = nil, quantity: Double? = nil, reason: String? = nil, occurredAt: String? = nil) {
        self.id = id
        self.facility = facility
        self.item = item
        self.lot = lot
        self.expiry = expiry
        self.kind = kind
        self.quantity = quantity
        self.reason = reason
        self.occurredAt = occurredAt
    }

    /// The rules every movement obeys before it reaches the ledger. `allowedKinds` narrows the
    /// kinds (the HTTP API takes the four recordable ones; a history import takes them too).
    public func validated(allowedKinds: [MovementKind] = MovementKind.recordable) throws(FieldError) -> MovementRequest {
        guard let idText = id.map { TextBounds.trimmed($0, newlines: false) }, !idText.isEmpty else {
            throw FieldError(field: "id", reason: "required: a UUID chosen by the client")
        }
        guard let uuid = UUID(uuidString: idText) else {
            throw FieldError(field: "id", reason: "must be a UUID such as 6f1c2a9e-0b7d-4e59-9a51-3c2f8d0e7b11")
        }
        let facility = try Self.code(self.facility, field: "facility")
        let item = try Self.code(self.item, field: "item")
        let lot = try Self.code(self.lot, field: "lot")
        guard let kindText = kind, !kindText.isEmpty else {
            throw FieldError(field: "kind", reason: "required: one of \(allowedKinds.map(\.rawValue).joined(separator: ", "))")
        }
        guard let kind = MovementKind(rawValue: kindText), allowedKinds.contains(kind) else {
            throw FieldError(field: "kind", reason: "must be one of \(allowedKinds.map(\.rawValue).joined(separator: ", ")), not \(kindText)")
        }
        guard let quantity else { throw FieldError(field: "quantity", reason: "required") }
        guard quantity.isFinite, quantity == quantity.rounded() else {
            throw FieldError(field: "quantity", reason: "must be a whole number of base units")
        }
        // A billion base units in one movement is beyond any real delivery; the bound keeps
        // balances far from integer overflow.
        guard abs(quantity) <= Self.maximumQuantity else {
            throw FieldError(field: "quantity", reason: "at most \(Int64(Self.maximumQuantity)) in one movement")
        }
        if kind == .count {
            guard quantity >= 0 else { throw FieldError(field: "quantity", reason: "a count cannot be negative") }
        } else {
            guard quantity > 0 else {
                throw FieldError(field: "quantity", reason: "must be greater than zero (the kind gives the direction)")
            }
        }
        var expiry: LocalDate?
        if let text = self.expiry.map { TextBounds.trimmed($0, newlines: false) }, !text.isEmpty {
            guard let date = LocalDate(text) else {
                throw FieldError(field: "expiry", reason: "must be a date YYYY-MM-DD, not \(text)")
            }
            expiry = date
        }
        // Kept as sent (not trimmed): its reason code is read from it exactly ("found\u{3000}" is not found).
        let reason = try TextBounds.check(self.reason ?? "", field: "reason", maxBytes: TextBounds.note, required: false, multiline: true, trim: false)
        if kind == .adjustment, AdjustmentReason(reasonText: reason) == nil {
            throw FieldError(field: "reason",
                             reason: "an adjustment needs a reason starting with loss, damage, expired or found (e.g. \"damage: 漏水\")")
        }
        var occurredAt: Date?
        if let text = self.occurredAt.map { TextBounds.trimmed($0, newlines: false) }, !text.isEmpty {
            guard let date = Timestamps.parse(text) else {
                throw FieldError(field: "occurred_at", reason: "must be an ISO-8601 time with offset, e.g. 2026-11-22T09:30:00+08:00")
            }
            guard date <= Date().addingTimeInterval(300) else {
                throw FieldError(field: "occurred_at", reason: "is in the future")
            }
            guard date >= Self.earliest else {
                throw FieldError(field: "occurred_at", reason: "is before 2000-01-01")
            }
            occurredAt = date
        }
        return MovementRequest(id: uuid, facility: facility, item: item, lot: lot, expiry: expiry, kind: kind,
                               quantity: Int64(quantity), reason: reason, occurredAt: occurredAt)
    }

    public static let maximumQuantity = Double(Ranges.movementQuantity.upperBound)
    /// No ledger entry predates the system; earlier dates are typing mistakes.
    static let earliest = Date(timeIntervalSince1970: 946_684_800) // 2000-01-01T00:00:00Z

    static func code(_ value: String?, field: String) throws(FieldError) -> String {
        try TextBounds.check(value ?? "", field: field, maxBytes: TextBounds.code)
    }
}
