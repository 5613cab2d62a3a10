import Foundation
import StockpileCore
import Testing

struct FEFOWalkTests {
    let today = LocalDate("2026-11-22")!
    func lot(_ q: Int64, _ expiry: String?, quarantined: Bool = false) -> LotStock {
        LotStock(quantity: q, expiry: expiry.flatMap(LocalDate.init), quarantined: quarantined)
    }

    @Test func noDemandMeansUnboundedAndNoShortfall() {
        let cover = Cover.physical(lots: [lot(100, "2026-12-01")], dailyDemand: 0, asOf: today)
        #expect(cover.days == nil && cover.expiringQuantity == 0 && cover.usableQuantity == 100)
        #expect(Cover.shortfall(days: nil, targetDays: 30, dailyDemand: 0) == 0)
    }

    @Test func aLotThatExpiresBeforeItCanBeUsedCountsOnlyUntilItsExpiry() {
        // 10/day; the lot of 100 expires in 4 days: 4 days of cover, 60 wasted.
        let cover = Cover.physical(lots: [lot(100, "2026-11-26")], dailyDemand: 10, asOf: today)
        #expect(cover.days == 4)
        #expect(cover.expiringQuantity == 60)
        // Shortfall against 30 days: (30 − 4) × 10.
        #expect(Cover.shortfall(days: cover.days, targetDays: 30, dailyDemand: 10) == 260)
    }

    @Test func expiredAndQuarantinedLotsNeverCount() {
        // Expiring on as_of counts as expired.
        let cover = Cover.physical(lots: [lot(50, "2026-11-22"), lot(50, "2026-11-01"), lot(70, nil, quarantined: true), lot(30, nil)],
                                   dailyDemand: 10, asOf: today)
        #expect(cover.days == 3)
        #expect(cover.usableQuantity == 30)
        #expect(cover.expiringQuantity == 0)
    }

    @Test func aLotExpiringExactlyWhenTheWalkReachesItAddsNothing() {
        // First lot: 50 at 10/day lasts 5 days, no expiry issue (expires day 20). Second expires on day 5: reached at t=5, adds 0.
        let cover = Cover.physical(lots: [lot(50, "2026-12-12"), lot(40, "2026-11-27")], dailyDemand: 10, asOf: today)
        // FEFO takes the day-5 lot first: 40 lasts 4 days (< 5), then the 50 lasts 5 more: 9 days, nothing wasted.
        #expect(cover.days == 9)
        #expect(cover.expiringQuantity == 0)
        let tight = Cover.physical(lots: [lot(50, "2026-11-27"), lot(30, "2026-11-27")], dailyDemand: 10, asOf: today)
        // Both expire on day 5: the first covers 5 days, the second is reached at t = 5 and adds nothing.
        #expect(tight.days == 5)
        #expect(tight.expiringQuantity == 30)
    }

    @Test func lotsOutOfOrderAreWalkedByExpiryWithNonExpiringLast() {
        let cover = Cover.physical(lots: [lot(100, nil), lot(20, "2026-12-22"), lot(30, "2026-11-25")], dailyDemand: 10, asOf: today)
        // 30 expiring in 3 days: 3 days; 20 expiring in 30: 2 more; 100 never: 10 more.
        #expect(cover.days == 15)
        #expect(cover.expiringQuantity == 0)
    }

    @Test func floatingPointNoiseCannotMoveTheCeiling() {
        // 25 days short at 100.0000000000004/day is 2500, not 2501.
        #expect(Cover.shortfall(days: 5, targetDays: 30, dailyDemand: 100.0000000000004) == 2500)
        #expect(Cover.shortfall(days: 29.99, targetDays: 30, dailyDemand: 1) == 1)
    }

    @Test func observedDemandLeavesOutStockoutDays() {
        let window = [DayActivity(openingOnHand: 0, received: 0, issued: 0),   // stockout
                      DayActivity(openingOnHand: 0, received: 20, issued: 8),  // received: not a stockout
                      DayActivity(openingOnHand: 12, received: 0, issued: 12),
                      DayActivity(openingOnHand: 0, received: 0, issued: 0)]   // stockout
        #expect(Demand.observed(window) == 10)
        #expect(Demand.observed([DayActivity(openingOnHand: 0, received: 0, issued: 0)]) == 0)
        #expect(Demand.basis(observed: 10, fullLoad: 12, surge: 1.5) == 18)
    }

