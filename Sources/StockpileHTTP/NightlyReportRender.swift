import Foundation
import StockpileCore

/// The nightly report's sections as tables: one CSV per section (UTF-8 with a byte-order mark,
/// Chinese headers) and the printable page, both from the same headers and cells.
public enum NightlyReportTables {
    public enum Section: String, CaseIterable, Sendable {
        case orders, callOffs = "call_offs", activations, procurement, contractGaps = "contract_gaps", expiring, stale, overdue, hoarding, rotation

        public var title: String {
            switch self {
            case .orders: return "调拨单"
            case .callOffs: return "合同储备调用"
            case .activations: return "产能储备启用"
            case .procurement: return "采购清单"
            case .contractGaps: return "合同储备缺口"
            case .expiring: return "临期批次（90天内）"
            case .stale: return "数据陈旧（7天无变动或盘点）"
            case .overdue: return "逾期未签收的调拨单（疑似截留）"
            case .hoarding: return "调入后超储（疑似截留囤积）"
            case .rotation: return "储备轮换（调出临期批次，等量补购）"
            }
        }
    }

    static let positionHeader = ["设施编码", "设施名称", "物资编码", "物资名称", "日需求量", "需求依据", "目标天数", "实物库存",
                                 "实物保障天数", "合同保障天数", "产能保障天数", "缺口数量"]

    public static func header(_ section: Section) -> [String] {
        switch section {
        case .orders: return ["调拨单号", "物资编码", "调出设施", "调入设施", "数量", "距离(公里)", "批次×数量", "车次(调拨单)"]
        case .callOffs: return positionHeader + ["调拨补充", "在途数量", "调用前需求", "合同编号", "供应商", "本地企业", "交货周期(天)",
                                                 "合同剩余量", "调用数量"]
        case .activations: return positionHeader + ["调拨补充", "在途数量", "启用前需求", "产能编号", "生产企业", "本地企业", "日产能",
                                                    "爬坡天数", "目标期内产量", "启用数量", "生产天数"]
        case .procurement: return positionHeader + ["调拨补充", "调拨来源", "在途数量", "合同调用", "产能启用", "采购数量"]
        case .contractGaps: return positionHeader + ["合同储备量", "今晚调用", "调用后合同储备量", "调用后合同保障天数", "需补签数量",
                                                     "建议续签", "建议扩大", "现有合同"]
        case .expiring: return ["设施编码", "设施名称", "物资编码", "物资名称", "批号", "有效期至", "剩余天数", "库存数量", "日需求量",
                                "预计过期未用数量", "建议调往", "调往设施名称", "距离(公里)", "调往设施日需求量", "调往设施实物保障天数",
                                "调往设施可用数量"]
        case .stale: return ["设施编码", "设施名称", "物资编码", "物资名称", "实物库存", "日需求量", "最后变动日期", "最后盘点日期", "距今天数"]
        case .overdue: return ["调拨单号", "物资编码", "物资名称", "调出设施", "调入设施", "在途数量", "发出时间", "应到时间", "逾期天数"]
        case .hoarding: return ["设施编码", "设施名称", "物资编码", "物资名称", "30天内调入", "实物库存", "目标数量", "超储数量",
                                "本区域其他设施缺口", "缺口设施数"]
        case .rotation: return ["储备库编码", "储备库名称", "物资编码", "物资名称", "批号", "有效期至", "剩余天数", "库存数量",
                                "自用不完数量", "轮换数量", "调往设施", "调往设施名称", "距离(公里)", "调往设施日需求量", "补购数量", "调拨单号"]
        }
    }

    static let contractStatus = ["valid": "有效", "expired": "已到期", "not_yet_valid": "未生效", "lead_time_over_target": "交货周期超过目标天数"]

    static func days(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "∞" }
    static func demand(_ value: Double) -> String { String(format: "%.4f", value) }
    static func yesNo(_ value: Bool) -> String { value ? "是" : "否" }

    static func position(_ p: NightlyPosition) -> [String] {
        [p.facility, p.facilityName, p.item, p.itemName, demand(p.dailyDemand), p.demandBasis == "full_load" ? "满负荷" : "实际消耗",
         String(p.targetDays), String(p.physicalQty), days(p.physicalDays), days(p.contractDays), days(p.capacityDays), String(p.shortfallQty)]
    }

