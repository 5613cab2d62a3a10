import Foundation
import StockpileCore

/// The pages' what-if (issue 17, part 7): `?surge=1.5` shows cover with demand × 1.5 on the
/// dashboard and a facility page, for the region or facility shown. Nothing is written; a value
/// outside Ranges.surge is said to be wrong and the page shows current demand.
struct WhatIf {
    static let choices: [Double] = [1, 1.2, 1.5, 2, 3]

    let surge: Double
    let invalid: Bool

    init(_ text: String?) {
        guard let text, !text.isEmpty else { surge = 1; invalid = false; return }
        if let value = Double(text), value.isFinite, Ranges.surge.contains(value) {
            surge = value; invalid = false
        } else {
            surge = 1; invalid = true
        }
    }

    var active: Bool { surge != 1 }

    /// "1.5", "2": as typed back into links and the banner.
    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%g", value)
    }

    /// The select's options (the current value among them even when typed in the URL).
    func options(_ t: [String: String]) -> [[String: Any]] {
        var values = Self.choices
        if !values.contains(surge) { values.append(surge); values.sort() }
        return values.map { v in
            ["value": v == 1 ? "" : Self.format(v), "label": v == 1 ? t["surgeNone"]! : "×" + Self.format(v), "selected": v == surge]
        }
    }

    /// What the template needs: the select, the banner and the error.
    func values(_ t: [String: String]) -> [String: Any] {
        ["surgeOptions": options(t), "surgeActive": active, "surgeInvalid": invalid,
         "surgeBanner": t["surgeBanner"]!.replacingOccurrences(of: "{s}", with: Self.format(surge)),
         "surgeValue": active ? Self.format(surge) : ""]
    }
}
