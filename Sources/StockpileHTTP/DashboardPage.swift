import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// The command-centre dashboard: a facility × item heat map of bands, the worst shortfalls, totals
/// per region, the as-of date and how fresh the data is.
struct DashboardPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope

    /// A wall screen shows this many facilities at most; filters narrow a city to a district.
    static let heatMapRows = 300
    static let shortfallRows = 25
    static let sorts: [CoverSort] = [.shortfall, .physicalDays, .totalDays, .facility, .item]

    func response(_ request: Request, page: PageRequest) async throws -> Response {
        let started = ContinuousClock.now
        let t = page.t
        let query = request.uri.queryParameters
        let text = { (name: String) in query[name[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        var filter = CoverFilter()
        filter.region = scope.region(text("region"))
        filter.category = text("category").flatMap(ItemCategory.init(rawValue:))
        filter.designated = text("designated").flatMap { $0 == "true" ? true : $0 == "false" ? false : nil }
        let sort = text("sort").flatMap(CoverSort.init(rawValue:)) ?? .shortfall
        let asOf = LocalDate(Date(), in: timeZone)

        let cover = PostgresCover(database, scope: scope, timeZone: timeZone)
        let found = try await cover.page(CoverQuery(filter: filter, sort: .facility, limit: 10_000, asOf: asOf))
        // The worst shortfalls of the whole selection (not only of the positions the heat map holds), then in the order asked.
        let worst = try await cover.page(CoverQuery(filter: filter, sort: .shortfall, limit: Self.shortfallRows, asOf: asOf))
        let rollup = try await cover.rollup(filter, group: .region, asOf: asOf)
        let regions = try await PostgresMasterData(database, scope: scope).regions()
        let lastRecorded = try await PostgresPages(database, scope: scope).lastRecorded()

        // The heat map: facilities down, items across, in code order.
        let items = Array(Set(found.rows.map(\.item))).sorted()
        let itemNames = Dictionary(found.rows.map { ($0.item, $0.itemName) }, uniquingKeysWith: { a, _ in a })
        var byFacility: [(code: String, name: String, designated: Bool, cells: [String: CoverRow])] = []
        for row in found.rows {
            if byFacility.last?.code != row.facility { byFacility.append((row.facility, row.facilityName, row.designated, [:])) }
            byFacility[byFacility.count - 1].cells[row.item] = row
        }
        let heatRows: [[String: Any]] = byFacility.prefix(Self.heatMapRows).map { facility in
            ["code": facility.code, "name": facility.name, "designated": facility.designated,
             "cells": items.map { item -> [String: Any] in
                 guard let row = facility.cells[item] else { return ["empty": true] }
                 let band = page.language.band(row.band)
                 return ["band": bandClass(row.band), "label": band, "facility": row.facility,
                         "title": "\(row.facilityName) · \(row.itemName) · \(band) · \(t["physicalDays"]!) \(daysText(row.physicalDays, t))"]
             }]
        }
        let shortfalls = sort.sorted(worst.rows.filter { $0.shortfallQty > 0 }).map { row -> [String: Any] in
            ["facility": row.facility, "facilityName": row.facilityName, "item": row.item, "itemName": row.itemName,
             "shortfall": row.shortfallQty, "physicalDays": daysText(row.physicalDays, t), "totalDays": daysText(row.totalDays, t),
             "target": row.targetDays, "band": bandClass(row.band), "bandLabel": page.language.band(row.band)]
        }
        let totals = (rollup.rows + [CoverRollupRow.total(rollup.rows, code: filter.region ?? "", name: t["total"]!)]).map { r -> [String: Any] in
            ["code": r.code, "name": r.name, "facilities": r.facilities, "positions": r.positions, "physical": r.physicalQty,
             "contract": r.contractQty, "capacity": r.capacityQty, "shortfall": r.shortfallQty, "expiring": Int64(saturating: r.expiringQty.rounded())]
        }
        // Sort links keep the filters.
        let keep = ["region": text("region"), "category": text("category"), "designated": text("designated")]
        let sortLinks: [String: String] = Dictionary(uniqueKeysWithValues: Self.sorts.map { s in
            var parts = keep.compactMap { k, v in v.map { "\(k)=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" } }.sorted()
            parts.append("sort=\(s.rawValue)")
            return (s.rawValue, "/?" + parts.joined(separator: "&"))
        })
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = timeZone
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate, .withSpaceBetweenDateAndTime]
        let elapsed = ContinuousClock.now - started
        var values: [String: Any] = [
            "asOf": asOf.description, "source": found.source,
            "freshness": lastRecorded.map(formatter.string(from:)) ?? t["noMovements"]!,
            "regions": regions.map { ["code": $0.code, "name": $0.name, "selected": $0.code == filter.region] },
            "categories": ItemCategory.allCases.map { ["code": $0.rawValue, "selected": $0 == filter.category] },
            "designatedYes": filter.designated == true, "designatedNo": filter.designated == false,
            "items": items.map { ["code": $0, "name": itemNames[$0] ?? $0] },
            "heatRows": heatRows, "truncated": byFacility.count > Self.heatMapRows, "facilityCount": byFacility.count,
            "legend": CoverBand.allCases.map { ["band": bandClass($0), "label": page.language.band($0)] },
            "shortfalls": shortfalls, "noShortfalls": shortfalls.isEmpty, "totals": totals,
            "sortLinks": sortLinks, "sortedBy": sort.rawValue,
            "renderedMs": String(format: "%.0f", Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000),
        ]
        // With a read replica the page says where its numbers came from and how far behind they may be.
        if database.replica != nil {
            let origin = found.origin
            let replicaLag = database.replica?.status.lagSeconds ?? .infinity
            values["replica"] = ["standby": origin.servedBy == "standby", "fallback": origin.fallback != nil, "fallbackText": origin.fallback ?? "",
                                 "lag": origin.servedBy == "standby" ? String(format: "%.0f s", origin.lagSeconds.rounded(.up)) : "0 s",
                                 "replicaLag": replicaLag.isFinite ? String(format: "%.0f s", replicaLag.rounded(.up)) : "?"]
        }
        values["sort_" + sort.rawValue] = true
        var response = PageTemplates.render("dashboard", values, page: page, title: t["dashboard"]!)
        response.headers[.init("Server-Timing")!] = "db;dur=\(values["renderedMs"]!)"
        return response
    }
}

/// A CSS class per band (the raw values hold characters a class name cannot).
func bandClass(_ band: CoverBand) -> String {
    switch band {
    case .stockout: return "b0"
    case .under3: return "b1"
    case .from3to7: return "b2"
    case .from7to14: return "b3"
    case .from14toTarget: return "b4"
    case .atTarget: return "b5"
    }
}
