import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

// Issue 17, part 1: shipments (调拨单 by truck). A plan's orders from one sender to one receiver
// travel together; the command centre approves a shipment (or a whole plan, or its part within a
// region, in one audited step), the sender dispatches it naming the carrier, and the receiver
// receives it, line by line where less arrived.
extension StockpileAPI {
    static let shipmentRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("GET", "/api/v1/shipments", readers), ("GET", "/api/v1/shipments/{id}", readers),
        ("POST", "/api/v1/shipments/{id}/approve", planners), ("POST", "/api/v1/shipments/{id}/cancel", planners),
        ("POST", "/api/v1/shipments/{id}/dispatch", shippers), ("POST", "/api/v1/shipments/{id}/receive", shippers),
        ("POST", "/api/v1/plan-approvals", planners),
    ]
}

struct DispatchInput: Decodable { var carrier: String? }

struct ShipmentReceiveInput: Decodable {
    struct Line: Decodable { var order: Double; var lot: String; var received: Double }
    var lines: [Line]?
    var reason: String?

    /// What arrived per order and lot, checked: whole numbers in range, no line named twice.
    func received() throws -> [Int64: [String: Int64]] {
        var received: [Int64: [String: Int64]] = [:]
        for (i, line) in (lines ?? []).enumerated() {
            let order = try whole(line.order, in: 1...Int64.max, "lines[\(i)].order", "an order id")
            let quantity = try whole(line.received, in: Ranges.received, "lines[\(i)].received", "units")
            let lot = try TextBounds.check(line.lot, field: "lines[\(i)].lot", maxBytes: TextBounds.code)
            try require(received[order]?[lot] == nil, "lines[\(i)].lot", "order \(order) lot \(lot) appears twice")
            received[order, default: [:]][lot] = quantity
        }
        return received
    }
}

struct PlanApprovalInput: Decodable { var plan: String?; var region: String? }

func addShipmentRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    @Sendable func body<T: Decodable>(_ request: Request, _ type: T.Type, empty: T) async throws -> T {
        let bytes = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        return bytes.readableBytes > 0 ? try JSON.decode(T.self, from: bytes) : empty
    }
    api.get("shipments") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read shipments")
        let limit = try intParameter(request.uri.queryParameters["limit"], name: "limit", default: 100, range: 1...1000)
        if let status = text(request, "status") {
            try require(OrdersPage.statuses.contains(status), "status", "one of proposed, approved, dispatched, received, cancelled")
        }
        var plan: UUID?
        if let text = text(request, "plan") {
            guard let id = UUID(uuidString: text) else { throw APIError(.badRequest, "invalid", "plan: a plan's request id (UUID)", field: "plan") }
            plan = id
        }
        return try JSON.response(["shipments": try await PostgresShipments(database, scope: scope)
            .list(status: text(request, "status"), facility: text(request, "facility"), plan: plan, limit: limit)])
    }
    api.get("shipments/{id}") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read shipments")
        return try JSON.response(try await PostgresShipments(database, scope: scope).shipment(try pathID(context, "shipment")))
    }
    api.post("shipments/{id}/approve") { _, context in
        let scope = try context.require(StockpileAPI.planners, to: "approve shipments")
        return try JSON.response(try await PostgresShipments(database, scope: scope).approve(try pathID(context, "shipment")))
    }
    api.post("shipments/{id}/cancel") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "cancel shipments")
        let id = try pathID(context, "shipment")
        let reason = try note(try await body(request, CancelInput.self, empty: CancelInput()).reason, "reason")
        return try JSON.response(try await PostgresShipments(database, scope: scope).cancel(id, reason: reason))
    }
    api.post("shipments/{id}/dispatch") { request, context in
        let scope = try context.require(StockpileAPI.shippers, to: "dispatch shipments")
        let id = try pathID(context, "shipment")
        let carrier = try await body(request, DispatchInput.self, empty: DispatchInput()).carrier
            .map { try TextBounds.check($0, field: "carrier", maxBytes: TextBounds.name, required: false) }
        return try JSON.response(try await PostgresShipments(database, scope: scope).dispatch(id, carrier: carrier?.isEmpty == true ? nil : carrier))
    }
    api.post("shipments/{id}/receive") { request, context in
        let scope = try context.require(StockpileAPI.shippers, to: "receive shipments")
        let id = try pathID(context, "shipment")
        let input = try await body(request, ShipmentReceiveInput.self, empty: ShipmentReceiveInput())
        return try JSON.response(try await PostgresShipments(database, scope: scope)
            .receive(id, received: try input.received(), reason: try note(input.reason, "reason")))
    }
    // A whole plan (or its part within a region) approved in one audited step.
    api.post("plan-approvals") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "approve plans")
        let input = try await body(request, PlanApprovalInput.self, empty: PlanApprovalInput())
        guard let text = input.plan else { throw APIError(.badRequest, "invalid", "plan: required", field: "plan") }
        guard let plan = UUID(uuidString: text) else { throw APIError(.badRequest, "invalid", "plan: a plan's request id (UUID)", field: "plan") }
        let region = try input.region.map { try TextBounds.check($0, field: "region", maxBytes: TextBounds.code) }
        return try JSON.response(try await PostgresShipments(database, scope: scope).approvePlan(plan, region: scope.region(region)))
    }
}
