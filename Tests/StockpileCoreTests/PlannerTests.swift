import Foundation
import StockpileCore
import Testing

struct PlannerTests {
    static func site(_ code: String, _ lat: Double, _ lon: Double) -> PlanSite { PlanSite(code: code, latitude: lat, longitude: lon) }

    /// Worked by hand: one donor with 100 between a designated hospital (need 80, far) and a
    /// clinic (need 80, near). Coverage first: the designated one gets its 80 though it is farther,
    /// the clinic the remaining 20.
    @Test func designatedNeedComesBeforeDistance() {
        let donor = PlanDonor(site: Self.site("W", 30.0, 114.0), surplus: 100)
        let far = PlanReceiver(site: Self.site("H", 30.5, 114.0), need: 80, weight: 2)
        let near = PlanReceiver(site: Self.site("C", 30.05, 114.0), need: 80, weight: 1)
        let plan = Planner.solve(donors: [donor], receivers: [far, near])
        #expect(plan.needBefore == 160 && plan.covered == 100 && plan.weightedCovered == 80 * 2 + 20)
        let toFar = plan.flows.first { $0.receiver == 0 }, toNear = plan.flows.first { $0.receiver == 1 }
        #expect(toFar?.quantity == 80 && toNear?.quantity == 20)
        // 0.5° of latitude is 55.6 km at this radius; 0.05° is 5.56 km.
        #expect(abs(plan.quantityKm - (80 * GreatCircle.km(donor.site, far.site) + 20 * GreatCircle.km(donor.site, near.site))) < 1e-6)
        #expect(abs(GreatCircle.km(donor.site, far.site) - 55.597) < 0.01)
    }

    /// With coverage settled, distance decides: each receiver is served from its nearer donor
    /// when it can be, and the crossing pattern a greedy nearest-first would pick is avoided.
    @Test func distanceIsMinimisedOnceCoverageIsMaximal() {
        // A greedy that serves R1 from its nearest donor (D2) first strands R2, whose only
        // reachable donor is D2 within the distance limit.
        let d1 = PlanDonor(site: Self.site("D1", 30.0, 114.0), surplus: 10)
        let d2 = PlanDonor(site: Self.site("D2", 30.0, 114.2), surplus: 10)
        let r1 = PlanReceiver(site: Self.site("R1", 30.0, 114.15), need: 10, weight: 1)
        let r2 = PlanReceiver(site: Self.site("R2", 30.0, 114.4), need: 10, weight: 1)
        let plan = Planner.solve(donors: [d1, d2], receivers: [r1, r2], options: PlanOptions(maxDistanceKm: 25))
        #expect(plan.covered == 20)
        #expect(plan.flows.contains { $0.donor == 0 && $0.receiver == 0 && $0.quantity == 10 })
        #expect(plan.flows.contains { $0.donor == 1 && $0.receiver == 1 && $0.quantity == 10 })
    }

    @Test func nothingToGiveOrNothingNeeded() {
        let d = PlanDonor(site: Self.site("D", 30, 114), surplus: 0)
        let r = PlanReceiver(site: Self.site("R", 30.1, 114), need: 5, weight: 1)
        #expect(Planner.solve(donors: [d], receivers: [r]).flows.isEmpty)
        #expect(Planner.solve(donors: [PlanDonor(site: d.site, surplus: 9)], receivers: []).covered == 0)
        #expect(Planner.solve(donors: [], receivers: [r]).unmet == 5)
    }

    /// The exact optimum by enumerating every integer flow, for small instances.
    static func bruteForce(_ donors: [PlanDonor], _ receivers: [PlanReceiver], maxKm: Double?) -> (weighted: Int64, km: Double) {
        let d = donors.count, r = receivers.count
        var best = (weighted: Int64(-1), km: Double.infinity)
        var supply = donors.map(\.surplus), need = receivers.map(\.need)
        func visit(_ cell: Int, _ weighted: Int64, _ km: Double) {
            if cell == d * r {
                if weighted > best.weighted || (weighted == best.weighted && km < best.km - 1e-9) { best = (weighted, km) }
                return
            }
            let i = cell / r, j = cell % r
            let distance = GreatCircle.km(donors[i].site, receivers[j].site)
            let limit = (maxKm.map { distance > $0 } ?? false) ? 0 : min(supply[i], need[j])
            for x in 0...max(0, limit) {
                supply[i] -= x; need[j] -= x
                visit(cell + 1, weighted + x * receivers[j].weight, km + Double(x) * distance)
                supply[i] += x; need[j] += x
            }
        }
        visit(0, 0, 0)
        return best
    }