    public static func rows(_ section: Section, of report: NightlyReport) -> [[String]] {
        switch section {
        case .orders:
            return report.orders.map { [String($0.id), $0.item, $0.from, $0.to, String($0.quantity), String(format: "%.1f", $0.distanceKm), $0.lots,
                                        $0.shipment.map { "S\($0)" } ?? ""] }
        case .callOffs:
            return report.reorders.flatMap { line in
                line.callOffs.map { k in
                    position(line.position) + [String(line.reallocated), String(line.inbound), String(k.needBefore), k.contract, k.supplier,
                                               yesNo(k.local), String(k.leadTimeDays), String(k.remaining), String(k.quantity)]
                }
            }
        case .activations:
            return report.reorders.flatMap { line in
                line.activations.map { a in
                    position(line.position) + [String(line.reallocated), String(line.inbound), String(a.needBefore), a.pledge, a.manufacturer,
                                               yesNo(a.local), String(a.dailyCapacity), String(a.rampUpDays), String(a.yieldQty),
                                               String(a.quantity), String(a.productionDays)]
                }
            }
        case .procurement:
            return report.reorders.filter { $0.procurement > 0 }.map { line -> [String] in
                let sources: [String] = line.reallocatedFrom.map { "\($0.from)×\($0.quantity)(#\($0.order))" }
                let calledOff: Int64 = line.callOffs.reduce(0) { $0 + $1.quantity }
                let activated: Int64 = line.activations.reduce(0) { $0 + $1.quantity }
                return position(line.position) + [String(line.reallocated), sources.joined(separator: " "), String(line.inbound),
                                                  String(calledOff), String(activated), String(line.procurement)]
            }
        case .contractGaps:
            return report.contractGaps.map { g in
                let contracts = g.contracts.map { "\($0.code)(\(contractStatus[$0.status] ?? $0.status), 剩余\($0.remaining), 至\($0.validTo))" }
                    .joined(separator: "; ")
                return position(g.position) + [String(g.position.contractQty), String(g.calledOffTonight), String(g.contractQtyAfter),
                                               days(g.contractDaysAfter), String(g.gapQty), g.renew.joined(separator: " "),
                                               g.expand ?? "新签合同", contracts]
            }
        case .expiring:
            return report.expiringLots.map { e in
                [e.facility, e.facilityName, e.item, e.itemName, e.lot, e.expiry.description, String(e.daysToExpiry), String(e.onHand),
                 demand(e.dailyDemand), String(e.unconsumedQty), e.moveTo ?? "", e.moveToName ?? "",
                 e.distanceKm.map { String(format: "%.1f", $0) } ?? "", e.moveToDailyDemand.map(demand) ?? "",
                 e.moveToPhysicalDays.map { days($0) } ?? "", e.moveToUsableQty.map { String($0) } ?? ""]
            }
        case .stale:
            return report.stale.map { s in
                [s.facility, s.facilityName, s.item, s.itemName, String(s.physicalQty), demand(s.dailyDemand),
                 s.lastMovement?.description ?? "从无", s.lastCount?.description ?? "从无", s.daysSince.map { String($0) } ?? ""]
            }
        case .overdue:
            return (report.overdue ?? []).map { o in
                [String(o.order), o.item, o.itemName, o.from, o.to, String(o.inTransit), o.dispatchedAt, o.dueAt, String(format: "%.1f", o.daysOverdue)]
            }
        case .hoarding:
            return (report.hoarding ?? []).map { h in
                [h.facility, h.facilityName, h.item, h.itemName, String(h.received), String(h.physicalQty), String(h.targetQty),
                 String(h.surplusQty), String(h.regionShortfallQty), String(h.shortFacilities)]
            }
        case .rotation:
            return (report.rotation ?? []).map { r in
                [r.warehouse, r.warehouseName, r.item, r.itemName, r.lot, r.expiry.description, String(r.daysToExpiry), String(r.onHand),
                 String(r.unusedQty), String(r.rotateQty), r.to, r.toName, String(format: "%.1f", r.distanceKm), demand(r.toDailyDemand),
                 String(r.replacementQty), r.order.map(String.init) ?? ""]
            }
        }
    }

