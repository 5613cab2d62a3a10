import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

// Reserves and demand through the API: full-load plans, category targets, contracts and their
// call-offs, capacity pledges, holds on lots. The command centre plans; admins set targets.

struct DemandInput: Decodable { var fullLoadDaily: Double?
    enum CodingKeys: String, CodingKey { case fullLoadDaily = "full_load_daily" } }
struct DeriveInput: Decodable { var item: String; var perBedDay: Double; var region: String?
    enum CodingKeys: String, CodingKey { case item, region, perBedDay = "per_bed_day" } }
// Whole numbers arrive as Double: the decoder cannot say which field held 1e308 or 2⁶⁴ (it calls
// the whole body invalid JSON), so `whole(_:in:…)` checks and names it.
struct TargetInput: Decodable { var targetDays: Double
    enum CodingKeys: String, CodingKey { case targetDays = "target_days" } }
struct ContractInput: Decodable {
    var facility: String, supplier: String, item: String, quantity: Double, leadTimeDays: Double, validFrom: String, validTo: String
    var local: Bool?
    enum CodingKeys: String, CodingKey {
        case facility, supplier, item, quantity, local
        case leadTimeDays = "lead_time_days", validFrom = "valid_from", validTo = "valid_to"
    }
}
struct CallOffInput: Decodable { var id: String; var quantity: Double; var note: String? }
struct PledgeInput: Decodable {
    var facility: String, manufacturer: String, item: String, dailyCapacity: Double, rampUpDays: Double, validFrom: String, validTo: String
    var certified: Bool?, local: Bool?
    enum CodingKeys: String, CodingKey {
        case facility, manufacturer, item, certified, local
        case dailyCapacity = "daily_capacity", rampUpDays = "ramp_up_days", validFrom = "valid_from", validTo = "valid_to"
    }
}
struct HoldInput: Decodable { var reason: String? }
/// A lot's corrected expiry: a date, or null for a lot that does not expire.
struct LotInput: Decodable { var expiry: String? }

extension StockpileAPI {
    static let planners: Set<Role> = [.command, .admin]
    static let reserveRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("GET", "/api/v1/demand", readers), ("PUT", "/api/v1/demand/{facility}/{item}", planners),
        ("DELETE", "/api/v1/demand/{facility}/{item}", planners), ("POST", "/api/v1/demand/derive", planners),
        ("GET", "/api/v1/targets", readers), ("PUT", "/api/v1/targets/{category}", admins),
        ("GET", "/api/v1/contracts", readers), ("PUT", "/api/v1/contracts/{code}", planners),
        ("GET", "/api/v1/contracts/{code}/calloffs", readers), ("POST", "/api/v1/contracts/{code}/calloffs", planners),
        ("GET", "/api/v1/capacity", readers), ("PUT", "/api/v1/capacity/{code}", planners),
        ("GET", "/api/v1/lots", readers), ("POST", "/api/v1/lots/{item}/{lot}/hold", planners),
        ("POST", "/api/v1/lots/{item}/{lot}/release", planners), ("PUT", "/api/v1/lots/{item}/{lot}", admins),
    ]
}

func validDate(_ text: String, field: String) throws -> LocalDate {
    guard let date = LocalDate(text) else { throw APIError(.badRequest, "invalid", "\(field): a date YYYY-MM-DD", field: field) }
    return date
}

/// A validity window: two dates, the second not before the first.
func validity(_ from: String, _ to: String) throws -> (LocalDate, LocalDate) {
    let start = try validDate(from, field: "valid_from"), end = try validDate(to, field: "valid_to")
    try require(start <= end, "valid_to", "on or after valid_from")
    return (start, end)
}

func require(_ condition: Bool, _ field: String, _ reason: String) throws {
    guard condition else { throw APIError(.badRequest, "invalid", "\(field): \(reason)", field: field) }
}

