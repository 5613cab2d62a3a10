import Foundation

/// The facility kinds of SPEC.md.
public enum FacilityKind: String, Codable, Sendable, CaseIterable {
    case hospital, cdc, clinic, warehouse
}

/// Item categories; each has a default target in days (SPEC.md: infectious-disease PPE 90).
public enum ItemCategory: String, Codable, Sendable, CaseIterable {
    case ppe, drug, consumable, disinfectant, device
    case testKit = "test_kit"
}

public struct Region: Sendable, Equatable, Codable {
    public var code: String
    public var name: String
    public var parentCode: String?
    enum CodingKeys: String, CodingKey { case code, name, parentCode = "parent_code" }
    public init(code: String, name: String, parentCode: String?) {
        self.code = code; self.name = name; self.parentCode = parentCode
    }
}

public struct Facility: Sendable, Equatable, Codable {
    public var code: String
    public var name: String
    public var kind: FacilityKind
    public var regionCode: String
    public var beds: Int
    public var latitude: Double?
    public var longitude: Double?
    public var designated: Bool
    enum CodingKeys: String, CodingKey {
        case code, name, kind, beds, latitude, longitude, designated
        case regionCode = "region_code"
    }
    public init(code: String, name: String, kind: FacilityKind, regionCode: String, beds: Int,
                latitude: Double?, longitude: Double?, designated: Bool) {
        self.code = code; self.name = name; self.kind = kind; self.regionCode = regionCode; self.beds = beds
        self.latitude = latitude; self.longitude = longitude; self.designated = designated
    }
}

public struct Item: Sendable, Equatable, Codable {
    public var code: String
    public var name: String
    public var category: ItemCategory
    public var unit: String
    public var targetDays: Int?
    public var shelfLifeDays: Int?
    /// Whether its lots expire; nil follows the rule (a shelf life, or a category that expires:
    /// ppe, drug, test_kit, disinfectant, consumable). A lot of an item that expires needs its
    /// expiry when it is first brought in (sql/0017).
    public var expires: Bool?
    /// The GTIN-14 its packaging carries, if known: what a scan's (01) is looked up by.
    public var gtin: String?
    enum CodingKeys: String, CodingKey {
        case code, name, category, unit, expires, gtin
        case targetDays = "target_days", shelfLifeDays = "shelf_life_days"
    }
    public init(code: String, name: String, category: ItemCategory, unit: String, targetDays: Int?, shelfLifeDays: Int?, expires: Bool? = nil,
                gtin: String? = nil) {
        self.code = code; self.name = name; self.category = category; self.unit = unit
        self.targetDays = targetDays; self.shelfLifeDays = shelfLifeDays; self.expires = expires; self.gtin = gtin
    }
}

/// A row of stock.csv: a physical count that sets a lot's on-hand at a facility.
public struct StockCount: Sendable, Equatable {
    public var facility: String
    public var item: String
    public var lot: String
    public var expiry: LocalDate?
    public var quantity: Int64
}

/// Reading one CSV row's fields by header name, with the reasons a person can act on.
public struct CSVFields {
    public let values: [String: String]
    public init(_ values: [String: String]) { self.values = values }

    public func text(_ column: String) -> String {
        (values[column] ?? "").trimmingCharacters(in: .whitespaces)
    }

    /// A required text cell: a name, a unit, a supplier (at most TextBounds.name bytes).
    public func required(_ column: String) throws(FieldError) -> String {
        try TextBounds.check(values[column] ?? "", field: column, maxBytes: TextBounds.name)
    }

    public func code(_ column: String) throws(FieldError) -> String {
        try MovementDraft.code(values[column], field: column)
    }

    public func optionalCode(_ column: String) throws(FieldError) -> String? {
        text(column).isEmpty ? nil : try code(column)
    }

    public func int(_ column: String, min: Int = 0, max: Int = Int(Int32.max)) throws(FieldError) -> Int {
        let value = try required(column)
        guard let number = Int(value), number >= min, number <= max else {
            throw FieldError(field: column, reason: "must be a whole number from \(min) to \(max), not \(value)")
        }
        return number
    }

    public func optionalInt(_ column: String, in range: ClosedRange<Int>) throws(FieldError) -> Int? {
        text(column).isEmpty ? nil : try int(column, min: range.lowerBound, max: range.upperBound)
    }

