import Foundation
import PQ
import StockpileCore

/// An order on the road past its expected time (TransitRule): received by nobody yet.
public struct OverdueOrder: Sendable, Codable, Equatable {
    public var id: Int64
    public var item: String
    public var itemName: String
    public var from: String
    public var fromName: String
    public var to: String
    public var toName: String
    public var quantity: Int64
    public var inTransit: Int64
    public var distanceKm: Double
    public var dispatchedAt: Date
    public var dispatchedBy: String?
    public var dueAt: Date
    public var daysOverdue: Double
    enum CodingKeys: String, CodingKey {
        case id, item, from, to, quantity
        case itemName = "item_name", fromName = "from_name", toName = "to_name", inTransit = "in_transit", distanceKm = "distance_km"
        case dispatchedAt = "dispatched_at", dispatchedBy = "dispatched_by", dueAt = "due_at", daysOverdue = "days_overdue"
    }
}

/// A received order whose receiver recorded less than was dispatched, with the reasons given.
public struct ShortReceipt: Sendable, Codable, Equatable {
    public var id: Int64
    public var item: String
    public var from: String
    public var to: String
    public var dispatched: Int64
    public var received: Int64
    public var lost: Int64
    public var reasons: String
    public var dispatchedBy: String?
    public var receivedBy: String?
    public var receivedAt: Date
    /// The shipment it travelled in and who carried it, as the sender named them at dispatch.
    public var shipment: Int64?
    public var carrier: String?
    enum CodingKeys: String, CodingKey {
        case id, item, from, to, dispatched, received, lost, reasons, shipment, carrier
        case dispatchedBy = "dispatched_by", receivedBy = "received_by", receivedAt = "received_at"
    }
}

/// Short receipts summed per sender, receiver, carrier and month of receipt: a pair (or a carrier)
/// that keeps arriving short is the pattern to look at, not one broken box.
public struct ShortReceiptSummary: Sendable, Codable, Equatable {
    public var from: String
    public var to: String
    /// As named at dispatch; empty when nobody was named.
    public var carrier: String
    public var month: String
    public var orders: Int
    public var dispatched: Int64
    public var lost: Int64
    enum CodingKeys: String, CodingKey { case from, to, carrier, month, orders, dispatched, lost }
}

