import Foundation
import Hummingbird
import PQ
import StockpileCore
import StockpilePostgres

/// Stock entry for warehouse staff: receipt, issue, adjustment with a reason, count. Each rendered
/// form carries a fresh movement id (hidden field `id`), so submitting it twice is a replay the
/// ledger answers with the first result, never a second movement.
struct EntryPage {
    let database: StockpileDatabase
    let scope: AccessScope
    /// For the scan parser's "today" (GS1's sliding century), as the server's dates are.
    var timeZone = TimeZone(identifier: "Asia/Shanghai")!

    static let reasons = AdjustmentReason.allCases.map(\.rawValue)

    /// The form, with `form`'s values kept (after an error) or a new id and empty fields.
    func response(page: PageRequest, form: [String: String], errors: [String: String] = [:], confirmation: [String: Any]? = nil,
                  status: HTTPResponse.Status = .ok) async throws -> Response {
        let t = page.t
        let facilities: [(code: String, name: String)]
        let all = try await PostgresMasterData(database, scope: scope).facilities()
        if scope.role == .warehouse {
            facilities = all.filter { scope.facilityCodes.contains($0.code) }.map { ($0.code, $0.name) }
        } else {
            facilities = all.map { ($0.code, $0.name) }
        }
        let items = try await PostgresMasterData(database, scope: scope).items()
        let barcodes = try await PostgresMasterData(database, scope: scope).barcodes()
        let kind = form["kind"] ?? MovementKind.receipt.rawValue
        let chosenFacility = form["facility"] ?? facilities.first?.code
        let (reasonCode, note) = Self.splitReason(form)
        let field = { (name: String) -> [String: Any] in
            ["value": form[name] ?? "", "error": errors[name] ?? "", "invalid": errors[name] != nil]
        }
        let values: [String: Any] = [
            "id": form["id"] ?? UUID().uuidString.lowercased(),
            "facilities": facilities.map { ["code": $0.code, "name": $0.name, "selected": $0.code == chosenFacility] },
            "kinds": MovementKind.recordable.map { ["code": $0.rawValue, "label": page.language.kind($0.rawValue), "checked": $0.rawValue == kind] },
            "items": items.map { ["code": $0.code, "name": $0.name, "unit": $0.unit] },
            "reasons": Self.reasons.map { ["code": $0, "label": t["reason." + $0]!, "selected": $0 == reasonCode] },
            "item": field("item"), "lot": field("lot"), "expiry": field("expiry"), "quantity": field("quantity"),
            "reason": ["value": note, "error": errors["reason"] ?? "", "invalid": errors["reason"] != nil] as [String: Any],
            "facilityError": errors["facility"] ?? "", "kindError": errors["kind"] ?? "",
            // Errors of fields the clerk does not see (the hidden id, the time) are the form's.
            "formError": errors["form"] ?? errors["id"] ?? errors["occurred_at"] ?? "",
            "confirmation": confirmation ?? false,
            // For the offline outbox (pages/outbox.js): whose entries this page makes, when its lists were
            // read (the cached copy says how old they are), and its words.
            "user": scope.actor, "session": page.sessionTag, "generatedAt": PQTimestamp.formatRFC3339(Date()),
            "outboxText": Self.outboxText(t),
            // For reading scans in the page, offline too (pages/scan.js): which code names which item.
            "codes": Self.codes(barcodes), "today": LocalDate(Date(), in: timeZone).description, "scanText": Self.words(t, prefix: "scan."),
        ]
        return PageTemplates.render("entry", values, page: page, title: t["entry"]!, status: status)
    }

