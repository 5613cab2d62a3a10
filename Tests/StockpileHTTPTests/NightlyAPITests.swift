import CSV
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Hummingbird
import HummingbirdTesting
import NIOCore
import PQ
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// The stored nightly report through GET /api/v1/reports/nightly/{date}: JSON, CSV per section
/// parsed back, and the printable page parsed as XML. Numbers are NightlyTests' hand computation.
@Suite(.serialized) struct NightlyAPITests {
    struct Fixture {
        let database: StockpileDatabase
        let admin: String, commandD: String, clerk: String
    }

    static func fixture() async throws -> Fixture {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(NightlyDistrict.files)
        for region in [nil, "D"] as [String?] {
            _ = try await PostgresNightly(database, scope: .system("test")).run(asOf: LocalDate(NightlyDistrict.asOf)!, region: region)
        }
        let tokens = PostgresTokens(database, scope: .system("test"))
        return Fixture(database: database,
                       admin: try await tokens.create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret,
                       commandD: try await tokens.create(name: "command-d", role: .command, region: "D", facilities: [], validDays: 1).secret,
                       clerk: try await tokens.create(name: "clerk", role: .warehouse, region: nil, facilities: ["H1"], validDays: 1).secret)
    }

    func get(_ f: Fixture, _ uri: String, token: String) async throws -> TestResponse {
        try await buildApplication(StockpileServices(database: f.database), settings: HTTPSettings(host: "127.0.0.1", port: 0)).test(.router) { client in
            try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"])
        }
    }

