import StockpileCore

/// The nightly report's lines as JSON, written straight into bytes for nightly_lines. A city's
/// report is millions of lines, about 2 GB; Foundation's JSONEncoder wrote them at about 25 MB/s a
/// core, which made storing the report take minutes. The keys are those of the lines' Codable
/// conformances, whose decoding reads them back (`NightlyLineJSONTests` checks the round trip for
/// every kind of line). Nil optionals are left out, as the synthesized encoding does.
struct NightlyLineJSON {
    struct NotFinite: Error, CustomStringConvertible {
        var key: String
        var description: String { "\(key) is not a finite number" }
    }

    private(set) var bytes: [UInt8] = []
    /// Nothing written yet in the object or array just opened: the next member takes no comma.
    private var first = true

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func open() { separate(); bytes.append(UInt8(ascii: "{")); first = true }
    mutating func close() { bytes.append(UInt8(ascii: "}")); first = false }
    mutating func openArray() { separate(); bytes.append(UInt8(ascii: "[")); first = true }
    mutating func closeArray() { bytes.append(UInt8(ascii: "]")); first = false }

    /// A comma before every member but the first.
    private mutating func separate() {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
    }

    /// `"key":`, after which exactly one value (or object, or array) follows.
    mutating func key(_ key: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        first = true // the value that follows takes no comma
    }

    mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func number(_ value: Int64) { separate(); bytes.append(contentsOf: String(value).utf8) }

    /// Swift's shortest representation that reads back as the same Double (JSON allows its exponents).
    mutating func number(_ value: Double, _ key: StaticString) throws {
        guard value.isFinite else { throw NotFinite(key: "\(key)") }
        separate()
        bytes.append(contentsOf: value.description.utf8)
    }

    mutating func field(_ key: StaticString, _ value: String) { self.key(key); string(value) }
    mutating func field(_ key: StaticString, _ value: Int64) { self.key(key); number(value) }
    mutating func field(_ key: StaticString, _ value: Int) { self.key(key); number(Int64(value)) }
    mutating func field(_ key: StaticString, _ value: Bool) { self.key(key); separate(); bytes.append(contentsOf: (value ? "true" : "false").utf8) }
    mutating func field(_ key: StaticString, _ value: LocalDate) { self.key(key); string(value.description) }
    mutating func field(_ key: StaticString, _ value: Double) throws { self.key(key); try number(value, key) }
    mutating func field(_ key: StaticString, _ value: String?) { if let value { field(key, value) } }
    mutating func field(_ key: StaticString, _ value: Int64?) { if let value { field(key, value) } }
    mutating func field(_ key: StaticString, _ value: Int?) { if let value { field(key, value) } }
    mutating func field(_ key: StaticString, _ value: LocalDate?) { if let value { field(key, value) } }
    mutating func field(_ key: StaticString, _ value: Double?) throws { if let value { try field(key, value) } }

    /// An array of objects, each written by `element`.
    mutating func field<T>(_ key: StaticString, _ values: [T], _ element: (inout NightlyLineJSON, T) throws -> Void) rethrows {
        self.key(key)
        openArray()
        for value in values { try element(&self, value) }
        closeArray()
    }

    /// A run of lines: the JSON array stored in one row of nightly_lines.
    static func run<Line: NightlyLineEncodable>(_ lines: some Collection<Line>) throws -> String {
        var json = NightlyLineJSON(capacity: lines.count * 512)
        json.openArray()
        for line in lines { try line.write(to: &json) }
        json.closeArray()
        return String(decoding: json.bytes, as: UTF8.self)
    }
}

/// A kind of line the nightly report stores.
protocol NightlyLineEncodable: Sendable {
    func write(to json: inout NightlyLineJSON) throws
}

extension NightlyPosition: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("facility", facility); json.field("facility_name", facilityName); json.field("item", item)
        json.field("item_name", itemName); try json.field("daily_demand", dailyDemand); try json.field("observed_demand", observedDemand)
        try json.field("full_load_demand", fullLoadDemand); json.field("target_days", targetDays); json.field("physical_qty", physicalQty)
        try json.field("physical_days", physicalDays); json.field("contract_qty", contractQty); try json.field("contract_days", contractDays)
        json.field("capacity_qty", capacityQty); try json.field("capacity_days", capacityDays); json.field("shortfall_qty", shortfallQty)
        json.close()
    }
}

