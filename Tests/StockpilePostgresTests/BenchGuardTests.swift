import Foundation
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

/// `stockpile bench cover|plan|nightly` write into the database they are pointed at: they refuse
/// one `stockpile generate` did not make (SyntheticDistrict.requireGenerated) unless told
/// --allow-real-data, and generate writes only into an empty database.
@Suite(.serialized) struct BenchGuardTests {
    let zone = TimeZone(identifier: "Asia/Shanghai")!

    func movements(_ database: StockpileDatabase) throws -> Int {
        try TestDatabase.ownerConnection(database.location).query("SELECT count(*) AS n FROM movements").rows[0].decode("n")
    }

    @Test func aDatabaseGenerateDidNotMakeIsRefusedUnlessAllowed() async throws {
        let real = try TestDatabase.fresh()
        _ = try await CSVImporter(real, scope: .system("test")).importFiles(NightlyDistrict.files)
        let before = try movements(real)
        #expect(try await !SyntheticDistrict.isGenerated(real))
        let refusal = await #expect(throws: SyntheticDistrict.NotGenerated.self) {
            try await SyntheticDistrict.requireGenerated(real, allowRealData: false, benchmark: "bench cover", writes: "record issues into its ledger")
        }
        #expect(refusal?.description.contains("--allow-real-data") == true)
        #expect(refusal?.description.contains("bench cover") == true)
        // Told explicitly, it lets the benchmark run.
        try await SyntheticDistrict.requireGenerated(real, allowRealData: true, benchmark: "bench cover", writes: "record issues into its ledger")
        // generate will not mark real data as its own: it refuses a database with facilities, and writes nothing.
        await #expect(throws: SyntheticDistrict.GenerateError.self) {
            try await SyntheticDistrict(facilities: 2, items: 2, days: 9, asOf: LocalDate("2026-11-22")!, timeZone: zone).generate(into: real) { _ in }
        }
        #expect(try await !SyntheticDistrict.isGenerated(real))
        #expect(try movements(real) == before)
        await real.shutdown()
    }

    @Test func aGeneratedCityPasses() async throws {
        let city = try TestDatabase.fresh()
        #expect(try await !SyntheticDistrict.isGenerated(city))
        let summary = try await SyntheticDistrict(facilities: 3, items: 2, days: 9, asOf: LocalDate("2026-11-22")!, timeZone: zone)
            .generate(into: city) { _ in }
        #expect(summary.positions == 6)
        #expect(try await SyntheticDistrict.isGenerated(city))
        try await SyntheticDistrict.requireGenerated(city, allowRealData: false, benchmark: "bench nightly", writes: "delete a report")
        await city.shutdown()
    }
}
