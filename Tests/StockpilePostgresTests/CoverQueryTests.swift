import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

@Suite(.serialized) struct CoverQueryTests {
    /// The example district imported from its CSV files and queried in PostgreSQL gives, for every
    /// one of its 144 positions, the numbers of expected.json (days to 0.01, quantities exact).
    @Test func districtAFromTheDatabaseMatchesExpectedJSON() async throws {
        let database = try TestDatabase.fresh(poolSize: 2)
        let summary = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        #expect(summary.files["contracts.csv"]?.rows == 59)
        #expect(summary.files["capacity.csv"]?.rows == 35)
        #expect(summary.files["demand.csv"]?.rows == 101)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: TestDatabase.districtA.appendingPathComponent("expected.json"))) as! [String: Any]
        let asOf = LocalDate(expected["as_of"] as! String)!
        let rows = try await PostgresCover(database, scope: .system("test")).positions(CoverFilter(), asOf: asOf)
        let cover = expected["cover"] as! [String: [String: Any]]
        #expect(rows.count == cover.count)
        func close(_ a: Double?, _ b: Any?, _ tolerance: Double) -> Bool {
            switch (a, b as? Double) {
            case (nil, nil): return true
            case let (x?, y?): return abs(x - y) <= tolerance
            default: return false
            }
        }
        for row in rows {
            let key = "\(row.facility)|\(row.item)"
            let want = try #require(cover[key], "\(key) is not in expected.json")
            #expect(close(row.dailyDemand, want["daily_demand"], 0.0001), "\(key) daily_demand \(row.dailyDemand)")
            #expect(row.targetDays == want["target_days"] as? Int, "\(key) target_days")
            #expect(close(row.physicalDays, want["physical_days"], 0.01), "\(key) physical_days \(String(describing: row.physicalDays))")
            #expect(close(row.expiringQty, want["expiring_qty"], 0.000001), "\(key) expiring_qty")
            #expect(row.contractQty == Int64(want["contract_qty"] as! Int), "\(key) contract_qty")
            #expect(row.capacityQty == Int64(want["capacity_qty"] as! Int), "\(key) capacity_qty")
            #expect(close(row.contractDays, want["contract_days"], 0.01), "\(key) contract_days")
            #expect(close(row.capacityDays, want["capacity_days"], 0.01), "\(key) capacity_days")
            #expect(row.shortfallQty == Int64(want["shortfall_qty"] as! Int), "\(key) shortfall_qty \(row.shortfallQty)")
        }
        // Filters and scope narrow the same computation.
        let one = try await PostgresCover(database, scope: .system("test")).positions(CoverFilter(facility: "D1-H1", item: "MASK"), asOf: asOf)
        #expect(one.count == 1 && one.first?.shortfallQty == 3196)
        let d1 = try await PostgresCover(database, scope: .system("test")).positions(CoverFilter(region: "D1", category: .ppe), asOf: asOf)
        #expect(d1.count == 8 * 3)
        await database.shutdown()
    }
}