    /// Code → item, units and level, as JSON for the form's data-codes attribute.
    static func codes(_ barcodes: [ItemBarcode]) -> String {
        var map: [String: [String: Any]] = [:]
        for b in barcodes { map[b.code] = ["item": b.item, "units": b.units, "level": b.level] }
        let data = (try? JSONSerialization.data(withJSONObject: map, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The words under `prefix` (without it), as JSON for a data attribute.
    static func words(_ t: [String: String], prefix: String) -> String {
        var words: [String: String] = [:]
        for (key, value) in t where key.hasPrefix(prefix) { words[String(key.dropFirst(prefix.count))] = value }
        let data = (try? JSONSerialization.data(withJSONObject: words, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The outbox's words as JSON, for the section's data-text attribute.
    static func outboxText(_ t: [String: String]) -> String {
        var words: [String: String] = [:]
        for (key, value) in t where key.hasPrefix("ob.") || key.hasPrefix("st.") || key.hasPrefix("kind.") || key.hasPrefix("code.") {
            words[key.hasPrefix("ob.") ? String(key.dropFirst(3)) : key] = value
        }
        words["lot"] = t["lot"]; words["quantity"] = t["quantity"]
        let data = (try? JSONSerialization.data(withJSONObject: words, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The adjustment reason code (select `reason_code`) and the free-text note (`reason`).
    static func splitReason(_ form: [String: String]) -> (code: String, note: String) {
        (form["reason_code"] ?? "", form["reason"] ?? "")
    }

    func submit(_ form: [String: String], page: PageRequest) async throws -> Response {
        let t = page.t
        guard page.accepts(form) else {
            return try await response(page: page, form: form, errors: ["form": t["err.csrf"]!], status: .forbidden)
        }
        let (code, note) = Self.splitReason(form)
        let kind = form["kind"] ?? ""
        // An adjustment's reason text starts with its code (MovementDraft's rule): "damage: 仓库漏水".
        let reason = kind == MovementKind.adjustment.rawValue && !code.isEmpty ? (note.isEmpty ? code : "\(code): \(note)") : note
        let quantityText = (form["quantity"] ?? "").trimmingCharacters(in: .whitespaces)
        let draft = MovementDraft(id: form["id"], facility: form["facility"], item: form["item"], lot: form["lot"], expiry: form["expiry"],
                                  kind: kind, quantity: quantityText.isEmpty ? nil : Double(quantityText) ?? .nan, reason: reason)
        let movement: MovementRequest
        do {
            movement = try draft.validated()
        } catch {
            return try await response(page: page, form: form, errors: [error.field: t["err." + error.field] ?? error.reason], status: .badRequest)
        }
        if scope.role == .warehouse, !scope.facilityCodes.contains(movement.facility) {
            return try await response(page: page, form: form, errors: ["facility": t["err.forbidden"]!], status: .forbidden)
        }
        let recorded: RecordedMovement
        do {
            recorded = try await PostgresLedger(database, scope: scope).record(movement, recordedBy: scope.actor)
        } catch let error as PQError {
            let (field, key) = Self.explain(error)
            return try await response(page: page, form: form, errors: [field: t[key] ?? error.message], status: APIError.from(error).status)
        }
        let total = try await PostgresPages(database, scope: scope).balance(facility: recorded.facility, item: recorded.item)
        let confirmation: [String: Any] = [
            "replay": recorded.replay, "kind": page.language.kind(recorded.kind.rawValue), "facility": recorded.facility,
            "item": recorded.item, "lot": recorded.lot, "quantity": recorded.quantity, "lotBalance": recorded.balanceAfter, "total": total,
        ]
        // The next form: a new id, the same facility and kind (a clerk records a delivery line after line).
        return try await response(page: page, form: ["facility": recorded.facility, "kind": recorded.kind.rawValue], confirmation: confirmation,
                                  status: recorded.replay ? .ok : .created)
    }

    /// Which field a refusal of the ledger concerns, and the words for it.
    static func explain(_ error: PQError) -> (field: String, key: String) {
        switch error.sqlState {
        case "SP404": return (error.column ?? "item", "err.unknown")
        case "SP409" where error.column == "id": return ("form", "err.conflict")
        case "SP409": return ("quantity", "err.stock")
        case "SP422": return ("expiry", "err.expiryMismatch")
        case "SP423": return ("lot", "err.held")
        // A new lot of an item that expires, entered without its expiry (sql/0017).
        case "SP400" where error.column == "expiry": return ("expiry", "err.expiryNeeded")
        case "SP400": return (error.column ?? "form", "err." + (error.column ?? "busy"))
        default: return ("form", "err.busy")
        }
    }
}
