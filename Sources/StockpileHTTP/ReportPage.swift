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

    /// The stored report's header, to stream the rest from (a city's report is never read whole).
    func stream(_ date: LocalDate) async throws -> NightlyReportStream? {
        let reader = PostgresNightly(database, scope: scope, timeZone: timeZone)
        return try await reader.header(asOf: date, region: scope.region(nil)).map { NightlyReportStream(reader: reader, stored: $0) }
    }

    func response(date text: String?, page: PageRequest) async throws -> Response {
        let t = page.t
        let date = text.flatMap(LocalDate.init) ?? LocalDate(Date(), in: timeZone)
        var values: [String: Any] = ["date": date.description, "missing": false]
        if let stream = try await stream(date) {
            var sections: [[String: Any]] = []
            for section in NightlyReportTables.Section.allCases {
                // The first rows only: reading stops once there are more than the page shows.
                let (rows, count) = try await stream.firstRows(section, limit: Self.shownRows)
                sections.append(["code": section.rawValue, "title": section.title,
                                 "count": count.map(String.init) ?? "\(Self.shownRows)+", "header": NightlyReportTables.header(section),
                                 "rows": rows.map { ["cells": $0] }, "more": (count ?? Int.max) > Self.shownRows, "empty": rows.isEmpty])
            }
            values["sections"] = sections
            // Tonight's orders as trucks (issue 17, part 1); reports stored before shipments have no count.
            if let shipments = stream.stored.header.shipments {
                values["shipmentSummary"] = t["reportShipments"]!.replacingOccurrences(of: "{orders}", with: "\(stream.stored.lineCounts["orders"] ?? 0)")
                    .replacingOccurrences(of: "{shipments}", with: "\(shipments)")
            }
        } else {
            values["missing"] = true
        }
        return PageTemplates.render("report", values, page: page, title: t["report"]!)
    }

    func printable(_ date: String, page: PageRequest) async throws -> Response {
        guard let date = LocalDate(date), let stream = try await stream(date) else {
            return PageTemplates.render("message", ["message": page.t["noReport"]!], page: page, title: page.t["report"]!, status: .notFound)
        }
        return stream.html()
    }

    func csv(_ date: String, section name: String, page: PageRequest) async throws -> Response {
        guard let date = LocalDate(date), let section = NightlyReportTables.Section(rawValue: name), let stream = try await stream(date) else {
            return PageTemplates.render("message", ["message": page.t["noReport"]!], page: page, title: page.t["report"]!, status: .notFound)
        }
        return stream.csv(section)
    }
}
