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
        guard let report = try await PostgresNightly(database, scope: scope, timeZone: services.timeZone)
            .stored(asOf: date, region: region, lines: section?.lines) else {
            throw APIError(.notFound, "not_found", "no nightly report for \(date)\(region.map { " in region \($0)" } ?? ""); run `stockpile nightly --date \(date)`",
                           field: "date")
        }
        if let section {
            return CSVDownload.response(NightlyReportTables.csv(section, of: report), filename: NightlyReportTables.filename(section, of: report))
        }
        if format == "html" {
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: NightlyReportTables.html(report))))
        }
        return try JSON.response(report)
    }
}
