import Foundation
import Hummingbird
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
struct BatchOutput: Encodable, Sendable {
    struct Outcome: Encodable, Sendable {
        var id: String
        var quantity: Int64
        var balanceAfter: Int64
        var replay: Bool
        enum CodingKeys: String, CodingKey { case id, quantity, replay, balanceAfter = "balance_after" }
    }
    var movements: [Outcome]
    var recorded: Int
    var replayed: Int

    init(_ recorded: [RecordedMovement]) {
        movements = recorded.map { Outcome(id: $0.id, quantity: $0.quantity, balanceAfter: $0.balanceAfter, replay: $0.replay) }
        replayed = recorded.filter(\.replay).count
        self.recorded = recorded.count - replayed
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
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
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
    var validDays: Int?
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
    var rows: [CoverRow]
    enum CodingKeys: String, CodingKey { case surge, total, rows, asOf = "as_of" }
}

/// How the cover rows are ordered: the worst first by default.
/// The cover table as a UTF-8 CSV with a byte-order mark, so spreadsheet programs show Chinese.
enum CoverCSV {
    static let english = ["facility", "facility_name", "item", "item_name", "daily_demand", "target_days", "physical_qty",
                          "physical_days", "expiring_qty", "contract_qty", "contract_days", "capacity_qty", "capacity_days",
                          "total_days", "shortfall_qty", "band"]
    static let chinese = ["设施编码", "设施名称", "物资编码", "物资名称", "日需求量", "目标天数", "实物库存", "实物保障天数",
                          "临期数量", "合同储备量", "合同保障天数", "产能储备量", "产能保障天数", "总保障天数", "缺口数量", "保障等级"]

    static func response(_ rows: [CoverRow], chinese useChinese: Bool) -> Response {
        func number(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "" }
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var lines = [(useChinese ? chinese : english).joined(separator: ",")]
        for r in rows {
            lines.append([r.facility, r.facilityName, r.item, r.itemName, String(format: "%.4f", r.dailyDemand), String(r.targetDays),
                          String(r.physicalQty), number(r.physicalDays), String(format: "%.0f", r.expiringQty), String(r.contractQty),
                          number(r.contractDays), String(r.capacityQty), number(r.capacityDays), number(r.totalDays),
                          String(r.shortfallQty), r.band.rawValue].map(field).joined(separator: ","))
        }
        let body = "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n"
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                               .contentDisposition: "attachment; filename=\"cover.csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
