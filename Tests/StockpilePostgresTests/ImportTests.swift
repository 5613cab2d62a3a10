import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

@Suite(.serialized) struct DistrictAImportTests {
    let location: DatabaseLocation
    let database: StockpileDatabase

    init() throws {
        location = try TestDatabase.freshLocation()
        database = StockpileDatabase(location: location, poolSize: 2)
    }

    func scalar(_ sql: String, _ params: [any PQEncodable] = []) throws -> Int {
        try TestDatabase.ownerConnection(location).query(sql, params).first!.decode("n", as: Int.self)
    }

    @Test func loadsTheExampleDistrictAndASecondImportChangesNothing() async throws {
        let importer = CSVImporter(database, scope: .system("test"))
        let first = try await importer.importDirectory(TestDatabase.districtA)
        #expect(first.files["regions.csv"] == ImportSummary.FileSummary(rows: 16, changed: 16, unchanged: 0))
        #expect(first.files["facilities.csv"] == ImportSummary.FileSummary(rows: 24, changed: 24, unchanged: 0))
        #expect(first.files["items.csv"] == ImportSummary.FileSummary(rows: 6, changed: 6, unchanged: 0))
        #expect(first.files["movements.csv"] == ImportSummary.FileSummary(rows: 699, changed: 699, unchanged: 0))
        #expect(first.files["stock.csv"] == ImportSummary.FileSummary(rows: 113, changed: 113, unchanged: 0))

        // D1-H1's surgical masks: an opening receipt of 1027 and 20 days of issues totalling 1002.
        let masks = try scalar("""
            SELECT b.quantity AS n FROM balances b JOIN facilities f ON f.id = b.facility_id JOIN lots l ON l.id = b.lot_id
            WHERE f.code = 'D1-H1' AND l.lot_number = 'H601392'
            """)
        #expect(masks == 25)
        // Chinese text arrives intact.
        let name = try TestDatabase.ownerConnection(location).query("SELECT name FROM facilities WHERE code = 'D1-H1'").first!.decode("name", as: String.self)
        #expect(name == "D1人民医院")
        // The parent links form the tree: 示范市 › 3 districts › 12 townships.
        #expect(try scalar("SELECT count(*) AS n FROM regions WHERE parent_id = (SELECT id FROM regions WHERE code = 'C01')") == 3)

        let snapshot = try ledgerSnapshot()
        let second = try await importer.importDirectory(TestDatabase.districtA)
        for (file, summary) in second.files {
            #expect(summary.changed == 0, "\(file) changed on the second import")
        }
        #expect(try ledgerSnapshot() == snapshot)
        #expect(try await PostgresLedger(database, scope: .system("test")).mismatches().isEmpty)
    }

    /// Movements, balances and master-data timestamps: all that an import could change.
    func ledgerSnapshot() throws -> [String] {
        let c = try TestDatabase.ownerConnection(location)
        return try c.query("""
            SELECT 'm' || count(*) || ':' || coalesce(sum(quantity), 0) AS v FROM movements
            UNION ALL SELECT 'b' || string_agg(facility_id || '/' || lot_id || '=' || quantity || '@' || updated_at, ',' ORDER BY facility_id, lot_id) FROM balances
            UNION ALL SELECT 'r' || string_agg(code || '@' || updated_at, ',' ORDER BY code) FROM regions
            UNION ALL SELECT 'f' || string_agg(code || '@' || updated_at, ',' ORDER BY code) FROM facilities
            UNION ALL SELECT 'i' || string_agg(code || '@' || updated_at, ',' ORDER BY code) FROM items
            """).rows.map { try $0.decode("v", as: String.self) }
    }
}

@Suite(.serialized) struct ImportRejectionTests {
    let location: DatabaseLocation
    let database: StockpileDatabase

    init() throws {
        location = try TestDatabase.freshLocation()
        database = StockpileDatabase(location: location, poolSize: 2)
    }

    let regions = "code,name,parent_code\nC,示范市,\nD,第一区,C\n"
    let facilities = "code,name,kind,region_code,beds,latitude,longitude,designated\nH,人民医院,hospital,D,100,30.1,114.2,true\n"
    let items = "code,name,category,unit,target_days,shelf_life_days\nN95,N95口罩,ppe,只,,\n"

    func count(_ table: String) throws -> Int {
        try TestDatabase.ownerConnection(location).query("SELECT count(*) AS n FROM \(table)").first!.decode("n", as: Int.self)
    }

    func rejected(_ files: [String: String]) async throws -> ImportError {
        do {
            _ = try await CSVImporter(database, scope: .system("test")).importFiles(files)
        } catch let error as ImportError {
            // One bad row rejects the whole import: nothing of any file is loaded.
            #expect(try count("regions") == 0)
            #expect(try count("facilities") == 0)
            #expect(try count("movements") == 0)
            return error
        }
        Issue.record("the import was accepted")
        return ImportError(file: "", row: 0, column: nil, reason: "")
    }

    @Test func aBadFacilityRowRejectsEverything() async throws {
        let bad = facilities + "X,坏行,hospital,D,many,30,114,false\n"
        let error = try await rejected(["regions": regions, "facilities": bad, "items": items])
        #expect(error.file == "facilities.csv")
        #expect(error.row == 3)
        #expect(error.column == "beds")
    }

