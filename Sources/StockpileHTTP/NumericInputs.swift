import StockpileCore

/// Every number a client sends the API, where, and its documented range (Ranges.swift). The
/// handlers check these ranges; this table is what the OpenAPI test compares with openapi.yaml's
/// minimum and maximum, and what the numeric-extremes test sends 0, −1, 2⁵³, 2⁶³−1, 1e308 and NaN to.
public struct NumericInput: Sendable {
    public enum Place: String, Sendable { case query, body, path }
    public var method: String
    public var path: String
    public var name: String
    public var place: Place
    public var minimum: Double
    public var maximum: Double
}

extension StockpileAPI {
    public static let numericInputs: [NumericInput] = {
        func body(_ method: String, _ path: String, _ name: String, _ range: ClosedRange<Double>) -> NumericInput {
            NumericInput(method: method, path: path, name: name, place: .body, minimum: range.lowerBound, maximum: range.upperBound)
        }
        func query(_ path: String, _ name: String, _ range: ClosedRange<Double>) -> NumericInput {
            NumericInput(method: "GET", path: path, name: name, place: .query, minimum: range.lowerBound, maximum: range.upperBound)
        }
        func whole<T: BinaryInteger>(_ range: ClosedRange<T>) -> ClosedRange<Double> { Double(range.lowerBound)...Double(range.upperBound) }
        let plan: [NumericInput] = ["/api/v1/reallocations/plan", "/api/v1/reallocations"].flatMap { path in
            [body("POST", path, "max_distance_km", Ranges.maxDistanceKm), body("POST", path, "min_order", whole(Ranges.minOrder))]
        }
        let orderIDs: [NumericInput] = (orderRoutes + shipmentRoutes).filter { $0.path.contains("{id}") }.map {
            NumericInput(method: $0.method, path: $0.path, name: "id", place: .path, minimum: 1, maximum: Double(Int64.max))
        }
        return [
            body("POST", "/api/v1/movements", "quantity", whole(Ranges.movementQuantity)),
            body("POST", "/api/v1/movements/batch", "quantity", whole(Ranges.movementQuantity)),
            // A sync answers a number outside its range in that movement's result (refused, naming the field), not with 400.
            body("POST", "/api/v1/movements/sync", "quantity", whole(Ranges.movementQuantity)),
            body("POST", "/api/v1/movements/sync", "device_seq", 0...Double(Int64.max)),
            body("POST", "/api/v1/donations", "quantity", 1...Double(Ranges.movementQuantity.upperBound)),
            body("POST", "/api/v1/donations/{id}/inspect", "line", 1...Double(DonationRequest.maxLines)),
            NumericInput(method: "POST", path: "/api/v1/donations/{id}/inspect", name: "id", place: .path, minimum: 1, maximum: Double(Int64.max)),
            body("POST", "/api/v1/tokens", "valid_days", whole(Ranges.tokenDays)),
            query("/api/v1/movements", "limit", 1...1000),
            query("/api/v1/audit", "limit", 1...1000),
            query("/api/v1/cover", "limit", 1...10_000),
            query("/api/v1/cover", "offset", 0...10_000_000),
            query("/api/v1/cover", "surge", Ranges.surge),
            query("/api/v1/cover/rollup", "surge", Ranges.surge),
            query("/api/v1/reallocations", "limit", 1...1000),
            body("PUT", "/api/v1/demand/{facility}/{item}", "full_load_daily", Ranges.dailyDemand),
            body("POST", "/api/v1/demand/derive", "per_bed_day", Ranges.perBedDay),
            body("PUT", "/api/v1/targets/{category}", "target_days", whole(Ranges.targetDays)),
            body("PUT", "/api/v1/contracts/{code}", "quantity", whole(Ranges.contractQuantity)),
            body("PUT", "/api/v1/contracts/{code}", "lead_time_days", whole(Ranges.leadDays)),
            body("POST", "/api/v1/contracts/{code}/calloffs", "quantity", whole(Ranges.callOffQuantity)),
            body("PUT", "/api/v1/capacity/{code}", "daily_capacity", whole(Ranges.dailyCapacity)),
            body("PUT", "/api/v1/capacity/{code}", "ramp_up_days", whole(Ranges.leadDays)),
            body("POST", "/api/v1/reallocations/{id}/receive", "received", whole(Ranges.received)),
            body("POST", "/api/v1/shipments/{id}/receive", "received", whole(Ranges.received)),
            body("POST", "/api/v1/shipments/{id}/receive", "order", 1...Double(Int64.max)),
            query("/api/v1/shipments", "limit", 1...1000),
            query("/api/v1/trends", "days", 1...Double(TrendWindow.maxDays)),
        ] + plan + orderIDs
    }()
}