/// A number within its documented range (StockpileCore/Ranges.swift), else 400 naming the field and the range.
func require<T: Comparable>(_ value: T, in range: ClosedRange<T>, _ field: String, _ what: String) throws {
    try require(range.contains(value), field, "\(what) from \(range.lowerBound) to \(range.upperBound)")
}

func require(_ value: Double, in range: ClosedRange<Double>, _ field: String, _ what: String) throws {
    try require(value.isFinite && range.contains(value), field, "\(what) from \(range.lowerBound) to \(range.upperBound)")
}

/// A whole number within its range, sent as any JSON number.
/// Converted exactly, then compared as an integer: Double(Int64.max) rounds up to 2⁶³, which a
/// comparison in Double let through to a conversion that traps (found by the extremes test).
func whole<T: FixedWidthInteger>(_ value: Double, in range: ClosedRange<T>, _ field: String, _ what: String) throws -> T {
    guard value.isFinite, let exact = T(exactly: value), range.contains(exact) else {
        throw APIError(.badRequest, "invalid", "\(field): \(what): a whole number from \(range.lowerBound) to \(range.upperBound)", field: field)
    }
    return exact
}

/// A required name (facility, item, supplier, manufacturer), bounded in bytes (TextBounds).
func nonEmpty(_ text: String, _ field: String) throws -> String {
    try TextBounds.check(text, field: field, maxBytes: TextBounds.name)
}

/// A code from the path (contract, pledge), bounded like every code.
func pathCode(_ context: StockpileRequestContext) throws -> String {
    try TextBounds.check(try context.parameters.require("code"), field: "code", maxBytes: TextBounds.code)
}

/// A reason or a note: optional, bounded in bytes.
func note(_ text: String?, _ field: String) throws -> String {
    try TextBounds.check(text ?? "", field: field, maxBytes: TextBounds.note, required: false, multiline: true)
}

/// The `{id}` of a path (an order, shipment, donation): a positive number, else 404 (to the caller it
/// does not exist), never a 400 that would tell ids apart from other text.
func pathID(_ context: StockpileRequestContext, _ what: String) throws -> Int64 {
    let text = try context.parameters.require("id")
    guard let id = Int64(text), id > 0 else { throw APIError(.notFound, "not_found", "no \(what) \(text)", field: "id") }
    return id
}

