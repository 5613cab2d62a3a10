import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import PQ
import StockpileCore
import StockpilePostgres

/// A movement as posted. Every field is optional here so that validation, with its field names
/// and reasons, decides what is wrong, not the JSON decoder.
struct MovementInput: Decodable, Sendable {
    var id: String?
    var facility: String?
    var item: String?
    var lot: String?
    var expiry: String?
    var kind: String?
    var quantity: Double?
    var reason: String?
    var occurredAt: String?

    enum CodingKeys: String, CodingKey {
        case id, facility, item, lot, expiry, kind, quantity, reason
        case occurredAt = "occurred_at"
    }

    var draft: MovementDraft {
        MovementDraft(id: id, facility: facility, item: item, lot: lot, expiry: expiry, kind: kind,
                      quantity: quantity, reason: reason, occurredAt: occurredAt)
    }
}

struct BatchInput: Decodable, Sendable {
    var movements: [MovementInput]?
}

struct MovementOutput: Encodable, Sendable {
    var movement: RecordedMovement
}

/// A batch's answer: per movement, in order, only what the sender needs to reconcile (its id,
/// the signed change, the balance after it, whether it was a replay) — encoding every field of
/// a hundred movements was a large share of the batch endpoint's time.
struct BatchOutput: Sendable {
    var movements: [MovementOutcome]
    var recorded: Int
    var replayed: Int

    init(_ recorded: [MovementOutcome]) {
        movements = recorded
        replayed = recorded.filter(\.replay).count
        self.recorded = recorded.count - replayed
    }

    /// The answer's JSON, written directly (MovementAPITests reads it back), without JSONEncoder's
    /// generic machinery, which was a tenth of the service's time per batch (issue 18). Nothing in
    /// it needs escaping: ids are UUIDs' text (`MovementOutcome`), the rest numbers and booleans.
    func json() -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(movements.count * 100 + 48)
        out += #"{"movements":["#.utf8
        for (i, m) in movements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out += #"{"id":""#.utf8
            out += m.id.utf8
            out += #"","quantity":"#.utf8
            out += String(m.quantity).utf8
            out += #","replay":"#.utf8
            out += (m.replay ? "true" : "false").utf8
            out += #","balance_after":"#.utf8
            out += String(m.balanceAfter).utf8
            out.append(UInt8(ascii: "}"))
        }
        out += #"],"recorded":"#.utf8
        out += String(recorded).utf8
        out += #","replayed":"#.utf8
        out += String(replayed).utf8
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }
}

struct StockOutput: Encodable, Sendable {
    var facility: String
    var lots: [LotBalance]
}

struct MovementsPageOutput: Encodable, Sendable {
    var movements: [RecordedMovement]
    var next: String?
}

enum JSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // Keys are spelled out (snake_case) in each type's CodingKeys: a key strategy costs a
        // string conversion per key per object, measured on every response.
        // A hand-written formatter: the general ISO-8601 one was a measurable cost per movement.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(PQTimestamp.formatRFC3339(date))
        }
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static let decoder = JSONDecoder()

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        response(json: try encoder.encode(value), status: status)
    }

    static func response(json data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Decodes a request body, turning decoder complaints into a 400 that names the field.
    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        guard buffer.readableBytes > 0 else { throw APIError(.badRequest, "invalid", "request body is empty; send JSON") }
        do {
            return try decoder.decode(T.self, from: Data(buffer: buffer))
        } catch let DecodingError.typeMismatch(expected, context) {
            let field = fieldName(context.codingPath)
            throw APIError(.badRequest, "invalid", "\(field): expected \(describe(expected))", field: field)
        } catch let DecodingError.valueNotFound(expected, context) {
            let field = fieldName(context.codingPath)
            throw APIError(.badRequest, "invalid", "\(field): expected \(describe(expected)), got null", field: field)
        } catch let DecodingError.keyNotFound(key, context) {
            let field = fieldName(context.codingPath + [key])
            throw APIError(.badRequest, "invalid", "\(field): required", field: field)
        } catch {
            throw APIError(.badRequest, "malformed_json", "request body is not valid JSON")
        }
    }

    static func fieldName(_ path: [any CodingKey]) -> String {
        path.map { key in key.intValue.map { "[\($0)]" } ?? snake(key.stringValue) }
            .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    static func snake(_ name: String) -> String {
        name.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Int.Type: return "a number"
        case is String.Type: return "a string"
        case is Array<Any>.Type: return "an array"
        default: return "\(type)".lowercased()
        }
    }
}

