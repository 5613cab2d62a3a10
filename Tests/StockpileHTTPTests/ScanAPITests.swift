import Foundation
import HummingbirdTesting
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// `POST /api/v1/scan` and items' GTINs (issue 16, part 2).
@Suite struct ScanAPITests {
    static let itemsWithGTIN = "code,name,category,unit,target_days,shelf_life_days,gtin\nN95,N95口罩,ppe,只,,,6901234567892\nMASK,医用外科口罩,ppe,只,,730,\n"

    @Test func aScanFindsItsItemAndFillsWhatTheCodeSays() async throws {
        let service = try await TestService()
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles(["items": Self.itemsWithGTIN])
        try await service.test { client in
            let scan = { (code: String, token: String?) in
                try await client.with(token ?? service.admin).post("/api/v1/scan", ["code": code])
            }
            // A DataMatrix of N95: the item, lot, expiry and serial; for every role that reads.
            for token in [service.admin, service.clerkH, service.commandD] {
                let found = try await scan("]d20106901234567892111412311727053110A213B1\u{1D}211234", token)
                #expect(found.status == .ok)
                let answer = body(found)
                #expect((answer["item"] as? [String: Any])?["code"] as? String == "N95")
                #expect(answer["lot"] as? String == "A213B1" && answer["expiry"] as? String == "2027-05-31" && answer["serial"] as? String == "1234")
                #expect(answer["kind"] as? String == "gs1" && answer["symbology"] as? String == "]d2")
            }
            // The same item by Digital Link, and by its bare EAN-13.
            #expect((body(try await scan("https://id.gs1.org/01/06901234567892/10/B7?17=280200", nil))["item"] as? [String: Any])?["code"] as? String == "N95")
            #expect(body(try await scan("https://id.gs1.org/01/06901234567892/10/B7?17=280200", nil))["expiry"] as? String == "2028-02-29")
            let bare = body(try await scan("6901234567892", nil))
            #expect((bare["item"] as? [String: Any])?["code"] as? String == "N95" && bare["lot"] == nil)
            #expect(bare["warnings"] as? [String] == ["no_lot_or_expiry"])

            // A lost separator: no lot filled in, and a warning saying why.
            let lost = body(try await scan("0106901234567892111412311715070710A213B1211234", nil))
            #expect(lost["lot"] == nil && lost["serial"] == nil)
            #expect(lost["warnings"] as? [String] == ["separator_missing_after_10"])

            // Readable, but no item has the GTIN, or the code names none: item null, a message, nothing guessed.
            let unknown = body(try await scan("(01)04150469848975(10)X1", nil))
            #expect(unknown["item"] == nil && (unknown["message"] as? String)?.contains("04150469848975") == true)
            let drug = body(try await scan("83857930000879766660", nil))
            #expect(drug["item"] == nil && drug["drug_code"] as? String == "8385793" && drug["kind"] as? String == "drug_trace")

            // Unreadable: 400 naming the code and why; and no token: 401.
            // MA.…E00010101 once trapped the process (no day before 0001-01-01).
            for bad in ["(01)06901234567893", "hello", "", String(repeating: "1", count: 5000), "MA.156.M0.1.2.E00010101"] {
                let refused = try await scan(bad, nil)
                #expect(refused.status == .badRequest && errorOf(refused).field == "code", "\(bad.prefix(20)): \(String(buffer: refused.body))")
            }
            #expect(try await client.with(nil).post("/api/v1/scan", ["code": "6901234567892"]).status == .unauthorized)
        }
    }

    @Test func aGTINIsCheckedAndBelongsToOneItem() async throws {
        let service = try await TestService()
        let importer = CSVImporter(service.database, scope: .system("test"))
        do {
            _ = try await importer.importFiles(["items": "code,name,category,unit,target_days,shelf_life_days,gtin\nN95,N95口罩,ppe,只,,,6901234567893\n"])
            Issue.record("a wrong check digit was imported")
        } catch let error as ImportError {
            #expect(error.column == "gtin" && error.row == 2, "\(error)")
        }
        _ = try await importer.importFiles(["items": Self.itemsWithGTIN])
        do {
            _ = try await importer.importFiles(["items": "code,name,category,unit,target_days,shelf_life_days,gtin\nMASK,医用外科口罩,ppe,只,,730,06901234567892\n"])
            Issue.record("one GTIN was given to two items")
        } catch let error as ImportError {
            #expect(error.column == "gtin" && error.reason.contains("N95"), "\(error)")
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM items WHERE gtin = '06901234567892'") == 1)
    }
}