    /// One section as CSV text, byte-order mark first, CRLF line ends.
    public static func csv(_ section: Section, of report: NightlyReport) -> String {
        CSVDownload.text(header: header(section), rows: rows(section, of: report))
    }

    public static func filename(_ section: Section, of report: NightlyReport) -> String {
        "nightly-\(report.asOf)\(report.region.map { "-\($0)" } ?? "")-\(section.rawValue).csv"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func tableRows(_ rows: [[String]]) -> String {
        rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n" }.joined()
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "<p class=\"none\">无</p>" }
        return tableStart(header) + tableRows(rows) + tableEnd
    }

    static func tableStart(_ header: [String]) -> String {
        "<table>\n<thead><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
    }

    static let tableEnd = "</tbody>\n</table>\n"

    static func sectionStart(_ section: Section) -> String {
        "<section id=\"\(section.rawValue)\">\n<h2>\(escape(section.title))</h2>\n"
    }

    /// A section's close: how many rows it had (known once they have all been written: a city's
    /// page is streamed, section by section).
    static func sectionEnd(rows: Int) -> String {
        (rows == 0 ? "<p class=\"none\">无</p>\n" : "<p class=\"count\">共 \(rows) 行</p>\n") + "</section>\n"
    }

    /// The printable page: zh-CN, A4 landscape, a summary first and every section on a page of its
    /// own. Well-formed XHTML-compatible markup, so a plain XML parser can check it.
    public static func html(_ report: NightlyReport) -> String {
        htmlStart(report, orders: report.orders.count) + Section.allCases.map { section in
            let rows = rows(section, of: report)
            return sectionStart(section) + (rows.isEmpty ? "" : tableStart(header(section)) + tableRows(rows) + tableEnd)
                + sectionEnd(rows: rows.count)
        }.joined() + htmlEnd
    }

    static let htmlEnd = "</body>\n</html>\n"

    /// Everything before the sections: the head, the title and the per-item summary (from the header).
    static func htmlStart(_ report: NightlyReport, orders: Int) -> String {
        let scope = report.region.map { "区域 \($0)" } ?? "全部辖区"
        let summary = table(["物资编码", "缺口数量", "调拨补充", "在途数量", "合同调用", "产能启用", "采购数量"], report.items.map {
            [$0.item, String($0.shortfall), String($0.reallocated), String($0.inbound), String($0.calledOff), String($0.activated), String($0.procurement)]
        })
        return """
            <!DOCTYPE html>
            <html lang="zh-CN">
            <head>
            <meta charset="utf-8" />
            <title>夜间补货报告 \(report.asOf) \(escape(scope))</title>
            <style>
            @page { size: A4 landscape; margin: 10mm; }
            body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif; font-size: 8pt; }
            h1 { font-size: 14pt; } h2 { font-size: 11pt; }
            section { break-before: page; page-break-before: always; }
            table { border-collapse: collapse; width: 100%; }
            thead { display: table-header-group; }
            tr { break-inside: avoid; page-break-inside: avoid; }
            th, td { border: 1px solid #888; padding: 1px 3px; text-align: left; }
            th { background: #eee; }
            </style>
            </head>
            <body>
            <header id="summary">
            <h1>夜间补货报告 · \(report.asOf) · \(escape(scope))</h1>
            <p>生成时间 \(escape(report.generatedAt))；保障位置 \(report.positions) 个；调拨单 \(orders) 张\(report.shipments.map { "（合 \($0) 车）" } ?? "")；合同调用 \(report.callOffTotal)；产能启用 \(report.activationTotal)；采购 \(report.procurementTotal)。</p>
            <p>顺序：先调拨，再按本地企业优先、交货周期最短调用合同储备，再启用已认证的产能储备（目标天数内扣除爬坡期的产量），其余采购。</p>
            \(summary)
            </header>

            """
    }

    /// The stored section a table is made from.
    public static func source(_ section: Section) -> String {
        switch section {
        case .orders: return "orders"
        case .callOffs, .activations, .procurement: return "reorders"
        case .contractGaps: return "contract_gaps"
        case .expiring: return "expiring_lots"
        case .stale: return "stale"
        case .overdue: return "overdue"
        case .hoarding: return "hoarding"
        case .rotation: return "rotation"
        }
    }
}