func text(_ request: Request, _ name: String) -> String? {
    request.uri.queryParameters[name[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
}

func addReserveRoutes(_ api: RouterGroup<StockpileRequestContext>, database: StockpileDatabase) {
    api.get("demand") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read demand plans")
        return try JSON.response(["plans": try await PostgresReserves(database, scope: scope)
            .demandPlans(facility: text(request, "facility"), item: text(request, "item"))])
    }
    api.put("demand/{facility}/{item}") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "set demand plans")
        let input = try JSON.decode(DemandInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        guard let daily = input.fullLoadDaily else { throw APIError(.badRequest, "invalid", "full_load_daily: required", field: "full_load_daily") }
        try require(daily, in: Ranges.dailyDemand, "full_load_daily", "units per day")
        let facility = try context.parameters.require("facility"), item = try context.parameters.require("item")
        let plan = try await PostgresReserves(database, scope: scope).setFullLoad(facility: facility, item: item, daily: daily)
        return try JSON.response(plan)
    }
    api.delete("demand/{facility}/{item}") { _, context in
        let scope = try context.require(StockpileAPI.planners, to: "clear demand plans")
        let facility = try context.parameters.require("facility"), item = try context.parameters.require("item")
        _ = try await PostgresReserves(database, scope: scope).setFullLoad(facility: facility, item: item, daily: nil)
        return try JSON.response(["cleared": "\(facility)/\(item)"])
    }
    api.post("demand/derive") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "set demand plans")
        let input = try JSON.decode(DeriveInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        try require(input.perBedDay, in: Ranges.perBedDay, "per_bed_day", "units per bed per day")
        let region = scope.region(input.region)
        let plans = try await PostgresReserves(database, scope: scope).deriveFullLoad(item: try nonEmpty(input.item, "item"), perBedDay: input.perBedDay, region: region)
        return try JSON.response(["plans": plans], status: .created)
    }

    api.get("targets") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read targets")
        return try JSON.response(["categories": try await PostgresReserves(database, scope: scope).targets()])
    }
    api.put("targets/{category}") { request, context in
        let scope = try context.require(StockpileAPI.admins, to: "set targets")
        let name = try context.parameters.require("category")
        guard let category = ItemCategory(rawValue: name) else {
            throw APIError(.notFound, "not_found", "category: one of \(ItemCategory.allCases.map(\.rawValue).joined(separator: ", "))", field: "category")
        }
        let input = try JSON.decode(TargetInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        let days = try whole(input.targetDays, in: Ranges.targetDays, "target_days", "days")
        return try JSON.response(try await PostgresReserves(database, scope: scope).setTarget(category: category, days: days))
    }

    api.get("contracts") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read contracts")
        return try JSON.response(["contracts": try await PostgresReserves(database, scope: scope)
            .contracts(facility: text(request, "facility"), item: text(request, "item"))])
    }
    api.put("contracts/{code}") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "manage contracts")
        let code = try pathCode(context)
        let input = try JSON.decode(ContractInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        let quantity = try whole(input.quantity, in: Ranges.contractQuantity, "quantity", "units")
        let leadTimeDays = try whole(input.leadTimeDays, in: Ranges.leadDays, "lead_time_days", "days")
        let (from, to) = try validity(input.validFrom, input.validTo)
        let (contract, created) = try await PostgresReserves(database, scope: scope).putContract(
            code: code, facility: try nonEmpty(input.facility, "facility"), supplier: try nonEmpty(input.supplier, "supplier"),
            item: try nonEmpty(input.item, "item"), quantity: quantity, leadTimeDays: leadTimeDays,
            validFrom: from, validTo: to, local: input.local ?? false)
        return try JSON.response(contract, status: created ? .created : .ok)
    }
    api.get("contracts/{code}/calloffs") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read call-offs")
        let code = try pathCode(context)
        return try JSON.response(["calloffs": try await PostgresReserves(database, scope: scope).callOffs(contract: code)])
    }
    api.post("contracts/{code}/calloffs") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "call off contracts")
        let code = try pathCode(context)
        let input = try JSON.decode(CallOffInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        guard let id = UUID(uuidString: input.id) else { throw APIError(.badRequest, "invalid", "id: a UUID chosen by the client", field: "id") }
        let quantity = try whole(input.quantity, in: Ranges.callOffQuantity, "quantity", "units")
        let (callOff, contract, replay) = try await PostgresReserves(database, scope: scope).callOff(contract: code, id: id, quantity: quantity, note: try note(input.note, "note"))
        struct Output: Encodable { var calloff: PostgresReserves.CallOff; var contract: PostgresReserves.Contract; var replay: Bool }
        return try JSON.response(Output(calloff: callOff, contract: contract, replay: replay), status: replay ? .ok : .created)
    }

    api.get("capacity") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read capacity pledges")
        return try JSON.response(["pledges": try await PostgresReserves(database, scope: scope)
            .pledges(facility: text(request, "facility"), item: text(request, "item"))])
    }
    api.put("capacity/{code}") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "manage capacity pledges")
        let code = try pathCode(context)
        let input = try JSON.decode(PledgeInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        let dailyCapacity = try whole(input.dailyCapacity, in: Ranges.dailyCapacity, "daily_capacity", "units per day")
        let rampUpDays = try whole(input.rampUpDays, in: Ranges.leadDays, "ramp_up_days", "days")
        let (from, to) = try validity(input.validFrom, input.validTo)
        let pledge = PostgresReserves.Pledge(code: code, facility: try nonEmpty(input.facility, "facility"),
                                             manufacturer: try nonEmpty(input.manufacturer, "manufacturer"), item: try nonEmpty(input.item, "item"),
                                             dailyCapacity: dailyCapacity, rampUpDays: rampUpDays, validFrom: from.description,
                                             validTo: to.description, certified: input.certified ?? false, local: input.local ?? false)
        let (stored, created) = try await PostgresReserves(database, scope: scope).putPledge(pledge)
        return try JSON.response(stored, status: created ? .created : .ok)
    }

    api.get("lots") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read lots")
        var held: Bool?
        if let value = text(request, "held") {
            try require(value == "true" || value == "false", "held", "true or false")
            held = value == "true"
        }
        return try JSON.response(["lots": try await PostgresReserves(database, scope: scope).lots(item: text(request, "item"), held: held)])
    }
    api.put("lots/{item}/{lot}") { request, context in
        let scope = try context.require(StockpileAPI.admins, to: "correct lots")
        let item = try context.parameters.require("item"), lot = try context.parameters.require("lot")
        let input = try JSON.decode(LotInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        let expiry = try input.expiry.map { try validDate($0, field: "expiry") }
        return try JSON.response(try await PostgresReserves(database, scope: scope).correctExpiry(item: item, lot: lot, expiry: expiry))
    }
    for (action, held) in [("hold", true), ("release", false)] {
        api.post("lots/{item}/{lot}/\(action)") { request, context in
            let scope = try context.require(StockpileAPI.planners, to: "\(action) lots")
            let item = try context.parameters.require("item"), lot = try context.parameters.require("lot")
            let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
            let reason = try note(body.readableBytes > 0 ? try JSON.decode(HoldInput.self, from: body).reason : nil, "reason")
            if held { try require(!reason.trimmingCharacters(in: .whitespaces).isEmpty, "reason", "say why the lot is held (质检, 召回…)") }
            let reserves = PostgresReserves(database, scope: scope)
            let lotHold = held ? try await reserves.hold(item: item, lot: lot, reason: reason) : try await reserves.release(item: item, lot: lot)
            return try JSON.response(lotHold, status: .created)
        }
    }
}

