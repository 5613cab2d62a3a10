import Foundation
import StockpileCore
import Testing

/// The reorder arithmetic and the nightly schedule, with hand-worked numbers.
struct NightlyRulesTests {
    let today = LocalDate("2026-11-22")!
    let shanghai = TimeZone(identifier: "Asia/Shanghai")!

    func contract(_ code: String, local: Bool, lead: Int, left: Int64, from: String = "2026-01-01", to: String = "2027-12-31") -> ReorderContract {
        ReorderContract(code: code, supplier: "供应商", local: local, leadTimeDays: lead, committed: left + 10, calledOff: 10,
                        validFrom: LocalDate(from)!, validTo: LocalDate(to)!)
    }

    @Test func callOffsTakeLocalSuppliersFirstThenTheShortestLeadTimeAndNeverMoreThanRemains() {
        let contracts = [contract("A", local: false, lead: 2, left: 500), contract("B", local: true, lead: 20, left: 300),
                         contract("C", local: true, lead: 7, left: 100), contract("D", local: true, lead: 1, left: 9999, to: "2026-11-21"),
                         contract("E", local: true, lead: 1, left: 9999, from: "2026-11-23"), contract("F", local: true, lead: 31, left: 9999)]
        // Need 700: C (local, 7 d) 100, B (local, 20 d) 300, then A (not local) 300 of its 500. D expired
        // yesterday, E starts tomorrow, F delivers after the 30-day target: none of them is called.
        let met = Reorder.meet(need: 700, contracts: contracts, pledges: [], asOf: today, targetDays: 30)
        #expect(met.callOffs.map { "\($0.contract) \($0.needBefore) \($0.quantity)" } == ["C 700 100", "B 600 300", "A 300 300"])
        #expect(met.procurement == 0)
        // More need than all of them: each gives only what remains, the rest is procured.
        let short = Reorder.meet(need: 1000, contracts: contracts, pledges: [], asOf: today, targetDays: 30)
        #expect(short.callOffs.map(\.quantity) == [100, 300, 500] && short.procurement == 100)
    }

    @Test func activationYieldsWithinTheTargetAfterRampUpFromCertifiedValidPledgesOnly() {
        func pledge(_ code: String, local: Bool, certified: Bool = true, daily: Int64, ramp: Int, to: String = "2027-12-31") -> ReorderPledge {
            ReorderPledge(code: code, manufacturer: "厂", local: local, certified: certified, dailyCapacity: daily, rampUpDays: ramp,
                          validFrom: LocalDate("2026-01-01")!, validTo: LocalDate(to)!)
        }
        let pledges = [pledge("Q", local: false, daily: 40, ramp: 0), pledge("R", local: true, daily: 30, ramp: 20),
                       pledge("S", local: true, certified: false, daily: 1000, ramp: 0), pledge("T", local: true, daily: 50, ramp: 30),
                       pledge("U", local: true, daily: 1000, ramp: 0, to: "2026-11-01")]
        // Target 30: R yields 30 × (30 − 20) = 300, Q 40 × 30 = 1200; T ramps up for all 30 days (0);
        // S is not certified, U has lapsed. Need 500: R 300 (10 days' production), then Q 200 (5 days).
        let met = Reorder.meet(need: 500, contracts: [], pledges: pledges, asOf: today, targetDays: 30)
        #expect(met.activations.map { "\($0.pledge) \($0.yieldQty) \($0.quantity) \($0.productionDays)" } == ["R 300 300 10", "Q 1200 200 5"])
        #expect(met.procurement == 0)
        // 201 of Q's 40 a day takes 6 days (rounded up).
        #expect(Reorder.meet(need: 501, contracts: [], pledges: pledges, asOf: today, targetDays: 30).activations.last?.productionDays == 6)
    }

    @Test func theContractGapCountsTonightsCallOffsAndSaysWhatToRenewOrExpand() {
        let position = NightlyPosition(facility: "H", facilityName: "医院", item: "N95", itemName: "N95口罩", dailyDemand: 40,
                                       observedDemand: 12, fullLoadDemand: 40, targetDays: 30, physicalQty: 0, physicalDays: 0,
                                       contractQty: 900, contractDays: 22.5, capacityQty: 0, capacityDays: 0, shortfallQty: 1200)
        // Counted: A 500 + C 400 (B ends 2026-12-10, inside the 30-day horizon: counted today, renewed).
        let contracts = [contract("A", local: false, lead: 3, left: 500), contract("B", local: true, lead: 3, left: 0, to: "2026-12-10"),
                         contract("C", local: true, lead: 5, left: 400)]
        // 30 × 40 = 1200 wanted; 900 − 300 called off tonight = 600 left: 600 to contract.
        let gap = Reorder.contractGap(position, contracts: contracts, calledOffTonight: 300, asOf: today)
        #expect(gap?.contractQtyAfter == 600 && gap?.contractDaysAfter == 15 && gap?.gapQty == 600)
        #expect(gap?.renew == ["B"] && gap?.expand == "C")
        #expect(Reorder.contractGap(position, contracts: [contract("A", local: false, lead: 3, left: 1200)], calledOffTonight: 0, asOf: today) == nil)
    }

