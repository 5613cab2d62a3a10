import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// One facility: cover per item as layers against the target, lots with expiry, orders in transit,
/// the last movements.
struct FacilityPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope

    /// Lots expiring within this many days are marked (the nightly report's expiring-lots window).
    static let expiringWithin = 90

    func response(_ code: String, page: PageRequest, surge surgeText: String? = nil) async throws -> Response {
        let t = page.t
        let asOf = LocalDate(Date(), in: timeZone)
        let whatIf = WhatIf(surgeText)
        // Outside the scope a facility does not exist, as in the API.
        guard let lots = try await PostgresLedger(database, scope: scope).stock(facility: code) else {
            return PageTemplates.render("message", ["message": t["notFound"]!], page: page, title: t["notFound"]!, status: .notFound)
        }
        var filter = CoverFilter()
        filter.facility = code
        let rows = try await PostgresCover(database, scope: scope, timeZone: timeZone)
            .page(CoverQuery(filter: filter, sort: .item, limit: 10_000, asOf: asOf, surge: whatIf.surge)).rows
        // Under a what-if, each item also says where it stands at today's demand.
        let baseline: [String: CoverRow] = whatIf.active
            ? Dictionary(try await PostgresCover(database, scope: scope, timeZone: timeZone)
                .page(CoverQuery(filter: filter, sort: .item, limit: 10_000, asOf: asOf)).rows.map { ($0.item, $0) }, uniquingKeysWith: { a, _ in a })
            : [:]
        let orders = try await PostgresReallocations(database, scope: scope, timeZone: timeZone)
            .list(status: "dispatched", facility: code, item: nil, limit: 100)
        let recent = try await PostgresPages(database, scope: scope).recentMovements(facility: code, limit: 20)
        // Entries sent from an outbox that need someone (refused, or recorded before a count): until resolved.
        let open = try await PostgresSubmissions(database, scope: scope).open(facility: code, limit: 100)

        let cover = rows.map { row -> [String: Any] in
            // The bar's scale: the target, or more when the layers reach past it (up to twice the target).
            let target = Double(row.targetDays)
            let layers = [row.physicalDays, row.contractDays, row.capacityDays].map { $0 ?? 0 }
            let scale = max(target, min(2 * target, layers.reduce(0, +)))
            var x = 0.0
            let segments = zip(["physical", "contract", "capacity"], layers).map { name, days -> [String: Any] in
                let width = scale > 0 ? min(100 - x, days / scale * 100) : 0
                defer { x += width }
                return ["layer": name, "x": pct(x), "width": pct(width), "label": t[name]!, "days": daysText(days, t)]
            }
            return ["item": row.item, "itemName": row.itemName, "target": row.targetDays, "band": bandClass(row.band),
                    "bandLabel": page.language.band(row.band), "physicalDays": daysText(row.physicalDays, t),
                    "contractDays": daysText(row.contractDays, t), "capacityDays": daysText(row.capacityDays, t),
                    "totalDays": daysText(row.totalDays, t), "shortfall": row.shortfallQty, "onHand": row.physicalQty,
                    "demand": String(format: "%.1f", row.dailyDemand), "unbounded": row.dailyDemand == 0,
                    "segments": segments, "targetX": pct(scale > 0 ? target / scale * 100 : 100),
                    "baseline": baseline[row.item].map { b -> [String: Any] in
                        ["bandLabel": page.language.band(b.band), "band": bandClass(b.band), "shortfall": b.shortfallQty]
                    } ?? false]
        }
        let lotRows = lots.map { lot -> [String: Any] in
            let days = lot.expiry.map { asOf.days(until: $0) }
            return ["item": lot.item, "itemName": lot.itemName, "lot": lot.lot, "expiry": lot.expiry?.description ?? t["noExpiry"]!,
                    "quantity": lot.quantity, "unit": lot.unit,
                    "expired": days.map { $0 <= 0 } ?? false, "expiring": days.map { $0 > 0 && $0 <= Self.expiringWithin } ?? false]
        }
        let orderRows = orders.map { o -> [String: Any] in
            ["id": o.id, "item": o.item, "from": o.from, "to": o.to, "quantity": o.quantity, "status": o.status, "inbound": o.to == code]
        }
        let formatter = DateFormatter()
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        let movementRows = recent.map { m -> [String: Any] in
            ["item": m.item, "itemName": m.itemName, "lot": m.lot, "kind": page.language.kind(m.kind), "quantity": m.quantity,
             "balanceAfter": m.balanceAfter, "reason": m.reason, "occurredAt": formatter.string(from: m.occurredAt), "recordedBy": m.recordedBy]
        }
        let attentionRows = open.map { s -> [String: Any] in
            let entry = { (key: String) -> String in
                switch s.entry[key] { case .text(let v): v; case .number(let n): String(Int64(n)); default: "" }
            }
            return ["id": s.id, "receivedAt": formatter.string(from: s.receivedAt), "kind": page.language.kind(entry("kind")),
                    "item": entry("item"), "lot": entry("lot"), "quantity": entry("quantity"), "submittedBy": s.submittedBy,
                    "why": t["code." + (s.attention ?? s.code ?? "")] ?? (s.code ?? ""), "reason": s.reason ?? "",
                    "onHand": s.onHand.map { "\(t["ob.onHand"]!) \($0)" } ?? ""]
        }
        let name = rows.first?.facilityName ?? code
        var values: [String: Any] = [
            "code": code, "name": name, "asOf": asOf.description, "cover": cover, "lots": lotRows, "noLots": lotRows.isEmpty,
            "orders": orderRows, "noOrders": orderRows.isEmpty, "movements": movementRows, "noMovements": movementRows.isEmpty,
            "canRecord": PagePaths.recorders.contains(scope.role), "attention": attentionRows, "hasAttention": !attentionRows.isEmpty,
        ]
        values.merge(whatIf.values(t)) { a, _ in a }
        return PageTemplates.render("facility", values, page: page, title: "\(name) · \(t["cover"]!)")
    }
}

/// A percentage for an SVG attribute (not a style: the pages' CSP admits no inline styles).
func pct(_ value: Double) -> String { String(format: "%.1f%%", max(0, value)) }