    func post(_ f: Fixture, _ uri: String, token: String, body: [String: Any]? = nil) async throws -> TestResponse {
        let buffer = body.map { ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: $0)) }
        return try await buildApplication(StockpileServices(database: f.database), settings: HTTPSettings(host: "127.0.0.1", port: 0)).test(.router) { client in
            try await client.execute(uri: uri, method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"], body: buffer)
        }
    }

    /// What a replace changes: the reports (and which are current), the orders' statuses, the audit of replaces.
    func replaceState(_ f: Fixture) throws -> [String] {
        try TestDatabase.ownerConnection(f.database.location).query("""
            SELECT 'report ' || as_of || ' ' || scope || ' ' || generation || ' ' || (superseded_at IS NULL) AS s FROM nightly_reports
            UNION ALL SELECT 'order ' || id || ' ' || status FROM reallocation_orders
            UNION ALL SELECT 'audit ' || count(*) FROM audit_log WHERE action = 'nightly.replace'
            ORDER BY 1
            """).rows.map { try $0.decode("s") }
    }

    func json(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
    }

    @Test func jsonForEachScopeAndRefusals() async throws {
        let f = try await Self.fixture()
        let path = "/api/v1/reports/nightly/2026-11-22"
        // Admin: the whole city, where X's 120 gloves join C1's 300.
        let city = try await get(f, path, token: f.admin)
        #expect(city.status == .ok)
        let items = json(city)["items"] as? [[String: Any]] ?? []
        #expect(items.map { "\($0["item"]!) \($0["procurement"]!)" } == ["GLOVE 420", "N95 50"])
        // A command token gets its own region's report by default, and may not look above it.
        let own = try await get(f, path, token: f.commandD)
        #expect(own.status == .ok)
        #expect(json(own)["region"] as? String == "D")
        #expect((json(own)["items"] as? [[String: Any]] ?? []).map { "\($0["item"]!) \($0["procurement"]!)" } == ["GLOVE 300", "N95 50"])
        #expect(try await get(f, path + "?region=E", token: f.commandD).status == .forbidden)
        #expect(try await get(f, path, token: f.clerk).status == .forbidden)
        #expect(try await get(f, "/api/v1/reports/nightly/2026-11-23", token: f.admin).status == .notFound)
        #expect(try await get(f, "/api/v1/reports/nightly/2026-13-01", token: f.admin).status == .badRequest)
        #expect(try await get(f, path + "?format=csv&section=nope", token: f.admin).status == .badRequest)
        await f.database.shutdown()
    }

    @Test func everySectionIsACSVWithChineseHeadersThatParsesBack() async throws {
        let f = try await Self.fixture()
        var parsed: [String: [[String: String]]] = [:]
        for section in NightlyReportTables.Section.allCases {
            let response = try await get(f, "/api/v1/reports/nightly/2026-11-22?format=csv&section=\(section.rawValue)", token: f.commandD)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/csv; charset=utf-8")
            let bytes = Array(Data(buffer: response.body))
            // The byte-order mark spreadsheet programs need to read UTF-8 as such.
            #expect(bytes.prefix(3) == [0xEF, 0xBB, 0xBF])
            let text = String(decoding: bytes.dropFirst(3), as: UTF8.self)
            let reader = try CSVReader(string: text, hasHeaderRow: true)
            #expect(reader.headerRow == NightlyReportTables.header(section), "\(section)")
            var rows: [[String: String]] = []
            while reader.next() != nil { rows.append(reader.currentRow.map { Dictionary(uniqueKeysWithValues: zip(reader.headerRow!, $0)) } ?? [:]) }
            parsed[section.rawValue] = rows
        }
        #expect(parsed["call_offs"]?.map { "\($0["设施编码"]!) \($0["合同编号"]!) \($0["调用前需求"]!) \($0["调用数量"]!) \($0["本地企业"]!)" }
                == ["H1 K2 2100 800 是", "H1 K1 1300 1000 否"])
        #expect(parsed["activations"]?.map { "\($0["产能编号"]!) \($0["目标期内产量"]!) \($0["启用数量"]!)" } == ["P1 100 100", "P3 150 150"])
        #expect(parsed["procurement"]?.map { "\($0["设施名称"]!) \($0["物资名称"]!) \($0["采购数量"]!)" }
                == ["第一卫生院 医用手套 300", "第一人民医院 N95口罩 50"])
        let h1 = try #require(parsed["procurement"]?.last)
        #expect(h1["调拨来源"]?.contains("W×300") == true && h1["调拨来源"]?.contains("H2×100") == true)
        #expect(h1["日需求量"] == "100.0000" && h1["需求依据"] == "满负荷" && h1["实物保障天数"] == "5.00" && h1["缺口数量"] == "2500"
                && h1["调拨补充"] == "400" && h1["合同调用"] == "1800" && h1["产能启用"] == "250")
        #expect(parsed["contract_gaps"]?.map { $0["需补签数量"]! } == ["300", "60", "600", "150", "3000", "300"])
        #expect(parsed["expiring"]?.map { "\($0["批号"]!) \($0["预计过期未用数量"]!) \($0["建议调往"]!) \($0["调往设施可用数量"]!)" } == ["GX 500 H1 200"])
        #expect(parsed["stale"]?.map { "\($0["设施编码"]!)/\($0["物资编码"]!) \($0["最后变动日期"]!)" }
                == ["C1/GLOVE 从无", "C1/GOWN 2026-11-01", "W/N95 2026-11-01"])
        #expect(parsed["orders"]?.count == 2)
        await f.database.shutdown()
    }

    /// Collects the page's sections and table cells while an XML parser reads it.
    final class PageReader: NSObject, XMLParserDelegate {
        var sections: [String] = []
        var cells: [String] = []
        var text = ""
        var inCell = false
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if name == "section" { sections.append(attributes["id"] ?? "") }
            if name == "td" { inCell = true; text = "" }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { if inCell { text += string } }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "td" { cells.append(text); inCell = false }
        }
    }

    @Test func thePrintablePageHasEverySectionOnItsOwnPage() async throws {
        let f = try await Self.fixture()
        let response = try await get(f, "/api/v1/reports/nightly/2026-11-22?format=html", token: f.admin)
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == "text/html; charset=utf-8")
        let page = String(buffer: response.body)
        #expect(page.contains("<html lang=\"zh-CN\">") && page.contains("size: A4") && page.contains("break-before: page"))
        // Well-formed: an XML parser reads it to the end (the DOCTYPE aside).
        let xml = page.replacingOccurrences(of: "<!DOCTYPE html>", with: "")
        let parser = XMLParser(data: Data(xml.utf8))
        let reader = PageReader()
        parser.delegate = reader
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(reader.sections == NightlyReportTables.Section.allCases.map(\.rawValue))
        // The whole city's numbers are in the cells: K2's 800, X's 120 gloves, the expiring lot GX.
        #expect(reader.cells.contains("K2") && reader.cells.contains("800") && reader.cells.contains("X") && reader.cells.contains("GX"))
        #expect(page.contains("夜间补货报告 · 2026-11-22 · 全部辖区"))
        await f.database.shutdown()
    }

    @Test func replaceIsForAdminsAndSupersedesTheStoredReport() async throws {
        let f = try await Self.fixture()
        let path = "/api/v1/reports/nightly/2026-11-22/replace"
        let before = try replaceState(f)
        // A command token (even for its own region) and a clerk may not; nothing changes.
        #expect(try await post(f, path, token: f.commandD).status == .forbidden)
        #expect(try await post(f, path + "?region=D", token: f.commandD).status == .forbidden)
        #expect(try await post(f, path, token: f.clerk).status == .forbidden)
        // A date without a report is not made by a replace; a date that is no date is refused.
        #expect(try await post(f, "/api/v1/reports/nightly/2026-11-23/replace", token: f.admin).status == .notFound)
        #expect(try await post(f, "/api/v1/reports/nightly/2026-13-01/replace", token: f.admin).status == .badRequest)
        #expect(try await post(f, path + "?region=NOPE", token: f.admin).status == .notFound)
        #expect(try replaceState(f) == before)

        // The admin replaces the city's report: generation 2, the first run's 2 proposed orders cancelled.
        let replaced = try await post(f, path, token: f.admin)
        #expect(replaced.status == .created)
        let out = json(replaced)
        #expect(out["generation"] as? Int == 2 && out["replay"] as? Bool == false && out["positions"] as? Int == 15)
        let superseded = out["superseded"] as? [String: Any] ?? [:]
        #expect(superseded["generation"] as? Int == 1 && superseded["cancelled_orders"] as? Int == 2)
        #expect((superseded["reason"] as? String)?.hasPrefix("superseded by the nightly report rerun of 2026-11-22 at ") == true)
        #expect(out["request_id"] as? String != superseded["request_id"] as? String)
        // GET reads the new one; region D's report is untouched.
        let city = json(try await get(f, "/api/v1/reports/nightly/2026-11-22", token: f.admin))
        #expect(city["request_id"] as? String == out["request_id"] as? String)
        let after = try replaceState(f)
        #expect(after.contains("report 2026-11-22 * 1 false") && after.contains("report 2026-11-22 * 2 true") && after.contains("report 2026-11-22 D 1 true"))
        #expect(after.contains("audit 1"))
        // Audited under the admin token's name.
        let audit = try TestDatabase.ownerConnection(f.database.location)
            .query("SELECT token_name FROM audit_log WHERE action = 'nightly.replace'").rows.map { try $0.decode("token_name", as: String.self) }
        #expect(audit == ["admin"])
        await f.database.shutdown()
    }

    @Test func aClientPostingTheOldNightlyIdFirstDoesNotBecomeTheNightlysOrders() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(NightlyDistrict.files)
        let command = try await PostgresTokens(database, scope: .system("test"))
            .create(name: "command-d", role: .command, region: "D", facilities: [], validDays: 1).secret
        let f = Fixture(database: database, admin: command, commandD: command, clerk: command)
        // The old run's request id was md5 of its name: anyone could compute it.
        let guessed: String = try TestDatabase.ownerConnection(database.location)
            .query("SELECT md5('stockpile/nightly/2026-11-22/D')::uuid::text AS id").rows[0].decode("id")
        let posted = try await post(f, "/api/v1/reallocations", token: command,
                                    body: ["id": guessed, "as_of": "2026-11-22", "region": "D", "max_distance_km": 10])
        #expect(posted.status == .created)
        let clientOrders = (json(posted)["orders"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int64 ?? ($0["id"] as? Int).map(Int64.init) }
        #expect(clientOrders.count == 1)
        let run = try await PostgresNightly(database, scope: .system("nightly")).run(asOf: LocalDate(NightlyDistrict.asOf)!, region: "D")
        #expect(!run.replay && run.report.requestID != guessed)
        #expect(Set(run.report.orders.map { "\($0.from)>\($0.to) \($0.quantity)" }) == ["W>H1 300", "H2>H1 100"])
        #expect(Set(run.report.orders.map(\.id)).isDisjoint(with: clientOrders))
        await database.shutdown()
    }
}
