import Foundation
@testable import StockpileCore
@testable import StockpilePostgres
import Testing

/// The report's lines as nightly_lines stores them read back, through their Codable decoding, as
/// the lines that were written: every kind of line, with nil and present optionals, empty and full
/// lists, characters JSON must escape, and numbers whose shortest form has an exponent.
@Suite struct NightlyLineJSONTests {
    let asOf = LocalDate("2026-11-22")!

    func position(_ name: String, days: Double?, full: Double?) -> NightlyPosition {
        NightlyPosition(facility: "F\"1", facilityName: name, item: "I\\1", itemName: "口罩 N95\n\t\u{1}", dailyDemand: 20.557142857142857,
                        observedDemand: 1e-05, fullLoadDemand: full, targetDays: 30, physicalQty: 1439, physicalDays: days,
                        contractQty: 0, contractDays: 0, capacityQty: 9_000_000_000, capacityDays: 1e+20, shortfallQty: 661)
    }

    func readBack<Line: NightlyLineEncodable & Decodable & Equatable>(_ lines: [Line]) throws -> Bool {
        try JSONDecoder().decode([Line].self, from: Data(NightlyLineJSON.run(lines).utf8)) == lines
    }

    @Test func everyKindOfLineReadsBackAsWritten() throws {
        let a = position("合成医院17", days: 20.5, full: 99), b = position("", days: nil, full: nil)
        let reorders = [
            ReorderLine(position: a, reallocated: 661, reallocatedFrom: [ReallocationSource(order: 7, from: "G-F003017", quantity: 661)],
                        inbound: 3, need: 12,
                        callOffs: [CallOff(contract: "K1", supplier: "供应商\"甲\"", local: true, leadTimeDays: 5, remaining: 10, needBefore: 12,
                                           quantity: 10)],
                        activations: [Activation(pledge: "P1", manufacturer: "厂", local: false, dailyCapacity: 4, rampUpDays: 2, yieldQty: 112,
                                                 needBefore: 2, quantity: 2, productionDays: 1)],
                        procurement: 0),
            ReorderLine(position: b, reallocated: 0, reallocatedFrom: [], inbound: 0, need: 0, callOffs: [], activations: [], procurement: 0),
        ]
        #expect(try readBack(reorders))
        let gaps = [
            ContractGapLine(position: a, calledOffTonight: 10, contractQtyAfter: 0, contractDaysAfter: 0, gapQty: 2970, renew: ["K0", "K\\2"],
                            expand: "K1", contracts: [.init(code: "K1", supplier: "乙", remaining: 0, leadTimeDays: 5, validTo: asOf,
                                                            status: "valid")]),
            ContractGapLine(position: b, calledOffTonight: 0, contractQtyAfter: 0, contractDaysAfter: nil, gapQty: 1, renew: [], expand: nil,
                            contracts: []),
        ]
        #expect(try readBack(gaps))
        let consumer = Reorder.Consumer(site: PlanSite(code: "G-F001326", latitude: 30, longitude: 114), name: "合成医院1326",
                                        dailyDemand: 136.1818181818182, physicalDays: 0)
        let expiring = [
            ExpiringLotLine(position: a, lot: "L00", expiry: asOf.adding(days: 1), asOf: asOf, onHand: 11, unconsumedQty: 10,
                            moveTo: (consumer, 10, 0.873)),
            ExpiringLotLine(position: b, lot: "L\"01", expiry: asOf.adding(days: 90), asOf: asOf, onHand: 5, unconsumedQty: 5, moveTo: nil),
        ]
        #expect(try readBack(expiring))
        let stale = [
            StaleLine(facility: "F", facilityName: "名", item: "I", itemName: "物", physicalQty: 0, dailyDemand: 150, lastMovement: asOf,
                      lastCount: nil, daysSince: 9),
            StaleLine(facility: "F", facilityName: "名", item: "I", itemName: "物", physicalQty: 3, dailyDemand: 0, lastMovement: nil,
                      lastCount: nil, daysSince: nil),
        ]
        #expect(try readBack(stale))
        let orders = [NightlyOrder(id: 1663817, item: "G-I0001", from: "G-F000010", to: "G-F003010", quantity: 206, distanceKm: 0,
                                   lots: "L05×206, L06×1")]
        #expect(try readBack(orders))
        let overdue = [OverdueLine(order: 12, item: "N95", itemName: "口罩\"甲\"", from: "H", to: "W", inTransit: 10,
                                   dispatchedAt: "2026-11-20T08:00:00Z", dueAt: "2026-11-21T08:00:00Z", daysOverdue: 1.5e-05)]
        #expect(try readBack(overdue))
        let hoarding = [HoardingLine(facility: "W", facilityName: "储备库\n", item: "N95", itemName: "口罩", received: 100, physicalQty: 900,
                                     targetQty: 300, surplusQty: 600, regionShortfallQty: 250, shortFacilities: 2)]
        #expect(try readBack(hoarding))
    }

    @Test func aNumberJSONCannotHoldIsRefused() {
        let line = StaleLine(facility: "F", facilityName: "名", item: "I", itemName: "物", physicalQty: 0, dailyDemand: .infinity,
                             lastMovement: nil, lastCount: nil, daysSince: nil)
        #expect(throws: NightlyLineJSON.NotFinite.self) { try NightlyLineJSON.run([line]) }
    }
}
