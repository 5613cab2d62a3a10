import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// Shipments (调拨单 by truck) on the orders page: the command centre approves a whole plan in one
/// step, or a shipment; the sending warehouse dispatches a shipment naming its carrier; the
/// receiving one receives it, each line's quantity where less arrived. And the printable 调拨单 of
/// a shipment. Every step goes through the same transactions as the API's.
struct ShipmentsPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope

    /// The orders page's shipment section: the newest 50 shipments of the status asked, and the plans
    /// with orders still proposed.
    func values(page: PageRequest, status: String?) async throws -> [String: Any] {
        let t = page.t
        let shipments = try await PostgresShipments(database, scope: scope).list(status: status, facility: nil, plan: nil, limit: 50)
        // Items by their names, as the users call them (the code stays in the printable lines).
        let names = Dictionary(try await PostgresMasterData(database, scope: scope).items().map { ($0.code, $0.name) }, uniquingKeysWith: { a, _ in a })
        let mine = Set(scope.facilityCodes)
        let may = { (action: String) in OrdersPage.actions[action]!.contains(self.scope.role) }
        let rows = shipments.map { s -> [String: Any] in
            let sends = scope.role == .admin || mine.contains(s.from), receives = scope.role == .admin || mine.contains(s.to)
            let live = s.orders.filter { $0.status != "cancelled" }
            return ["id": s.id, "asOf": s.asOf, "from": s.from, "to": s.to, "distance": String(format: "%.1f", s.distanceKm),
                    "status": t["status." + s.status] ?? s.status, "carrier": s.carrier ?? "", "quantity": s.quantity,
                    "items": live.map { "\(names[$0.item] ?? $0.item) \($0.quantity)" + ($0.purpose == "rotation" ? "（\(t["rotationTag"]!)）" : "") }
                        .joined(separator: "、"), "orderCount": live.count,
                    "approve": may("approve") && s.status == "proposed",
                    "cancel": may("cancel") && (s.status == "proposed" || s.status == "approved"),
                    "dispatch": may("dispatch") && sends && s.status == "approved",
                    "receive": may("receive") && receives && s.status == "dispatched",
                    "receiveLines": live.filter { $0.status == "dispatched" }.flatMap { o in
                        o.lines.map { ["order": o.id, "line": $0.line, "item": names[o.item] ?? o.item, "lot": $0.lot, "quantity": $0.quantity] }
                    }]
        }
        let plans = may("approve") ? try await PostgresShipments(database, scope: scope).openPlans() : []
        return [
            "shipments": rows, "hasShipments": !rows.isEmpty,
            "plans": plans.map { p -> [String: Any] in
                ["plan": p.plan, "asOf": p.asOf, "label": t["approvePlanButton"]!.replacingOccurrences(of: "{orders}", with: "\(p.proposed)")
                    .replacingOccurrences(of: "{shipments}", with: "\(p.shipments)").replacingOccurrences(of: "{date}", with: p.asOf)]
            },
            "hasPlans": !plans.isEmpty,
        ]
    }

    /// The printable 调拨单 of a shipment: one page per truck, a line per item and lot.
    func printable(_ id: String, page: PageRequest) async throws -> Response {
        let t = page.t
        guard let shipmentID = Int64(id), shipmentID > 0 else { return OrdersPage.printNotFound(page) }
        let shipment: Shipment
        do {
            shipment = try await PostgresShipments(database, scope: scope).shipment(shipmentID)
        } catch let refusal as Refusal where refusal.kind == .notFound {
            return OrdersPage.printNotFound(page)
        }
        let names = try await OrdersPage.PrintNames(database, from: shipment.from, to: shipment.to)
        let facilities = names.facilities, items = names.items
        let live = shipment.orders.filter { $0.status != "cancelled" }
        var lines: [[String: Any]] = [], number = 0
        for order in live {
            for line in order.lines {
                number += 1
                lines.append(["line": number, "order": order.id, "item": order.item, "itemName": items[order.item]?.name ?? order.item,
                              "unit": items[order.item]?.unit ?? "", "lot": line.lot, "expiry": line.expiry ?? "", "quantity": line.quantity,
                              "received": line.received.map { "\($0)" } ?? ""])
            }
        }
        let received = live.flatMap(\.lines).compactMap(\.received)
        return PageTemplates.render("shipment-print", [
            "id": shipment.id, "asOf": shipment.asOf, "status": t["status." + shipment.status] ?? shipment.status,
            "from": shipment.from, "fromName": facilities[shipment.from] ?? shipment.from,
            "to": shipment.to, "toName": facilities[shipment.to] ?? shipment.to,
            "distance": String(format: "%.1f", shipment.distanceKm), "carrier": shipment.carrier ?? "",
            "lines": lines, "quantity": shipment.quantity, "orderCount": live.count,
            "receivedTotal": received.count == live.flatMap(\.lines).count && !received.isEmpty ? "\(received.reduce(0, +))" : "",
        ], page: page, title: "\(t["waybillTitle"]!) No. S\(shipment.id)")
    }

    /// One step on one shipment from the form's `action`; the orders page again, with what happened.
    func submit(_ id: String, form: [String: String], page: PageRequest, orders: OrdersPage) async throws -> Response {
        let t = page.t
        guard page.accepts(form) else { return try await orders.response(page: page, status: nil, error: t["err.csrf"]!, code: .forbidden) }
        let action = form["action"] ?? ""
        guard let roles = OrdersPage.actions[action], let shipmentID = Int64(id), shipmentID > 0 else {
            return try await orders.response(page: page, status: nil, error: t["err.action"]!, code: .badRequest)
        }
        guard roles.contains(scope.role) else { return try await orders.response(page: page, status: nil, error: t["forbidden"]!, code: .forbidden) }
        let shipments = PostgresShipments(database, scope: scope)
        do {
            let reason = try OrdersPage.formText(form["reason"], field: "reason", maxBytes: TextBounds.note)
            let shipment: Shipment
            switch action {
            case "approve": shipment = try await shipments.approve(shipmentID)
            case "cancel": shipment = try await shipments.cancel(shipmentID, reason: reason)
            case "dispatch":
                let carrier = try OrdersPage.formText(form["carrier"], field: "carrier", maxBytes: TextBounds.name)
                shipment = try await shipments.dispatch(shipmentID, carrier: carrier.isEmpty ? nil : carrier)
            default:
                shipment = try await shipments.receive(shipmentID, received: try await receipt(shipmentID, form: form, shipments: shipments),
                                                       reason: reason)
            }
            let message = "\(t["shipment"]!) S\(shipment.id) \(t["status." + shipment.status] ?? shipment.status)"
            return try await orders.response(page: page, status: form["status"], message: message)
        } catch let refusal as Refusal {
            let code = APIError(refusal: refusal).status
            return try await orders.response(page: page, status: form["status"], error: "\(t["err.order"]!)（\(refusal.description)）", code: code)
        }
    }

    /// Approves a whole plan (the part this token may approve) from the orders page.
    func approvePlan(_ plan: String, form: [String: String], page: PageRequest, orders: OrdersPage) async throws -> Response {
        let t = page.t
        guard page.accepts(form) else { return try await orders.response(page: page, status: nil, error: t["err.csrf"]!, code: .forbidden) }
        guard OrdersPage.actions["approve"]!.contains(scope.role) else {
            return try await orders.response(page: page, status: nil, error: t["forbidden"]!, code: .forbidden)
        }
        guard let id = UUID(uuidString: plan) else { return try await orders.response(page: page, status: nil, error: t["err.action"]!, code: .badRequest) }
        do {
            let approval = try await PostgresShipments(database, scope: scope).approvePlan(id, region: scope.region(nil))
            let message = t["planApproved"]!.replacingOccurrences(of: "{orders}", with: "\(approval.approved)")
                .replacingOccurrences(of: "{shipments}", with: "\(approval.shipments)")
                .replacingOccurrences(of: "{left}", with: "\(approval.leftProposed)")
            return try await orders.response(page: page, status: nil, message: message)
        } catch let refusal as Refusal {
            let code = APIError(refusal: refusal).status
            return try await orders.response(page: page, status: nil, error: "\(t["err.order"]!)（\(refusal.description)）", code: code)
        }
    }

    /// What the receive form says arrived: `line.ORDER.LINE` per order line of the shipment still on
    /// the road (nil entries: the whole of it), refused naming the lot when a figure is bad.
    func receipt(_ id: Int64, form: [String: String], shipments: PostgresShipments) async throws -> [Int64: [String: Int64]] {
        guard form.keys.contains(where: { $0.hasPrefix("line.") }) else { return [:] }
        var received: [Int64: [String: Int64]] = [:]
        for order in try await shipments.shipment(id).orders where order.status == "dispatched" {
            for line in order.lines {
                guard let text = form["line.\(order.id).\(line.line)"]?.trimmingCharacters(in: .whitespaces) else { continue }
                guard let quantity = Int64(text), (0...line.quantity).contains(quantity) else {
                    throw Refusal(kind: .invalid, field: "lines",
                                  description: "\(order.item) lot \(line.lot): received must be a whole number 0…\(line.quantity)")
                }
                received[order.id, default: [:]][line.lot] = quantity
            }
        }
        return received
    }
}
