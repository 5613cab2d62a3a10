import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

// Issue 17, part 3 (no interception, 截留): GET /api/v1/transit/overdue lists orders dispatched and
// not received within their expected time; GET /api/v1/transit/short the receipts that came in
// short, one by one and per sender, receiver and month. Each token sees the orders with either end
// in its scope.
extension StockpileAPI {
    static let transitRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("GET", "/api/v1/transit/overdue", readers), ("GET", "/api/v1/transit/short", readers),
    ]
}

struct OverdueOutput: Encodable, Sendable {
    var kmh: Double
    var minimumHours: Double
    var orders: [OverdueOrder]
    enum CodingKeys: String, CodingKey { case kmh, orders, minimumHours = "minimum_hours" }
}

struct ShortOutput: Encodable, Sendable {
    var receipts: [ShortReceipt]
    var summary: [ShortReceiptSummary]
}

func addTransitRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    api.get("transit/overdue") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read overdue orders")
        let orders = try await PostgresInterception(services.database, scope: scope, timeZone: services.timeZone).overdue(services.transit)
        return try JSON.response(OverdueOutput(kmh: services.transit.kmh, minimumHours: services.transit.minimumHours, orders: orders))
    }
    api.get("transit/short") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read short receipts")
        let interception = PostgresInterception(services.database, scope: scope, timeZone: services.timeZone)
        return try JSON.response(ShortOutput(receipts: try await interception.shortReceipts(), summary: try await interception.shortReceiptSummary()))
    }
}