/// The body of a plan, and of creating orders from one (which adds the client's `id`).
struct PlanInput: Decodable {
    var id: String?
    var asOf: String?, region: String?, item: String?, maxDistanceKm: Double?, minOrder: Double?
    enum CodingKeys: String, CodingKey {
        case id, region, item, asOf = "as_of", maxDistanceKm = "max_distance_km", minOrder = "min_order"
    }

    func request(_ scope: AccessScope, timeZone: TimeZone) throws -> PlanRequest {
        let asOf = try asOf.map { try validDate($0, field: "as_of") } ?? LocalDate(Date(), in: timeZone)
        if let km = maxDistanceKm {
            try require(km, in: Ranges.maxDistanceKm, "max_distance_km", "a distance in km above 0")
            try require(km > 0, "max_distance_km", "a distance in km above 0")
        }
        let minimum = try minOrder.map { try whole($0, in: Ranges.minOrder, "min_order", "units") } ?? 0
        return PlanRequest(asOf: asOf, region: scope.region(region), item: item, maxDistanceKm: maxDistanceKm, minOrder: minimum)
    }
}

extension StockpileAPI {
    static let planRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("POST", "/api/v1/reallocations/plan", planners),
    ]
}

func addPlanRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    // The optimal reallocation between facilities; it stores nothing.
    api.post("reallocations/plan") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "plan reallocations")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let input = body.readableBytes > 0 ? try JSON.decode(PlanInput.self, from: body) : PlanInput()
        var planner = PostgresPlanner(database, scope: scope, timeZone: services.timeZone)
        planner.readsFromReplica = true
        let plan = try await planner.plan(try input.request(scope, timeZone: services.timeZone))
        return try JSON.response(plan)
    }
}

struct ReceiveInput: Decodable {
    struct Line: Decodable { var lot: String; var received: Double }
    var lines: [Line]?
    var reason: String?
}
struct CancelInput: Decodable { var reason: String? }

