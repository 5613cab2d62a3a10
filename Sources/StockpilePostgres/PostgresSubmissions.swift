import Foundation
import PQ
import StockpileCore

/// One entry from an offline outbox, checked by the service: either a movement for the ledger, or
/// the service's own refusal of it (stored all the same, so nothing the clerk made is dropped).
public struct SubmittedEntry: Sendable {
    public var id: UUID
    public var movement: MovementRequest?
    /// When the service refused it: the fields as sent, and why.
    public var raw: MovementDraft
    public var refusal: FieldError?
    /// The device clock when the clerk made it, as sent; the ledger's occurred_at is `movement.occurredAt`
    /// (moved by the device's clock offset when that was wrong).
    public var clientOccurredAt: Date?
    public var deviceSeq: Int64?

    public init(id: UUID, movement: MovementRequest?, raw: MovementDraft, refusal: FieldError?, clientOccurredAt: Date?, deviceSeq: Int64?) {
        self.id = id
        self.movement = movement
        self.raw = raw
        self.refusal = refusal
        self.clientOccurredAt = clientOccurredAt
        self.deviceSeq = deviceSeq
    }
}

/// The one outcome of a submitted movement (sql/0023_offline_sync.sql).
public struct SubmissionOutcome: Sendable, Equatable {
    public enum Outcome: String, Sendable { case recorded, refused }
    public var outcome: Outcome
    /// The id had been submitted before: this is the stored outcome, not a new decision.
    public var replay: Bool
    public var field: String?
    public var code: String?
    public var reason: String?
    /// For a refusal: the lot's on-hand at the facility when it was refused.
    public var onHand: Int64?
    /// For a recorded movement a person should look at ("before_count").
    public var attention: String?
    public var movement: RecordedMovement?
}

/// A submission that needs someone: refused, or recorded before a count that may have seen it.
public struct OpenSubmission: Sendable, Codable, Equatable {
    public var id: String
    public var facility: String?
    public var entry: [String: JSONScalar]
    public var outcome: String
    public var field: String?
    public var code: String?
    public var reason: String?
    public var onHand: Int64?
    public var attention: String?
    public var submittedBy: String
    public var receivedAt: Date
    public var clockOffsetSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case id, facility, entry, outcome, field, code, reason, attention
        case onHand = "on_hand", submittedBy = "submitted_by", receivedAt = "received_at", clockOffsetSeconds = "clock_offset_seconds"
    }
}

/// A JSON value of an entry as stored (text, number or null).
public enum JSONScalar: Sendable, Codable, Equatable {
    case text(String), number(Double), null
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null } else if let n = try? c.decode(Double.self) { self = .number(n) } else { self = .text(try c.decode(String.self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .number(let n): if n == n.rounded(), abs(n) < 1e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .null: try c.encodeNil()
        }
    }
}

