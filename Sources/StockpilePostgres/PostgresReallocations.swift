import Foundation
import PQ
import StockpileCore

/// A stored reallocation order and its lines.
public struct ReallocationOrder: Sendable, Codable, Equatable {
    public struct Line: Sendable, Codable, Equatable {
        public var line: Int
        public var lot: String
        public var expiry: String?
        public var quantity: Int64
        public var received: Int64?
        public var inTransit: Int64
        enum CodingKeys: String, CodingKey { case line, lot, expiry, quantity, received, inTransit = "in_transit" }
    }
    public var id: Int64
    public var item: String
    public var from: String
    public var to: String
    public var quantity: Int64
    public var distanceKm: Double
    public var asOf: String
    public var status: String
    public var createdBy: String
    public var approvedBy: String?
    public var dispatchedBy: String?
    public var receivedBy: String?
    public var cancelledBy: String?
    public var cancelReason: String?
    /// The shipment (one truck, sender → receiver) the order travels in (sql/0027).
    public var shipment: Int64?
    /// reallocation (the plan's) or rotation (轮换: a reserve warehouse's lot sent where it is used before it expires).
    public var purpose: String = "reallocation"
    public var lines: [Line]
    enum CodingKeys: String, CodingKey {
        case id, item, from, to, quantity, status, lines, shipment, purpose
        case distanceKm = "distance_km", asOf = "as_of", createdBy = "created_by", approvedBy = "approved_by",
             dispatchedBy = "dispatched_by", receivedBy = "received_by", cancelledBy = "cancelled_by", cancelReason = "cancel_reason"
    }
}

