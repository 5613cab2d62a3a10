import Foundation
import PQ
import StockpileCore

/// One line of a facility's recent movements, as the facility page lists it.
public struct RecentMovement: Sendable, Equatable {
    public var item: String
    public var itemName: String
    public var lot: String
    public var kind: String
    public var quantity: Int64
    public var balanceAfter: Int64
    public var reason: String
    public var occurredAt: Date
    public var recordedBy: String
}

/// The few reads the web pages need beyond the API's repositories.
public struct PostgresPages: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope

    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    /// The newest movements at one facility, newest first (row-level security keeps others' out).
    public func recentMovements(facility: String, limit: Int) async throws -> [RecentMovement] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT i.code AS item, i.name AS item_name, l.lot_number, m.kind, m.quantity, m.balance_after, m.reason,
                       m.occurred_at, m.recorded_by
                FROM movements m JOIN facilities f ON f.id = m.facility_id JOIN items i ON i.id = m.item_id JOIN lots l ON l.id = m.lot_id
                WHERE f.code = $1 ORDER BY m.recorded_at DESC, m.id DESC LIMIT $2
                """, [facility, limit]).rows.map { row in
                RecentMovement(item: try row.decode("item"), itemName: try row.decode("item_name"), lot: try row.decode("lot_number"),
                               kind: try row.decode("kind"), quantity: try row.decode("quantity"),
                               balanceAfter: try row.decode("balance_after"), reason: try row.decode("reason"),
                               occurredAt: try row.decode("occurred_at"), recordedBy: try row.decode("recorded_by"))
            }
        }
    }

    /// When the newest movement the scope can see was recorded: how fresh the dashboard's data is.
    public func lastRecorded() async throws -> Date? {
        try await database.read(scope) { c in
            try c.query("SELECT max(recorded_at) AS at FROM movements").first?.decode("at", as: Date?.self)
        }.0
    }

    /// On-hand of an item at a facility over all its lots (0 when there is none): the entry page's confirmation.
    public func balance(facility: String, item: String) async throws -> Int64 {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT coalesce(sum(b.quantity), 0)::bigint AS n FROM balances b JOIN facilities f ON f.id = b.facility_id
                JOIN items i ON i.id = b.item_id
                WHERE f.code = $1 AND i.code = $2
                """, [facility, item]).first!.decode("n", as: Int64.self)
        }
    }
}
