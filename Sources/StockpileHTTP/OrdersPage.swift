import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// Reallocation orders (调拨单): approve or cancel for the command centre, dispatch for the sending
/// warehouse, receive for the receiving one (each lot's quantity, and the reason for what did not arrive). Every step is idempotent in the ledger, so a
/// resubmitted button changes nothing the second time.
struct OrdersPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope
    var transit = TransitRule.standard

    static let statuses = ["proposed", "approved", "dispatched", "received", "cancelled"]
    static let actions: [String: Set<Role>] = ["approve": StockpileAPI.planners, "cancel": StockpileAPI.planners,
                                               "dispatch": StockpileAPI.shippers, "receive": StockpileAPI.shippers]

    func response(page: PageRequest, status wanted: String?, message: String? = nil, error: String? = nil,
                  code: HTTPResponse.Status = .ok) async throws -> Response {
        let t = page.t
        let status = wanted.flatMap { Self.statuses.contains($0) ? $0 : nil }
        let orders = try await PostgresReallocations(database, scope: scope, timeZone: timeZone)
            .list(status: status, facility: nil, item: nil, limit: 200)
        let mine = Set(scope.facilityCodes)
        let rows = orders.map { o -> [String: Any] in
            let may = { (action: String) in Self.actions[action]!.contains(self.scope.role) }
            let sends = scope.role == .admin || mine.contains(o.from), receives = scope.role == .admin || mine.contains(o.to)
            return ["id": o.id, "item": o.item, "rotation": o.purpose == "rotation", "from": o.from, "to": o.to, "quantity": o.quantity,
                    "distance": String(format: "%.1f", o.distanceKm), "status": t["status." + o.status] ?? o.status, "asOf": o.asOf,
                    "lines": o.lines.map { "\($0.lot) × \($0.quantity)" }.joined(separator: ", "),
                    "approve": may("approve") && o.status == "proposed",
                    "cancel": may("cancel") && (o.status == "proposed" || o.status == "approved"),
                    "dispatch": may("dispatch") && sends && o.status == "approved",
                    "receive": may("receive") && receives && o.status == "dispatched",
                    // Each lot's received quantity, the whole of it unless the clerk changes it.
                    "receiveLines": o.lines.map { ["order": o.id, "line": $0.line, "lot": $0.lot, "quantity": $0.quantity] }]
        }
        // 截留: what is late on the road, and what arrived short (issue 17, part 3).
        let interception = PostgresInterception(database, scope: scope, timeZone: timeZone)
        let overdue = try await interception.overdue(transit, limit: 200)
        let formatter = DateFormatter()
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        let overdueRows = overdue.map { o -> [String: Any] in
            ["id": o.id, "item": o.itemName, "itemCode": o.item, "from": o.fromName, "to": o.toName, "inTransit": o.inTransit,
             "dispatchedAt": formatter.string(from: o.dispatchedAt), "dueAt": formatter.string(from: o.dueAt),
             "days": String(format: "%.1f", o.daysOverdue), "dispatchedBy": o.dispatchedBy ?? ""]
        }
        let short = try await interception.shortReceipts(limit: 50)
        let shortRows = short.map { r -> [String: Any] in
            ["id": r.id, "item": r.item, "from": r.from, "to": r.to, "dispatched": r.dispatched, "received": r.received, "lost": r.lost,
             "reasons": r.reasons, "receivedAt": formatter.string(from: r.receivedAt), "receivedBy": r.receivedBy ?? "", "carrier": r.carrier ?? ""]
        }
        let summary = try await interception.shortReceiptSummary().prefix(20).map { s -> [String: Any] in
            ["from": s.from, "to": s.to, "carrier": s.carrier, "month": s.month, "orders": s.orders, "dispatched": s.dispatched, "lost": s.lost]
        }
        var values: [String: Any] = [
            "overdue": overdueRows, "hasOverdue": !overdueRows.isEmpty,
            "transitRule": t["transitRule"]!.replacingOccurrences(of: "{kmh}", with: WhatIf.format(transit.kmh))
                .replacingOccurrences(of: "{hours}", with: WhatIf.format(transit.minimumHours)),
            "short": shortRows, "hasShort": !shortRows.isEmpty, "shortSummary": summary,
            "orders": rows, "noOrders": rows.isEmpty,
            "statuses": Self.statuses.map { ["code": $0, "label": t["status." + $0]!, "selected": $0 == status] },
        ]
        // Shipments (one truck each) and the plans still to approve, above the orders (issue 17, part 1).
        for (key, value) in try await ShipmentsPage(database: database, timeZone: timeZone, scope: scope).values(page: page, status: status) {
            values[key] = value
        }
        if let message { values["message"] = message }
        if let error { values["error"] = error }
        return PageTemplates.render("orders", values, page: page, title: t["orders"]!, status: code)
    }

    /// What a printable 调拨单 (of an order or a shipment) names besides codes: both ends' names and
    /// the items'. The caller may read the order or shipment, which names both ends by code; their
    /// names tell nothing more, so they are read without the caller's facility scope, which would
    /// hide the other end's name from a warehouse clerk. Only the two ends are read, not every facility.
    struct PrintNames {
        var facilities: [String: String]
        var items: [String: Item]
        init(_ database: StockpileDatabase, from: String, to: String) async throws {
            let master = PostgresMasterData(database, scope: .system("print"))
            facilities = try await master.facilityNames([from, to])
            items = Dictionary(try await master.items().map { ($0.code, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The page a printable 调拨单 answers for an id that is not a number, or not the caller's to read.
    static func printNotFound(_ page: PageRequest) -> Response {
        PageTemplates.render("message", ["message": page.t["orderNotFound"]!], page: page, title: page.t["orders"]!, status: .notFound)
    }

    /// The printable transfer order (调拨单), for whoever may read the order (either end in scope).
    func printable(_ id: String, page: PageRequest) async throws -> Response {
        let t = page.t
        guard let orderID = Int64(id), orderID > 0 else { return Self.printNotFound(page) }
        let order: ReallocationOrder
        do {
            order = try await PostgresReallocations(database, scope: scope, timeZone: timeZone).order(orderID)
        } catch let refusal as Refusal where refusal.kind == .notFound {
            return Self.printNotFound(page)
        }
        let names = try await PrintNames(database, from: order.from, to: order.to)
        let facilities = names.facilities, item = names.items[order.item]
        let received = order.lines.compactMap(\.received)
        return PageTemplates.render("order-print", [
            "id": order.id, "asOf": order.asOf, "status": t["status." + order.status] ?? order.status,
            "from": order.from, "fromName": facilities[order.from] ?? order.from, "to": order.to, "toName": facilities[order.to] ?? order.to,
            "item": order.item, "itemName": item?.name ?? order.item, "unit": item?.unit ?? "", "distance": String(format: "%.1f", order.distanceKm),
            "quantity": order.quantity, "receivedTotal": received.count == order.lines.count ? "\(received.reduce(0, +))" : "",
            "lines": order.lines.map { ["line": $0.line, "lot": $0.lot, "expiry": $0.expiry ?? "", "quantity": $0.quantity,
                                        "received": $0.received.map { "\($0)" } ?? ""] },
        ], page: page, title: "\(t["waybillTitle"]!) No. \(order.id)")
    }

    /// One step on one order, from the form's `action`; the list again, with what happened.
    func submit(_ id: String, form: [String: String], page: PageRequest) async throws -> Response {
        let t = page.t
        guard page.accepts(form) else { return try await response(page: page, status: nil, error: t["err.csrf"]!, code: .forbidden) }
        let action = form["action"] ?? ""
        guard let roles = Self.actions[action], let orderID = Int64(id), orderID > 0 else {
            return try await response(page: page, status: nil, error: t["err.action"]!, code: .badRequest)
        }
        guard roles.contains(scope.role) else { return try await response(page: page, status: nil, error: t["forbidden"]!, code: .forbidden) }
        let orders = PostgresReallocations(database, scope: scope, timeZone: timeZone)
        do {
            let order: ReallocationOrder
            switch action {
            case "approve": order = try await orders.approve(orderID)
            case "cancel": order = try await orders.cancel(orderID, reason: try Self.formText(form["reason"], field: "reason", maxBytes: TextBounds.note))
            case "dispatch": order = try await orders.dispatch(orderID)
            default:
                let (received, reason) = try await receipt(orderID, form: form, orders: orders)
                order = try await orders.receive(orderID, received: received, reason: reason)
            }
            let message = "#\(order.id) \(t["status." + order.status] ?? order.status)"
            return try await response(page: page, status: form["status"], message: message)
        } catch let refusal as Refusal {
            let code = APIError(refusal: refusal).status
            return try await response(page: page, status: form["status"], error: "\(t["err.order"]!)（\(refusal.description)）", code: code)
        }
    }

    /// An optional text field of an orders-page form, bounded (a reason may run over lines), refused naming the field.
    static func formText(_ value: String?, field: String, maxBytes: Int) throws -> String {
        do { return try TextBounds.check(value ?? "", field: field, maxBytes: maxBytes, required: false, multiline: field == "reason") } catch {
            throw Refusal(kind: .invalid, field: field, description: "\(field): \(error.reason)")
        }
    }

    /// What the receive form says arrived: `line.N` per order line (nil when the form has none: all
    /// of it), and the reason for what did not. Bad figures are refused naming the lot.
    func receipt(_ id: Int64, form: [String: String], orders: PostgresReallocations) async throws -> (received: [String: Int64]?, reason: String) {
        let reason = try Self.formText(form["reason"], field: "reason", maxBytes: TextBounds.note)
        guard form.keys.contains(where: { $0.hasPrefix("line.") }) else { return (nil, reason) }
        var received: [String: Int64] = [:]
        for line in try await orders.order(id).lines {
            let text = (form["line.\(line.line)"] ?? "").trimmingCharacters(in: .whitespaces)
            guard let quantity = Int64(text), (0...line.quantity).contains(quantity) else {
                throw Refusal(kind: .invalid, field: "lines", description: "lot \(line.lot): received must be a whole number 0…\(line.quantity)")
            }
            received[line.lot] = quantity
        }
        return (received, reason)
    }
}