    public func optionalDouble(_ column: String, range: ClosedRange<Double>) throws(FieldError) -> Double? {
        let value = text(column)
        if value.isEmpty { return nil }
        guard let number = Double(value), number.isFinite, range.contains(number) else {
            throw FieldError(field: column, reason: "must be a number in \(range.lowerBound)…\(range.upperBound), not \(value)")
        }
        return number
    }

    public func bool(_ column: String) throws(FieldError) -> Bool {
        switch text(column).lowercased() {
        case "true", "t", "1", "yes", "y", "是": return true
        case "false", "f", "0", "no", "n", "否", "": return false
        case let other: throw FieldError(field: column, reason: "must be true or false, not \(other)")
        }
    }

    public func optionalDate(_ column: String) throws(FieldError) -> LocalDate? {
        let value = text(column)
        if value.isEmpty { return nil }
        guard let date = LocalDate(value) else { throw FieldError(field: column, reason: "must be a date YYYY-MM-DD, not \(value)") }
        return date
    }

    public func choice<T: RawRepresentable>(_ column: String, _ type: T.Type) throws(FieldError) -> T
    where T: CaseIterable, T.RawValue == String {
        let value = try required(column)
        guard let parsed = T(rawValue: value) else {
            throw FieldError(field: column, reason: "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), not \(value)")
        }
        return parsed
    }
}

extension Region {
    public static let csvColumns = ["code", "name", "parent_code"]
    public init(csv f: CSVFields) throws(FieldError) {
        self.init(code: try f.code("code"), name: try f.required("name"), parentCode: try f.optionalCode("parent_code"))
        if parentCode == code { throw FieldError(field: "parent_code", reason: "a region cannot be its own parent") }
    }
}

extension Facility {
    public static let csvColumns = ["code", "name", "kind", "region_code", "beds", "latitude", "longitude", "designated"]
    public init(csv f: CSVFields) throws(FieldError) {
        let latitude = try f.optionalDouble("latitude", range: -90...90)
        let longitude = try f.optionalDouble("longitude", range: -180...180)
        if (latitude == nil) != (longitude == nil) {
            throw FieldError(field: latitude == nil ? "latitude" : "longitude", reason: "give both coordinates or neither")
        }
        self.init(code: try f.code("code"), name: try f.required("name"), kind: try f.choice("kind", FacilityKind.self),
                  regionCode: try f.code("region_code"), beds: f.text("beds").isEmpty ? 0 : try f.int("beds", max: Ranges.beds.upperBound),
                  latitude: latitude, longitude: longitude, designated: try f.bool("designated"))
    }
}

extension Item {
    public static let csvColumns = ["code", "name", "category", "unit", "target_days", "shelf_life_days"]
    public init(csv f: CSVFields) throws(FieldError) {
        self.init(code: try f.code("code"), name: try f.required("name"), category: try f.choice("category", ItemCategory.self),
                  unit: try f.required("unit"), targetDays: try f.optionalInt("target_days", in: Ranges.targetDays),
                  shelfLifeDays: try f.optionalInt("shelf_life_days", in: Ranges.shelfLifeDays),
                  // An optional column beyond the SPEC's six: say false for an item of an expiring category whose lots do not expire.
                  expires: f.text("expires").isEmpty ? nil : try f.bool("expires"),
                  // Another: the GTIN on its packaging (8, 12, 13 or 14 digits, check digit verified), stored as GTIN-14.
                  gtin: f.text("gtin").isEmpty ? nil : try Item.gtin(f.text("gtin")))
    }

    /// A GTIN-8/12/13/14 as GTIN-14, or why not.
    public static func gtin(_ text: String) throws(FieldError) -> String {
        guard [8, 12, 13, 14].contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw FieldError(field: "gtin", reason: "gtin: 8, 12, 13 or 14 digits (got \(text.prefix(40)))")
        }
        let gtin = String(repeating: "0", count: 14 - text.count) + text
        guard ScanParser.checkDigitValid(gtin) else { throw FieldError(field: "gtin", reason: "gtin \(text): the check digit is wrong") }
        return gtin
    }
}