extension StockpileAPI {
    static let shippers: Set<Role> = [.warehouse, .admin]
    static let orderRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("POST", "/api/v1/reallocations", planners), ("GET", "/api/v1/reallocations", readers),
        ("GET", "/api/v1/reallocations/{id}", readers), ("POST", "/api/v1/reallocations/{id}/approve", planners),
        ("POST", "/api/v1/reallocations/{id}/dispatch", shippers), ("POST", "/api/v1/reallocations/{id}/receive", shippers),
        ("POST", "/api/v1/reallocations/{id}/cancel", planners),
    ]
}

func addOrderRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    api.post("reallocations") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "create reallocation orders")
        let input = try JSON.decode(PlanInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody))
        guard let id = input.id else { throw APIError(.badRequest, "invalid", "id: required", field: "id") }
        guard let requestID = UUID(uuidString: id) else { throw APIError(.badRequest, "invalid", "id: a UUID chosen by the client", field: "id") }
        let (orders, replay) = try await PostgresReallocations(database, scope: scope, timeZone: services.timeZone)
            .create(requestID: requestID, plan: try input.request(scope, timeZone: services.timeZone))
        struct Output: Encodable { var orders: [ReallocationOrder]; var replay: Bool }
        return try JSON.response(Output(orders: orders, replay: replay), status: replay ? .ok : .created)
    }
    api.get("reallocations") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read reallocation orders")
        let limit = try intParameter(request.uri.queryParameters["limit"], name: "limit", default: 100, range: 1...1000)
        if let status = text(request, "status") {
            try require(["proposed", "approved", "dispatched", "received", "cancelled"].contains(status), "status",
                        "one of proposed, approved, dispatched, received, cancelled")
        }
        return try JSON.response(["orders": try await PostgresReallocations(database, scope: scope, timeZone: services.timeZone)
            .list(status: text(request, "status"), facility: text(request, "facility"), item: text(request, "item"), limit: limit)])
    }
    api.get("reallocations/{id}") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read reallocation orders")
        let id = try pathID(context, "order")
        return try JSON.response(try await PostgresReallocations(database, scope: scope).order(id))
    }
    api.post("reallocations/{id}/approve") { _, context in
        let scope = try context.require(StockpileAPI.planners, to: "approve reallocation orders")
        let id = try pathID(context, "order")
        return try JSON.response(try await PostgresReallocations(database, scope: scope).approve(id))
    }
    api.post("reallocations/{id}/cancel") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "cancel reallocation orders")
        let id = try pathID(context, "order")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let reason = try note(body.readableBytes > 0 ? try JSON.decode(CancelInput.self, from: body).reason : nil, "reason")
        return try JSON.response(try await PostgresReallocations(database, scope: scope).cancel(id, reason: reason))
    }
    api.post("reallocations/{id}/dispatch") { _, context in
        let scope = try context.require(StockpileAPI.shippers, to: "dispatch reallocation orders")
        let id = try pathID(context, "order")
        return try JSON.response(try await PostgresReallocations(database, scope: scope).dispatch(id))
    }
    api.post("reallocations/{id}/receive") { request, context in
        let scope = try context.require(StockpileAPI.shippers, to: "receive reallocation orders")
        let id = try pathID(context, "order")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let input = body.readableBytes > 0 ? try JSON.decode(ReceiveInput.self, from: body) : ReceiveInput()
        var received: [String: Int64]?
        if let lines = input.lines {
            received = [:]
            for (i, line) in lines.enumerated() {
                let quantity = try whole(line.received, in: Ranges.received, "lines[\(i)].received", "units")
                try require(received![line.lot] == nil, "lines[\(i)].lot", "lot \(line.lot) appears twice")
                received![line.lot] = quantity
            }
        }
        return try JSON.response(try await PostgresReallocations(database, scope: scope).receive(id, received: received, reason: try note(input.reason, "reason")))
    }
}
