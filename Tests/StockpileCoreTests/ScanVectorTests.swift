import Foundation
import StockpileCore
import Testing

/// scan-vectors.json (next to this file): scans and what `ScanParser` reads in them. The entry page
/// parses scans too, offline, with Sources/StockpileHTTP/pages/scan.js; deploy/scan-js.sh runs it over
/// the same file, so the two parsers agree on every vector (issue 16: "if the page parses too, it runs
/// the same vectors"). ScanTests.swift keeps the Swift-only cases (checkDigitValid and the like).
///
/// Each vector's `expect` is either `error: {field, reason}`, the ScanError `parse` throws (both
/// compared exactly), or the result by POST /api/v1/scan's names (ScanOutput in ScanRoute.swift):
/// kind, symbology, gtin, lot, expiry and production (YYYY-MM-DD), serial, count, ma_device_id,
/// drug_code, fields, warnings, and ScannedCode's sscc and contained_gtin. The rule: a key left out
/// of `expect` is nil; `fields` left out is [:]; `warnings` left out is []. Warnings are the API's
/// codes; `separator_missing_after_<AI>` is `.separatorMissing(ai:text:)` whose text is fields[AI].
struct ScanVectorTests {
    static var file: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("scan-vectors.json")
    }

    struct Vectors: Decodable { var vectors: [Vector] }

    struct Vector: Decodable {
        var name: String
        var today: String
        var input: String
        var expect: Expect
    }

    struct Refusal: Decodable {
        var field: String
        var reason: String
    }

    struct Expect: Decodable {
        var kind: String?
        var symbology: String?
        var gtin: String?
        var lot: String?
        var expiry: String?
        var production: String?
        var serial: String?
        var count: Int64?
        var sscc: String?
        var containedGTIN: String?
        var maDeviceID: String?
        var drugCode: String?
        var fields: [String: String]?
        var warnings: [String]?
        var error: Refusal?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case kind, symbology, gtin, lot, expiry, production, serial, count, sscc, fields, warnings, error
            case containedGTIN = "contained_gtin", maDeviceID = "ma_device_id", drugCode = "drug_code"
        }

        /// The keys `expect` may have: a misspelt one would otherwise read as nil and pass.
        static var keys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    }

    /// What the vector says, flattened: "kind", "gtin"…, "fields.<AI>", "warnings"; no entry for nil.
    static func flat(_ e: Expect) -> [String: String] {
        var out: [String: String] = [:]
        out["kind"] = e.kind
        out["symbology"] = e.symbology
        out["gtin"] = e.gtin
        out["lot"] = e.lot
        out["expiry"] = e.expiry
        out["production"] = e.production
        out["serial"] = e.serial
        out["count"] = e.count.map { String($0) }
        out["sscc"] = e.sscc
        out["contained_gtin"] = e.containedGTIN
        out["ma_device_id"] = e.maDeviceID
        out["drug_code"] = e.drugCode
        for (ai, value) in e.fields ?? [:] { out["fields." + ai] = value }
        out["warnings"] = (e.warnings ?? []).joined(separator: ", ")
        return out
    }

    /// What the parser read, flattened the same way.
    static func flat(_ code: ScannedCode) -> [String: String] {
        var out: [String: String] = [:]
        out["kind"] = code.kind.rawValue
        out["symbology"] = code.symbology
        out["gtin"] = code.gtin
        out["lot"] = code.lot
        out["expiry"] = code.expiry?.description
        out["production"] = code.production?.description
        out["serial"] = code.serial
        out["count"] = code.count.map { String($0) }
        out["sscc"] = code.sscc
        out["contained_gtin"] = code.containedGTIN
        out["ma_device_id"] = code.maDeviceID
        out["drug_code"] = code.drugCode
        for (ai, value) in code.fields { out["fields." + ai] = value }
        out["warnings"] = code.warnings.map { warningCode($0, fields: code.fields) }.joined(separator: ", ")
        return out
    }

    /// The API's words for a warning (ScanRoute.swift's `code`, which is StockpileHTTP's own).
    static func warningCode(_ warning: ScannedCode.Warning, fields: [String: String]) -> String {
        switch warning {
        case .noLotOrExpiry: return "no_lot_or_expiry"
        case .expiryMonthOnly: return "expiry_month_only"
        case .caseLevel: return "case_level"
        case .bestBeforeNotExpiry: return "best_before_not_expiry"
        case .separatorMissing(let ai, let text):
            // The vectors and scan.js carry the code alone: the text must be the field as read.
            return fields[ai] == text ? "separator_missing_after_\(ai)" : "separator_missing_after_\(ai) (text \(text), not fields[\(ai)])"
        }
    }

    @Test func theParserReadsEveryVectorAsItSays() throws {
        let data = try Data(contentsOf: Self.file)
        let vectors = try JSONDecoder().decode(Vectors.self, from: data).vectors
        #expect(vectors.count >= 100, "scan-vectors.json has \(vectors.count) vectors")

        let object = try JSONSerialization.jsonObject(with: data)
        let root = object as? [String: Any] ?? [:]
        for case let vector as [String: Any] in (root["vectors"] as? [Any] ?? []) {
            let keys = Set((vector["expect"] as? [String: Any] ?? [:]).keys)
            let unknown = keys.subtracting(Expect.keys).sorted()
            #expect(unknown.isEmpty, "\(vector["name"] as? String ?? "?"): unknown keys in expect: \(unknown)")
        }

        var names: Set<String> = []
        for vector in vectors {
            let inserted = names.insert(vector.name).inserted
            #expect(inserted, "\(vector.name): the name is used twice")
            guard let today = LocalDate(vector.today) else {
                Issue.record("\(vector.name): today \(vector.today) is not a date YYYY-MM-DD")
                continue
            }
            do {
                let code = try ScanParser.parse(vector.input, today: today)
                if let refusal = vector.expect.error {
                    Issue.record("\(vector.name): read as \(Self.flat(code)), expected the refusal \(refusal.field): \(refusal.reason)")
                    continue
                }
                let actual = Self.flat(code)
                let expected = Self.flat(vector.expect)
                for key in Set(actual.keys).union(expected.keys).sorted() {
                    #expect(actual[key] == expected[key], "\(vector.name): \(key) is \(actual[key] ?? "nil"), expected \(expected[key] ?? "nil")")
                }
            } catch let error as ScanError {
                if let refusal = vector.expect.error {
                    #expect(error.field == refusal.field, "\(vector.name): refused for \(error.field), expected \(refusal.field)")
                    #expect(error.reason == refusal.reason, "\(vector.name): the reason is \(error.reason), expected \(refusal.reason)")
                } else {
                    Issue.record("\(vector.name): refused with \(error), expected \(Self.flat(vector.expect))")
                }
            }
        }
    }
}
