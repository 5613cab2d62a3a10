import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PQ
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Issue 17, part 6: a trend series over 30 generated days (the district's history rebuilt date by
/// date from the ledgers), each point equal to that date's cover as it stood; a change of the demand
/// basis marked; tonight's run recorded as nightly; scope, bad input, the CSV and the page.
@Suite(.serialized) struct TrendTests {
    @Test func aTrendSeriesOver30GeneratedDays() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        var files: [String: String] = [:]
        for name in CSVImporter.fileOrder where name != "stock" {
            if let text = try? String(contentsOf: TestDatabase.districtA.appendingPathComponent("\(name).csv"), encoding: .utf8) { files[name] = text }
        }
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(files)
        let tokens = PostgresTokens(database, scope: .system("test"))
        let admin = try await tokens.create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let command = try await tokens.create(name: "command-d1", role: .command, region: "D1", facilities: [], validDays: 1).secret
        let clerk = try await tokens.create(name: "clerk", role: .warehouse, region: nil, facilities: ["D1-H1"], validDays: 1).secret
        let trends = PostgresTrends(database, scope: .system("test"))
        let first = LocalDate("2026-10-23")!
        for day in 0..<30 { #expect(try await trends.recordAsStood(asOf: first.adding(days: day)) > 0) }

        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            func series(_ query: String, as who: AuthorizedClient? = nil) async throws -> [[String: Any]] {
                let response = try await (who ?? client).execute(uri: "/api/v1/trends?\(query)", method: .get)
                #expect(response.status == .ok, "\(query): \(String(buffer: response.body))")
                return body(response)["series"] as? [[String: Any]] ?? []
            }
            let n95 = try await series("item=N95&from=2026-10-23&to=2026-11-21")
            #expect(n95.count == 1 && n95.first?["item_name"] as? String == "N95口罩")
            let points = n95.first?["points"] as? [[String: Any]] ?? []
            #expect(points.map { $0["as_of"] as? String } == (0..<30).map { first.adding(days: $0).description })
            #expect(points.allSatisfy { $0["source"] as? String == "as_stood" })
            #expect(Set(points.compactMap { $0["physical_qty"] as? Int }).count > 5)  // the stock moved over the month
            #expect(points.allSatisfy { $0["basis_change"] == nil })

            // Each point is that date's cover as it stood, summed (days: the sums' quotient).
            for date in ["2026-10-23", "2026-11-10", "2026-11-21"] {
                let rows = body(try await client.execute(uri: "/api/v1/cover?as_of=\(date)&as_stood=true&item=N95&limit=10000", method: .get))["rows"]
                    as? [[String: Any]] ?? []
                let point = points.first { $0["as_of"] as? String == date }!
                let physical = rows.map { $0["physical_qty"] as? Int ?? 0 }.reduce(0, +)
                let demand = rows.map { $0["daily_demand"] as? Double ?? 0 }.reduce(0, +)
                #expect(point["physical_qty"] as? Int == physical && point["positions"] as? Int == rows.count)
                #expect(point["shortfall_qty"] as? Int == rows.map { $0["shortfall_qty"] as? Int ?? 0 }.reduce(0, +))
                #expect((point["bands"] as? [String: Int])?["stockout"] == rows.filter { $0["band"] as? String == "stockout" }.count)
                #expect(abs((point["physical_days"] as? Double ?? -1) - Double(physical) / demand) < 1e-6)
            }

            // A change of the demand basis is marked at the first date it shows.
            #expect(try await client.execute(uri: "/api/v1/demand/D1-H1/N95", method: .put, headers: [.contentType: "application/json"],
                                             body: ByteBuffer(string: "{\"full_load_daily\": 900}")).status == .ok)
            #expect(try await trends.recordAsStood(asOf: LocalDate("2026-11-22")!) > 0)
            let marked = (try await series("item=N95&from=2026-10-23&to=2026-11-22")).first?["points"] as? [[String: Any]] ?? []
            #expect(marked.count == 31 && (marked.last?["basis_change"] as? String)?.contains("满负荷需求") == true)
            #expect(marked.dropLast().allSatisfy { $0["basis_change"] == nil })

            // Tonight's run records today's, as nightly.
            let today = LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!)
            _ = try await PostgresNightly(database, scope: .system("test")).run(asOf: today, region: nil)
            let tonight = (try await series("item=N95&days=1")).first?["points"] as? [[String: Any]] ?? []
            #expect(tonight.count == 1 && tonight.first?["source"] as? String == "nightly" && tonight.first?["as_of"] as? String == today.description)

            // A command token: its own region by default, not another's; a clerk: not at all.
            let all = (try await series("item=N95&from=2026-11-21&to=2026-11-21")).first?["points"] as? [[String: Any]] ?? []
            let d1 = (try await series("item=N95&from=2026-11-21&to=2026-11-21", as: AuthorizedClient(base: base, token: command))).first?["points"]
                as? [[String: Any]] ?? []
            #expect((d1.first?["positions"] as? Int ?? 0) > 0 && (d1.first?["positions"] as? Int ?? 0) < (all.first?["positions"] as? Int ?? 0))
            #expect(try await AuthorizedClient(base: base, token: command).execute(uri: "/api/v1/trends?region=D2", method: .get).status == .forbidden)
            #expect(try await AuthorizedClient(base: base, token: clerk).execute(uri: "/api/v1/trends", method: .get).status == .forbidden)
            for bad in ["from=2026-11-22&to=2026-11-21", "days=0", "days=367", "from=0001-01-01&to=0001-01-05", "to=nope", "region=NOWHERE"] {
                let refused = try await client.execute(uri: "/api/v1/trends?\(bad)", method: .get)
                #expect(refused.status == .badRequest || refused.status == .notFound, "\(bad): \(refused.status)")
            }

            // The CSV: a row per date, Chinese headers.
            let csv = String(buffer: try await client.execute(uri: "/api/v1/trends?item=N95&from=2026-10-23&to=2026-11-22&format=csv", method: .get).body)
            let lines = csv.split(whereSeparator: \.isNewline)
            #expect(lines.count == 32 && lines[0].contains("实物天数") && lines[0].contains("基准变更"))

            // The page: one chart per item; one item larger, with its table and the mark.
            var browser = PageTests.Browser(AuthorizedClient(base: base, token: nil))
            _ = try await browser.signIn(admin)
            let page = PageTests.html(try await browser.request("/trends?from=2026-10-23&to=2026-11-22"))
            #expect(page.contains("<svg class=\"trend") && page.contains("class=\"physical\"") && page.contains("data-item=\"N95\""))
            let everyItem = try await series("from=2026-10-23&to=2026-11-22")
            // Every item of the district: N95, MASK, GOWN, GLOVE, ALC, AVD.
            #expect(everyItem.map { $0["item"] as? String ?? "" } == ["ALC", "AVD", "GLOVE", "GOWN", "MASK", "N95"])
            #expect(page.components(separatedBy: "<svg class=\"trend").count - 1 == everyItem.count, "\(page.count)")
            let one = PageTests.html(try await browser.request("/trends?item=N95&from=2026-10-23&to=2026-11-22"))
            #expect(one.contains("<g class=\"basis\">") && one.contains("满负荷需求") && one.contains("按台账重建"))
            #expect(try await browser.request("/trends?from=2026-13-01").status == .badRequest)
            var clerkBrowser = PageTests.Browser(AuthorizedClient(base: base, token: nil))
            _ = try await clerkBrowser.signIn(clerk)
            #expect(try await clerkBrowser.request("/trends").status == .forbidden)
        }
    }
}