    @Test func bands() {
        #expect(CoverBand(days: 0, targetDays: 30) == .stockout)
        #expect(CoverBand(days: 2.9, targetDays: 30) == .under3)
        #expect(CoverBand(days: 7, targetDays: 30) == .from7to14)
        #expect(CoverBand(days: 29.9, targetDays: 30) == .from14toTarget)
        #expect(CoverBand(days: 90, targetDays: 90) == .atTarget)
        #expect(CoverBand(days: nil, targetDays: 90) == .atTarget)
    }
}

/// ../shared/examples/district-a worked through these functions must give expected.json, which was
/// computed from SPEC.md's formulas independently.
struct DistrictACoverTests {
    static var folder: URL {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { dir.deleteLastPathComponent() } // …/Tests/StockpileCoreTests/CoverTests.swift → /work
        return dir.appendingPathComponent("shared/examples/district-a")
    }

    static func rows(_ name: String) throws -> [[String: String]] {
        let text = try String(contentsOf: folder.appendingPathComponent("\(name).csv"), encoding: .utf8)
        let lines = text.split(whereSeparator: \.isNewline).map(String.init) // the files have CRLF line ends
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return lines.dropFirst().map { line in
            Dictionary(uniqueKeysWithValues: zip(header, line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)))
        }
    }

    @Test func everyPositionMatchesExpectedJSON() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("expected.json"))) as! [String: Any]
        let asOf = LocalDate(expected["as_of"] as! String)!
        let zone = TimeZone(identifier: "Asia/Shanghai")!
        let items = Dictionary(uniqueKeysWithValues: try Self.rows("items").map { ($0["code"]!, $0) })
        var fullLoad: [String: Double] = [:]
        for r in try Self.rows("demand") { fullLoad["\(r["facility_code"]!)|\(r["item_code"]!)"] = Double(r["full_load_daily"]!) }
        // Lots on hand: counts from stock.csv plus what the history leaves in its own lots.
        var lots: [String: [String: LotStock]] = [:]
        for r in try Self.rows("stock") {
            lots["\(r["facility_code"]!)|\(r["item_code"]!)", default: [:]][r["lot"]!] =
                LotStock(quantity: Int64(r["quantity"]!)!, expiry: LocalDate(r["expiry"]!))
        }
        var history: [String: [(day: LocalDate, quantity: Int64, kind: String)]] = [:]
        for r in try Self.rows("movements") {
            let key = "\(r["facility_code"]!)|\(r["item_code"]!)"
            let q = Int64(r["quantity"]!)!
            let signed = r["kind"] == "issue" ? -q : q
            var lot = lots[key, default: [:]][r["lot"]!] ?? LotStock(quantity: 0, expiry: LocalDate(r["expiry"]!))
            lot.quantity += signed
            lots[key, default: [:]][r["lot"]!] = lot
            history[key, default: []].append((LocalDate(Timestamps.parse(r["occurred_at"]!)!, in: zone), signed, r["kind"]!))
        }
        var contracts: [String: [ContractReserve]] = [:]
        for r in try Self.rows("contracts") {
            contracts["\(r["facility_code"]!)|\(r["item_code"]!)", default: []].append(ContractReserve(
                committed: Int64(r["quantity"]!)!, calledOff: Int64(r["called_off"]!)!, leadTimeDays: Int(r["lead_time_days"]!)!,
                validFrom: LocalDate(r["valid_from"]!)!, validTo: LocalDate(r["valid_to"]!)!, local: r["local"] == "true"))
        }
        var capacity: [String: [CapacityReserve]] = [:]
        for r in try Self.rows("capacity") {
            capacity["\(r["facility_code"]!)|\(r["item_code"]!)", default: []].append(CapacityReserve(
                dailyCapacity: Int64(r["daily_capacity"]!)!, rampUpDays: Int(r["ramp_up_days"]!)!,
                validFrom: LocalDate(r["valid_from"]!)!, validTo: LocalDate(r["valid_to"]!)!,
                certified: r["certified"] == "true", local: r["local"] == "true"))
        }

        let cover = expected["cover"] as! [String: [String: Any]]
        #expect(cover.count == 144)
        for (key, want) in cover {
            let itemCode = String(key.split(separator: "|")[1])
            let item = items[itemCode]!
            let target = TargetPolicy.standard.targetDays(itemOverride: Int(item["target_days"]!),
                                                          category: ItemCategory(rawValue: item["category"]!)!)
            // The demand window T−28 … T−1, from the history (counts happened at T, after it).
            let moves = history[key] ?? []
            let window = (1...28).reversed().map { back -> DayActivity in
                let day = asOf.adding(days: -back)
                let opening = moves.filter { $0.day < day }.reduce(Int64(0)) { $0 + $1.quantity }
                let received = moves.filter { $0.day == day && $0.kind == "receipt" }.reduce(Int64(0)) { $0 + $1.quantity }
                let issued = moves.filter { $0.day == day && $0.kind == "issue" }.reduce(Int64(0)) { $0 - $1.quantity }
                return DayActivity(openingOnHand: opening, received: received, issued: issued)
            }
            let demand = Demand.basis(observed: Demand.observed(window), fullLoad: fullLoad[key])
            let position = PositionCover(lots: Array((lots[key] ?? [:]).values), contracts: contracts[key] ?? [],
                                         capacity: capacity[key] ?? [], dailyDemand: demand, targetDays: target, asOf: asOf)
            func close(_ a: Double?, _ b: Any?, _ tolerance: Double) -> Bool {
                switch (a, b as? Double) {
                case (nil, nil): return true
                case let (x?, y?): return abs(x - y) <= tolerance
                default: return false
                }
            }
            #expect(close(position.dailyDemand, want["daily_demand"], 0.0001), "\(key) daily_demand \(position.dailyDemand)")
            #expect(position.targetDays == want["target_days"] as? Int, "\(key) target_days")
            #expect(close(position.physicalDays, want["physical_days"], 0.01), "\(key) physical_days \(String(describing: position.physicalDays))")
            #expect(close(position.expiringQuantity, want["expiring_qty"], 0.000001), "\(key) expiring_qty \(position.expiringQuantity)")
            #expect(position.contractQuantity == Int64(want["contract_qty"] as! Int), "\(key) contract_qty")
            #expect(position.capacityQuantity == Int64(want["capacity_qty"] as! Int), "\(key) capacity_qty")
            #expect(close(position.contractDays, want["contract_days"], 0.01), "\(key) contract_days")
            #expect(close(position.capacityDays, want["capacity_days"], 0.01), "\(key) capacity_days")
            #expect(position.shortfallQuantity == Int64(want["shortfall_qty"] as! Int), "\(key) shortfall_qty \(position.shortfallQuantity)")
        }
    }
}

