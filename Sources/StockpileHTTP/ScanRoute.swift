import Foundation
import Hummingbird
import StockpileCore
import StockpilePostgres

/// `POST /api/v1/scan`: what a scanner typed, read by StockpileCore's `ScanParser` and its GTIN
/// looked up among the items (issue 16, part 2). It records nothing: the entry form fills its
/// fields from the answer, and the clerk confirms. A code that cannot be read is a 400 naming the
/// part and the reason; a readable one whose item is unknown answers `item: null` with a message,
/// and fills in nothing that would be a guess.
extension StockpileAPI {
    static let scanRoutes: [(method: String, path: String, roles: Set<Role>)] = [("POST", "/api/v1/scan", readers), ("GET", "/api/v1/barcodes", readers)]
    /// Longest scan taken: a GS1 DataMatrix holds at most 2,335 characters.
    static let maxScan = 4096
}

struct ScanInput: Decodable { var code: String? }

struct ScanOutput: Encodable {
    struct ItemRef: Encodable { var code: String; var name: String; var unit: String }
    var kind: String
    var symbology: String?
    var item: ItemRef?
    /// Base units of the item under the scanned code (a carton's GTIN: the carton's content), and its level.
    var units: Int64?
    var level: String?
    var gtin: String?
    var lot: String?
    var expiry: LocalDate?
    var production: LocalDate?
    var serial: String?
    var count: Int64?
    var maDeviceID: String?
    var drugCode: String?
    var fields: [String: String]
    var warnings: [String]
    var message: String?
    enum CodingKeys: String, CodingKey {
        case kind, symbology, item, units, level, gtin, lot, expiry, production, serial, count, fields, warnings, message
        case maDeviceID = "ma_device_id", drugCode = "drug_code"
    }
}

extension ScannedCode.Warning {
    /// What the answer's `warnings` say (stable words for the page to show in its language).
    var code: String {
        switch self {
        case .noLotOrExpiry: return "no_lot_or_expiry"
        case .expiryMonthOnly: return "expiry_month_only"
        case .caseLevel: return "case_level"
        case .bestBeforeNotExpiry: return "best_before_not_expiry"
        case .separatorMissing(let ai, _): return "separator_missing_after_\(ai)"
        }
    }
}

func addScanRoute(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    api.post("scan") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read scans")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let input = try JSON.decode(ScanInput.self, from: body)
        guard let raw = input.code, !raw.isEmpty else { throw APIError(.badRequest, "invalid", "code: what the scanner sent is required", field: "code") }
        guard raw.utf8.count <= StockpileAPI.maxScan else {
            throw APIError(.badRequest, "invalid", "code: at most \(StockpileAPI.maxScan) bytes", field: "code")
        }
        let scanned: ScannedCode
        do {
            scanned = try ScanParser.parse(raw, today: LocalDate(Date(), in: services.timeZone))
        } catch let error as ScanError {
            throw APIError(.badRequest, "invalid", "code: \(error.reason)", field: "code")
        }
        // The code an item is known by: a GTIN, else an MA device identifier, else a drug code (sql/0024).
        let key = scanned.gtin ?? scanned.maDeviceID ?? scanned.drugCode
        var found: (item: Item, units: Int64, level: String)?
        if let key { found = try await PostgresMasterData(services.database, scope: scope).item(code: key) }
        var message: String?
        if found == nil {
            message = key.map { "no item has the code \($0) yet: add it in items.csv (gtin) or item_barcodes.csv, then scan again" }
                ?? "this code names no product (\(scanned.kind.rawValue)): choose the item, and type the lot and expiry"
        }
        let item = found?.item
        return try JSON.response(ScanOutput(
            kind: scanned.kind.rawValue, symbology: scanned.symbology, item: item.map { .init(code: $0.code, name: $0.name, unit: $0.unit) },
            units: found?.units, level: found.map { $0.level.isEmpty ? nil : $0.level } ?? nil,
            gtin: scanned.gtin, lot: scanned.lot, expiry: scanned.expiry, production: scanned.production, serial: scanned.serial,
            count: scanned.count, maDeviceID: scanned.maDeviceID, drugCode: scanned.drugCode, fields: scanned.fields,
            warnings: scanned.warnings.map(\.code), message: message))
    }
    api.get("barcodes") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read barcodes")
        return try JSON.response(["barcodes": try await PostgresMasterData(services.database, scope: scope).barcodes()])
    }
}