    @Test func expiringLotsAreWhatTheWalkLeavesWithinNinetyDaysAndGoToTheNearestThatUsesThemAll() {
        // 10 a day: the walk takes lot 0 (100, expiring in 5 days) first; it would last 10 days, so 50
        // are left at expiry. Lot 1 (300, 95 days) expires beyond the 90-day horizon.
        let lots = [LotStock(quantity: 100, expiry: today.adding(days: 5)), LotStock(quantity: 300, expiry: today.adding(days: 95))]
        let expiring = Reorder.expiring(lots: lots, dailyDemand: 10, asOf: today)
        #expect(expiring.map { "\($0.index) \($0.unconsumed)" } == ["0 50"])
        // Nobody uses it here: every lot within 90 days expires whole.
        #expect(Reorder.expiring(lots: lots, dailyDemand: 0, asOf: today).map(\.unconsumed) == [100])

        let here = PlanSite(code: "A", latitude: 30, longitude: 114)
        let near = Reorder.Consumer(site: PlanSite(code: "B", latitude: 30.01, longitude: 114), name: "近", dailyDemand: 10, physicalDays: 4)
        let far = Reorder.Consumer(site: PlanSite(code: "C", latitude: 30.5, longitude: 114), name: "远", dailyDemand: 100, physicalDays: 1)
        let full = Reorder.Consumer(site: PlanSite(code: "D", latitude: 30, longitude: 114), name: "满", dailyDemand: 100, physicalDays: 50)
        // 50 units expiring in 5 days: B uses (5 − 4) × 10 = 10, C (5 − 1) × 100 = 400 ≥ 50, D none (its stock outlasts the lot).
        let to = Reorder.fasterConsumer(for: 50, expiryDays: 5, from: here, candidates: [near, far, full])
        #expect(to?.consumer.site.code == "C" && to?.usable == 50)
        // With 1000 to place nobody takes all: the one that takes the most.
        #expect(Reorder.fasterConsumer(for: 1000, expiryDays: 5, from: here, candidates: [near, far, full])?.usable == 400)
        #expect(Reorder.fasterConsumer(for: 50, expiryDays: 5, from: here, candidates: [full]) == nil)
    }

    @Test func theScheduleRunsTheLastDueDateAndThenDaily() throws {
        let schedule = try #require(NightlySchedule("02:00", timeZone: shanghai))
        // 2026-11-22 01:30 in Shanghai is 2026-11-21 17:30 UTC: today's 02:00 has not come, yesterday's is due.
        let before = try #require(Timestamps.parse("2026-11-22T01:30:00+08:00"))
        #expect(schedule.lastDue(at: before) == LocalDate("2026-11-21"))
        #expect(schedule.next(after: before).date == LocalDate("2026-11-22"))
        #expect(schedule.next(after: before).at == Timestamps.parse("2026-11-22T02:00:00+08:00"))
        let after = try #require(Timestamps.parse("2026-11-22T02:00:00+08:00"))
        #expect(schedule.lastDue(at: after) == LocalDate("2026-11-22"))
        #expect(schedule.next(after: after).at == Timestamps.parse("2026-11-23T02:00:00+08:00"))
        #expect(NightlySchedule("24:00", timeZone: shanghai) == nil && NightlySchedule("2:5", timeZone: shanghai) == nil)
    }
}

/// A report stored before the 截留 sections existed (no `overdue`, no `hoarding` in its header) still reads.
@Suite struct NightlyReportCompatibilityTests {
    @Test func aHeaderWithoutTheNewSectionsDecodes() throws {
        let report = NightlyReport(asOf: LocalDate("2026-11-22")!, region: nil, generatedAt: "2026-11-22T02:00:00Z", requestID: "r",
                                   positions: 3, orders: [], reorders: [], contractGaps: [], expiringLots: [], stale: [], phases: [:])
        var object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(report)) as! [String: Any]
        #expect(object["overdue"] != nil && object["hoarding"] != nil && object["rotation"] != nil && object["shipments"] != nil)
        for key in ["overdue", "hoarding", "rotation", "shipments"] { object.removeValue(forKey: key) }
        let old = try JSONDecoder().decode(NightlyReport.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(old.overdue == nil && old.hoarding == nil && old.rotation == nil && old.shipments == nil && old.positions == 3)
    }
}
