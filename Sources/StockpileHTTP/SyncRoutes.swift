import Foundation
import Hummingbird
import NIOCore
import PQ
import StockpileCore
import StockpilePostgres

// Entries made offline, sent when the network is back (issue 16): POST /api/v1/movements/sync
// answers each movement on its own (recorded / replay / refused with the field and reason), so one
// bad line never blocks a day's work; GET /api/v1/attention lists what needs someone, and
// POST /api/v1/attention/{id}/resolve closes an entry once someone has recorded what really happened.
// The entry page's outbox sends through /entry/sync, the same code under the page session.

extension StockpileAPI {
    static let syncRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("POST", "/api/v1/movements/sync", writers),
        ("GET", "/api/v1/attention", readers), ("POST", "/api/v1/attention/{id}/resolve", readers),
    ]
    /// A device clock further than this from the server's is wrong: its times are moved by the offset.
    /// Below it, the difference is the network's delay and the clerk's times are kept as made.
    static let clockTolerance: Double = 120
}

/// One entry of a sync body, read field by field: a field of the wrong type refuses that entry
/// alone (with the field named), not the whole day's outbox.
struct SyncEntryInput: Decodable, Sendable {
    var draft = MovementDraft()
    var deviceSeq: Int64?
    var recordedBy: String?
    var typeError: String?

    enum Keys: String, CodingKey {
        case id, facility, item, lot, expiry, kind, quantity, reason
        case occurredAt = "occurred_at", deviceSeq = "device_seq", recordedBy = "recorded_by"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        func text(_ key: Keys) -> String? {
            guard c.contains(key), (try? c.decodeNil(forKey: key)) != true else { return nil }
            if let s = try? c.decode(String.self, forKey: key) { return s }
            if typeError == nil { typeError = key.stringValue }
            return nil
        }
        draft.id = text(.id); draft.facility = text(.facility); draft.item = text(.item); draft.lot = text(.lot)
        draft.expiry = text(.expiry); draft.kind = text(.kind); draft.reason = text(.reason); draft.occurredAt = text(.occurredAt)
        recordedBy = text(.recordedBy)
        if c.contains(.quantity), (try? c.decodeNil(forKey: .quantity)) != true {
            if let q = try? c.decode(Double.self, forKey: .quantity) { draft.quantity = q } else if typeError == nil { typeError = "quantity" }
        }
        if c.contains(.deviceSeq), (try? c.decodeNil(forKey: .deviceSeq)) != true {
            if let s = try? c.decode(Int64.self, forKey: .deviceSeq), s >= 0 { deviceSeq = s } else if typeError == nil { typeError = "device_seq" }
        }
    }
}

struct SyncInput: Decodable, Sendable {
    var sentAt: String?
    var device: String?
    var movements: [SyncEntryInput]?
    enum CodingKeys: String, CodingKey { case device, movements, sentAt = "sent_at" }
}

struct SyncOutput: Encodable, Sendable {
    struct Result: Encodable, Sendable {
        var id: String
        /// recorded, replay (sent before and recorded then) or refused.
        var status: String
        var replay: Bool
        var field: String?
        var code: String?
        var reason: String?
        var onHand: Int64?
        var attention: String?
        var movement: RecordedMovement?
        /// Whether the server keeps this outcome (and lists a refusal for a person). A refusal it does
        /// not keep (no id, no facility, another facility's, another clerk's) stays the device's.
        var stored = true
        enum CodingKeys: String, CodingKey {
            case id, status, replay, field, code, reason, attention, movement, stored
            case onHand = "on_hand"
        }
    }
    var receivedAt: Date
    var clockOffsetSeconds: Double?
    var clockCorrected: Bool
    var recorded: Int
    var replays: Int
    var refused: Int
    var results: [Result]
    enum CodingKeys: String, CodingKey {
        case recorded, replays, refused, results
        case receivedAt = "received_at", clockOffsetSeconds = "clock_offset_seconds", clockCorrected = "clock_corrected"
    }
}

