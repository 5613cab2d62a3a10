import Foundation
import Hummingbird
import NIOCore
import StockpileCore
import StockpilePostgres

// The nightly reorder report as stored by `stockpile nightly` (or serve's scheduler): JSON, a CSV
// per section, or the printable page. Reading never runs the report; replacing it (admins) does.

extension StockpileAPI {
    static let nightlyRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("GET", "/api/v1/reports/nightly/{date}", planners),
        ("POST", "/api/v1/reports/nightly/{date}/replace", admins),
    ]
}

/// What POST /api/v1/reports/nightly/{date}/replace answers: the new report's summary (the report
/// itself is GET's: a city's is gigabytes) and what became of the superseded one's orders.
struct NightlyReplaceOutput: Encodable {
    struct Superseded: Encodable {
        var generation: Int
        var requestID: String
        var cancelledOrders: Int
        var keptOrders: [String: Int]
        var reason: String
        enum CodingKeys: String, CodingKey {
            case generation, reason
            case requestID = "request_id", cancelledOrders = "cancelled_orders", keptOrders = "kept_orders"
        }
    }
    var asOf: String
    var region: String?
    var generation: Int
    var replay: Bool
    var requestID: String
    var positions: Int
    var orders: Int
    var shipments: Int?
    var procurement: Int64
    var superseded: Superseded?
    enum CodingKeys: String, CodingKey {
        case region, generation, replay, positions, orders, shipments, procurement, superseded
        case asOf = "as_of", requestID = "request_id"
    }

    init(_ run: NightlyRun) {
        let r = run.report
        asOf = r.asOf.description; region = r.region; generation = run.generation; replay = run.replay
        requestID = r.requestID; positions = r.positions; orders = r.orders.count; shipments = r.shipments; procurement = r.procurementTotal
        superseded = run.replaced.map { Superseded(generation: $0.supersededGeneration, requestID: $0.supersededRequestID,
                                                   cancelledOrders: $0.cancelledOrders, keptOrders: $0.keptOrders, reason: $0.reason) }
    }
}

func addNightlyRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    api.get("reports/nightly/{date}") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "read the nightly report")
        let date = try validDate(try context.parameters.require("date"), field: "date")
        // A command token's report is its own region's unless it names one inside it.
        let region = scope.region(text(request, "region"))
        let format = text(request, "format") ?? "json"
        guard ["json", "csv", "html"].contains(format) else { throw APIError(.badRequest, "invalid", "format: json, csv or html", field: "format") }
        var section: NightlyReportTables.Section?
        if format == "csv" {
            guard let wanted = text(request, "section").flatMap(NightlyReportTables.Section.init(rawValue:)) else {
                throw APIError(.badRequest, "invalid", "section: one of \(NightlyReportTables.Section.allCases.map(\.rawValue).joined(separator: ", "))",
                               field: "section")
            }
            section = wanted
        }
        // The header only; the lines are streamed from the database a run at a time (a city's report is ~2 GB).
        let reader = PostgresNightly(database, scope: scope, timeZone: services.timeZone)
        guard let stored = try await reader.header(asOf: date, region: region) else {
            throw APIError(.notFound, "not_found", "no nightly report for \(date)\(region.map { " in region \($0)" } ?? ""); run `stockpile nightly --date \(date)`",
                           field: "date")
        }
        let stream = NightlyReportStream(reader: reader, stored: stored)
        if let section { return stream.csv(section) }
        if format == "html" { return stream.html() }
        return try stream.json()
    }

    // Runs the report again for a date whose data has been corrected (PostgresNightly.replace): as
    // long as a run takes, a minute or more for a city.
    api.post("reports/nightly/{date}/replace") { request, context in
        var scope = try context.require(StockpileAPI.admins, to: "replace a nightly report")
        // A whole run, as the nightly job's: no request statement timeout (its lock wait and the
        // planner's statements may take minutes for a city, and a cancel halfway helps nobody).
        scope.statementTimeoutMilliseconds = 0
        let date = try validDate(try context.parameters.require("date"), field: "date")
        var nightly = PostgresNightly(database, scope: scope, timeZone: services.timeZone)
        nightly.transit = services.transit
        let run = try await nightly.replace(asOf: date, region: text(request, "region"))
        return try JSON.response(NightlyReplaceOutput(run), status: run.replay ? .ok : .created)
    }
}