extension ReorderLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.key("position"); try position.write(to: &json)
        json.field("reallocated", reallocated)
        json.field("reallocated_from", reallocatedFrom) { json, s in
            json.open(); json.field("order", s.order); json.field("from", s.from); json.field("quantity", s.quantity); json.close()
        }
        json.field("inbound", inbound); json.field("need", need)
        json.field("call_offs", callOffs) { json, k in
            json.open()
            json.field("contract", k.contract); json.field("supplier", k.supplier); json.field("local", k.local)
            json.field("lead_time_days", k.leadTimeDays); json.field("remaining", k.remaining); json.field("need_before", k.needBefore)
            json.field("quantity", k.quantity)
            json.close()
        }
        json.field("activations", activations) { json, a in
            json.open()
            json.field("pledge", a.pledge); json.field("manufacturer", a.manufacturer); json.field("local", a.local)
            json.field("daily_capacity", a.dailyCapacity); json.field("ramp_up_days", a.rampUpDays); json.field("yield_qty", a.yieldQty)
            json.field("need_before", a.needBefore); json.field("quantity", a.quantity); json.field("production_days", a.productionDays)
            json.close()
        }
        json.field("procurement", procurement)
        json.close()
    }
}

extension ContractGapLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.key("position"); try position.write(to: &json)
        json.field("called_off_tonight", calledOffTonight); json.field("contract_qty_after", contractQtyAfter)
        try json.field("contract_days_after", contractDaysAfter); json.field("gap_qty", gapQty)
        json.key("renew"); json.openArray(); for code in renew { json.string(code) }; json.closeArray()
        json.field("expand", expand)
        json.field("contracts", contracts) { json, k in
            json.open()
            json.field("code", k.code); json.field("supplier", k.supplier); json.field("remaining", k.remaining)
            json.field("lead_time_days", k.leadTimeDays); json.field("valid_to", k.validTo); json.field("status", k.status)
            json.close()
        }
        json.close()
    }
}

extension ExpiringLotLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("facility", facility); json.field("facility_name", facilityName); json.field("item", item)
        json.field("item_name", itemName); json.field("lot", lot); json.field("expiry", expiry); json.field("days_to_expiry", daysToExpiry)
        json.field("on_hand", onHand); try json.field("daily_demand", dailyDemand); json.field("unconsumed_qty", unconsumedQty)
        json.field("move_to", moveTo); json.field("move_to_name", moveToName); try json.field("distance_km", distanceKm)
        try json.field("move_to_daily_demand", moveToDailyDemand); try json.field("move_to_physical_days", moveToPhysicalDays)
        json.field("move_to_usable_qty", moveToUsableQty)
        json.close()
    }
}

extension StaleLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("facility", facility); json.field("facility_name", facilityName); json.field("item", item)
        json.field("item_name", itemName); json.field("physical_qty", physicalQty); try json.field("daily_demand", dailyDemand)
        json.field("last_movement", lastMovement); json.field("last_count", lastCount); json.field("days_since", daysSince)
        json.close()
    }
}

extension NightlyOrder: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("id", id); json.field("item", item); json.field("from", from); json.field("to", to)
        json.field("quantity", quantity); try json.field("distance_km", distanceKm); json.field("lots", lots)
        json.field("shipment", shipment)
        json.close()
    }
}

extension OverdueLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("order", order); json.field("item", item); json.field("item_name", itemName); json.field("from", from)
        json.field("to", to); json.field("in_transit", inTransit); json.field("dispatched_at", dispatchedAt); json.field("due_at", dueAt)
        try json.field("days_overdue", daysOverdue)
        json.close()
    }
}

extension RotationLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("warehouse", warehouse); json.field("warehouse_name", warehouseName); json.field("item", item)
        json.field("item_name", itemName); json.field("lot", lot); json.field("expiry", expiry); json.field("days_to_expiry", daysToExpiry)
        json.field("on_hand", onHand); json.field("unused_qty", unusedQty); json.field("rotate_qty", rotateQty); json.field("to", to)
        json.field("to_name", toName); try json.field("distance_km", distanceKm); try json.field("to_daily_demand", toDailyDemand)
        json.field("replacement_qty", replacementQty); json.field("order", order)
        json.close()
    }
}

extension HoardingLine: NightlyLineEncodable {
    func write(to json: inout NightlyLineJSON) throws {
        json.open()
        json.field("facility", facility); json.field("facility_name", facilityName); json.field("item", item)
        json.field("item_name", itemName); json.field("received", received); json.field("physical_qty", physicalQty)
        json.field("target_qty", targetQty); json.field("surplus_qty", surplusQty); json.field("region_shortfall_qty", regionShortfallQty)
        json.field("short_facilities", shortFacilities)
        json.close()
    }
}
