import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

@Suite(.serialized) struct CoverAPITests {
    @Test func coverOfTheExampleDistrictOverHTTP() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let tokens = PostgresTokens(database, scope: .system("test"))
        let admin = try await tokens.create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let clerk = try await tokens.create(name: "clerk", role: .warehouse, region: nil, facilities: ["D1-H1"], validDays: 1).secret
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let one = body(try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&facility=D1-H1&item=MASK", method: .get))
            let row = try #require((one["rows"] as? [[String: Any]])?.first)
            #expect(row["shortfall_qty"] as? Int == 3196)
            #expect(abs((row["physical_days"] as? Double ?? 0) - 0.6986) < 0.01)
            #expect(row["band"] as? String == "<3d")

            // The whole district, worst shortfall first, paged.
            let all = body(try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&limit=5", method: .get))
            #expect(all["total"] as? Int == 144)
            let shortfalls = (all["rows"] as? [[String: Any]] ?? []).compactMap { $0["shortfall_qty"] as? Int }
            #expect(shortfalls.count == 5 && shortfalls == shortfalls.sorted(by: >))
            let stockouts = body(try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&band=stockout&limit=1000", method: .get))
            #expect((stockouts["rows"] as? [[String: Any]] ?? []).allSatisfy { $0["band"] as? String == "stockout" })

            // A surge of 1.5 raises demand by half.
            let surged = body(try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&facility=D1-H1&item=N95&surge=1.5", method: .get))
            #expect(((surged["rows"] as? [[String: Any]])?.first?["daily_demand"] as? Double) == 900)

            // CSV with Chinese headers and a byte-order mark, for spreadsheets.
            let csv = try await client.execute(uri: "/api/v1/cover?as_of=2026-11-22&region=D2&format=csv", method: .get)
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            let text = String(buffer: csv.body)
            #expect(text.hasPrefix("\u{FEFF}设施编码,设施名称,物资编码"))
            #expect(text.split(separator: "\r\n").count == 1 + 8 * 6)

            // A clerk sees only its own facility's rows.
            let mine = body(try await client.with(clerk).execute(uri: "/api/v1/cover?as_of=2026-11-22&limit=1000", method: .get))
            #expect(Set((mine["rows"] as? [[String: Any]] ?? []).compactMap { $0["facility"] as? String }) == ["D1-H1"])

            let bad = try await client.execute(uri: "/api/v1/cover?as_of=22/11/2026", method: .get)
            #expect(bad.status == .badRequest && errorOf(bad).field == "as_of")
            #expect(try await client.execute(uri: "/api/v1/cover?band=red", method: .get).status == .badRequest)
        }
        await database.shutdown()
    }
}
