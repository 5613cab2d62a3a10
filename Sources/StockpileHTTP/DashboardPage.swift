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
    var transit = TransitRule.standard

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
        // One item across the region ("N95 across the city"): per-item sums answer its roll-up (issue 18).
        filter.item = text("item")
        filter.designated = text("designated").flatMap { $0 == "true" ? true : $0 == "false" ? false : nil }
        let sort = text("sort").flatMap(CoverSort.init(rawValue:)) ?? .shortfall
        let asOf = LocalDate(Date(), in: timeZone)
        let whatIf = WhatIf(text("surge"))
        let surge = whatIf.surge

        let cover = PostgresCover(database, scope: scope, timeZone: timeZone)
        let found = try await cover.page(CoverQuery(filter: filter, sort: .facility, limit: 10_000, asOf: asOf, surge: surge))
        // The worst shortfalls of the whole selection (not only of the positions the heat map holds), then in the order asked.
        let worst = try await cover.page(CoverQuery(filter: filter, sort: .shortfall, limit: Self.shortfallRows, asOf: asOf, surge: surge))
        let rollup = try await cover.rollup(filter, group: .region, asOf: asOf, surge: surge)
        // A what-if is shown against today's demand: the bands and shortfall, both ways.
        let baseline = whatIf.active ? try await cover.rollup(filter, group: .region, asOf: asOf) : nil
        let masterData = PostgresMasterData(database, scope: scope)
        let regions = try await masterData.regions()
        let itemChoices = try await masterData.items()
        let lastRecorded = try await PostgresPages(database, scope: scope).lastRecorded()
        let overdue = try await PostgresInterception(database, scope: scope, timeZone: timeZone).overdueCount(transit)

        // The heat map: facilities down, items across, grouped by category (in its order), then by code.
        let itemNames = Dictionary(found.rows.map { ($0.item, $0.itemName) }, uniquingKeysWith: { a, _ in a })
        let itemCategory = Dictionary(found.rows.map { ($0.item, $0.category) }, uniquingKeysWith: { a, _ in a })
        let categoryOrder = Dictionary(uniqueKeysWithValues: ItemCategory.allCases.enumerated().map { ($1, $0) })
        let items = Array(Set(found.rows.map(\.item))).sorted {
            (categoryOrder[itemCategory[$0]!]!, $0) < (categoryOrder[itemCategory[$1]!]!, $1)
        }
        var categoryGroups: [(category: ItemCategory, count: Int)] = []
        for item in items {
            let category = itemCategory[item]!
            if categoryGroups.last?.category == category { categoryGroups[categoryGroups.count - 1].count += 1 } else { categoryGroups.append((category, 1)) }
        }
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
        let keep = ["region": text("region"), "category": text("category"), "item": filter.item, "designated": text("designated"),
                    "surge": whatIf.active ? WhatIf.format(surge) : nil]
        let sortLinks: [String: String] = Dictionary(uniqueKeysWithValues: Self.sorts.map { s in
            var parts = keep.compactMap { k, v in v.map { "\(k)=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" } }.sorted()
            parts.append("sort=\(s.rawValue)")
            return (s.rawValue, "/?" + parts.joined(separator: "&"))
        })
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = timeZone
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate, .withSpaceBetweenDateAndTime]
        // Cover over the last 30 days (issue 17, part 6) of the items short most, for the command
        // centre: a small chart each, one indexed read per item, linking to the trends page. Read
        // before the page's time is taken, so Server-Timing counts them.
        var trends: [String: Any] = [:]
        if StockpileAPI.planners.contains(scope.role) {
            var chosen: [String] = []
            for row in worst.rows where row.shortfallQty > 0 && !chosen.contains(row.item) && chosen.count < 3 { chosen.append(row.item) }
            let history = PostgresTrends(database, scope: scope, timeZone: timeZone)
            var cards: [[String: Any]] = []
            for item in chosen {
                guard let series = try await history.series(region: filter.region, item: item, from: asOf.adding(days: -29), to: asOf).first,
                      series.points.count > 1 else { continue }
                cards.append(["item": item, "name": series.itemName,
                              "svg": TrendChart.svg(series, from: asOf.adding(days: -29), to: asOf, labels: ["target": t["trendTarget"]!], compact: true)])
            }
            let link = "/trends" + (filter.region.map { "?region=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" } ?? "")
            trends = ["trendCards": cards, "hasTrends": !cards.isEmpty, "trendLink": link]
        }
        let elapsed = ContinuousClock.now - started
        var values: [String: Any] = [
            "asOf": asOf.description, "source": found.source,
            "freshness": lastRecorded.map(formatter.string(from:)) ?? t["noMovements"]!,
            "regions": regions.map { ["code": $0.code, "name": $0.name, "selected": $0.code == filter.region] },
            "categories": ItemCategory.allCases.map { ["code": $0.rawValue, "name": t["cat." + $0.rawValue]!, "selected": $0 == filter.category] },
            "categoryGroups": categoryGroups.map { ["name": t["cat." + $0.category.rawValue]!, "span": $0.count] },
            "itemChoices": itemChoices.map { ["code": $0.code, "name": $0.name, "selected": $0.code == filter.item] },
            "designatedYes": filter.designated == true, "designatedNo": filter.designated == false,
            // Chinese names across the top (the code on hover); the English view shows codes, as the names are Chinese.
            "items": items.map { ["code": $0, "name": itemNames[$0] ?? $0, "head": page.language == .zh ? (itemNames[$0] ?? $0) : $0,
                                  "hover": page.language == .zh ? $0 : (itemNames[$0] ?? $0)] },
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
        // The district's spreadsheets, for the region in view (issue 19).
        let exportQuery = filter.region.map { "?region=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" } ?? ""
        values["exports"] = CSVExporter.files.filter { scope.role != .warehouse || CSVExporter.warehouseFiles.contains($0) }
            .map { ["href": "/export/\($0).csv\(exportQuery)", "label": t["export.\($0)"]!, "file": "\($0).csv"] }
        values.merge(trends) { a, _ in a }
        values["sort_" + sort.rawValue] = true
        if overdue > 0 { values["overdueNotice"] = t["overdueNotice"]!.replacingOccurrences(of: "{n}", with: String(overdue)) }
        values.merge(whatIf.values(t)) { a, _ in a }
        if let baseline {
            let now = CoverRollupRow.total(baseline.rows, code: "", name: "")
            let then = CoverRollupRow.total(rollup.rows, code: "", name: "")
            values["surgeCompare"] = CoverBand.allCases.map { band -> [String: Any] in
                ["isBand": true, "band": bandClass(band), "label": page.language.band(band),
                 "now": now.bands[band.rawValue] ?? 0, "whatIf": then.bands[band.rawValue] ?? 0]
            } + [["isBand": false, "label": t["shortfallQty"]!, "now": now.shortfallQty, "whatIf": then.shortfallQty]]
        }
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