/// The offline outbox's side of the ledger: each movement is decided once (sync_movement), refused
/// ones wait in the facility's "needs attention" list until someone says what really happened.
public struct PostgresSubmissions: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    static let syncSQL = """
        SELECT * FROM sync_movement($1::uuid, $2, $3, $4, $5::date, $6, $7::bigint, $8, $9::timestamptz, $10::timestamptz,
                                    $11::timestamptz, $12::float8, $13, $14::bigint, $15, $16, $17)
        """

    /// Submits one entry in its own transaction (one statement). Safe to repeat: the id makes a
    /// repeat a replay of the stored outcome.
    public func submit(_ entry: SubmittedEntry, sentAt: Date?, clockOffset: Double?, device: String?) async throws -> SubmissionOutcome {
        let m = entry.movement, raw = entry.raw
        let parameters: [any PQEncodable] = [
            entry.id, m?.facility ?? raw.facility, m?.item ?? raw.item, m?.lot ?? raw.lot,
            m?.expiry?.description ?? (raw.expiry.flatMap(LocalDate.init)?.description), m?.kind.rawValue ?? raw.kind,
            m?.quantity ?? raw.quantity.flatMap { $0.isFinite && abs($0) < 9e18 ? Int64($0) : nil }, m?.reason ?? raw.reason,
            entry.clientOccurredAt, m?.occurredAt, sentAt, clockOffset, device, entry.deviceSeq, scope.actor,
            entry.refusal?.field, entry.refusal?.reason,
        ]
        var attempt = 1
        while true {
            do {
                return try await database.withConnection(scope) { connection in
                    let row = try connection.query(Self.syncSQL, parameters).first!
                    let outcome = try Self.outcome(row, entry: entry)
                    // A replay wrote nothing, so nothing waited for the synchronous standby: wait now (sql/0020).
                    if outcome.replay { try connection.execute(PostgresLedger.syncBarrierSQL) }
                    return outcome
                }
            } catch let error as PQError where (error.isConnectionFailure || error.isRetryableTransactionFailure) && attempt < 3 {
                attempt += 1
            }
        }
    }

    static func outcome(_ row: PQRow, entry: SubmittedEntry) throws -> SubmissionOutcome {
        let outcome = SubmissionOutcome.Outcome(rawValue: try row.decode("outcome", as: String.self)) ?? .refused
        var recorded: RecordedMovement?
        if outcome == .recorded, let m = entry.movement {
            recorded = RecordedMovement(
                id: m.id.uuidString.lowercased(), facility: m.facility, item: m.item, lot: m.lot,
                expiry: try row.decode("lot_expiry", as: String?.self).flatMap(LocalDate.init), kind: m.kind,
                quantity: try row.decode("quantity"), balanceAfter: try row.decode("balance_after"), reason: m.reason,
                occurredAt: try row.decode("occurred_at"), recordedAt: try row.decode("recorded_at"), recordedBy: nil,
                replay: try row.decode("replay"))
        }
        return SubmissionOutcome(outcome: outcome, replay: try row.decode("replay"), field: try row.decode("field"),
                                 code: try row.decode("code"), reason: try row.decode("reason"), onHand: try row.decode("on_hand"),
                                 attention: try row.decode("attention"), movement: recorded)
    }

    /// What needs someone at the facilities in scope (or one of them): oldest first.
    public func open(facility: String?, limit: Int = 500) async throws -> [OpenSubmission] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT s.id::text AS id, f.code AS facility, s.entry::text AS entry, s.outcome, s.field, s.code, s.reason, s.on_hand,
                       s.attention, s.submitted_by, s.received_at, s.clock_offset_s
                  FROM movement_submissions s LEFT JOIN facilities f ON f.id = s.facility_id
                 WHERE s.resolved_at IS NULL AND (s.outcome = 'refused' OR s.attention IS NOT NULL)
                   AND ($1::text IS NULL OR f.code = $1)
                 ORDER BY s.received_at, s.id LIMIT $2
                """, [facility, limit]).rows.map { row in
                let entry = try JSONDecoder().decode([String: JSONScalar].self, from: Data((try row.decode("entry", as: String.self)).utf8))
                return OpenSubmission(id: try row.decode("id"), facility: try row.decode("facility"), entry: entry, outcome: try row.decode("outcome"),
                                      field: try row.decode("field"), code: try row.decode("code"), reason: try row.decode("reason"),
                                      onHand: try row.decode("on_hand"), attention: try row.decode("attention"),
                                      submittedBy: try row.decode("submitted_by"), receivedAt: try row.decode("received_at"),
                                      clockOffsetSeconds: try row.decode("clock_offset_s"))
            }
        }
    }

    public enum Resolution: Sendable, Equatable { case resolved, alreadyResolved, notFound }

    /// Someone has recorded what really happened (or decided nothing did): the submission leaves the
    /// list, with who closed it and their words. Audited.
    public func resolve(_ id: UUID, resolution: String) async throws -> Resolution {
        try await database.transaction(scope) { c in
            let rows = try c.query("""
                SELECT s.resolved_at IS NOT NULL AS resolved, s.facility_id FROM movement_submissions s
                 WHERE s.id = $1::uuid AND (s.outcome = 'refused' OR s.attention IS NOT NULL) FOR UPDATE
                """, [id]).rows
            guard let row = rows.first else { return .notFound }
            if try row.decode("resolved", as: Bool.self) { return .alreadyResolved }
            try c.query("UPDATE movement_submissions SET resolved_at = now(), resolved_by = $2, resolution = $3 WHERE id = $1::uuid",
                        [id, scope.actor, resolution])
            let facility: Int? = try row.decode("facility_id")
            try PostgresTokens.audit(c, scope: scope, action: "submission.resolve", target: id.uuidString.lowercased(), detail: resolution,
                                     facilityIDs: facility.map { [$0] } ?? [])
            return .resolved
        }
    }
}