enum MovementSync {
    /// Times PostgreSQL's timestamptz holds without complaint, and the sender's clock may claim.
    static let storable = Date(timeIntervalSince1970: -2_208_988_800)...Date(timeIntervalSince1970: 253_402_300_799) // 1900 … 9999
    /// Sends a whole outbox, entry by entry in the order given. A database that fails midway ends
    /// the request with 503: what was decided is stored, and the resend finds it as replays.
    static func run(_ body: ByteBuffer, scope: AccessScope, database: StockpileDatabase, sessionUser: String? = nil) async throws -> SyncOutput {
        let input = try JSON.decode(SyncInput.self, from: body)
        guard let entries = input.movements else {
            throw APIError(.badRequest, "invalid", "movements: required, an array of movements", field: "movements")
        }
        guard !entries.isEmpty, entries.count <= StockpileAPI.maxBatch else {
            throw APIError(.badRequest, "invalid", "movements: between 1 and \(StockpileAPI.maxBatch) per request", field: "movements")
        }
        let received = Date()
        var sentAt: Date?
        if let text = input.sentAt {
            guard let date = Timestamps.parse(text), Self.storable.contains(date) else {
                throw APIError(.badRequest, "invalid", "sent_at: must be an ISO-8601 time with offset (the device clock when sending)", field: "sent_at")
            }
            sentAt = date
        }
        var device: String?
        do {
            device = try input.device.map { try TextBounds.check($0, field: "device", maxBytes: 200, required: false) }.flatMap { $0.isEmpty ? nil : $0 }
        } catch let error as FieldError { throw APIError.invalid(error) }
        let offset = sentAt.map { received.timeIntervalSince($0) }
        let corrected = offset.map { abs($0) > StockpileAPI.clockTolerance } ?? false

        let submissions = PostgresSubmissions(database, scope: scope)
        var results: [SyncOutput.Result] = []
        for (i, input) in entries.enumerated() {
            guard let idText = input.draft.id?.trimmingCharacters(in: .whitespaces), let id = UUID(uuidString: idText) else {
                // Nothing to key it by: refused, not stored; the device keeps it.
                results.append(.init(id: String((input.draft.id ?? "").prefix(100)), status: "refused", replay: false, field: "id", code: "invalid",
                                     reason: "movements[\(i)].id: required, a UUID made when the entry was made", stored: false))
                continue
            }
            // Never one clerk's entry under another's session (a shared PC): the page says whose it is.
            if let sessionUser, let by = input.recordedBy, by != sessionUser {
                results.append(.init(id: id.uuidString.lowercased(), status: "refused", replay: false, field: "recorded_by", code: "other_user",
                                     reason: "made by \(by.prefix(100)), not by \(sessionUser): sign in as \(by.prefix(100)) to send it", stored: false))
                continue
            }
            // The facility decides who may see the entry: without one it is not kept (the device keeps it).
            guard let facility = input.draft.facility?.trimmingCharacters(in: .whitespaces), !facility.isEmpty else {
                results.append(.init(id: id.uuidString.lowercased(), status: "refused", replay: false, field: "facility", code: "invalid",
                                     reason: "facility: required", stored: false))
                continue
            }
            do { try requireFacility(facility, in: scope) } catch let error as APIError {
                results.append(.init(id: id.uuidString.lowercased(), status: "refused", replay: false, field: "facility", code: "forbidden",
                                     reason: error.message, stored: false))
                continue
            }
            let entry = prepare(input, id: id, offset: corrected ? offset : nil, received: received)
            let outcome: SubmissionOutcome
            do {
                outcome = try await submissions.submit(entry, sentAt: sentAt, clockOffset: offset, device: device)
            } catch let error as PQError where error.sqlState == "SP409" && error.column == "id" {
                // Sent before with another body: the first one's outcome stands; this one is the device's to show.
                results.append(.init(id: id.uuidString.lowercased(), status: "refused", replay: false, field: "id", code: "conflict",
                                     reason: error.message, stored: false))
                continue
            } catch let error as PQError where ["22", "23"].contains(error.sqlState?.prefix(2)) || error.sqlState == "42501" {
                // Something in this entry the database cannot hold: this entry refused, the rest go on.
                results.append(.init(id: id.uuidString.lowercased(), status: "refused", replay: false, field: error.column ?? "movement",
                                     code: "invalid", reason: "could not be kept: \(error.message)", stored: false))
                continue
            }
            results.append(.init(id: id.uuidString.lowercased(),
                                 status: outcome.outcome == .refused ? "refused" : (outcome.replay ? "replay" : "recorded"),
                                 replay: outcome.replay, field: outcome.field, code: outcome.code, reason: outcome.reason,
                                 onHand: outcome.onHand, attention: outcome.attention, movement: outcome.movement))
        }
        return SyncOutput(receivedAt: received, clockOffsetSeconds: offset.map { ($0 * 10).rounded() / 10 }, clockCorrected: corrected,
                          recorded: results.filter { $0.status == "recorded" }.count, replays: results.filter { $0.status == "replay" }.count,
                          refused: results.filter { $0.status == "refused" }.count, results: results)
    }

