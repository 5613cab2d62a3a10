import Foundation
import PQ
import StockpileCore

/// A donation as stored, with each line's inspection and where its lot went.
public struct Donation: Sendable, Codable, Equatable {
    public struct Shipment: Sendable, Codable, Equatable {
        public var order: Int64
        public var to: String
        public var quantity: Int64
        public var status: String
    }
    public struct Line: Sendable, Codable, Equatable {
        public var line: Int
        public var item: String
        public var itemName: String
        public var lot: String
        public var expiry: String?
        public var quantity: Int64
        /// nil while waiting for inspection (待检).
        public var result: String?
        public var inspectedAt: Date?
        public var inspectedBy: String?
        public var note: String?
        public var writtenOff: Int64?
        public var shipped: [Shipment]
        enum CodingKeys: String, CodingKey {
            case line, item, lot, expiry, quantity, result, note, shipped
            case itemName = "item_name", inspectedAt = "inspected_at", inspectedBy = "inspected_by", writtenOff = "written_off"
        }
    }
    public var id: Int64
    public var requestID: String
    public var donor: String
    public var donorKind: String
    public var contact: String
    public var certificate: String
    public var facility: String
    public var facilityName: String
    public var receivedAt: Date
    public var recordedBy: String
    public var lines: [Line]
    /// inspecting while any line waits; else done.
    public var status: String { lines.contains { $0.result == nil } ? "inspecting" : "done" }
    enum CodingKeys: String, CodingKey {
        case id, donor, contact, certificate, facility, lines
        case requestID = "request_id", donorKind = "donor_kind", facilityName = "facility_name", receivedAt = "received_at",
             recordedBy = "recorded_by"
    }
}

