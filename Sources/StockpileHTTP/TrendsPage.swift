import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

// Issue 17, part 6: days of cover over time, per item and region, from what each nightly run saved
// (and `stockpile history` reconstructed). GET /api/v1/trends (JSON or CSV) and the /trends page,
// drawn as server-rendered SVG: no script, no CDN, readable on a phone and on a wall screen.
extension StockpileAPI {
    static let trendRoutes: [(method: String, path: String, roles: Set<Role>)] = [("GET", "/api/v1/trends", planners)]
}

/// The window and filters of a trends request: `from` … `to` (default the 30 days to today), at
/// most 366 days; `region` (a command token: its own by default); `item`.
struct TrendWindow {
    var from: LocalDate
    var to: LocalDate
    var region: String?
    var item: String?
    static let maxDays = 366

    init(_ query: (String) -> String?, scope: AccessScope, timeZone: TimeZone) throws {
        // Years 1900 … 9000: a window's arithmetic never leaves the calendar.
        func date(_ name: String) throws -> LocalDate? {
            guard let text = query(name) else { return nil }
            let date = try validDate(text, field: name)
            guard (1900...9000).contains(date.year) else { throw APIError(.badRequest, "invalid", "\(name): a year from 1900 to 9000", field: name) }
            return date
        }
        to = try date("to") ?? LocalDate(Date(), in: timeZone)
        if let days = query("days") {
            guard let n = Int(days), (1...Self.maxDays).contains(n) else {
                throw APIError(.badRequest, "invalid", "days: a whole number from 1 to \(Self.maxDays)", field: "days")
            }
            from = to.adding(days: -(n - 1))
        } else {
            from = try date("from") ?? to.adding(days: -29)
        }
        guard from <= to else { throw APIError(.badRequest, "invalid", "from: on or before to (\(to))", field: "from") }
        guard from.days(until: to) < Self.maxDays else {
            throw APIError(.badRequest, "invalid", "from: at most \(Self.maxDays) days before to", field: "from")
        }
        region = scope.region(try query("region").map { try TextBounds.check($0, field: "region", maxBytes: TextBounds.code) })
        item = try query("item").map { try TextBounds.check($0, field: "item", maxBytes: TextBounds.code) }
    }
}

enum TrendCSV {
    static let chinese = ["日期", "物资编码", "物资名称", "保障位置数", "日需求量", "满负荷日需求", "目标天数", "实物库存", "实物天数", "合同储备量",
                          "产能储备量", "总天数", "缺口数量", "断供", "不足3天", "3-7天", "7-14天", "14天至目标", "达到目标", "来源", "基准变更"]
    static let english = ["date", "item", "item_name", "positions", "daily_demand", "full_load_demand", "target_days", "physical_qty",
                          "physical_days", "contract_qty", "capacity_qty", "total_days", "shortfall_qty"]
        + CoverBand.allCases.map { "band \($0.rawValue)" } + ["source", "basis_change"]

    static func days(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "" }

    static func response(_ series: [TrendSeries], chinese: Bool) -> Response {
        let rows = series.flatMap { s in
            s.points.map { p in
                [p.asOf, s.item, s.itemName, String(p.positions), String(format: "%.2f", p.dailyDemand), String(format: "%.2f", p.fullLoadDemand),
                 String(p.targetDays), String(p.physicalQty), days(p.physicalDays), String(p.contractQty), String(p.capacityQty), days(p.totalDays),
                 String(p.shortfallQty)] + CoverBand.allCases.map { String(p.bands[$0.rawValue] ?? 0) } + [p.source, p.basisChange ?? ""]
            }
        }
        return CSVDownload.response(header: chinese ? Self.chinese : Self.english, rows: rows, filename: "trends.csv")
    }
}

func addTrendRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    api.get("trends") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "read cover over time")
        let window = try TrendWindow({ text(request, $0) }, scope: scope, timeZone: services.timeZone)
        let series = try await PostgresTrends(services.database, scope: scope, timeZone: services.timeZone)
            .series(region: window.region, item: window.item, from: window.from, to: window.to)
        if text(request, "format") == "csv" { return TrendCSV.response(series, chinese: text(request, "lang") != "en") }
        struct Output: Encodable { var from: String; var to: String; var region: String?; var series: [TrendSeries] }
        return try JSON.response(Output(from: window.from.description, to: window.to.description, region: window.region, series: series))
    }
}

