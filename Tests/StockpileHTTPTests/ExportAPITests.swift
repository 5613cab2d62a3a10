import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import Testing

/// GET /api/v1/export/{file} (issue 19): what each token's role and scope may take out.
@Suite struct ExportAPITests {
    /// The test district, with region E and its facility X beside D.
    func service() async throws -> TestService {
        let service = try await TestService(reserves: true)
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles([
            "regions": "code,name,parent_code\nE,第二区,C\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nX,=第二区医院,hospital,E,100,30.3,114.4,false\n",
            "stock": "facility_code,item_code,lot,expiry,quantity\nX,N95,XLOT,2028-03-31,9\n",
        ])
        return service
    }

    /// The data rows of a CSV answer (byte-order mark and header checked and dropped).
    func rows(_ response: TestResponse, header: String) -> [String] {
        let text = String(buffer: response.body)
        #expect(text.hasPrefix("\u{FEFF}" + header + "\r\n"), "\(text.prefix(120))")
        return text.split(separator: "\r\n").dropFirst().map(String.init)
    }

    @Test func eachRoleTakesOutWhatItsScopeHolds() async throws {
        let service = try await service()
        try await service.test { client in
            // The administrator: everything, a formula-looking name made inert.
            let all = try await client.get("/api/v1/export/facilities")
            #expect(all.status == .ok && all.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(all.headers[.contentDisposition] == "attachment; filename=\"facilities.csv\"")
            let facilities = rows(all, header: Facility.csvColumns.joined(separator: ","))
            #expect(facilities.map { String($0.prefix(2)) } == ["H,", "W,", "X,"])
            #expect(facilities[2].hasPrefix("X,'=第二区医院,hospital,E,100,30.3,114.4,false"))
            // …or a region's subtree, with the regions above it.
            let regionsE = rows(try await client.get("/api/v1/export/regions.csv?region=E"), header: "code,name,parent_code")
            #expect(regionsE == ["C,示范市,", "E,第二区,C"])

            // The command centre of D: its own subtree, whatever region it names.
            let command = client.with(service.commandD)
            #expect(rows(try await command.get("/api/v1/export/facilities"), header: Facility.csvColumns.joined(separator: ","))
                .map { String($0.prefix(2)) } == ["H,", "W,"])
            #expect(rows(try await command.get("/api/v1/export/regions"), header: "code,name,parent_code") == ["C,示范市,", "D,第一区,C"])
            #expect(rows(try await command.get("/api/v1/export/stock?region=E"), header: StockCount.csvColumns.joined(separator: ",")).isEmpty)

            // A clerk: its own facility's stock and movements, nothing else.
            let clerk = client.with(service.clerkH)
            #expect(rows(try await clerk.get("/api/v1/export/stock"), header: StockCount.csvColumns.joined(separator: ","))
                == ["H,N95,KEPT,2028-01-31,40"])
            let ledger = rows(try await clerk.get("/api/v1/export/movements?since=2020-01-01"), header: MovementDraft.csvColumns.joined(separator: ","))
            #expect(ledger.count == 1 && ledger[0].contains(",H,N95,KEPT,2028-01-31,count,40,"))
            #expect(rows(try await client.with(service.clerkW).get("/api/v1/export/stock"), header: StockCount.csvColumns.joined(separator: ",")).isEmpty)
            let refused = try await clerk.get("/api/v1/export/contracts")
            #expect(refused.status == .forbidden && errorOf(refused).field == "file")
            #expect(try await client.with(nil).get("/api/v1/export/stock").status == .unauthorized)
        }
    }

    @Test func aWrongFileRegionOrDateIsRefusedByName() async throws {
        let service = try await service()
        let before = try service.ledgerState()
        try await service.test { client in
            for (uri, status, field) in [
                ("/api/v1/export/passwords", HTTPResponse.Status.notFound, "file"),
                ("/api/v1/export/stock?region=NOPE", .notFound, "region"),
                ("/api/v1/export/stock?since=2026-11-01", .badRequest, "since"),
                ("/api/v1/export/movements?since=2026-13-01", .badRequest, "since"),
                ("/api/v1/export/movements?since=%27%3B%20DROP%20TABLE%20movements", .badRequest, "since"),
                ("/api/v1/export/stock?region=" + String(repeating: "R", count: 500), .badRequest, "region"),
            ] {
                let response = try await client.get(uri)
                #expect(response.status == status && errorOf(response).field == field, "\(uri): \(response.status) \(String(buffer: response.body).prefix(200))")
            }
        }
        #expect(try service.ledgerState() == before)
    }

    @Test func theMovementsSinceADateAreThoseThatHappenedFromItsStart() async throws {
        let service = try await service()
        try await service.test { client in
            for (id, at) in [("11111111-1111-4111-8111-111111111111", "2026-11-01T23:59:59.999999+08:00"),
                             ("22222222-2222-4222-8222-222222222222", "2026-11-02T00:00:00+08:00")] {
                let response = try await client.post("/api/v1/movements", movement("receipt", 3, lot: "L9", id: id, extra: ["occurred_at": at]))
                #expect(response.status == .created)
            }
            let ledger = rows(try await client.get("/api/v1/export/movements?since=2026-11-02"), header: MovementDraft.csvColumns.joined(separator: ","))
            #expect(!ledger.contains { $0.hasPrefix("11111111-") })
            #expect(ledger.contains { $0.hasPrefix("22222222-") && $0.contains(",receipt,3,2026-11-02T00:00:00+08:00,") })
            // The microseconds survive: an instant is written as it was recorded.
            let whole = rows(try await client.get("/api/v1/export/movements"), header: MovementDraft.csvColumns.joined(separator: ","))
            #expect(whole.contains { $0.hasPrefix("11111111-") && $0.contains(",2026-11-01T23:59:59.999999+08:00,") })
        }
    }

    /// The dashboard's download links (the command centre's "导出表格"): the signed-in scope's files.
    @Test func theDashboardLinksTheSpreadsheetsOfItsScope() async throws {
        let service = try await service()
        try await service.test { client in
            var browser = PageTests.Browser(client)
            #expect(try await browser.request("/export/stock.csv").status == .seeOther)
            _ = try await browser.signIn(service.commandD)
            let page = PageTests.html(try await browser.request("/"))
            #expect(page.contains("导出表格") && page.contains("href=\"/export/movements.csv?region=D\""))
            let stock = try await browser.request("/export/stock.csv")
            #expect(stock.status == .ok && stock.headers[.contentDisposition] == "attachment; filename=\"D-stock.csv\"")
            #expect(rows(stock, header: StockCount.csvColumns.joined(separator: ",")) == ["H,N95,KEPT,2028-01-31,40"])
            // The API does not take the cookie.
            #expect(try await browser.request("/api/v1/export/stock").status == .unauthorized)

            var clerk = PageTests.Browser(client)
            _ = try await clerk.signIn(service.clerkH)
            let refused = try await clerk.request("/export/contracts.csv")
            #expect(refused.status == .forbidden && PageTests.html(refused).contains("warehouse token"))
            #expect(try await clerk.request("/export/stock.csv").status == .ok)
        }
    }

    /// Exports hold a pooled connection while their clients read: two at a time, a third is told to wait.
    @Test func theGateLetsTwoExportsStreamAtOnce() {
        let gate = ExportGate()
        #expect((0..<ExportGate.limit).allSatisfy { _ in gate.enter() })
        #expect(!gate.enter())
        gate.leave()
        #expect(gate.enter())
        #expect(!gate.enter())
        #expect(ExportGate.limit == 2)
    }
}
