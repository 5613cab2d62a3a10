import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

/// The example district's reallocation optimum (expected.json "plan"), per item, from its cover.
@Suite struct PlanTests {
    @Test func districtAReachesTheOptimumOfExpectedJSON() async throws {
        let database = try TestDatabase.fresh(poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: TestDatabase.districtA.appendingPathComponent("expected.json"))) as! [String: Any]
        let asOf = LocalDate(expected["as_of"] as! String)!
        let rows = try await PostgresCover(database, scope: .system("test")).positions(CoverFilter(), asOf: asOf)
        let facilities = Dictionary(uniqueKeysWithValues: try await PostgresMasterData(database, scope: .system("test")).facilities().map { ($0.code, $0) })
        let want = expected["plan"] as! [String: [String: Any]]
        #expect(want.count == 6)
        for (item, optimum) in want {
            let positions = rows.filter { $0.item == item }.map { row in
                let f = facilities[row.facility]!
                return PlanPosition(site: PlanSite(code: f.code, latitude: f.latitude!, longitude: f.longitude!), designated: f.designated,
                                    usable: row.physicalQty, dailyDemand: row.dailyDemand, targetDays: row.targetDays, shortfall: row.shortfallQty)
            }
            let (plan, donors, receivers) = Reallocation.plan(positions)
            #expect(!donors.isEmpty && !receivers.isEmpty)
            #expect(plan.weightedCovered == Int64(optimum["weighted_covered"] as! Int), "\(item) weighted \(plan.weightedCovered)")
            #expect(plan.covered == Int64(optimum["covered"] as! Int), "\(item) covered \(plan.covered)")
            let km = optimum["qty_km"] as! Double
            #expect(abs(plan.quantityKm - km) <= km * 0.0001 + 0.1, "\(item) qty_km \(plan.quantityKm) vs \(km)")
        }
        await database.shutdown()
    }
}