/// A barcode that names an item, from item_barcodes.csv: a box's or carton's GTIN (several per
/// item, each with how many base units it holds), an MA device identifier, or a drug's 7-digit
/// 药品标识码 (the first 7 digits of its 20-digit traceability codes). The item's own `gtin` is its
/// base unit's.
public struct ItemBarcode: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case gtin, ma, drug }
    public var item: String
    /// As scans are looked up: a GTIN-14, an MA device identifier in capitals, or 7 digits.
    public var code: String
    public var kind: Kind
    /// Base units of the item under this code (1 for an each, 10 for a box of 10, …).
    public var units: Int64
    /// The packaging level's name as people say it (盒, 箱), for the page.
    public var level: String

    public static let csvColumns = ["item_code", "code", "units"]
    public static let maxUnits: Int64 = 1_000_000

    public init(item: String, code: String, kind: Kind, units: Int64, level: String) {
        self.item = item; self.code = code; self.kind = kind; self.units = units; self.level = level
    }

    public init(csv f: CSVFields) throws(FieldError) {
        item = try f.code("item_code")
        (code, kind) = try Self.normalise(f.required("code"))
        let unitsText = f.text("units")
        guard let n = Int64(unitsText), (1...Self.maxUnits).contains(n) else {
            throw FieldError(field: "units", reason: "units: base units under this code, a whole number from 1 to \(Self.maxUnits) (got \(unitsText.prefix(20)))")
        }
        units = n
        level = try TextBounds.check(f.text("level"), field: "level", maxBytes: 60, required: false)
    }

    /// What a barcode column may hold, as scans are looked up by it.
    public static func normalise(_ text: String) throws(FieldError) -> (String, Kind) {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.uppercased().hasPrefix("MA.") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), !parts[1].isEmpty, !parts[3].isEmpty, !parts[4].isEmpty else {
                throw FieldError(field: "code", reason: "code: an MA device identifier is MA.<country>.<industry>.<registrant>.<product> (got \(text.prefix(60)))")
            }
            return (text.uppercased(), .ma)
        }
        if text.count == 7, text.allSatisfy({ $0.isASCII && $0.isNumber }) { return (text, .drug) }
        do { return (try Item.gtin(text), .gtin) } catch {
            throw FieldError(field: "code", reason: "code: a GTIN (8, 12, 13 or 14 digits, check digit right), an MA device identifier or a 7-digit drug code; \(error.reason)")
        }
    }
}

extension StockCount {
    public static let csvColumns = ["facility_code", "item_code", "lot", "expiry", "quantity"]
    public init(csv f: CSVFields) throws(FieldError) {
        facility = try f.code("facility_code")
        item = try f.code("item_code")
        lot = try f.code("lot")
        expiry = try f.optionalDate("expiry")
        quantity = Int64(try f.int("quantity", min: 0, max: Int(Ranges.movementQuantity.upperBound)))
    }
}

extension MovementDraft {
    public static let csvColumns = ["id", "facility_code", "item_code", "lot", "expiry", "kind", "quantity", "occurred_at", "reason"]
    /// A movements.csv row, validated by the same rules as the API (quantity as the magnitude).
    public static func validated(csv f: CSVFields) throws(FieldError) -> MovementRequest {
        let quantityText = f.text("quantity")
        guard let quantity = Double(quantityText) else {
            throw FieldError(field: "quantity", reason: quantityText.isEmpty ? "required" : "must be a whole number, not \(quantityText)")
        }
        let draft = MovementDraft(id: f.text("id"), facility: f.text("facility_code"), item: f.text("item_code"),
                                  lot: f.text("lot"), expiry: f.text("expiry"), kind: f.text("kind"), quantity: quantity,
                                  reason: f.values["reason"] ?? "", occurredAt: f.text("occurred_at"))
        do throws(FieldError) {
            // A history may hold reallocation transfers (an export of one does): the importer records
            // them without their orders, and only for an import of scope all (sql/0033).
            let movement = try draft.validated(allowedKinds: MovementKind.allCases)
            if movement.occurredAt == nil, movement.kind == .transferOut || movement.kind == .transferIn {
                throw FieldError(field: "occurred_at", reason: "a transfer in a history needs the time it happened")
            }
            return movement
        } catch {
            // Report CSV column names, not API field names.
            let names = ["facility": "facility_code", "item": "item_code"]
            throw FieldError(field: names[error.field] ?? error.field, reason: error.reason)
        }
    }
}
