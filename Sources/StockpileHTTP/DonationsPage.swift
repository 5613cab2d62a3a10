import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// The donation register as a page (社会捐赠, issue 17 part 2): the form a warehouse clerk records a
/// donation with as it arrives (a movement id per rendered form makes a resubmission a replay), the
/// register, and for the command centre the inspection of each line still waiting.
struct DonationsPage {
    let database: StockpileDatabase
    let timeZone: TimeZone
    let scope: AccessScope

    /// Lines the form offers; a larger donation goes through the API.
    static let formLines = 6

    func response(page: PageRequest, form: [String: String] = [:], message: String? = nil, error: String? = nil,
                  status: HTTPResponse.Status = .ok) async throws -> Response {
        let t = page.t
        let donations = try await PostgresDonations(database, scope: scope).list(facility: nil)
        let day = DateFormatter()
        day.timeZone = timeZone
        day.dateFormat = "yyyy-MM-dd"
        let mayInspect = StockpileAPI.planners.contains(scope.role)
        let rows: [[String: Any]] = donations.flatMap { d in
            d.lines.map { l -> [String: Any] in
                let result = l.result ?? "pending"
                return ["id": d.id, "line": l.line, "receivedAt": day.string(from: d.receivedAt), "donor": d.donor,
                        "donorKind": t["donorKind." + d.donorKind] ?? d.donorKind, "certificate": d.certificate,
                        "facility": "\(d.facilityName) (\(d.facility))", "item": l.item, "itemName": l.itemName, "lot": l.lot,
                        "expiry": l.expiry ?? "", "quantity": l.quantity, "result": t["insp." + result] ?? result, "resultClass": "insp-" + result,
                        "note": l.note ?? "", "writtenOff": l.writtenOff.flatMap { $0 > 0 ? "\($0)" as Any : nil } ?? false,
                        "shipped": l.shipped.map { "#\($0.order) → \($0.to) \($0.quantity)" }.joined(separator: "; "),
                        "inspect": mayInspect && l.result == nil]
            }
        }
        let mayRecord = PagePaths.recorders.contains(scope.role)
        // Words whose keys hold a dot, which a Mustache name would read as a path.
        let labels = ["organisation": t["donorKind.organisation"]!, "person": t["donorKind.person"]!,
                      "passed": t["insp.passed"]!, "failed": t["insp.failed"]!]
        var values: [String: Any] = ["rows": rows, "noRows": rows.isEmpty, "mayRecord": mayRecord, "labels": labels]
        if mayRecord {
            let all = try await PostgresMasterData(database, scope: scope).facilities()
            let facilities = scope.role == .warehouse ? all.filter { scope.facilityCodes.contains($0.code) } : all
            let items = try await PostgresMasterData(database, scope: scope).items()
            values["form"] = [
                "id": form["id"] ?? UUID().uuidString.lowercased(), "donor": form["donor"] ?? "", "contact": form["contact"] ?? "",
                "certificate": form["certificate"] ?? "", "person": form["donor_kind"] == "person",
                "facilities": facilities.map { ["code": $0.code, "name": $0.name, "selected": $0.code == form["facility"]] },
                "items": items.map { ["code": $0.code, "name": $0.name] },
                "lines": (0..<Self.formLines).map { i -> [String: Any] in
                    ["n": i, "label": i + 1, "item": form["item.\(i)"] ?? "", "lot": form["lot.\(i)"] ?? "",
                     "expiry": form["expiry.\(i)"] ?? "", "quantity": form["quantity.\(i)"] ?? ""]
                },
            ] as [String: Any]
        }
        if let message { values["message"] = message }
        if let error { values["error"] = error }
        return PageTemplates.render("donations", values, page: page, title: t["donations"]!, status: status)
    }

    /// The form's donation, recorded; back to the register, or the form again with what is wrong.
    func record(_ form: [String: String], page: PageRequest) async throws -> Response {
        let t = page.t
        guard page.accepts(form) else { return try await response(page: page, form: form, error: t["err.csrf"]!, status: .forbidden) }
        // Lines left empty are not lines.
        let lines = (0..<Self.formLines).compactMap { i -> DonationDraft.Line? in
            let item = form["item.\(i)"] ?? "", lot = form["lot.\(i)"] ?? "", quantity = (form["quantity.\(i)"] ?? "").trimmingCharacters(in: .whitespaces)
            guard !(item.isEmpty && lot.isEmpty && quantity.isEmpty) else { return nil }
            return DonationDraft.Line(item: item, lot: lot, expiry: form["expiry.\(i)"], quantity: quantity.isEmpty ? nil : Double(quantity) ?? .nan)
        }
        let draft = DonationDraft(id: form["id"], donor: form["donor"], donorKind: form["donor_kind"], contact: form["contact"],
                                  certificate: form["certificate"], facility: form["facility"], lines: lines)
        let request: DonationRequest
        switch Result(catching: { () throws(FieldError) -> DonationRequest in try draft.validated() }) {
        case .success(let r): request = r
        case .failure(let error): return try await response(page: page, form: form, error: error.reason, status: .badRequest)
        }
        if scope.role == .warehouse, !scope.facilityCodes.contains(request.facility) {
            return try await response(page: page, form: form, error: t["err.forbidden"]!, status: .forbidden)
        }
        do {
            _ = try await PostgresDonations(database, scope: scope).record(request)
        } catch let error as DonationLineError {
            let api = APIError.from(error.underlying, fieldPrefix: "lines[\(error.index)].")
            return try await response(page: page, form: form, error: "\(t["line"] ?? "行") \(error.index + 1): \(api.message)", status: api.status)
        } catch let refusal as Refusal {
            return try await response(page: page, form: form, error: refusal.description, status: APIError(refusal: refusal).status)
        }
        return PageTemplates.redirect("/donations?done=1")
    }

    /// One line's inspection from the register: passed, or failed with its reason.
    func inspect(_ id: String, form: [String: String], page: PageRequest) async throws -> Response {
        let t = page.t
        guard page.accepts(form) else { return try await response(page: page, error: t["err.csrf"]!, status: .forbidden) }
        guard let donation = Int64(id), donation > 0, let line = Int(form["line"] ?? ""), line > 0,
              let result = (form["result"]).flatMap(InspectionResult.Result.init(rawValue:)) else {
            return try await response(page: page, error: t["err.action"]!, status: .badRequest)
        }
        let note: String
        switch Result(catching: { () throws(FieldError) -> String in
            try TextBounds.check(form["note"] ?? "", field: "note", maxBytes: TextBounds.note, required: result == .failed, multiline: true)
        }) {
        case .success(let text): note = text
        case .failure: return try await response(page: page, error: t["inspectNeedsNote"]!, status: .badRequest)
        }
        do {
            _ = try await PostgresDonations(database, scope: scope).inspect(donation, [InspectionResult(line: line, result: result, note: note)])
        } catch let refusal as Refusal {
            return try await response(page: page, error: refusal.description, status: APIError(refusal: refusal).status)
        }
        return PageTemplates.redirect("/donations")
    }
}
