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

    /// item_barcodes.csv: a box's and a carton's GTIN with their units, an MA device identifier and
    /// a drug code name the item; a code names one item; GET /api/v1/barcodes lists them all.
    @Test func boxesCartonsMAAndDrugCodesNameTheirItem() async throws {
        let service = try await TestService()
        let importer = CSVImporter(service.database, scope: .system("test"))
        _ = try await importer.importFiles(["items": Self.itemsWithGTIN, "item_barcodes": """
            item_code,code,units,level
            N95,16901234567899,10,盒
            N95,26901234567896,200,箱
            MASK,MA.156.M0.100761.21234561,1,
            MASK,8385793,50,盒

            """])
        try await service.test { client in
            let scan = { (code: String) in body(try await client.post("/api/v1/scan", ["code": code])) }
            let box = try await scan("(01)16901234567899(10)B1(17)280630")
            #expect((box["item"] as? [String: Any])?["code"] as? String == "N95" && box["units"] as? Int == 10 && box["level"] as? String == "盒")
            #expect(box["lot"] as? String == "B1" && box["expiry"] as? String == "2028-06-30")
            let carton = try await scan("]C1012690123456789637200")
            #expect((carton["item"] as? [String: Any])?["code"] as? String == "N95" && carton["units"] as? Int == 200)
            let each = try await scan("6901234567892")
            #expect(each["units"] as? Int == 1 && each["level"] == nil)
            let ma = try await scan("MA.156.M0.100761.21234561.L2406.E20270101")
            #expect((ma["item"] as? [String: Any])?["code"] as? String == "MASK" && ma["lot"] as? String == "2406" && ma["expiry"] as? String == "2026-12-31")
            let drug = try await scan("83857930000879766660")
            #expect((drug["item"] as? [String: Any])?["code"] as? String == "MASK" && drug["units"] as? Int == 50)
            let listed = body(try await client.with(service.clerkH).get("/api/v1/barcodes"))["barcodes"] as? [[String: Any]] ?? []
            #expect(listed.count == 5 && Set(listed.compactMap { $0["code"] as? String }).contains("8385793"))
        }
        // Refused by row and column, and nothing of the file kept.
        let bad: [(String, String)] = [
            ("N95,16901234567899,10,\nMASK,16901234567899,10,\n", "code"),      // twice in the file
            ("MASK,16901234567899,10,\n", "code"),                               // another item's box
            ("MASK,06901234567892,1,\n", "code"),                                // another item's own GTIN
            ("N95,06901234567892,1,\n", "code"),                                 // the item's own GTIN again
            ("NOSUCH,06901234567908,1,\n", "item_code"),
            ("N95,06901234567908,0,\n", "units"),
            ("N95,06901234567909,1,\n", "code"),                                 // check digit
            ("N95,MA.156,1,\n", "code"),
        ]
        for (rows, column) in bad {
            let before = try service.scalar("SELECT count(*) AS n FROM item_barcodes")
            do {
                _ = try await importer.importFiles(["item_barcodes": "item_code,code,units,level\n" + rows])
                Issue.record("accepted: \(rows)")
            } catch let error as ImportError {
                #expect(error.column == column, "\(rows): \(error)")
            }
            #expect(try service.scalar("SELECT count(*) AS n FROM item_barcodes") == before)
        }
        // And an item's GTIN may not be another item's box.
        do {
            _ = try await importer.importFiles(["items": "code,name,category,unit,target_days,shelf_life_days,gtin\nMASK,医用外科口罩,ppe,只,,730,16901234567899\n"])
            Issue.record("an item took another item's box GTIN")
        } catch let error as ImportError {
            #expect(error.column == "gtin")
        }
    }
}