/// Issue 17, part 3 (no interception, 截留): orders held on the way, and receipts that came in
/// short. Row-level security gives each token the orders with either end in its scope.
public struct PostgresInterception: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    let timeZone: TimeZone
    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    /// Dispatched orders past due at $3 ($1 km/h, at least $2 hours on the road), most overdue first,
    /// with an end in region $5's subtree (NULL: anywhere in scope). The API, the pages and the
    /// nightly report all read this one query.
    static let overdueSQL = """
        WITH RECURSIVE subtree AS (
            SELECT id FROM regions WHERE $5::text IS NULL OR code = $5::text
            UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
        ), due AS (
            SELECT o.*, o.dispatched_at + make_interval(secs => greatest($2::float8, greatest(o.distance_km, 0) / $1::float8) * 3600) AS due_at
              FROM reallocation_orders o WHERE o.status = 'dispatched'
        )
        SELECT d.id, i.code AS item, i.name AS item_name, ff.code AS from_code, ff.name AS from_name, tf.code AS to_code,
               tf.name AS to_name, d.quantity, coalesce((SELECT sum(t.quantity) FROM in_transit t WHERE t.order_id = d.id), 0)::bigint AS in_transit,
               d.distance_km, d.dispatched_at, d.dispatched_by, d.due_at
          FROM due d JOIN items i ON i.id = d.item_id
          JOIN facilities ff ON ff.id = d.from_facility_id JOIN facilities tf ON tf.id = d.to_facility_id
         WHERE d.due_at < $3::timestamptz
           AND ($5::text IS NULL OR ff.region_id IN (SELECT id FROM subtree) OR tf.region_id IN (SELECT id FROM subtree))
         ORDER BY d.due_at, d.id LIMIT $4
        """

    /// Dispatched orders past due at `now`, the latest first by how late they are.
    public func overdue(_ rule: TransitRule, now: Date = Date(), limit: Int = 1000) async throws -> [OverdueOrder] {
        try await database.withConnection(scope) { c in try Self.overdue(c, rule, now: now, region: nil, limit: limit) }
    }

    /// How many, for the dashboard's notice (not the rows).
    public func overdueCount(_ rule: TransitRule, now: Date = Date()) async throws -> Int {
        try await database.withConnection(scope) { c in
            try c.query("SELECT count(*)::int AS n FROM (\(Self.overdueSQL)) o", [rule.kmh, rule.minimumHours, now, nil as Int?, nil as String?])
                .rows[0].decode("n")
        }
    }

    /// The same on a connection the caller holds (the nightly run's), within a region's subtree.
    public static func overdue(_ c: PQConnection, _ rule: TransitRule, now: Date, region: String?, limit: Int?) throws -> [OverdueOrder] {
        try c.query(overdueSQL, [rule.kmh, rule.minimumHours, now, limit, region]).rows.map { row in
            let due: Date = try row.decode("due_at")
            return OverdueOrder(id: try row.decode("id"), item: try row.decode("item"), itemName: try row.decode("item_name"),
                                from: try row.decode("from_code"), fromName: try row.decode("from_name"), to: try row.decode("to_code"),
                                toName: try row.decode("to_name"), quantity: try row.decode("quantity"), inTransit: try row.decode("in_transit"),
                                distanceKm: try row.decode("distance_km"), dispatchedAt: try row.decode("dispatched_at"),
                                dispatchedBy: try row.decode("dispatched_by"), dueAt: due,
                                daysOverdue: (now.timeIntervalSince(due) / 86400 * 10).rounded(.down) / 10)
        }
    }

    static let shortSQL = """
        SELECT o.id, i.code AS item, ff.code AS from_code, tf.code AS to_code, sum(l.quantity)::bigint AS dispatched,
               sum(coalesce(l.received, 0))::bigint AS received, o.dispatched_by, o.received_by, o.received_at,
               o.shipment_id, (SELECT s.carrier FROM shipments s WHERE s.id = o.shipment_id) AS carrier,
               coalesce((SELECT string_agg(DISTINCT t.reason, '; ') FROM transit_movements t WHERE t.order_id = o.id AND t.kind = 'loss'), '') AS reasons
          FROM reallocation_orders o JOIN reallocation_lines l ON l.order_id = o.id
          JOIN items i ON i.id = o.item_id JOIN facilities ff ON ff.id = o.from_facility_id JOIN facilities tf ON tf.id = o.to_facility_id
         WHERE o.status = 'received'
         GROUP BY o.id, i.code, ff.code, tf.code
        HAVING sum(coalesce(l.received, 0)) < sum(l.quantity)
        """

    /// Received orders that came in short, latest first.
    public func shortReceipts(limit: Int = 500) async throws -> [ShortReceipt] {
        try await database.withConnection(scope) { c in
            try c.query("\(Self.shortSQL) ORDER BY o.received_at DESC, o.id DESC LIMIT $1", [limit]).rows.map { row in
                let dispatched: Int64 = try row.decode("dispatched"), received: Int64 = try row.decode("received")
                return ShortReceipt(id: try row.decode("id"), item: try row.decode("item"), from: try row.decode("from_code"), to: try row.decode("to_code"),
                                    dispatched: dispatched, received: received, lost: dispatched - received, reasons: try row.decode("reasons"),
                                    dispatchedBy: try row.decode("dispatched_by"), receivedBy: try row.decode("received_by"),
                                    receivedAt: try row.decode("received_at"), shipment: try row.decode("shipment_id"),
                                    carrier: try row.decode("carrier"))
            }
        }
    }

    /// The same, summed per sender, receiver and month (in the service's zone), most lost first.
    public func shortReceiptSummary() async throws -> [ShortReceiptSummary] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT s.from_code, s.to_code, coalesce(s.carrier, '') AS carrier, to_char(s.received_at AT TIME ZONE $1, 'YYYY-MM') AS month,
                       count(*)::int AS orders, sum(s.dispatched)::bigint AS dispatched, sum(s.dispatched - s.received)::bigint AS lost
                  FROM (\(Self.shortSQL)) s
                 GROUP BY 1, 2, 3, 4 ORDER BY lost DESC, 1, 2, 3, 4
                """, [timeZone.identifier]).rows.map { row in
                ShortReceiptSummary(from: try row.decode("from_code"), to: try row.decode("to_code"), carrier: try row.decode("carrier"),
                                    month: try row.decode("month"),
                                    orders: try row.decode("orders"), dispatched: try row.decode("dispatched"), lost: try row.decode("lost"))
            }
        }
    }
}