/// Donations in PostgreSQL (sql/0026): received into the ledger and held in one transaction; inspected
/// line by line. Row-level security gives each token the donations of its facilities.
public struct PostgresDonations: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    /// Records a donation: a receipt per line (ids derived from the request's, so a retry replays
    /// them), an inspection hold on each lot in the facility's region, and the register's rows.
    /// The same request id again returns what was stored; with another body, 409.
    public func record(_ request: DonationRequest) async throws -> (donation: Donation, replay: Bool) {
        let scope = self.scope
        return try await database.transaction(scope, retryOnConnectionLoss: true) { c in
            if let found = try c.query("SELECT id, fingerprint = md5($2) AS same FROM donations WHERE request_id = $1::uuid",
                                       [request.id, request.fingerprint]).rows.first {
                guard try found.decode("same", as: Bool.self) else {
                    throw Refusal(kind: .conflict, field: "id", description: "donation \(request.id.uuidString.lowercased()) was already recorded with a different body")
                }
                return (try Self.load(c, where: "d.id = $1", [try found.decode("id", as: Int64.self)])[0], true)
            }
            guard let facility = try c.query("SELECT id FROM facilities WHERE code = $1 AND stockpile_in_scope(id)", [request.facility]).rows.first else {
                throw Refusal(kind: .notFound, field: "facility", description: "unknown facility \(request.facility), or not this token's")
            }
            let facilityID: Int = try facility.decode("id")
            let id: Int64 = try c.query("""
                INSERT INTO donations (request_id, fingerprint, donor, donor_kind, contact, certificate, facility_id, recorded_by)
                VALUES ($1::uuid, md5($2), $3, $4, $5, $6, $7, $8) RETURNING id
                """, [request.id, request.fingerprint, request.donor, request.donorKind.rawValue, request.contact, request.certificate,
                      facilityID, scope.actor]).rows[0].decode("id")
            for (i, line) in request.lines.enumerated() {
                let movement: String = try c.query("SELECT md5($1::text || '/' || $2::text)::uuid::text AS id", [request.id, i + 1]).rows[0].decode("id")
                do {
                    _ = try c.query(PostgresLedger.recordSQL, [UUID(uuidString: movement)!, request.facility, line.item, line.lot, line.expiry?.description,
                                                               "receipt", line.quantity, "donation: \(request.donor)", nil as Date?, scope.actor])
                } catch let error as PQError where error.sqlState?.hasPrefix("SP") == true {
                    throw DonationLineError(index: i, underlying: error)
                }
                let lot: Int = try c.query("SELECT l.id FROM lots l JOIN items i ON i.id = l.item_id WHERE i.code = $1 AND l.lot_number = $2",
                                           [line.item, line.lot]).rows[0].decode("id")
                let hold: Int64 = try c.query("SELECT donation_hold($1, $2, $3, $4) AS h",
                                              [lot, facilityID, "待检：捐赠 #\(id)（\(request.donor)）", scope.actor]).rows[0].decode("h")
                try c.query("""
                    INSERT INTO donation_lines (donation_id, line_no, lot_id, quantity, movement_id, hold_id) VALUES ($1, $2, $3, $4, $5::uuid, $6)
                    """, [id, i + 1, lot, line.quantity, movement, hold])
            }
            try PostgresTokens.audit(c, scope: scope, action: "donation.record", target: String(id),
                                     detail: "\(request.donor): \(request.lines.count) lines", facilityIDs: [facilityID])
            return (try Self.load(c, where: "d.id = $1", [id])[0], false)
        }
    }

    /// Inspects lines of a donation: passed releases the line's hold; failed writes off what is on
    /// hand of it (up to the donated quantity) as damage with the note, then releases the hold.
    /// A line inspected again with the same result is a replay; with another, 409.
    public func inspect(_ id: Int64, _ results: [InspectionResult]) async throws -> Donation {
        let scope = self.scope
        return try await database.transaction(scope, retryOnConnectionLoss: true) { c in
            guard let donation = try Self.load(c, where: "d.id = $1", [id]).first else {
                throw Refusal(kind: .notFound, field: "id", description: "no donation \(id) in this token's scope")
            }
            let facilityID: Int = try c.query("SELECT facility_id FROM donations WHERE id = $1", [id]).rows[0].decode("facility_id")
            for inspection in results {
                guard let line = donation.lines.first(where: { $0.line == inspection.line }) else {
                    throw Refusal(kind: .notFound, field: "lines", description: "donation \(id) has no line \(inspection.line)")
                }
                let current: String? = try c.query("SELECT result FROM donation_lines WHERE donation_id = $1 AND line_no = $2 FOR UPDATE",
                                                   [id, inspection.line]).rows[0].decode("result")
                if let current {
                    guard current == inspection.result.rawValue else {
                        throw Refusal(kind: .conflict, field: "lines", description: "line \(inspection.line) was already inspected: \(current)")
                    }
                    continue
                }
                var writtenOff: Int64?
                if inspection.result == .failed {
                    let onHand: Int64 = try c.query("""
                        SELECT coalesce((SELECT b.quantity FROM balances b JOIN lots l ON l.id = b.lot_id JOIN items i ON i.id = l.item_id
                                         WHERE b.facility_id = $1 AND i.code = $2 AND l.lot_number = $3), 0) AS q
                        """, [facilityID, line.item, line.lot]).rows[0].decode("q")
                    let amount = min(onHand, line.quantity)
                    if amount > 0 {
                        let movement: String = try c.query("SELECT md5($1::text || '/' || $2::text || '/writeoff')::uuid::text AS id",
                                                           [donation.requestID, inspection.line]).rows[0].decode("id")
                        _ = try c.query(PostgresLedger.recordSQL, [UUID(uuidString: movement)!, donation.facility, line.item, line.lot, nil as String?,
                                                                   "adjustment", amount, "damage: 捐赠质检不合格 \(inspection.note)", nil as Date?, scope.actor])
                    }
                    writtenOff = amount
                }
                try c.query("""
                    UPDATE donation_lines SET result = $3, inspected_at = now(), inspected_by = $4, note = $5, written_off = $6
                    WHERE donation_id = $1 AND line_no = $2
                    """, [id, inspection.line, inspection.result.rawValue, scope.actor, inspection.note, writtenOff])
                _ = try c.query("SELECT donation_release($1, $2, $3)", [id, inspection.line, scope.actor])
                try PostgresTokens.audit(c, scope: scope, action: "donation.inspect", target: "\(id)/\(inspection.line)",
                                         detail: "\(inspection.result.rawValue): \(inspection.note)", facilityIDs: [facilityID])
            }
            return try Self.load(c, where: "d.id = $1", [id])[0]
        }
    }

    /// The register: donations of the facilities in scope, newest first.
    public func list(facility: String?, limit: Int = 500) async throws -> [Donation] {
        try await database.withConnection(scope) { c in
            try Self.load(c, where: "($1::text IS NULL OR f.code = $1) AND d.id IN (SELECT id FROM donations ORDER BY id DESC LIMIT $2)",
                          [facility, limit])
        }
    }

    static func load(_ c: PQConnection, where clause: String, _ parameters: [any PQEncodable]) throws -> [Donation] {
        var donations = try c.query("""
            SELECT d.id, d.request_id::text AS request_id, d.donor, d.donor_kind, d.contact, d.certificate, f.code AS facility,
                   f.name AS facility_name, d.received_at, d.recorded_by
              FROM donations d JOIN facilities f ON f.id = d.facility_id WHERE \(clause) ORDER BY d.id DESC
            """, parameters).rows.map { row in
            Donation(id: try row.decode("id"), requestID: try row.decode("request_id"), donor: try row.decode("donor"),
                     donorKind: try row.decode("donor_kind"), contact: try row.decode("contact"), certificate: try row.decode("certificate"),
                     facility: try row.decode("facility"), facilityName: try row.decode("facility_name"), receivedAt: try row.decode("received_at"),
                     recordedBy: try row.decode("recorded_by"), lines: [])
        }
        guard !donations.isEmpty else { return [] }
        let index = Dictionary(uniqueKeysWithValues: donations.enumerated().map { ($1.id, $0) })
        for row in try c.query("""
            SELECT dl.donation_id, dl.line_no, i.code AS item, i.name AS item_name, l.lot_number, l.expiry::text AS expiry, dl.quantity,
                   dl.result, dl.inspected_at, dl.inspected_by, dl.note, dl.written_off,
                   coalesce((SELECT json_agg(json_build_object('order', o.id, 'to', tf.code, 'quantity', rl.quantity, 'status', o.status) ORDER BY o.id)
                               FROM reallocation_lines rl JOIN reallocation_orders o ON o.id = rl.order_id JOIN facilities tf ON tf.id = o.to_facility_id
                              WHERE rl.lot_id = dl.lot_id AND o.from_facility_id = d.facility_id AND o.status IN ('dispatched', 'received')
                                AND o.dispatched_at >= d.received_at), '[]')::text AS shipped
              FROM donation_lines dl JOIN donations d ON d.id = dl.donation_id JOIN lots l ON l.id = dl.lot_id JOIN items i ON i.id = l.item_id
             WHERE dl.donation_id = ANY($1::bigint[]) ORDER BY dl.donation_id, dl.line_no
            """, [donations.map(\.id)]).rows {
            guard let i = index[try row.decode("donation_id", as: Int64.self)] else { continue }
            let shipped = try JSONDecoder().decode([Donation.Shipment].self, from: Data((try row.decode("shipped", as: String.self)).utf8))
            donations[i].lines.append(Donation.Line(
                line: try row.decode("line_no"), item: try row.decode("item"), itemName: try row.decode("item_name"), lot: try row.decode("lot_number"),
                expiry: try row.decode("expiry"), quantity: try row.decode("quantity"), result: try row.decode("result"),
                inspectedAt: try row.decode("inspected_at"), inspectedBy: try row.decode("inspected_by"), note: try row.decode("note"),
                writtenOff: try row.decode("written_off"), shipped: shipped))
        }
        return donations
    }
}

/// A donation line the ledger refused: which line, and why. Nothing of the donation was kept.
public struct DonationLineError: Error, Sendable {
    public var index: Int
    public var underlying: PQError
}
