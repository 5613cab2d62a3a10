import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// The nightly reorder report for a date, as `stockpile nightly` stored it: a page with each
/// section's first rows, the printable page and each section's CSV (the same renderers as
/// GET /api/v1/reports/nightly/{date}, reached with the page session instead of a bearer token).
struct ReportPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope

    /// Rows shown per section on the page; the CSV has them all.
    static let shownRows = 50

    func stored(_ date: LocalDate, lines: Set<String>? = nil) async throws -> NightlyReport? {
        try await PostgresNightly(database, scope: scope, timeZone: timeZone).stored(asOf: date, region: scope.region(nil), lines: lines)
    }

    func response(date text: String?, page: PageRequest) async throws -> Response {
        let t = page.t
        let date = text.flatMap(LocalDate.init) ?? LocalDate(Date(), in: timeZone)
        var values: [String: Any] = ["date": date.description, "missing": false]
        if let report = try await stored(date) {
            values["sections"] = NightlyReportTables.Section.allCases.map { section -> [String: Any] in
                let rows = NightlyReportTables.rows(section, of: report)
                return ["code": section.rawValue, "title": section.title, "count": rows.count, "header": NightlyReportTables.header(section),
                        "rows": rows.prefix(Self.shownRows).map { ["cells": $0] }, "more": rows.count > Self.shownRows, "empty": rows.isEmpty]
            }
        } else {
            values["missing"] = true
        }
        return PageTemplates.render("report", values, page: page, title: t["report"]!)
    }

    func printable(_ date: String, page: PageRequest) async throws -> Response {
        guard let date = LocalDate(date), let report = try await stored(date) else {
            return PageTemplates.render("message", ["message": page.t["noReport"]!], page: page, title: page.t["report"]!, status: .notFound)
        }
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: NightlyReportTables.html(report))))
    }

    func csv(_ date: String, section name: String, page: PageRequest) async throws -> Response {
        guard let date = LocalDate(date), let section = NightlyReportTables.Section(rawValue: name),
              let report = try await stored(date, lines: section.lines) else {
            return PageTemplates.render("message", ["message": page.t["noReport"]!], page: page, title: page.t["report"]!, status: .notFound)
        }
        return CSVDownload.response(NightlyReportTables.csv(section, of: report), filename: NightlyReportTables.filename(section, of: report))
    }
}