/// A line chart of one series: physical days and total days per date, the target as a dashed line,
/// and a mark where the demand basis changed. Pure SVG text, scaled by its viewBox.
enum TrendChart {
    static func svg(_ series: TrendSeries, from: LocalDate, to: LocalDate, labels: [String: String], compact: Bool = false) -> String {
        let width = 640.0, height = compact ? 120.0 : 240.0
        let left = 44.0, right = 12.0, top = 14.0, bottom = 28.0
        let span = max(1, from.days(until: to))
        let points = series.points
        let target = Double(points.last?.targetDays ?? 30)
        let highest = points.compactMap { max($0.physicalDays ?? 0, $0.totalDays ?? 0) }.max() ?? 0
        let top_ = max(target * 1.2, min(highest * 1.05, target * 4), 1)
        func x(_ date: String) -> Double {
            let d = LocalDate(date).map { Double(from.days(until: $0)) } ?? 0
            return left + (width - left - right) * d / Double(span)
        }
        func y(_ days: Double) -> Double { top + (height - top - bottom) * (1 - min(days, top_) / top_) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        /// A polyline per run of dates with a value (a gap where demand was zero or nothing was saved).
        func lines(_ value: (TrendPoint) -> Double?, _ cls: String) -> String {
            var runs: [[String]] = [[]]
            var previous: LocalDate?
            for p in points {
                let date = LocalDate(p.asOf)
                if let v = value(p), let date {
                    if let previous, previous.days(until: date) > 1 { runs.append([]) }
                    runs[runs.count - 1].append("\(f(x(p.asOf))),\(f(y(v)))")
                    previous = date
                } else {
                    runs.append([]); previous = nil
                }
            }
            return runs.filter { !$0.isEmpty }.map { run in
                run.count == 1 ? "<circle class=\"\(cls)\" cx=\"\(run[0].split(separator: ",")[0])\" cy=\"\(run[0].split(separator: ",")[1])\" r=\"2.5\"/>"
                    : "<polyline class=\"\(cls)\" points=\"\(run.joined(separator: " "))\"/>"
            }.joined()
        }
        let title = "\(series.itemName) (\(series.item))"
        var out = "<svg class=\"trend\(compact ? " compact" : "")\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(NightlyReportTables.escape(title))\" preserveAspectRatio=\"xMidYMid meet\">"
        out += "<title>\(NightlyReportTables.escape(title))</title>"
        // Axes: 0, the target, the top; the first and last dates (and the middle one when not compact).
        for (v, label) in [(0.0, "0"), (target, "\(Int(target))"), (top_, String(format: "%.0f", top_))] {
            out += "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\"/>"
            out += "<text class=\"axis\" x=\"\(f(left - 4))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(label)</text>"
        }
        var ticks = [from, to]
        if !compact { ticks.insert(from.adding(days: span / 2), at: 1) }
        for (i, date) in ticks.enumerated() {
            let anchor = i == 0 ? "start" : (i == ticks.count - 1 ? "end" : "middle")
            out += "<text class=\"axis\" x=\"\(f(x(date.description)))\" y=\"\(f(height - 6))\" text-anchor=\"\(anchor)\">\(date.description.dropFirst(5))</text>"
        }
        out += "<line class=\"target\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(target)))\" y2=\"\(f(y(target)))\"><title>\(labels["target"] ?? "") \(Int(target))</title></line>"
        for p in points where p.basisChange != nil {
            out += "<g class=\"basis\"><line x1=\"\(f(x(p.asOf)))\" x2=\"\(f(x(p.asOf)))\" y1=\"\(f(top))\" y2=\"\(f(height - bottom))\"/>"
            out += "<text x=\"\(f(x(p.asOf) + 3))\" y=\"\(f(top + 10))\">▲</text><title>\(p.asOf) \(NightlyReportTables.escape(p.basisChange!))</title></g>"
        }
        out += lines({ $0.totalDays }, "total") + lines({ $0.physicalDays }, "physical")
        return out + "</svg>"
    }
}

/// The /trends page: a chart per item (or one item, larger), the latest figures, a table and the CSV.
struct TrendsPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope

    func response(_ request: Request, page: PageRequest) async throws -> Response {
        let t = page.t
        let query = { (name: String) in text(request, name) }
        let window: TrendWindow
        do {
            window = try TrendWindow(query, scope: scope, timeZone: timeZone)
        } catch let error as APIError {
            return PageTemplates.render("message", ["message": "\(t["trendsBadQuery"]!)（\(error.message)）"], page: page,
                                        title: t["trends"]!, status: .badRequest)
        }
        let series: [TrendSeries]
        do {
            series = try await PostgresTrends(database, scope: scope, timeZone: timeZone)
                .series(region: window.region, item: window.item, from: window.from, to: window.to)
        } catch let refusal as Refusal {
            return PageTemplates.render("message", ["message": "\(t["trendsBadQuery"]!)（\(refusal.description)）"], page: page,
                                        title: t["trends"]!, status: APIError(refusal: refusal).status)
        }
        let master = PostgresMasterData(database, scope: scope)
        let items = try await master.items()
        let regions = try await master.regions()
        let labels = ["target": t["trendTarget"]!]
        let one = window.item != nil
        let cards = series.map { s -> [String: Any] in
            let last = s.points.last
            return ["item": s.item, "name": s.itemName, "svg": TrendChart.svg(s, from: window.from, to: window.to, labels: labels, compact: !one),
                    "physicalDays": TrendCSV.days(last?.physicalDays), "totalDays": TrendCSV.days(last?.totalDays),
                    "target": last?.targetDays ?? 0, "shortfall": last?.shortfallQty ?? 0, "asOf": last?.asOf ?? "",
                    "changes": s.points.filter { $0.basisChange != nil }.map { ["date": $0.asOf, "what": $0.basisChange!] },
                    "rows": one ? s.points.reversed().map { p -> [String: Any] in
                        ["date": p.asOf, "physicalDays": TrendCSV.days(p.physicalDays), "totalDays": TrendCSV.days(p.totalDays),
                         "physicalQty": p.physicalQty, "demand": String(format: "%.1f", p.dailyDemand), "shortfall": p.shortfallQty,
                         "stockout": p.bands[CoverBand.allCases[0].rawValue] ?? 0, "target": p.targetDays,
                         "source": t["trendSource." + p.source] ?? p.source, "change": p.basisChange ?? ""]
                    } : [] as [[String: Any]]]
        }
        var csv = "/api/v1/trends?format=csv&from=\(window.from)&to=\(window.to)"
        if let region = window.region { csv += "&region=\(region.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
        if let item = window.item { csv += "&item=\(item.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
        return PageTemplates.render("trends", [
            "from": window.from.description, "to": window.to.description, "cards": cards, "none": cards.isEmpty, "one": one, "csv": csv,
            "items": items.map { ["code": $0.code, "name": $0.name, "selected": $0.code == window.item] },
            "regions": regions.map { ["code": $0.code, "name": $0.name, "selected": $0.code == window.region] },
        ], page: page, title: t["trends"]!)
    }
}
