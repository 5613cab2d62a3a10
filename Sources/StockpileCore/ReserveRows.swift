import Foundation

/// A row of demand.csv: the planned full-load daily demand of a facility × item.
public struct DemandPlanRow: Sendable, Equatable {
    public var facility: String
    public var item: String
    public var fullLoadDaily: Double
    public static let csvColumns = ["facility_code", "item_code", "full_load_daily"]
    public init(csv f: CSVFields) throws(FieldError) {
        facility = try f.code("facility_code")
        item = try f.code("item_code")
        guard let value = try f.optionalDouble("full_load_daily", range: Ranges.dailyDemand) else {
            throw FieldError(field: "full_load_daily", reason: "required")
        }
        fullLoadDaily = value
    }
}

/// A row of contracts.csv.
public struct ContractRow: Sendable, Equatable {
    public var code, facility, supplier, item: String
    public var quantity, calledOff: Int
    public var leadTimeDays: Int
    public var validFrom, validTo: LocalDate
    public var local: Bool
    public static let csvColumns = ["code", "facility_code", "supplier", "item_code", "quantity", "called_off",
                                    "lead_time_days", "valid_from", "valid_to", "local"]
    public init(csv f: CSVFields) throws(FieldError) {
        code = try f.code("code")
        facility = try f.code("facility_code")
        supplier = try f.required("supplier")
        item = try f.code("item_code")
        let most = Int(Ranges.contractQuantity.upperBound)
        quantity = try f.int("quantity", max: most)
        calledOff = f.text("called_off").isEmpty ? 0 : try f.int("called_off", max: most)
        guard calledOff <= quantity else { throw FieldError(field: "called_off", reason: "more than the committed quantity \(quantity)") }
        leadTimeDays = try f.int("lead_time_days", max: Ranges.leadDays.upperBound)
        (validFrom, validTo) = try f.validity()
        local = try f.bool("local")
    }
}

/// A row of capacity.csv.
public struct CapacityRow: Sendable, Equatable {
    public var code, facility, manufacturer, item: String
    public var dailyCapacity: Int
    public var rampUpDays: Int
    public var validFrom, validTo: LocalDate
    public var certified, local: Bool
    public static let csvColumns = ["code", "facility_code", "manufacturer", "item_code", "daily_capacity", "ramp_up_days",
                                    "valid_from", "valid_to", "certified", "local"]
    public init(csv f: CSVFields) throws(FieldError) {
        code = try f.code("code")
        facility = try f.code("facility_code")
        manufacturer = try f.required("manufacturer")
        item = try f.code("item_code")
        dailyCapacity = try f.int("daily_capacity", max: Int(Ranges.dailyCapacity.upperBound))
        rampUpDays = try f.int("ramp_up_days", max: Ranges.leadDays.upperBound)
        (validFrom, validTo) = try f.validity()
        certified = try f.bool("certified")
        local = try f.bool("local")
    }
}

extension CSVFields {
    /// A reserve's validity window: valid_from and valid_to, both required, in order.
    func validity() throws(FieldError) -> (LocalDate, LocalDate) {
        guard let from = try optionalDate("valid_from") else { throw FieldError(field: "valid_from", reason: "required") }
        guard let to = try optionalDate("valid_to") else { throw FieldError(field: "valid_to", reason: "required") }
        guard from <= to else { throw FieldError(field: "valid_to", reason: "before valid_from \(from)") }
        return (from, to)
    }
}