struct TokenInput: Decodable, Sendable {
    var name: String?
    var role: String?
    var region: String?
    var facilities: [String]?
    /// A Double, checked as a whole number where it is used (see `whole(_:in:…)`).
    var validDays: Double?
    enum CodingKeys: String, CodingKey { case name, role, region, facilities, validDays = "valid_days" }
}

struct CreatedToken: Encodable, Sendable {
    var token: TokenInfo
    /// Shown once; only its hash is kept.
    var secret: String
}

struct CoverOutput: Encodable, Sendable {
    var asOf: LocalDate
    var surge: Double
    /// Rows matching the filters, before paging.
    var total: Int
    /// snapshot, database or service: where the numbers were computed (they agree; see CoverQueryTests).
    var source: String
    /// Which server answered (primary or the read replica) and how far behind it may be.
    var origin: ReadOrigin
    var rows: [CoverRow]
    /// True when the rows are cover as it stood at the end of as_of (from the ledgers), not today's balances.
    var asStood = false
    enum CodingKeys: String, CodingKey { case surge, total, source, origin, rows, asOf = "as_of", asStood = "as_stood" }
}

struct RollupOutput: Encodable, Sendable {
    var asOf: LocalDate
    var surge: Double
    var region: String?
    var group: String
    var source: String
    var origin: ReadOrigin
    var rows: [CoverRollupRow]
    var total: CoverRollupRow
    enum CodingKeys: String, CodingKey { case surge, region, group, source, origin, rows, total, asOf = "as_of" }
}

/// The query parameters the cover table and its roll-up share, validated.
struct CoverParameters {
    let query: FlatDictionary<Substring, Substring>
    var asOf: LocalDate
    var surge = 1.0
    var asStood = false
    var filter: CoverFilter

