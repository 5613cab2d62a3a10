import Foundation
import Hummingbird
import NIOCore
import StockpileCore
import StockpilePostgres

// The nightly reorder report as stored by `stockpile nightly` (or serve's scheduler): JSON, a CSV
// per section, or the printable page. Reading never runs the report.

extension StockpileAPI {
    static let nightlyRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("GET", "/api/v1/reports/nightly/{date}", planners),
    ]
}

func addNightlyRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    api.get("reports/nightly/{date}") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "read the nightly report")
        let date = try validDate(try context.parameters.require("date"), field: "date")
        // A command token's report is its own region's unless it names one inside it.
        let region = scope.region(text(request, "region"))
        guard let report = try await PostgresNightly(database, scope: scope, timeZone: services.timeZone).stored(asOf: date, region: region) else {
            throw APIError(.notFound, "not_found", "no nightly report for \(date)\(region.map { " in region \($0)" } ?? ""); run `stockpile nightly --date \(date)`",
                           field: "date")
        }
        let format = text(request, "format") ?? "json"
        switch format {
        case "json":
            return try JSON.response(report)
        case "csv":
            let name = text(request, "section") ?? ""
            guard let section = NightlyReportTables.Section(rawValue: name) else {
                throw APIError(.badRequest, "invalid", "section: one of \(NightlyReportTables.Section.allCases.map(\.rawValue).joined(separator: ", "))",
                               field: "section")
            }
            return CSVDownload.response(NightlyReportTables.csv(section, of: report), filename: NightlyReportTables.filename(section, of: report))
        case "html":
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: NightlyReportTables.html(report))))
        default:
            throw APIError(.badRequest, "invalid", "format: json, csv or html", field: "format")
        }
    }
}
