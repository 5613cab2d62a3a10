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
        var cases = 0
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
            cases += 1
        }
        #expect(cases == 400)
    }
}