    /// Hundreds of random small instances: the planner's objective equals the enumerated optimum.
    @Test func matchesBruteForceOnRandomInstances() {
        var random = SeededRandom(seed: 2026)
        var cases = 0, choosing = 0  // cases with several donors and receivers and something to move
        for _ in 0..<400 {
            let d = 1 + random.int(3), r = 1 + random.int(3)
            let donors = (0..<d).map { n in
                PlanDonor(site: Self.site("D\(n)", 30 + random.uniform(0, 1), 114 + random.uniform(0, 1)), surplus: Int64(random.int(5)))
            }
            let receivers = (0..<r).map { n in
                PlanReceiver(site: Self.site("R\(n)", 30 + random.uniform(0, 1), 114 + random.uniform(0, 1)),
                             need: Int64(random.int(5)), weight: random.int(3) == 0 ? 2 : 1)
            }
            let maxKm: Double? = random.int(3) == 0 ? random.uniform(20, 120) : nil
            let plan = Planner.solve(donors: donors, receivers: receivers, options: PlanOptions(maxDistanceKm: maxKm))
            let best = Self.bruteForce(donors, receivers, maxKm: maxKm)
            #expect(plan.weightedCovered == best.weighted, "case \(cases): weighted \(plan.weightedCovered) vs \(best.weighted)")
            #expect(abs(plan.quantityKm - best.km) < 1e-3, "case \(cases): km \(plan.quantityKm) vs \(best.km)")
            // Feasible: no donor gives more than its surplus, no receiver gets more than its need.
            for (i, donor) in donors.enumerated() {
                #expect(plan.flows.filter { $0.donor == i }.reduce(0) { $0 + $1.quantity } <= donor.surplus)
            }
            for (j, receiver) in receivers.enumerated() {
                #expect(plan.flows.filter { $0.receiver == j }.reduce(0) { $0 + $1.quantity } <= receiver.need)
            }
            if best.weighted > 0 && receivers.count > 1 && donors.count > 1 { choosing += 1 }
            cases += 1
        }
        // Not vacuous: most cases had a real choice to make (this counted loop iterations before).
        #expect(choosing >= 100, "only \(choosing) of \(cases) cases had anything to choose")
    }
}

struct PlannerLotTests {
    /// A lot that expires in 3 days is worth at most 3 × 10 = 30 units to a receiver using 10 a day:
    /// the rest of it is not counted as available to that receiver, and a later lot makes up the
    /// need. Earliest expiry first among what is usable.
    @Test func aLotIsOnlyAsGoodAsWhatTheReceiverCanUseBeforeItExpires() {
        let lots = [PlanLot(lot: "SOON", quantity: 100, expiryDays: 3), PlanLot(lot: "LATER", quantity: 100, expiryDays: 200)]
        let donor = PlanDonor(site: PlanSite(code: "W", latitude: 30, longitude: 114), surplus: 150, lots: lots)
        let slow = PlanReceiver(site: PlanSite(code: "C", latitude: 30.1, longitude: 114), need: 120, weight: 1, dailyDemand: 10)
        let plan = Planner.solve(donors: [donor], receivers: [slow])
        #expect(plan.covered == 120)
        let flow = try! #require(plan.flows.first)
        #expect(flow.lots.map { lots[$0.lot].lot } == ["SOON", "LATER"])
        #expect(flow.lots.map(\.quantity) == [30, 90])
        // Nothing usable in time: an expired-by-arrival lot alone covers nothing.
        let onlySoon = PlanDonor(site: donor.site, surplus: 100, lots: [PlanLot(lot: "SOON", quantity: 100, expiryDays: 0)])
        #expect(Planner.solve(donors: [onlySoon], receivers: [slow]).covered == 0)
        // A fast consumer can take the whole short-dated lot.
        let fast = PlanReceiver(site: slow.site, need: 120, weight: 1, dailyDemand: 50)
        let fastPlan = Planner.solve(donors: [donor], receivers: [fast])
        #expect(fastPlan.flows.first?.lots.map(\.quantity) == [100, 20])
    }

    /// When the surplus is smaller than the lots, earliest expiry ships first, as far as the receiver
    /// can use it: all of the short-dated lot to a fast consumer, only what it can use to a slow one.
    @Test func earliestExpiryShipsFirstAsFarAsItCanBeUsed() {
        let lots = [PlanLot(lot: "LATER", quantity: 60, expiryDays: 300), PlanLot(lot: "SOON", quantity: 60, expiryDays: 2)]
        let donor = PlanDonor(site: PlanSite(code: "W", latitude: 30, longitude: 114), surplus: 60, lots: lots)
        let fast = PlanReceiver(site: PlanSite(code: "F", latitude: 30.2, longitude: 114), need: 60, weight: 1, dailyDemand: 40)
        let toFast = Planner.solve(donors: [donor], receivers: [fast]).flows.first!
        #expect(toFast.lots.map { lots[$0.lot].lot } == ["SOON"] && toFast.quantity == 60)
        let slow = PlanReceiver(site: fast.site, need: 60, weight: 1, dailyDemand: 5)
        let toSlow = Planner.solve(donors: [donor], receivers: [slow]).flows.first!
        #expect(toSlow.lots.map { lots[$0.lot].lot } == ["SOON", "LATER"] && toSlow.lots.map(\.quantity) == [10, 50])
    }

