import Foundation
import PQ
import StockpileCore

/// A shipment (调拨单, one truck): a plan's orders from one sender to one receiver (sql/0027).
public struct Shipment: Sendable, Codable, Equatable {
    public var id: Int64
    public var plan: String
    public var from: String
    public var to: String
    public var distanceKm: Double
    public var asOf: String
    /// The least advanced status of its orders that are not cancelled ("cancelled" when all are).
    public var status: String
    public var carrier: String?
    public var quantity: Int64
    public var orders: [ReallocationOrder]
    enum CodingKeys: String, CodingKey {
        case id, plan, from, to, status, carrier, quantity, orders
        case distanceKm = "distance_km", asOf = "as_of"
    }
}

/// What approving a plan (or the part of it within a region) did, in one audited step.
public struct PlanApproval: Sendable, Codable, Equatable {
    public var plan: String
    public var region: String?
    /// Orders approved now, and the shipments they travel in.
    public var approved: Int
    public var shipments: Int
    /// Orders of the plan still proposed that this token may see but not approve (an end outside its
    /// region, or outside the region asked for).
    public var leftProposed: Int
    enum CodingKeys: String, CodingKey { case plan, region, approved, shipments, leftProposed = "left_proposed" }
}

/// Shipments: every step acts on all the shipment's orders in one transaction, through the orders'
/// own steps (so the ledger, transit, holds and the audit are exactly those of the orders). A
/// cancelled order stays out of its shipment's steps; any other order that cannot take the step
/// refuses the whole shipment, naming it.
public struct PostgresShipments: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope

    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    static let statusSQL = """
        (SELECT CASE WHEN bool_and(o.status = 'cancelled') THEN 'cancelled'
                     WHEN bool_and(o.status IN ('received', 'cancelled')) THEN 'received'
                     WHEN bool_and(o.status IN ('dispatched', 'received', 'cancelled')) THEN 'dispatched'
                     WHEN bool_and(o.status <> 'proposed') THEN 'approved' ELSE 'proposed' END
         FROM reallocation_orders o WHERE o.shipment_id = s.id)
        """

    static func shipments(_ c: PQConnection, where clause: String, _ parameters: [any PQEncodable]) throws -> [Shipment] {
        var shipments: [Shipment] = []
        try c.scan("""
            SELECT s.id, s.request_id::text, ff.code, tf.code, s.distance_km, s.as_of::text, \(statusSQL) AS status, s.carrier
            FROM shipments s JOIN facilities ff ON ff.id = s.from_facility_id JOIN facilities tf ON tf.id = s.to_facility_id
            WHERE \(clause) ORDER BY s.id DESC
            """, parameters) { row in
            shipments.append(Shipment(id: row.int64(0), plan: row.string(1), from: row.string(2), to: row.string(3), distanceKm: row.double(4),
                                      asOf: row.string(5), status: row.stringOrNil(6) ?? "cancelled", carrier: row.stringOrNil(7),
                                      quantity: 0, orders: []))
        }
        guard !shipments.isEmpty else { return [] }
        var index: [Int64: Int] = [:]
        for (i, shipment) in shipments.enumerated() { index[shipment.id] = i }
        for order in try PostgresReallocations.orders(c, where: "o.shipment_id = ANY ($1::bigint[])", [shipments.map(\.id)]) {
            guard let shipment = order.shipment, let i = index[shipment] else { continue }
            shipments[i].orders.append(order)
            if order.status != "cancelled" { shipments[i].quantity += order.quantity }
        }
        return shipments
    }

    /// The newest shipments in scope, of one status (derived), one facility at either end, or one plan.
    public func list(status: String?, facility: String?, plan: UUID?, limit: Int) async throws -> [Shipment] {
        try await database.withConnection(scope) { c in
            try Self.shipments(c, where: """
                ($1::text IS NULL OR \(Self.statusSQL) = $1) AND ($2::text IS NULL OR ff.code = $2 OR tf.code = $2)
                AND ($3::uuid IS NULL OR s.request_id = $3) AND s.id IN (
                    SELECT s2.id FROM shipments s2 WHERE ($3::uuid IS NULL OR s2.request_id = $3) ORDER BY s2.id DESC LIMIT $4)
                """, [status, facility, plan, limit])
        }
    }

    public func shipment(_ id: Int64) async throws -> Shipment {
        try await database.withConnection(scope) { c in
            guard let shipment = try Self.shipments(c, where: "s.id = $1", [id]).first else {
                throw Refusal(kind: .notFound, field: "id", description: "no shipment \(id) in this token's scope")
            }
            return shipment
        }
    }

    public func approve(_ id: Int64) async throws -> Shipment {
        try await act(id, side: nil, skipCancelled: true, PostgresReallocations.approveStep)
    }

    public func cancel(_ id: Int64, reason: String) async throws -> Shipment {
        try await act(id, side: nil, skipCancelled: false) { c, order, scope in
            try PostgresReallocations.cancelStep(c, order, scope, reason: reason)
        }
    }

    /// Dispatch every order of the shipment, naming who carries it (kept when nil).
    public func dispatch(_ id: Int64, carrier: String?) async throws -> Shipment {
        try await act(id, side: .sender, skipCancelled: true, before: { c, _ in
            if let carrier { try c.query("UPDATE shipments SET carrier = $2 WHERE id = $1", [id, carrier]) }
        }, PostgresReallocations.dispatchStep)
    }

    /// Receive every order of the shipment: `received[order][lot]` where less than dispatched arrived
    /// (an order not named arrived whole), `reason` for what did not. Names of orders not in the
    /// shipment are refused.
    public func receive(_ id: Int64, received: [Int64: [String: Int64]], reason: String) async throws -> Shipment {
        try await act(id, side: .receiver, skipCancelled: true, before: { _, members in
            if let stranger = received.keys.sorted().first(where: { !members.contains($0) }) {
                throw Refusal(kind: .invalid, field: "lines", description: "order \(stranger) is not in shipment \(id)")
            }
        }) { c, order, scope in
            try PostgresReallocations.receiveStep(c, order, scope, received: received[order.id], reason: reason)
        }
    }

    /// One step on every order of the shipment, in one transaction, orders locked in id order.
    func act(_ id: Int64, side: PostgresReallocations.Side?, skipCancelled: Bool,
             before: (@Sendable (PQConnection, [Int64]) throws -> Void)? = nil,
             _ step: @escaping @Sendable (PQConnection, ReallocationOrder, AccessScope) throws -> Bool) async throws -> Shipment {
        let scope = self.scope
        return try await database.transaction(scope, retryOnConnectionLoss: true) { c in
            guard try !c.query("SELECT 1 FROM shipments WHERE id = $1 FOR UPDATE", [id]).rows.isEmpty else {
                throw Refusal(kind: .notFound, field: "id", description: "no shipment \(id) in this token's scope")
            }
            let members = try c.query("SELECT id FROM reallocation_orders WHERE shipment_id = $1 ORDER BY id", [id]).rows
                .map { try $0.decode("id", as: Int64.self) }
            var changed = false, acted = false
            for order in members {
                let locked = try PostgresReallocations.locked(c, order, scope: scope, side: side)
                if skipCancelled && locked.status == "cancelled" { continue }
                if !acted, let before { try before(c, members) }
                acted = true
                if try step(c, locked, scope) { changed = true }
            }
            guard acted || !skipCancelled else {
                throw Refusal(kind: .conflict, field: "status", description: "shipment \(id) is cancelled (every order of it)")
            }
            // Nothing new written: the answer still waits for the synchronous standby (sql/0020).
            if !changed { try c.execute(PostgresLedger.syncBarrierSQL) }
            return try Self.shipments(c, where: "s.id = $1", [id])[0]
        }
    }

    /// Approves every order of plan `plan` still proposed that this token may approve (both ends in
    /// its scope: a command token, its region), within `region` when given, in one statement and one
    /// audit entry. Repeating it approves nothing more.
    public func approvePlan(_ plan: UUID, region: String?) async throws -> PlanApproval {
        let scope = self.scope
        return try await database.transaction(scope, retryOnConnectionLoss: true) { c in
            // A region that exists, and for a command token one inside its own (as a report's).
            try PostgresNightly.requireRegion(c, region, scope: scope)
            guard try !c.query("SELECT 1 FROM reallocation_orders WHERE request_id = $1 LIMIT 1", [plan]).rows.isEmpty else {
                throw Refusal(kind: .notFound, field: "plan", description: "no plan \(plan.uuidString.lowercased()) in this token's scope")
            }
            let inside = """
                WITH RECURSIVE under(id) AS (
                    SELECT r.id FROM regions r WHERE r.code = $2
                    UNION SELECT r.id FROM regions r JOIN under u ON r.parent_id = u.id),
                inside AS (SELECT f.id FROM facilities f WHERE $2::text IS NULL OR f.region_id IN (SELECT id FROM under))
                """
            let approved = try c.query("""
                \(inside), approved AS (
                    UPDATE reallocation_orders o SET status = 'approved', approved_at = now(), approved_by = $3
                    WHERE o.request_id = $1 AND o.status = 'proposed'
                      AND o.from_facility_id IN (SELECT id FROM inside) AND o.to_facility_id IN (SELECT id FROM inside)
                      AND stockpile_in_scope(o.from_facility_id) AND stockpile_in_scope(o.to_facility_id)
                    RETURNING o.shipment_id)
                SELECT count(*) AS orders, count(DISTINCT shipment_id) AS shipments FROM approved
                """, [plan, region, scope.actor]).rows[0]
            let orders = Int(try approved.decode("orders", as: Int64.self)), shipments = Int(try approved.decode("shipments", as: Int64.self))
            let left = try c.query("SELECT count(*) AS n FROM reallocation_orders WHERE request_id = $1 AND status = 'proposed'", [plan]).rows[0]
            let approval = PlanApproval(plan: plan.uuidString.lowercased(), region: region, approved: orders, shipments: shipments,
                                        leftProposed: Int(try left.decode("n", as: Int64.self)))
            if orders > 0 {
                try PostgresTokens.audit(c, scope: scope, action: "reallocation.approve_plan", target: approval.plan,
                                         detail: "\(orders) orders in \(shipments) shipments" + (region.map { " within \($0)" } ?? ""))
            } else {
                try c.execute(PostgresLedger.syncBarrierSQL)
            }
            return approval
        }
    }

    /// Plans with orders still proposed in scope, newest first: what the command centre may approve whole.
    public struct OpenPlan: Sendable, Equatable {
        public var plan: String
        public var asOf: String
        public var proposed: Int
        public var shipments: Int
    }

    public func openPlans(limit: Int = 5) async throws -> [OpenPlan] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT request_id::text AS plan, max(as_of)::text AS as_of, count(*) AS proposed, count(DISTINCT shipment_id) AS shipments
                FROM reallocation_orders WHERE status = 'proposed'
                GROUP BY request_id ORDER BY max(id) DESC LIMIT $1
                """, [Int64(limit)]).rows.map {
                OpenPlan(plan: try $0.decode("plan"), asOf: try $0.decode("as_of"), proposed: Int(try $0.decode("proposed", as: Int64.self)),
                         shipments: Int(try $0.decode("shipments", as: Int64.self)))
            }
        }
    }
}