    /// The entry checked as any movement is, with its occurred_at moved by the device's clock
    /// offset when that clock was wrong (`offset` non-nil).
    static func prepare(_ input: SyncEntryInput, id: UUID, offset: Double?, received: Date) -> SubmittedEntry {
        // What is kept of a refused entry as sent: no NUL (PostgreSQL's text cannot hold one), at most
        // 500 characters a field. Validation sees the entry as it came, NUL and all.
        var raw = input.draft
        let keepable = { (text: String?) in text.map { String($0.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}").prefix(500)) } }
        raw.facility = keepable(raw.facility); raw.item = keepable(raw.item); raw.lot = keepable(raw.lot)
        raw.expiry = keepable(raw.expiry); raw.kind = keepable(raw.kind); raw.reason = keepable(raw.reason)
        raw.occurredAt = keepable(raw.occurredAt)
        var draft = input.draft
        var clientOccurred: Date?
        var refusal: FieldError?
        if let typeError = input.typeError {
            refusal = FieldError(field: typeError, reason: "has the wrong type")
        }
        if let text = draft.occurredAt?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            if let date = Timestamps.parse(text) {
                // Kept only when PostgreSQL can hold it (a year-0 clock would fail the whole request).
                clientOccurred = (Self.storable).contains(date) ? date : nil
                let when = date.addingTimeInterval(offset ?? 0)
                // Checked here rather than by the draft, after the correction, with a hint at the clock.
                if refusal == nil, when > received.addingTimeInterval(300) {
                    refusal = FieldError(field: "occurred_at", reason: "is in the future: the device clock may be wrong")
                } else if refusal == nil, when < Date(timeIntervalSince1970: 946_684_800) {
                    refusal = FieldError(field: "occurred_at", reason: "is before 2000-01-01: the device clock may be wrong")
                }
                draft.occurredAt = nil
                if refusal == nil {
                    var movement: MovementRequest
                    do { movement = try draft.validated() } catch { return SubmittedEntry(id: id, movement: nil, raw: raw, refusal: error,
                                                                                           clientOccurredAt: clientOccurred, deviceSeq: input.deviceSeq) }
                    movement.occurredAt = min(when, received)
                    return SubmittedEntry(id: id, movement: movement, raw: raw, refusal: nil, clientOccurredAt: clientOccurred, deviceSeq: input.deviceSeq)
                }
            } else if refusal == nil {
                refusal = FieldError(field: "occurred_at", reason: "must be an ISO-8601 time with offset, e.g. 2026-11-22T09:30:00+08:00")
            }
        }
        if refusal == nil {
            do {
                let movement = try draft.validated()
                return SubmittedEntry(id: id, movement: movement, raw: raw, refusal: nil, clientOccurredAt: nil, deviceSeq: input.deviceSeq)
            } catch { refusal = error }
        }
        return SubmittedEntry(id: id, movement: nil, raw: raw, refusal: refusal, clientOccurredAt: clientOccurred, deviceSeq: input.deviceSeq)
    }
}

struct AttentionOutput: Encodable, Sendable {
    var submissions: [OpenSubmission]
}

struct ResolveInput: Decodable, Sendable {
    var resolution: String?
}

func addSyncRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    api.post("movements/sync") { request, context in
        let scope = try context.require(StockpileAPI.writers, to: "record stock")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        return try JSON.response(try await MovementSync.run(body, scope: scope, database: database))
    }
    api.get("attention") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read what needs attention")
        let facility = request.uri.queryParameters["facility"].map(String.init)
        return try JSON.response(AttentionOutput(submissions: try await PostgresSubmissions(database, scope: scope).open(facility: facility)))
    }
    api.post("attention/{id}/resolve") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "resolve what needs attention")
        let id = try context.parameters.require("id")
        let input = try JSON.decode(ResolveInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        return try await resolveSubmission(id: id, resolution: input.resolution, scope: scope, database: database)
    }
}

struct PageResolveInput: Decodable, Sendable {
    var id: String?
    var resolution: String?
}

/// Closes a submission that needed attention (the API's and the outbox's route).
func resolveSubmission(id idText: String, resolution text: String?, scope: AccessScope, database: StockpileDatabase) async throws -> Response {
    guard let id = UUID(uuidString: idText) else {
        throw APIError(.badRequest, "invalid", "id: must be the movement's UUID", field: "id")
    }
    // Through a Result: a typed-throws do/catch here crashed the 6.3.1 compiler (SILGenCleanup).
    let resolution: String
    switch Result(catching: { () throws(FieldError) -> String in
        try TextBounds.check(text ?? "", field: "resolution", maxBytes: TextBounds.note, required: true, multiline: true)
    }) {
    case .success(let text): resolution = text
    case .failure(let error): throw APIError.invalid(error)
    }
    switch try await PostgresSubmissions(database, scope: scope).resolve(id, resolution: resolution) {
    case .resolved: return try JSON.response(["id": id.uuidString.lowercased(), "status": "resolved"])
    case .alreadyResolved: throw APIError(.conflict, "conflict", "submission \(idText) was already resolved", field: "id")
    // Outside the token's facilities is, to it, not there.
    case .notFound: throw APIError(.notFound, "not_found", "no submission \(idText) needs attention", field: "id")
    }
}