    /// Random small instances with lots (some short-dated, some never expiring) and receivers of
    /// different speeds: the planner's objective equals the enumerated optimum over lot × receiver flows.
    @Test func matchesBruteForceWithLots() {
        var random = SeededRandom(seed: 77)
        var constrained = 0  // cases where lot expiry held the optimum below what surplus and need allowed
        for n in 0..<150 {
            let donors = (0..<(1 + random.int(2))).map { i in
                PlanDonor(site: PlanSite(code: "D\(i)", latitude: 30 + random.uniform(0, 0.5), longitude: 114 + random.uniform(0, 0.5)),
                          surplus: Int64(random.int(5)),
                          lots: (0..<(1 + random.int(2))).map { k in
                              PlanLot(lot: "L\(k)", quantity: Int64(random.int(4)), expiryDays: random.int(3) == 0 ? nil : random.int(4))
                          })
            }
            let receivers = (0..<(1 + random.int(2))).map { j in
                PlanReceiver(site: PlanSite(code: "R\(j)", latitude: 30 + random.uniform(0, 0.5), longitude: 114 + random.uniform(0, 0.5)),
                             need: Int64(random.int(5)), weight: random.int(2) == 0 ? 2 : 1, dailyDemand: [0.5, 1, 2.5][random.int(3)])
            }
            let plan = Planner.solve(donors: donors, receivers: receivers)
            // Enumerate every lot × receiver flow.
            var cells: [(donor: Int, lot: Int, receiver: Int, cap: Int64, km: Double)] = []
            for (i, donor) in donors.enumerated() {
                for (k, lot) in donor.lots!.enumerated() {
                    for (j, receiver) in receivers.enumerated() {
                        cells.append((i, k, j, min(lot.quantity, receiver.usable(expiryDays: lot.expiryDays)), GreatCircle.km(donor.site, receiver.site)))
                    }
                }
            }
            var lotLeft = donors.map { $0.lots!.map(\.quantity) }, surplus = donors.map(\.surplus), need = receivers.map(\.need)
            var best = (weighted: Int64(-1), km: Double.infinity)
            func visit(_ c: Int, _ weighted: Int64, _ km: Double) {
                if c == cells.count {
                    if weighted > best.weighted || (weighted == best.weighted && km < best.km - 1e-9) { best = (weighted, km) }
                    return
                }
                let cell = cells[c]
                let limit = max(0, min(cell.cap, lotLeft[cell.donor][cell.lot], surplus[cell.donor], need[cell.receiver]))
                for x in 0...limit {
                    lotLeft[cell.donor][cell.lot] -= x; surplus[cell.donor] -= x; need[cell.receiver] -= x
                    visit(c + 1, weighted + x * receivers[cell.receiver].weight, km + Double(x) * cell.km)
                    lotLeft[cell.donor][cell.lot] += x; surplus[cell.donor] += x; need[cell.receiver] += x
                }
            }
            visit(0, 0, 0)
            #expect(plan.weightedCovered == best.weighted, "case \(n): weighted \(plan.weightedCovered) vs \(best.weighted)")
            #expect(abs(plan.quantityKm - best.km) < 1e-3, "case \(n): km \(plan.quantityKm) vs \(best.km)")
            let unlimited = Planner.solve(donors: donors.map { PlanDonor(site: $0.site, surplus: $0.surplus) }, receivers: receivers)
            if unlimited.covered > plan.covered { constrained += 1 }
        }
        #expect(constrained >= 10, "only \(constrained) cases exercised the lot limits")
    }