    @Test func unknownReferencesNameTheirRow() async throws {
        let error = try await rejected(["regions": regions, "facilities": facilities + "W,储备库,warehouse,NOPE,0,,,false\n"])
        #expect(error.file == "facilities.csv" && error.row == 3 && error.column == "region_code")
        #expect(error.reason.contains("NOPE"))

        let parent = try await rejected(["regions": regions + "T,镇,ZZ\n"])
        #expect(parent.row == 4 && parent.column == "parent_code")
    }

    @Test func aRegionCannotBeItsOwnAncestor() async throws {
        let error = try await rejected(["regions": "code,name,parent_code\nA,甲,B\nB,乙,A\n"])
        #expect(error.file == "regions.csv")
        #expect(error.column == "parent_code")
        #expect(error.reason.contains("ancestor"))
    }

    @Test func formatErrors() async throws {
        let kind = try await rejected(["regions": regions, "facilities": facilities.replacingOccurrences(of: "hospital", with: "palace")])
        #expect(kind.row == 2 && kind.column == "kind")
        let duplicate = try await rejected(["regions": regions + "D,重复,C\n"])
        #expect(duplicate.row == 4 && duplicate.column == "code" && duplicate.reason.contains("row 3"))
        let header = try await rejected(["regions": "code,name\nC,市\n"])
        #expect(header.row == 1 && header.column == "parent_code")
        let fields = try await rejected(["regions": regions + "E,多,C,extra\n"])
        #expect(fields.row == 4)
    }

    @Test func historyThatTakesMoreThanWasThereNamesItsRow() async throws {
        let movements = """
            id,facility_code,item_code,lot,expiry,kind,quantity,occurred_at,reason
            2b1f8a3e-8a43-4c55-9d7e-0c6f3f1a0001,H,N95,L1,2027-01-01,receipt,10,2026-11-01T09:00:00+08:00,opening
            2b1f8a3e-8a43-4c55-9d7e-0c6f3f1a0002,H,N95,L1,,issue,8,2026-11-02T09:00:00+08:00,use
            2b1f8a3e-8a43-4c55-9d7e-0c6f3f1a0003,H,N95,L1,,issue,5,2026-11-03T09:00:00+08:00,use

            """
        let error = try await rejected(["regions": regions, "facilities": facilities, "items": items, "movements": movements])
        #expect(error.file == "movements.csv")
        #expect(error.row == 4)
        #expect(error.column == "quantity")
        #expect(error.reason.contains("only 2 on hand"))

        let badDate = movements.replacingOccurrences(of: "2027-01-01", with: "2027-13-01")
        let date = try await rejected(["regions": regions, "facilities": facilities, "items": items, "movements": badDate])
        #expect(date.row == 2 && date.column == "expiry")
    }

    @Test func valuesTheDatabaseCouldNotHoldAreRowErrors() async throws {
        let selfParent = try await rejected(["regions": regions + "X,自己,X\n"])
        #expect(selfParent.row == 4 && selfParent.column == "parent_code")
        let huge = try await rejected(["regions": regions, "facilities": facilities + "Y,大医院,hospital,D,99999999999,30,114,false\n"])
        #expect(huge.row == 3 && huge.column == "beds")
        let control = try await rejected(["regions": regions + "Z,坏\u{7}名,C\n"])
        #expect(control.row == 4 && control.column == "name")
    }

    @Test func reimportingCountsIsAReplayEvenAfterStockMoved() async throws {
        let stock = "facility_code,item_code,lot,expiry,quantity\nH,N95,S1,2027-03-31,50\nH,N95,S2,2027-04-30,5\n"
        let importer = CSVImporter(database, scope: .system("test"))
        let first = try await importer.importFiles(["regions": regions, "facilities": facilities, "items": items, "stock": stock])
        #expect(first.files["stock.csv"] == ImportSummary.FileSummary(rows: 2, changed: 2, unchanged: 0))
        let ledger = PostgresLedger(database, scope: .system("test"))
        _ = try await ledger.record(MovementRequest(id: UUID(), facility: "H", item: "N95", lot: "S1", expiry: nil, kind: .issue,
                                                    quantity: 20, reason: "", occurredAt: nil), recordedBy: "t")
        // The same file again is the same counts, already applied: the issue since then stands.
        let again = try await importer.importFiles(["stock": stock])
        #expect(again.files["stock.csv"] == ImportSummary.FileSummary(rows: 2, changed: 0, unchanged: 2))
        #expect(try await ledger.stock(facility: "H")!.first { $0.lot == "S1" }?.quantity == 30)
        // A new count file sets the figure.
        let recount = try await importer.importFiles(["stock": "facility_code,item_code,lot,expiry,quantity\nH,N95,S1,,42\n"])
        #expect(recount.files["stock.csv"]?.changed == 1)
        #expect(try await ledger.stock(facility: "H")!.first { $0.lot == "S1" }?.quantity == 42)
        #expect(try await ledger.mismatches().isEmpty)
    }

    @Test func aSpreadsheetByteOrderMarkIsAccepted() async throws {
        let summary = try await CSVImporter(database, scope: .system("test")).importFiles(["regions": "\u{FEFF}" + regions])
        #expect(summary.files["regions.csv"]?.rows == 2)
        #expect(try count("regions") == 2)
    }
}