    func text(_ name: String) -> String? {
        query[name[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }

    init(_ query: FlatDictionary<Substring, Substring>, timeZone: TimeZone) throws {
        self.query = query
        asOf = LocalDate(Date(), in: timeZone)
        filter = CoverFilter()
        if let value = text("as_of") {
            guard let date = LocalDate(value) else { throw APIError(.badRequest, "invalid", "as_of: must be a date YYYY-MM-DD", field: "as_of") }
            asOf = date
        }
        if let value = text("surge") {
            guard let number = Double(value), Ranges.surge.contains(number) else {
                throw APIError(.badRequest, "invalid", "surge: a factor such as 1.5, from 0.01 to 100", field: "surge")
            }
            surge = number
        }
        if let value = text("category") {
            guard let parsed = ItemCategory(rawValue: value) else {
                throw APIError(.badRequest, "invalid", "category: one of \(ItemCategory.allCases.map(\.rawValue).joined(separator: ", "))", field: "category")
            }
            filter.category = parsed
        }
        if let value = text("designated") {
            guard value == "true" || value == "false" else { throw APIError(.badRequest, "invalid", "designated: true or false", field: "designated") }
            filter.designated = value == "true"
        }
        filter.facility = text("facility")
        filter.region = text("region")
        filter.item = text("item")
        // Cover as it stood at the end of a past as_of, from the ledgers (issue 17, part 5). SPEC:
        // as_of alone keeps today's balances, so a test can fix it and get the same answer any day.
        if let value = text("as_stood") {
            guard value == "true" || value == "false" else { throw APIError(.badRequest, "invalid", "as_stood: true or false", field: "as_stood") }
            asStood = value == "true"
            if asStood && asOf >= LocalDate(Date(), in: timeZone) {
                throw APIError(.badRequest, "invalid", "as_of: as_stood needs a date before today (today's cover is the current one)", field: "as_of")
            }
            if asStood && surge != 1 {
                throw APIError(.badRequest, "invalid", "surge: not with as_stood (a what-if is about today)", field: "surge")
            }
        }
    }

    func wantsCSV(_ request: Request) -> Bool {
        text("format") == "csv" || (request.headers[.accept] ?? "").contains("text/csv")
    }
}

/// A UTF-8 CSV download with a byte-order mark, so spreadsheet programs show Chinese.
enum CSVDownload {
    /// One cell (SpreadsheetCSV.field: formulas made inert). Every CSV the service writes (cover,
    /// roll-up, nightly sections by API, page and --out, exports) goes through it.
    static func field(_ raw: String) -> String { SpreadsheetCSV.field(raw) }

    /// The file's text: byte-order mark, header, rows, CRLF line ends.
    static func text(header: [String], rows: [[String]]) -> String { SpreadsheetCSV.text(header: header, rows: rows) }

    static func response(header: [String], rows: [[String]], filename: String) -> Response {
        response(text(header: header, rows: rows), filename: filename)
    }

    static func response(_ body: String, filename: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                               .contentDisposition: "attachment; filename=\"\(filename)\""],
                        body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

enum RollupCSV {
    static let english = ["code", "name", "facilities", "positions", "daily_demand", "physical_qty", "expiring_qty", "contract_qty",
                          "capacity_qty", "shortfall_qty", "contract_shortfall_qty"] + CoverBand.allCases.map { "band \($0.rawValue)" }
    static let chinese = ["编码", "名称", "设施数", "品规数", "日需求量", "实物库存", "临期数量", "合同储备量", "产能储备量", "缺口数量",
                          "合同缺口数量"] + ["断供", "不足3天", "3-7天", "7-14天", "14天至目标", "达到目标"].map { "等级:" + $0 }

    static func response(_ rows: [CoverRollupRow], group: CoverGrouping, chinese useChinese: Bool) -> Response {
        CSVDownload.response(header: useChinese ? chinese : english, rows: rows.map { r in
            [r.code, r.name, String(r.facilities), String(r.positions), String(format: "%.4f", r.dailyDemand), String(r.physicalQty),
             String(format: "%.0f", r.expiringQty), String(r.contractQty), String(r.capacityQty), String(r.shortfallQty),
             String(r.contractShortfallQty)] + CoverBand.allCases.map { String(r.bands[$0.rawValue] ?? 0) }
        }, filename: "cover-rollup-\(group.rawValue).csv")
    }
}

/// The cover table as a UTF-8 CSV with a byte-order mark, so spreadsheet programs show Chinese.
enum CoverCSV {
    static let english = ["facility", "facility_name", "item", "item_name", "daily_demand", "target_days", "physical_qty",
                          "physical_days", "expiring_qty", "contract_qty", "contract_days", "capacity_qty", "capacity_days",
                          "total_days", "shortfall_qty", "band", "inbound_qty"]
    static let chinese = ["设施编码", "设施名称", "物资编码", "物资名称", "日需求量", "目标天数", "实物库存", "实物保障天数",
                          "临期数量", "合同储备量", "合同保障天数", "产能储备量", "产能保障天数", "总保障天数", "缺口数量", "保障等级", "在途数量"]

    static func response(_ rows: [CoverRow], chinese useChinese: Bool) -> Response {
        func number(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "" }
        return CSVDownload.response(header: useChinese ? chinese : english, rows: rows.map { r in
            [r.facility, r.facilityName, r.item, r.itemName, String(format: "%.4f", r.dailyDemand), String(r.targetDays),
             String(r.physicalQty), number(r.physicalDays), String(format: "%.0f", r.expiringQty), String(r.contractQty),
             number(r.contractDays), String(r.capacityQty), number(r.capacityDays), number(r.totalDays),
             String(r.shortfallQty), r.band.rawValue, String(r.inboundQty)]
        }, filename: "cover.csv")
    }
}