    /// Starting from each site's single nearest pair and pricing in the rest gives the same optimum
    /// as the whole network, on random items of a few dozen sites with lots, weights and distance limits.
    @Test func pricingFindsTheSameOptimumAsTheWholeNetwork() {
        var random = SeededRandom(seed: 4242)
        for n in 0..<40 {
            let donors = (0..<(5 + random.int(25))).map { i in
                PlanDonor(site: PlanSite(code: "D\(i)", latitude: 30 + random.uniform(0, 1), longitude: 114 + random.uniform(0, 1)),
                          surplus: Int64(random.int(300)),
                          lots: (0..<(1 + random.int(3))).map { k in
                              PlanLot(lot: "L\(k)", quantity: Int64(random.int(200)), expiryDays: random.int(4) == 0 ? nil : random.int(60))
                          })
            }
            let receivers = (0..<(5 + random.int(25))).map { j in
                PlanReceiver(site: PlanSite(code: "R\(j)", latitude: 30 + random.uniform(0, 1), longitude: 114 + random.uniform(0, 1)),
                             need: Int64(random.int(400)), weight: random.int(3) == 0 ? 2 : 1, dailyDemand: random.uniform(0.5, 20))
            }
            let limit: Double? = random.int(3) == 0 ? random.uniform(30, 90) : nil
            let whole = Planner.solve(donors: donors, receivers: receivers, options: PlanOptions(maxDistanceKm: limit))
            let priced = Planner.solve(donors: donors, receivers: receivers,
                                       options: PlanOptions(maxDistanceKm: limit, sparseAbove: 0, nearest: 1))
            #expect(priced.weightedCovered == whole.weightedCovered, "case \(n): weighted \(priced.weightedCovered) vs \(whole.weightedCovered)")
            #expect(abs(priced.quantityKm - whole.quantityKm) <= 1e-6 * max(1, whole.quantityKm), "case \(n): km \(priced.quantityKm) vs \(whole.quantityKm)")
        }
    }
}

/// The production solver (receiver by receiver, local searches, pricing) against the textbook
/// one (source to sink over every pair), on random items large enough that brute force cannot
/// follow: scarce and plentiful stock, designated hospitals, distance limits, short-dated lots.
@Suite struct PlannerReferenceTests {
    @Test func equalsTheTextbookSolve() {
        var random = SeededRandom(seed: 2026)
        var scarce = 0, plentiful = 0
        for n in 0..<60 {
            let donors = (0..<(3 + random.int(40))).map { i in
                PlanDonor(site: PlanSite(code: "D\(i)", latitude: 30 + random.uniform(0, 1), longitude: 114 + random.uniform(0, 1)),
                          surplus: Int64(random.int(500)),
                          lots: (0..<(1 + random.int(3))).map { k in
                              PlanLot(lot: "L\(k)", quantity: Int64(random.int(300)), expiryDays: random.int(4) == 0 ? nil : 1 + random.int(90))
                          })
            }
            let receivers = (0..<(3 + random.int(40))).map { j in
                PlanReceiver(site: PlanSite(code: "R\(j)", latitude: 30 + random.uniform(0, 1), longitude: 114 + random.uniform(0, 1)),
                             need: Int64(random.int(n % 2 == 0 ? 900 : 200)), weight: random.int(3) == 0 ? 2 : 1,
                             dailyDemand: random.uniform(0.2, 15))
            }
            let limit: Double? = random.int(3) == 0 ? random.uniform(20, 80) : nil
            let options = PlanOptions(maxDistanceKm: limit, sparseAbove: n % 3 == 0 ? 0 : 40_000, nearest: 1 + random.int(4))
            let plan = Planner.solve(donors: donors, receivers: receivers, options: options)
            let reference = Planner.referenceSolve(donors: donors, receivers: receivers, options: options)
            // Short stock is solved donor by donor, plentiful receiver by receiver: both must be exercised.
            let surplus = donors.reduce(Int64(0)) { $0 + $1.surplus }, need = receivers.reduce(Int64(0)) { $0 + $1.need }
            if surplus < need { scarce += 1 } else { plentiful += 1 }
            #expect(plan.weightedCovered == reference.weightedCovered, "case \(n): weighted \(plan.weightedCovered) vs \(reference.weightedCovered)")
            #expect(abs(plan.quantityKm - reference.quantityKm) <= 1e-6 * max(1, reference.quantityKm),
                    "case \(n): km \(plan.quantityKm) vs \(reference.quantityKm)")
            // Feasible: no donor gives more than its surplus or a lot more than it holds, no receiver gets more than its need.
            for (i, donor) in donors.enumerated() {
                let given = plan.flows.filter { $0.donor == i }
                #expect(given.reduce(0) { $0 + $1.quantity } <= donor.surplus)
                for (k, lot) in donor.lots!.enumerated() {
                    #expect(given.flatMap(\.lots).filter { $0.lot == k }.reduce(0) { $0 + $1.quantity } <= lot.quantity)
                }
            }
            for (j, receiver) in receivers.enumerated() {
                #expect(plan.flows.filter { $0.receiver == j }.reduce(0) { $0 + $1.quantity } <= receiver.need)
            }
        }
        #expect(scarce >= 10 && plentiful >= 10, "scarce \(scarce), plentiful \(plentiful)")
    }
}