/// The order lifecycle. Every transition locks the order, is idempotent (repeating one that
/// already happened returns the order unchanged), refuses illegal ones, and is audited.
public struct PostgresReallocations: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    let timeZone: TimeZone

    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    static let select = """
        SELECT o.id, i.code AS item, ff.code AS from_code, tf.code AS to_code, o.quantity, o.distance_km, o.as_of::text AS as_of, o.status,
               o.created_by, o.approved_by, o.dispatched_by, o.received_by, o.cancelled_by, o.cancel_reason, o.shipment_id, o.purpose
        FROM reallocation_orders o JOIN items i ON i.id = o.item_id
        JOIN facilities ff ON ff.id = o.from_facility_id JOIN facilities tf ON tf.id = o.to_facility_id
        """

    /// The orders `clause` selects, with their lines. Read in place by column position: the nightly
    /// run reads back over a million orders a night. The lines come from the same selection run
    /// again, not from a list of ids sent back (millions of them in one array parameter).
    static func orders(_ c: PQConnection, where clause: String, _ parameters: [any PQEncodable]) throws -> [ReallocationOrder] {
        var orders: [ReallocationOrder] = []
        try c.scan("\(select) WHERE \(clause) ORDER BY o.id", parameters) { row in
            orders.append(ReallocationOrder(id: row.int64(0), item: row.string(1), from: row.string(2), to: row.string(3),
                                            quantity: row.int64(4), distanceKm: row.double(5), asOf: row.string(6), status: row.string(7),
                                            createdBy: row.string(8), approvedBy: row.stringOrNil(9), dispatchedBy: row.stringOrNil(10),
                                            receivedBy: row.stringOrNil(11), cancelledBy: row.stringOrNil(12),
                                            cancelReason: row.stringOrNil(13), shipment: row.int64OrNil(14), purpose: row.string(15), lines: []))
        }
        guard !orders.isEmpty else { return [] }
        var index: [Int64: Int] = [:]
        index.reserveCapacity(orders.count)
        for (i, order) in orders.enumerated() { index[order.id] = i }
        try c.scan("""
            SELECT rl.order_id, rl.line_no, l.lot_number, l.expiry::text AS expiry, rl.quantity, rl.received, coalesce(t.quantity, 0) AS in_transit
            FROM reallocation_lines rl JOIN lots l ON l.id = rl.lot_id
            LEFT JOIN in_transit t ON t.order_id = rl.order_id AND t.line_no = rl.line_no
            WHERE rl.order_id IN (SELECT o.id FROM (\(select) WHERE \(clause)) o) ORDER BY rl.order_id, rl.line_no
            """, parameters) { row in
            guard let i = index[row.int64(0)] else { return }
            orders[i].lines.append(ReallocationOrder.Line(line: Int(row.int64(1)), lot: row.string(2), expiry: row.stringOrNil(3),
                                                          quantity: row.int64(4), received: row.int64OrNil(5), inTransit: row.int64(6)))
        }
        return orders
    }

    /// Stores the plan's orders as proposed. The same request id again returns what it stored.
    public func create(requestID: UUID, plan request: PlanRequest) async throws -> (orders: [ReallocationOrder], replay: Bool) {
        try await store(try await prepare(requestID: requestID, plan: request))
    }

    /// A creation made ready to store: the plan solved, its orders' and shipments' ids drawn. The
    /// nightly run makes its report from `orders()` while `write` stores them (issue 18, part 4).
    /// A replay (orders stored under the request id already) carries those and stores nothing.
    public struct Prepared: Sendable {
        let requestID: UUID
        let asOf: String
        let planned: [PlannedOrder]
        let ids: [Int64]
        /// Per shipment, the first order naming its sender → receiver pair; per order, its shipment.
        let firsts: [Int]
        let shipmentIDs: [Int64]
        let orderShipments: [Int64]
        let actor: String
        /// The orders stored under the request id before this creation was prepared.
        let earlier: [ReallocationOrder]?
        public var replay: Bool { earlier != nil }

        /// The orders as `store` returns them unless another creation of the same request id
        /// stores first; built by whoever asks (a city's 1.67 million take seconds), so the
        /// nightly run builds them while they are written.
        public func orders() -> [ReallocationOrder] {
            earlier ?? PostgresReallocations.proposed(ids: ids, orders: planned, shipments: orderShipments, asOf: asOf, actor: actor,
                                                      purpose: "reallocation")
        }
    }

    /// Plans and draws the ids (sequences hand out each id once, inside a transaction or not, so an
    /// id drawn for a creation that then finds itself a replay is only a gap).
    public func prepare(requestID: UUID, plan request: PlanRequest) async throws -> Prepared {
        let scope = self.scope
        let asOf = request.asOf.description
        let earlier: [ReallocationOrder] = try await database.withConnection(scope) { c in
            let found = try Self.orders(c, where: "o.request_id = $1", [requestID])
            // A replay's answer waits for the synchronous standby like the original's did (sql/0020).
            if !found.isEmpty { try c.execute(PostgresLedger.syncBarrierSQL) }
            return found
        }
        if !earlier.isEmpty {
            return Prepared(requestID: requestID, asOf: asOf, planned: [], ids: [], firsts: [], shipmentIDs: [], orderShipments: [],
                            actor: scope.actor, earlier: earlier)
        }
        let orders = try await PostgresPlanner(database, scope: scope, timeZone: timeZone).plan(request).orders
        // One shipment per sender → receiver pair (sql/0027), in the order the plan first names it.
        var pairs: [String: Int] = [:], firsts: [Int] = []
        let shipmentOf = orders.enumerated().map { i, order in
            let key = order.from + "\u{1}" + order.to
            if let known = pairs[key] { return known }
            pairs[key] = firsts.count
            firsts.append(i)
            return firsts.count - 1
        }
        let shipmentCount = firsts.count
        let (ids, shipmentIDs) = try await database.withConnection(scope) { c in
            (try Self.drawIDs(c, "reallocation_orders", orders.count), try Self.drawIDs(c, "shipments", shipmentCount))
        }
        let orderShipments = shipmentOf.map { shipmentIDs[$0] }
        return Prepared(requestID: requestID, asOf: asOf, planned: orders, ids: ids, firsts: firsts, shipmentIDs: shipmentIDs,
                        orderShipments: orderShipments, actor: scope.actor, earlier: nil)
    }

    /// Stores a prepared creation's orders, their shipments and lines in one transaction; returns
    /// them, or, if another creation of the same request id stored first, what that one stored.
    public func store(_ prepared: Prepared) async throws -> (orders: [ReallocationOrder], replay: Bool) {
        if let other = try await write(prepared) { return (other, true) }
        return (prepared.orders(), false)
    }

    /// `store` without building the orders it stored: nil when it stored them, or what another
    /// creation of the same request id stored (then this one stores nothing).
    public func write(_ prepared: Prepared) async throws -> [ReallocationOrder]? {
        if let earlier = prepared.earlier { return earlier }
        let scope = self.scope
        return try await database.transaction(scope) { c -> [ReallocationOrder]? in
            // Serialise creations of the same request id (a retry racing the original).
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", [prepared.requestID])
            let again = try Self.orders(c, where: "o.request_id = $1", [prepared.requestID])
            if !again.isEmpty { return again }
            // Three statements whatever the plan's size (a city's has over a million orders): the
            // shipments, the orders and their lines from arrays, each line naming its order's id
            // (drawn by `prepare`). Lines used to be joined back to their orders by item, sender and
            // receiver, and that join's plan rested on the table's statistics: after autovacuum had
            // analysed the table empty (its last orders deleted, these not yet committed), the
            // planner scanned every order for each line and a city's nightly run stood for over ten
            // minutes, index or not.
            let orders = prepared.planned, firsts = prepared.firsts
            let known = try KnownCodes(c)
            // Built while the shipments go in.
            let parameters = OrderParameters(requestID: prepared.requestID, ids: prepared.ids, orders: orders,
                                             shipments: prepared.orderShipments, asOf: prepared.asOf, actor: scope.actor,
                                             purpose: "reallocation", known: known)
            guard let senders = known.facilities(firsts.map { orders[$0].from }),
                  let receivers = known.facilities(firsts.map { orders[$0].to }) else { throw Self.planChanged }
            let shipments = try c.query("""
                INSERT INTO shipments (id, request_id, from_facility_id, to_facility_id, distance_km, as_of)
                SELECT s.id, $1, s.sender, s.receiver, s.distance_km, $6::date
                FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::float8[]) AS s(id, sender, receiver, distance_km)
                """, [prepared.requestID, prepared.shipmentIDs, senders, receivers, firsts.map { orders[$0].distanceKm },
                      prepared.asOf]).affectedRows
            let (created, stored, lineCount) = try Self.insertOrders(c, parameters, changed: Self.planChanged)
            // Every order and line names things that existed when the plan was read; if one went missing since, store nothing.
            guard shipments == firsts.count, created == orders.count, stored == lineCount else { throw Self.planChanged }
            try PostgresTokens.audit(c, scope: scope, action: "reallocation.create", target: prepared.requestID.uuidString.lowercased(),
                                     detail: "\(created) orders in \(shipments) shipments as of \(prepared.asOf)")
            return nil
        }
    }

    static let planChanged = Refusal(kind: .conflict, field: "plan",
                                     description: "the facilities, items or lots of the plan changed while it was stored; try again")
    static let rotationChanged = Refusal(kind: .conflict, field: "rotation",
                                         description: "the facilities, items or lots of the rotation changed while it was stored")

    /// The ids of the facilities' and items' codes, read once for a plan's orders: sent as ids, a
    /// city's 1.67 million orders are not three text columns the server parses and joins back to
    /// 10,000 facilities and 300 items. (Facilities and items are never deleted, sql/0037.)
    struct KnownCodes: Sendable {
        var facilityIDs: [String: Int64] = [:], itemIDs: [String: Int64] = [:]
        init(_ c: PQConnection) throws {
            try c.scan("SELECT id, code FROM facilities") { row in facilityIDs[row.string(1)] = row.int64(0) }
            try c.scan("SELECT id, code FROM items") { row in itemIDs[row.string(1)] = row.int64(0) }
        }
        /// Each code's id, or nil if one is not known.
        func facilities(_ codes: [String]) -> [Int64]? { Self.ids(codes, facilityIDs) }
        func items(_ codes: [String]) -> [Int64]? { Self.ids(codes, itemIDs) }
        static func ids(_ codes: [String], _ known: [String: Int64]) -> [Int64]? {
            var ids: [Int64] = []
            ids.reserveCapacity(codes.count)
            for code in codes {
                guard let id = known[code] else { return nil }
                ids.append(id)
            }
            return ids
        }
    }

    /// `count` new ids of `table`'s serial id. The sequence is looked up once: as the argument of
    /// nextval, pg_get_serial_sequence ran again for every row, and drawing a city's 1.67 million
    /// order ids took 9.3 s instead of 1.0 s.
    static func drawIDs(_ c: PQConnection, _ table: String, _ count: Int) throws -> [Int64] {
        var ids: [Int64] = []
        ids.reserveCapacity(count)
        try c.scan("SELECT nextval((SELECT pg_get_serial_sequence($1, 'id')::regclass)) FROM generate_series(1, $2::int)",
                   [table, Int64(count)]) { row in ids.append(row.int64(0)) }
        return ids
    }

    /// The orders (ids drawn by the caller) and their lines, each order in its shipment; returns the
    /// orders stored, the lines stored and the lines asked for (fewer stored: something went missing).
    /// A code `known` does not have stores nothing and throws `changed`, the caller's refusal.
    ///
    /// The two statements' parameters are built on threads of their own from the moment the caller
    /// makes `parameters`, so that a caller with a statement to run first builds them meanwhile: a
    /// city's 1.67 million orders and 1.8 million lines are 12 arrays whose lookups and text took
    /// the connection's thread about 10 s between its statements.
    static func insertOrders(_ c: PQConnection, _ parameters: OrderParameters, changed: Refusal) throws -> (orders: Int, lines: Int, wanted: Int) {
        guard let orders = parameters.orders.value else { throw changed }
        let created = try c.query("""
            INSERT INTO reallocation_orders (id, request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by,
                                             shipment_id, purpose)
            SELECT o.id, $1, o.item, o.sender, o.receiver, o.quantity, o.distance_km, $8::date, $9, o.shipment, $11
            FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::float8[], $10::bigint[])
                 AS o(id, item, sender, receiver, quantity, distance_km, shipment)
            """, orders).affectedRows
        // The lines' orders are checked to exist (sql/0037) by a query planned from the table's
        // statistics: ones that still say empty (as above) made each check a scan of every order.
        // A large plan refreshes them first, as the table's owner (sql/0031: the service's own
        // ANALYZE only warned and skipped the table).
        if parameters.count >= 10_000 { try c.query("SELECT stockpile_analyze_orders()") }
        guard let (lines, wanted) = parameters.lines.value else { throw changed }
        let stored = try c.query("""
            INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity)
            SELECT x.order_id, x.line_no, l.id, x.quantity
            FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::bigint[]) AS x(order_id, item, line_no, lot, quantity)
            JOIN lots l ON l.item_id = x.item AND l.lot_number = x.lot
            """, lines).affectedRows
        return (created, stored, wanted)
    }

    /// The parameters of `insertOrders`' two statements, each built on a thread of its own from
    /// the moment this is made; nil where a code is one `known` does not have.
    struct OrderParameters {
        let count: Int
        let orders: Prebuilt<[PQValue]?>
        let lines: Prebuilt<([PQValue], count: Int)?>
        init(requestID: UUID, ids: [Int64], orders planned: [PlannedOrder], shipments: [Int64], asOf: String, actor: String,
             purpose: String, known: KnownCodes) {
            count = planned.count
            orders = Prebuilt {
                guard let items = known.items(planned.map(\.item)), let senders = known.facilities(planned.map(\.from)),
                      let receivers = known.facilities(planned.map(\.to)) else { return nil }
                return [requestID.pqValue, ids.pqValue, items.pqValue, senders.pqValue, receivers.pqValue, planned.map(\.quantity).pqValue,
                        planned.map(\.distanceKm).pqValue, asOf.pqValue, actor.pqValue, shipments.pqValue, purpose.pqValue]
            }
            lines = Prebuilt {
                guard let items = known.items(planned.map(\.item)) else { return nil }
                let lines = planned.indices.flatMap { n in planned[n].lines.enumerated().map { (ids[n], items[n], $0.offset + 1, $0.element) } }
                return ([lines.map(\.0).pqValue, lines.map(\.1).pqValue, lines.map { Int64($0.2) }.pqValue, lines.map(\.3.lot).pqValue,
                         lines.map(\.3.quantity).pqValue], lines.count)
            }
        }
    }

    /// The orders just stored, as `orders(_:where:)` would read them back: every one of them and
    /// of their lines went in (the callers check the counts), a new order is proposed with nothing
    /// received or on the road, and each line's expiry is its lot's. Reading a city's 1.67 million
    /// orders and 1.8 million lines back from the tables it had just written took 26.8 s.
    /// `NightlyTests.createdOrdersAreWhatAReplayReadsBack` compares this with a replay, which reads them back.
    static func proposed(ids: [Int64], orders: [PlannedOrder], shipments: [Int64], asOf: String, actor: String,
                         purpose: String) -> [ReallocationOrder] {
        zip(ids, zip(orders, shipments)).map { id, pair in
            let (order, shipment) = pair
            return ReallocationOrder(id: id, item: order.item, from: order.from, to: order.to, quantity: order.quantity,
                                     distanceKm: order.distanceKm, asOf: asOf, status: "proposed", createdBy: actor, approvedBy: nil,
                                     dispatchedBy: nil, receivedBy: nil, cancelledBy: nil, cancelReason: nil, shipment: shipment,
                                     purpose: purpose, lines: order.lines.enumerated().map { n, line in
                                         ReallocationOrder.Line(line: n + 1, lot: line.lot, expiry: line.expiry, quantity: line.quantity,
                                                                received: nil, inTransit: 0)
                                     })
        }.sorted { $0.id < $1.id }
    }

    /// Stores rotation orders (轮换, issue 17 part 4) under a plan's request id, as proposed, in the
    /// plan's shipments where the pair already has one. Once per request: when rotation orders are
    /// stored under it already, returns those (a rerun of a nightly run that died).
    public func storeRotation(requestID: UUID, orders: [PlannedOrder], asOf: LocalDate) async throws -> [ReallocationOrder] {
        let scope = self.scope
        return try await database.transaction(scope) { c in
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", [requestID])
            let earlier = try Self.orders(c, where: "o.request_id = $1 AND o.purpose = 'rotation'", [requestID])
            if !earlier.isEmpty || orders.isEmpty { return earlier }
            try c.query("""
                INSERT INTO shipments (request_id, from_facility_id, to_facility_id, distance_km, as_of)
                SELECT DISTINCT ON (ff.id, tf.id) $1, ff.id, tf.id, s.distance_km, $5::date
                FROM unnest($2::text[], $3::text[], $4::float8[]) AS s(sender, receiver, distance_km)
                JOIN facilities ff ON ff.code = s.sender JOIN facilities tf ON tf.code = s.receiver
                ON CONFLICT (request_id, from_facility_id, to_facility_id) DO NOTHING
                """, [requestID, orders.map(\.from), orders.map(\.to), orders.map(\.distanceKm), asOf.description])
            // Only the rotation's pairs: the plan's shipments under the same request id are a city's
            // 265,768, and reading them all took seconds at the end of the nightly run.
            var shipmentOf: [String: Int64] = [:]
            for row in try c.query("""
                SELECT s.id, ff.code AS sender, tf.code AS receiver
                FROM (SELECT DISTINCT * FROM unnest($2::text[], $3::text[]) AS p(sender, receiver)) p
                JOIN facilities ff ON ff.code = p.sender JOIN facilities tf ON tf.code = p.receiver
                JOIN shipments s ON s.request_id = $1 AND s.from_facility_id = ff.id AND s.to_facility_id = tf.id
                """, [requestID, orders.map(\.from), orders.map(\.to)]).rows {
                shipmentOf[try row.decode("sender", as: String.self) + "\u{1}" + (try row.decode("receiver", as: String.self))] = try row.decode("id")
            }
            let shipments = orders.compactMap { shipmentOf[$0.from + "\u{1}" + $0.to] }
            let ids = try Self.drawIDs(c, "reallocation_orders", orders.count)
            let parameters = OrderParameters(requestID: requestID, ids: ids, orders: orders, shipments: shipments, asOf: asOf.description,
                                             actor: scope.actor, purpose: "rotation", known: try KnownCodes(c))
            let (created, stored, wanted) = try Self.insertOrders(c, parameters, changed: Self.rotationChanged)
            guard shipments.count == orders.count, created == orders.count, stored == wanted else { throw Self.rotationChanged }
            try PostgresTokens.audit(c, scope: scope, action: "reallocation.rotation", target: requestID.uuidString.lowercased(),
                                     detail: "\(created) rotation orders as of \(asOf)")
            return Self.proposed(ids: ids, orders: orders, shipments: shipments, asOf: asOf.description, actor: scope.actor, purpose: "rotation")
        }
    }

    public func list(status: String?, facility: String?, item: String?, limit: Int) async throws -> [ReallocationOrder] {
        try await database.withConnection(scope) { c in
            try Self.orders(c, where: """
                ($1::text IS NULL OR o.status = $1) AND ($2::text IS NULL OR ff.code = $2 OR tf.code = $2)
                AND ($3::text IS NULL OR i.code = $3) AND o.id IN (SELECT id FROM reallocation_orders ORDER BY id DESC LIMIT $4)
                """, [status, facility, item, limit])
        }
    }

    public func order(_ id: Int64) async throws -> ReallocationOrder {
        try await database.withConnection(scope) { c in
            guard let order = try Self.orders(c, where: "o.id = $1", [id]).first else {
                throw Refusal(kind: .notFound, field: "id", description: "no order \(id) in this token's scope")
            }
            return order
        }
    }

    /// Locks the order and returns it, refusing tokens that are not on the side the step belongs to.
    enum Side: Sendable { case sender, receiver }

    static func locked(_ c: PQConnection, _ id: Int64, scope: AccessScope, side: Side?) throws -> ReallocationOrder {
        guard let ends = try c.query("""
                SELECT stockpile_in_scope(from_facility_id) AS sender, stockpile_in_scope(to_facility_id) AS receiver
                FROM reallocation_orders WHERE id = $1 FOR UPDATE
                """, [id]).rows.first,
              let order = try orders(c, where: "o.id = $1", [id]).first else {
            throw Refusal(kind: .notFound, field: "id", description: "no order \(id) in this token's scope")
        }
        // Reading an order takes either end in scope; approving or cancelling it, both: approving
        // commits the donor's stock, and a district that could cancel what leaves it could hold it back (截留).
        if side == nil, scope.role == .command, !(try ends.decode("sender", as: Bool.self) && ends.decode("receiver", as: Bool.self)) {
            throw Refusal(kind: .forbidden, field: nil, description: """
                order \(id) runs from \(order.from) to \(order.to); a command token approves or cancels only orders wholly inside its region
                """)
        }
        if let side, scope.role == .warehouse {
            let facility = side == .sender ? order.from : order.to
            guard scope.facilityCodes.contains(facility) else {
                throw Refusal(kind: .forbidden, field: nil,
                              description: "only the \(side == .sender ? "sending" : "receiving") facility (\(facility)) may do this")
            }
        }
        return order
    }

    static func illegal(_ order: ReallocationOrder, _ step: String) -> Refusal {
        Refusal(kind: .conflict, field: "status", description: "order \(order.id) is \(order.status); it cannot be \(step)")
    }

    public func approve(_ id: Int64) async throws -> ReallocationOrder {
        try await step(id, side: nil, Self.approveStep)
    }

    static func approveStep(_ c: PQConnection, _ order: ReallocationOrder, _ scope: AccessScope) throws -> Bool {
        let id = order.id
        if order.status == "approved" || order.status == "dispatched" || order.status == "received" { return false }
        guard order.status == "proposed" else { throw Self.illegal(order, "approved") }
        try c.query("UPDATE reallocation_orders SET status = 'approved', approved_at = now(), approved_by = $2 WHERE id = $1", [id, scope.actor])
        try PostgresTokens.audit(c, scope: scope, action: "reallocation.approve", target: String(id), detail: nil)
        return true
    }

    public func cancel(_ id: Int64, reason: String) async throws -> ReallocationOrder {
        try await step(id, side: nil) { c, order, scope in try Self.cancelStep(c, order, scope, reason: reason) }
    }

    static func cancelStep(_ c: PQConnection, _ order: ReallocationOrder, _ scope: AccessScope, reason: String) throws -> Bool {
        let id = order.id
        if order.status == "cancelled" { return false }
        guard order.status == "proposed" || order.status == "approved" else { throw Self.illegal(order, "cancelled (the stock has left)") }
        try c.query("UPDATE reallocation_orders SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2, cancel_reason = $3 WHERE id = $1",
                    [id, scope.actor, reason])
        try PostgresTokens.audit(c, scope: scope, action: "reallocation.cancel", target: String(id), detail: reason)
        return true
    }

    /// Dispatch: transfer_out at the donor for every line, into in-transit. Fails whole (409) when a
    /// lot no longer holds its line's quantity.
    public func dispatch(_ id: Int64) async throws -> ReallocationOrder {
        try await step(id, side: .sender, Self.dispatchStep)
    }

    static func dispatchStep(_ c: PQConnection, _ order: ReallocationOrder, _ scope: AccessScope) throws -> Bool {
        let id = order.id
        if order.status == "dispatched" || order.status == "received" { return false }
        guard order.status == "approved" else { throw Self.illegal(order, "dispatched (approve it first)") }
        // A lot held at the donor does not leave (the ledger's trigger refuses it too, sql/0015).
        if let held = try c.query("""
            SELECT l.lot_number, h.id, h.reason, h.placed_by FROM reallocation_orders o
            JOIN reallocation_lines rl ON rl.order_id = o.id JOIN lots l ON l.id = rl.lot_id,
            LATERAL stockpile_lot_hold(rl.lot_id, o.from_facility_id) h
            WHERE o.id = $1 AND h.id IS NOT NULL ORDER BY rl.line_no LIMIT 1
            """, [id]).rows.first {
            throw Refusal(kind: .held, field: "lot", description: """
                lot \(try held.decode("lot_number", as: String.self)) is held at the sending facility (hold \(try held.decode("id", as: Int64.self)): \
                \(try held.decode("reason", as: String.self)), placed by \(try held.decode("placed_by", as: String.self))); \
                order \(id) cannot be dispatched until it is released
                """)
        }
        for line in order.lines {
            try c.query("""
                SELECT record_transfer($1, $2, 'transfer_out', o.from_facility_id, rl.lot_id, rl.quantity, 'reallocation ' || $1::bigint, $3)
                FROM reallocation_orders o JOIN reallocation_lines rl ON rl.order_id = o.id WHERE o.id = $1 AND rl.line_no = $2
                """, [id, line.line, scope.actor])
            try c.query("""
                INSERT INTO transit_movements (order_id, line_no, kind, quantity, recorded_by) VALUES ($1, $2, 'dispatch', $3, $4);
                """, [id, line.line, line.quantity, scope.actor])
            try c.query("""
                INSERT INTO in_transit (order_id, line_no, item_id, lot_id, from_facility_id, to_facility_id, quantity)
                SELECT o.id, rl.line_no, o.item_id, rl.lot_id, o.from_facility_id, o.to_facility_id, rl.quantity
                FROM reallocation_orders o JOIN reallocation_lines rl ON rl.order_id = o.id WHERE o.id = $1 AND rl.line_no = $2
                """, [id, line.line])
        }
        try c.query("UPDATE reallocation_orders SET status = 'dispatched', dispatched_at = now(), dispatched_by = $2 WHERE id = $1",
                    [id, scope.actor])
        try PostgresTokens.audit(c, scope: scope, action: "reallocation.dispatch", target: String(id),
                                 detail: order.lines.map { "\($0.lot)×\($0.quantity)" }.joined(separator: ", "))
        return true
    }

    /// Receipt: transfer_in at the receiver of what arrived, per lot (default: everything); what did
    /// not arrive leaves in-transit as a loss with `reason`. Repeating it with the same quantities is
    /// a replay; with other quantities, a conflict.
    public func receive(_ id: Int64, received: [String: Int64]?, reason: String) async throws -> ReallocationOrder {
        try await step(id, side: .receiver) { c, order, scope in try Self.receiveStep(c, order, scope, received: received, reason: reason) }
    }

    static func receiveStep(_ c: PQConnection, _ order: ReallocationOrder, _ scope: AccessScope,
                            received: [String: Int64]?, reason: String) throws -> Bool {
        let id = order.id
        let wanted = order.lines.map { received?[$0.lot] ?? $0.quantity }
        if let received {
            for lot in received.keys where !order.lines.contains(where: { $0.lot == lot }) {
                throw Refusal(kind: .invalid, field: "lines", description: "lot \(lot) is not on order \(id)")
            }
            for (line, quantity) in zip(order.lines, wanted) where quantity < 0 || quantity > line.quantity {
                throw Refusal(kind: .invalid, field: "lines", description: "lot \(line.lot): received must be 0…\(line.quantity)")
            }
        }
        if order.status == "received" {
            guard order.lines.map({ $0.received ?? 0 }) == wanted || received == nil else {
                throw Refusal(kind: .conflict, field: "lines", description: "order \(id) was already received with other quantities")
            }
            return false
        }
        guard order.status == "dispatched" else { throw Self.illegal(order, "received (it has not been dispatched)") }
        let short = zip(order.lines, wanted).contains { $0.quantity > $1 }
        if short && reason.trimmingCharacters(in: .whitespaces).isEmpty {
            throw Refusal(kind: .invalid, field: "reason", description: "a short receipt needs a reason (what happened to the rest)")
        }
        for (line, quantity) in zip(order.lines, wanted) {
            if quantity > 0 {
                try c.query("""
                    SELECT record_transfer($1, $2, 'transfer_in', o.to_facility_id, rl.lot_id, $3, 'reallocation ' || $1::bigint, $4)
                    FROM reallocation_orders o JOIN reallocation_lines rl ON rl.order_id = o.id WHERE o.id = $1 AND rl.line_no = $2
                    """, [id, line.line, quantity, scope.actor])
                try c.query("INSERT INTO transit_movements (order_id, line_no, kind, quantity, recorded_by) VALUES ($1, $2, 'receipt', $3, $4)",
                            [id, line.line, -quantity, scope.actor])
            }
            if line.quantity > quantity {
                try c.query("""
                    INSERT INTO transit_movements (order_id, line_no, kind, quantity, reason, recorded_by) VALUES ($1, $2, 'loss', $3, $4, $5)
                    """, [id, line.line, -(line.quantity - quantity), "loss: " + reason, scope.actor])
            }
            try c.query("UPDATE in_transit SET quantity = 0 WHERE order_id = $1 AND line_no = $2", [id, line.line])
            try c.query("UPDATE reallocation_lines SET received = $3 WHERE order_id = $1 AND line_no = $2", [id, line.line, quantity])
        }
        try c.query("UPDATE reallocation_orders SET status = 'received', received_at = now(), received_by = $2 WHERE id = $1", [id, scope.actor])
        try PostgresTokens.audit(c, scope: scope, action: "reallocation.receive", target: String(id),
                                 detail: zip(order.lines, wanted).map { "\($0.lot) \($1)/\($0.quantity)" }.joined(separator: ", ")
                                     + (short ? " — loss: \(reason)" : ""))
        return true
    }

    /// One step in a transaction: `body` returns false when the step had already happened.
    func step(_ id: Int64, side: Side?,
              _ body: @escaping @Sendable (PQConnection, ReallocationOrder, AccessScope) throws -> Bool) async throws -> ReallocationOrder {
        let scope = self.scope
        return try await database.transaction(scope, retryOnConnectionLoss: true) { c in
            let order = try Self.locked(c, id, scope: scope, side: side)
            // A step that had already happened writes nothing of its own (beyond the row lock): its
            // answer still waits for the synchronous standby, as a replayed movement's does (sql/0020).
            if !(try body(c, order, scope)) { try c.execute(PostgresLedger.syncBarrierSQL) }
            return try Self.orders(c, where: "o.id = $1", [id])[0]
        }
    }

    /// One broken fact of conservation (`stockpile_integrity_violations`, sql/0012): its kind
    /// (ledger, transit, dispatch, receipt, not_shipped, lot; range: a stored value outside its
    /// documented range, sql/0016; lot_expiry: a lot of an expiring item without an expiry, sql/0017),
    /// what it is about, and the figures.
    public struct Violation: Sendable, Equatable, CustomStringConvertible {
        public var kind: String
        public var subject: String
        public var detail: String
        public var description: String { "\(kind): \(subject): \(detail)" }
    }

    /// What `stockpile check` proves: each ledger sums to its balance, every order line's dispatch,
    /// receipt, loss and transit agree with each other and with the transfers at both ends, and every
    /// lot's movements of both ledgers sum to on hand plus in transit. Empty when the stock is conserved.
    public static func integrityViolations(_ database: StockpileDatabase) async throws -> [Violation] {
        try await database.withConnection(.system("check")) { c in
            try c.query("""
                SELECT kind, subject, detail FROM stockpile_integrity_violations()
                UNION ALL SELECT kind, subject, detail FROM stockpile_range_violations()
                UNION ALL SELECT kind, subject, detail FROM stockpile_lot_violations() ORDER BY 1, 2
                """).rows.map {
                Violation(kind: try $0.decode("kind"), subject: try $0.decode("subject"), detail: try $0.decode("detail"))
            }
        }
    }
}