struct TinyDemandTests {
    @Test func aDemandIndistinguishableFromZeroIsZero() {
        let p = PositionCover(lots: [LotStock(quantity: 5, expiry: nil)], contracts: [], capacity: [],
                              dailyDemand: 1e-300, targetDays: 30, asOf: LocalDate("2026-11-22")!)
        #expect(p.physicalDays == nil && p.shortfallQuantity == 0)
    }
}

struct ReserveRowTests {
    func contract(_ overrides: [String: String]) throws(FieldError) -> ContractRow {
        var fields = ["code": "K1", "facility_code": "H", "supplier": "本地厂", "item_code": "N95", "quantity": "100",
                      "called_off": "20", "lead_time_days": "7", "valid_from": "2026-01-01", "valid_to": "2026-12-31", "local": "true"]
        for (k, v) in overrides { fields[k] = v }
        return try ContractRow(csv: CSVFields(fields))
    }

    @Test func contractRowsAreChecked() throws {
        #expect(try contract([:]).calledOff == 20)
        #expect(throws: FieldError(field: "called_off", reason: "more than the committed quantity 100")) { try contract(["called_off": "101"]) }
        #expect(throws: FieldError(field: "valid_to", reason: "before valid_from 2026-01-01")) { try contract(["valid_to": "2025-12-31"]) }
        #expect(throws: FieldError(field: "valid_from", reason: "required")) { try contract(["valid_from": ""]) }
    }
}
