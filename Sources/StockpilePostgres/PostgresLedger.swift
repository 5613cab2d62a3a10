import Foundation
import PQ
import StockpileCore

/// A movement as the ledger holds it.
public struct RecordedMovement: Sendable, Codable, Equatable {
    /// The client's UUID, lower-case.
    public var id: String
    public var facility: String
    public var item: String
    public var lot: String
    public var expiry: LocalDate?
    public var kind: MovementKind
    /// The signed change to on-hand.
    public var quantity: Int64
    public var balanceAfter: Int64
    public var reason: String
    public var occurredAt: Date
    public var recordedAt: Date
    public var recordedBy: String?
    /// True when this answer is for a replay of an id already recorded.
    public var replay: Bool

    enum CodingKeys: String, CodingKey {
        case id, facility, item, lot, expiry, kind, quantity, reason, replay
        case balanceAfter = "balance_after", occurredAt = "occurred_at", recordedAt = "recorded_at", recordedBy = "recorded_by"
    }
}

/// One lot's on-hand at a facility.
public struct LotBalance: Sendable, Codable, Equatable {
    public var item: String
    public var itemName: String
    public var unit: String
    public var lot: String
    public var expiry: LocalDate?
    public var quantity: Int64
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case item, unit, lot, expiry, quantity
        case itemName = "item_name", updatedAt = "updated_at"
    }
}

/// What a batch's sender needs back per movement to reconcile: its id, the signed change, the
/// balance after it, and whether it was a replay. Made only by `recordOutcomes`, from the
/// movement's UUID: `id` is always a UUID's lowercase text.
public struct MovementOutcome: Sendable, Equatable {
    public let id: String
    public let quantity: Int64
    public let balanceAfter: Int64
    public let replay: Bool
}

/// A batch failed: which element, and why. Nothing of the batch was applied.
public struct BatchError: Error, Sendable {
    public var index: Int
    public var underlying: PQError
}

/// The ledger in PostgreSQL: every movement goes through `record_movement` (sql/0001_ledger.sql),
/// which applies it exactly once and keeps the balance in the same transaction.
public struct PostgresLedger: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    /// The one statement a movement costs; the ingest benchmark runs the same one through pgbench.
    public static let recordSQL = "SELECT * FROM record_movement($1, $2, $3, $4, $5::date, $6, $7, $8, $9::timestamptz, $10)"

    static func parameters(_ m: MovementRequest, recordedBy: String) -> [any PQEncodable] {
        [m.id, m.facility, m.item, m.lot, m.expiry?.description, m.kind.rawValue, m.quantity, m.reason, m.occurredAt, recordedBy]
    }

    static func recorded(_ row: PQRow, request m: MovementRequest) throws -> RecordedMovement {
        RecordedMovement(
            id: m.id.uuidString.lowercased(), facility: m.facility, item: m.item, lot: m.lot,
            expiry: try row.decode("lot_expiry", as: String?.self).flatMap(LocalDate.init),
            kind: m.kind, quantity: try row.decode("quantity"), balanceAfter: try row.decode("balance_after"),
            reason: m.reason, occurredAt: try row.decode("occurred_at"), recordedAt: try row.decode("recorded_at"),
            recordedBy: nil, replay: try row.decode("replay"))
    }

    /// Records one movement: a single statement, so its own transaction with no BEGIN/COMMIT round
    /// trips. Safe to repeat (on a fresh connection if the first one died, or after a deadlock with
    /// a batch), since the id makes a repeat a replay.
    public func record(_ movement: MovementRequest, recordedBy: String) async throws -> RecordedMovement {
        let parameters = Self.parameters(movement, recordedBy: recordedBy)
        return try await repeatable { connection in
            let row = try connection.queryPrepared(Self.recordSQL, parameters).first!
            let recorded = try Self.recorded(row, request: movement)
            // A replay wrote nothing, so nothing waited for the synchronous standby: wait now (sql/0020).
            if recorded.replay { try connection.execute(Self.syncBarrierSQL) }
            return recorded
        }
    }

    /// Records many movements all-or-nothing, in order: one statement, so one transaction of its
    /// own, like a single movement (no BEGIN/COMMIT round trips).
    public func record(batch movements: [MovementRequest], recordedBy: String) async throws -> [RecordedMovement] {
        try await repeatable { connection in try Self.record(batch: movements, recordedBy: recordedBy, on: connection) }
    }

    /// `record(batch:)` answering only what the batch endpoint sends back (`MovementOutcome`).
    public func recordOutcomes(batch movements: [MovementRequest], recordedBy: String) async throws -> [MovementOutcome] {
        try await repeatable { connection in try Self.recordOutcomes(batch: movements, recordedBy: recordedBy, on: connection) }
    }

    /// A ledger statement on a pooled connection, run again (on a fresh connection if the first one
    /// died, or after a deadlock or a concurrent request with the same ids) up to three times in all:
    /// safe, since the ids make a repeat a replay.
    private func repeatable<T: Sendable>(_ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await database.withConnection(scope, body)
            } catch let error as PQError where (error.isConnectionFailure || error.isRetryableTransactionFailure) && attempt < 3 {
                attempt += 1
            }
        }
    }

    /// A transfer of an imported history, recorded without its order (sql/0033): the importer's, in
    /// its transaction. Returns whether the id was already recorded with this body (a replay).
    static func recordHistoryTransfer(_ movement: MovementRequest, recordedBy: String, on connection: PQConnection) throws -> Bool {
        try connection.query("SELECT replay FROM record_history_transfer($1, $2, $3, $4, $5::date, $6, $7, $8, $9::timestamptz, $10)",
                             parameters(movement, recordedBy: recordedBy)).first!.decode("replay")
    }

    /// A write whose commit waits for the synchronous standby, after a replay (sql/0020_sync_barrier.sql).
    static let syncBarrierSQL = "SELECT stockpile_sync_barrier()"

    /// The batch in one statement (record_movements, sql/0002_batch_ledger.sql), one array per
    /// column, answering with `columns` of the function's result.
    static func recordBatchSQL(_ columns: String) -> String { """
        SELECT \(columns) FROM record_movements($1::uuid[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[],
                                       $7::bigint[], $8::text[], $9::timestamptz[], $10)
        """ }

    /// The batch body, for callers that already hold a transaction (the importer).
    static func record(batch movements: [MovementRequest], recordedBy: String, on connection: PQConnection) throws -> [RecordedMovement] {
        try record(batch: movements, recordedBy: recordedBy, on: connection, columns: "*", recorded, replay: \.replay)
    }

    /// What the batch endpoint asks of record_movements (the ingest benchmark's pgbench asks the same).
    public static let outcomeColumns = "replay, quantity, balance_after"

    /// The batch body answering only the outcomes: the server then writes out three numbers per
    /// movement instead of two timestamps and a date besides (issue 18).
    static func recordOutcomes(batch movements: [MovementRequest], recordedBy: String, on connection: PQConnection) throws -> [MovementOutcome] {
        try record(batch: movements, recordedBy: recordedBy, on: connection, columns: outcomeColumns, { row, m in
            MovementOutcome(id: m.id.uuidString.lowercased(), quantity: try row.decode("quantity"), balanceAfter: try row.decode("balance_after"),
                            replay: try row.decode("replay"))
        }, replay: \.replay)
    }

    private static func record<Answer>(batch movements: [MovementRequest], recordedBy: String, on connection: PQConnection, columns: String,
                                       _ answer: (PQRow, MovementRequest) throws -> Answer, replay: (Answer) -> Bool) throws -> [Answer] {
        guard !movements.isEmpty else { return [] }
        let parameters: [any PQEncodable] = [
            movements.map(\.id), movements.map(\.facility), movements.map(\.item), movements.map(\.lot),
            movements.map { $0.expiry?.description }, movements.map(\.kind.rawValue), movements.map(\.quantity),
            movements.map(\.reason), movements.map(\.occurredAt), recordedBy,
        ]
        let rows: [PQRow]
        do {
            rows = try connection.queryPrepared(recordBatchSQL(columns), parameters).rows
        } catch let error as PQError where error.sqlState?.hasPrefix("SP") == true {
            // The function names the movement at fault in its HINT, "batch index N"; the ledger's
            // triggers name it by id, "movement <uuid>" (sql/0015–0017), or by its lot, "lot:{item, lot}".
            let hint = error.hint ?? ""
            let index: Int
            if hint.hasPrefix("movement ") {
                index = movements.firstIndex { $0.id.uuidString.lowercased() == hint.dropFirst("movement ".count).lowercased() } ?? 0
            } else if hint.hasPrefix("lot:"), let named = try? JSONDecoder().decode([String: String].self, from: Data(hint.dropFirst(4).utf8)) {
                index = movements.firstIndex { $0.item == named["item"] && $0.lot == named["lot"] } ?? 0
            } else {
                index = Int(hint.replacingOccurrences(of: "batch index ", with: "")) ?? 0
            }
            throw BatchError(index: index, underlying: error)
        }
        let answers = try zip(rows, movements).map { try answer($0, $1) }
        // A batch of nothing but replays writes nothing: make its commit wait for the standby too.
        if answers.allSatisfy(replay) { try connection.execute(syncBarrierSQL) }
        return answers
    }

    /// Balances by item and lot at one facility, nil when the facility does not exist.
    public func stock(facility: String, includeEmpty: Bool = false) async throws -> [LotBalance]? {
        let scope = self.scope
        return try await database.withConnection(scope) { connection in
            // Outside the scope, a facility does not exist (row-level security would show it empty).
            guard let row = try connection.query("SELECT id FROM facilities WHERE code = $1", [facility]).first,
                  scope.includes(facilityID: try row.decode("id")) else { return nil }
            return try connection.query("""
                SELECT i.code AS item, i.name AS item_name, i.unit, l.lot_number, l.expiry::text AS expiry, b.quantity, b.updated_at
                FROM balances b
                JOIN facilities f ON f.id = b.facility_id
                JOIN items i ON i.id = b.item_id
                JOIN lots l ON l.id = b.lot_id
                WHERE f.code = $1 AND ($2 OR b.quantity > 0)
                ORDER BY i.code, l.expiry NULLS LAST, l.lot_number
                """, [facility, includeEmpty]).rows.map { row in
                LotBalance(item: try row.decode("item"), itemName: try row.decode("item_name"), unit: try row.decode("unit"),
                           lot: try row.decode("lot_number"),
                           expiry: try row.decode("expiry", as: String?.self).flatMap(LocalDate.init),
                           quantity: try row.decode("quantity"), updatedAt: try row.decode("updated_at"))
            }
        }
    }

    public struct MovementPage: Sendable {
        public var movements: [RecordedMovement]
        /// Pass back as `after` to read the next page; nil on the last page.
        public var next: String?
    }

    /// Movements newest-recorded last, filtered, a page at a time (keyset paging on recorded_at, id).
    public func movements(facility: String?, item: String?, since: Date?, after cursor: String?, limit: Int) async throws -> MovementPage {
        var afterMicros: Int64?
        var afterID: UUID?
        if let cursor {
            let parts = cursor.split(separator: "_", maxSplits: 1)
            guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
                throw FieldError(field: "after", reason: "not a cursor this service gave out")
            }
            afterMicros = micros
            afterID = id
        }
        let parameters: [any PQEncodable] = [facility, item, since, afterMicros, afterID, limit + 1]
        let rows = try await database.withConnection(scope) { connection in
            try connection.query("""
                SELECT m.id, f.code AS facility, i.code AS item, l.lot_number, l.expiry::text AS expiry, m.kind, m.quantity,
                       m.balance_after, m.reason, m.occurred_at, m.recorded_at, m.recorded_by,
                       (extract(epoch FROM m.recorded_at) * 1000000)::bigint AS recorded_micros
                FROM movements m
                JOIN facilities f ON f.id = m.facility_id
                JOIN items i ON i.id = m.item_id
                JOIN lots l ON l.id = m.lot_id
                WHERE ($1::text IS NULL OR f.code = $1)
                  AND ($2::text IS NULL OR i.code = $2)
                  AND ($3::timestamptz IS NULL OR m.occurred_at >= $3)
                  -- The cursor keeps recorded_at to the microsecond, as the server stores it.
                  AND ($4::bigint IS NULL OR (m.recorded_at, m.id) > (timestamptz 'epoch' + $4::bigint * interval '1 microsecond', $5::uuid))
                ORDER BY m.recorded_at, m.id
                LIMIT $6
                """, parameters).rows
        }
        var movements: [RecordedMovement] = []
        for row in rows.prefix(limit) {
            movements.append(RecordedMovement(
                id: try row.decode("id", as: String.self), facility: try row.decode("facility"), item: try row.decode("item"),
                lot: try row.decode("lot_number"), expiry: try row.decode("expiry", as: String?.self).flatMap(LocalDate.init),
                kind: MovementKind(rawValue: try row.decode("kind"))!, quantity: try row.decode("quantity"),
                balanceAfter: try row.decode("balance_after"), reason: try row.decode("reason"),
                occurredAt: try row.decode("occurred_at"), recordedAt: try row.decode("recorded_at"),
                recordedBy: try row.decode("recorded_by"), replay: false))
        }
        var next: String?
        if rows.count > limit, let last = rows.prefix(limit).last {
            next = "\(try last.decode("recorded_micros", as: Int64.self))_\(try last.decode("id", as: UUID.self).uuidString.lowercased())"
        }
        return MovementPage(movements: movements, next: next)
    }

    /// Positions where the ledger does not sum to the balance. Always empty, or something is badly wrong.
    public func mismatches() async throws -> [(facility: String, lot: String, ledger: Int64, balance: Int64)] {
        try await database.withConnection(scope) { connection in
            try connection.query("""
                SELECT f.code AS facility, l.lot_number, coalesce(m.total, 0) AS ledger, coalesce(b.quantity, 0) AS balance
                FROM (SELECT facility_id, lot_id, sum(quantity) AS total FROM movements GROUP BY 1, 2) m
                FULL JOIN balances b USING (facility_id, lot_id)
                JOIN facilities f ON f.id = coalesce(m.facility_id, b.facility_id)
                JOIN lots l ON l.id = coalesce(m.lot_id, b.lot_id)
                WHERE coalesce(m.total, 0) <> coalesce(b.quantity, 0)
                """).rows.map { row in
                (try row.decode("facility"), try row.decode("lot_number"), try row.decode("ledger"), try row.decode("balance"))
            }
        }
    }
}
