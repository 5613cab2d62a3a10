import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

/// `stockpile export` (issue 19): the files import reads, written back out. Exported with the
/// ledger and imported into an empty database, a district has the same cover, row for row; exported
/// again from there, every file is the same bytes.
@Suite(.serialized) struct ExportRoundTripTests {
    static let zone = TimeZone(identifier: "Asia/Shanghai")!
    let today = LocalDate(Date(), in: ExportRoundTripTests.zone)

    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func export(_ database: StockpileDatabase, to url: URL) async throws -> CSVExporter.Summary {
        try await CSVExporter.exportDirectory(database, scope: .system("test"), to: url, .init(timeZone: Self.zone.identifier), movements: true)
    }

    func files(_ url: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: url.path) {
            files[name] = try Data(contentsOf: url.appendingPathComponent(name))
        }
        return files
    }

    func text(_ url: URL, _ file: String) throws -> String {
        String(decoding: try Data(contentsOf: url.appendingPathComponent(file)), as: UTF8.self)
    }

    /// Every position's cover as of `date`, by facility|item.
    func cover(_ database: StockpileDatabase, _ date: LocalDate) async throws -> [String: CoverRow] {
        var rows: [String: CoverRow] = [:]
        for row in try await PostgresCover(database, scope: .system("test"), timeZone: Self.zone).positions(CoverFilter(), asOf: date) {
            rows["\(row.facility)|\(row.item)"] = row
        }
        return rows
    }

    /// Equal cover: quantities and bands exactly, days and demand to 1e-9.
    func expectSameCover(_ a: [String: CoverRow], _ b: [String: CoverRow], _ date: LocalDate) {
        #expect(Set(a.keys) == Set(b.keys), "positions as of \(date)")
        func near(_ x: Double?, _ y: Double?) -> Bool {
            switch (x, y) {
            case (nil, nil): return true
            case let (x?, y?): return x == y || abs(x - y) <= 1e-9
            default: return false
            }
        }
        var compared = 0
        for (key, x) in a.sorted(by: { $0.key < $1.key }) {
            guard let y = b[key] else { continue }
            compared += 1
            #expect(near(x.dailyDemand, y.dailyDemand) && near(x.observedDemand, y.observedDemand) && near(x.fullLoadDemand, y.fullLoadDemand),
                    "\(key) as of \(date): demand \(x.dailyDemand)/\(x.observedDemand) against \(y.dailyDemand)/\(y.observedDemand)")
            #expect(x.physicalQty == y.physicalQty && x.contractQty == y.contractQty && x.capacityQty == y.capacityQty,
                    "\(key) as of \(date): quantities")
            #expect(near(x.physicalDays, y.physicalDays) && near(x.contractDays, y.contractDays) && near(x.capacityDays, y.capacityDays)
                        && near(x.totalDays, y.totalDays) && near(x.expiringQty, y.expiringQty), "\(key) as of \(date): days")
            #expect(x.shortfallQty == y.shortfallQty && x.contractShortfallQty == y.contractShortfallQty && x.band == y.band
                        && x.targetDays == y.targetDays, "\(key) as of \(date): shortfall \(x.shortfallQty) against \(y.shortfallQty)")
        }
        #expect(compared > 0)
    }

    /// On hand by facility, lot: what the ledger leaves.
    func balances(_ location: DatabaseLocation) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for row in try TestDatabase.ownerConnection(location).query("""
            SELECT f.code || '|' || i.code || '|' || l.lot_number AS k, b.quantity FROM balances b JOIN facilities f ON f.id = b.facility_id
            JOIN items i ON i.id = b.item_id JOIN lots l ON l.id = b.lot_id WHERE b.quantity > 0
            """).rows {
            out[try row.decode("k")] = try row.decode("quantity", as: Int64.self)
        }
        return out
    }

    /// Exports `database`, imports the files into an empty one, compares cover on `dates`, exports
    /// again and compares the files byte for byte. Returns the first export's folder and summary.
    func roundTrip(_ location: DatabaseLocation, _ database: StockpileDatabase, dates: [LocalDate]) async throws -> (URL, CSVExporter.Summary) {
        let first = try folder()
        let summary = try await export(database, to: first)
        #expect(summary.files.map(\.name) == CSVExporter.files.map { "\($0).csv" })

        let location2 = try TestDatabase.freshLocation()
        let database2 = StockpileDatabase(location: location2, poolSize: 2)
        _ = try await CSVImporter(database2, scope: .system("import")).importDirectory(first)
        for date in dates {
            expectSameCover(try await cover(database, date), try await cover(database2, date), date)
        }
        #expect(try balances(location) == balances(location2))
        #expect(try await PostgresLedger(database2, scope: .system("test")).mismatches().isEmpty)

        let second = try folder()
        _ = try await export(database2, to: second)
        let (a, b) = (try files(first), try files(second))
        #expect(Set(a.keys) == Set(b.keys))
        for (name, data) in a.sorted(by: { $0.key < $1.key }) {
            #expect(data == b[name], "\(name) differs on the second export")
        }
        #expect(!a.keys.contains { $0.hasSuffix(".partial") })
        await database2.shutdown()
        return (first, summary)
    }

    @Test func theDemoDistrictWithTransfersAndFormulaTextComesBackTheSame() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("demo")).importFiles(DemoDistrict.csvFiles(today: today))
        let owner = try TestDatabase.ownerConnection(location)

        // Text a spreadsheet would run: a facility's name, a supplier, a lot number, a multi-line reason.
        let (facility, item, lot, onHand) = try owner.query("""
            SELECT f.code AS f, i.code AS i, l.lot_number AS l, b.quantity AS q FROM balances b JOIN facilities f ON f.id = b.facility_id
            JOIN items i ON i.id = b.item_id JOIN lots l ON l.id = b.lot_id WHERE b.quantity > 100 ORDER BY f.code, i.code, l.lot_number LIMIT 1
            """).first.map { (try $0.decode("f", as: String.self), try $0.decode("i", as: String.self), try $0.decode("l", as: String.self),
                              try $0.decode("q", as: Int64.self)) }!
        try owner.query("UPDATE facilities SET name = '=HYPERLINK(\"http://x\",\"点我\")' WHERE code = $1", [facility])
        try owner.execute("UPDATE contracts SET supplier = '@SUM(A1)' WHERE code = (SELECT min(code) FROM contracts)")
        let ledger = PostgresLedger(database, scope: .system("clerk"))
        let now = Date()
        _ = try await ledger.record(MovementRequest(id: UUID(), facility: facility, item: item, lot: "-L9", expiry: LocalDate("2029-01-31"),
                                                    kind: .receipt, quantity: 7, reason: "=cmd|' /C calc'!A0", occurredAt: now.addingTimeInterval(-7200)), recordedBy: "clerk")
        _ = try await ledger.record(MovementRequest(id: UUID(), facility: facility, item: item, lot: lot, expiry: nil,
                                                    kind: .adjustment, quantity: 2, reason: "damage: 漏水\n第二行", occurredAt: now.addingTimeInterval(-5400)), recordedBy: "clerk")
        // A count, then an issue that happened before it, recorded after it (offline entry): in the
        // order the importer applies them the count must leave what it left here.
        let count = try await ledger.record(MovementRequest(id: UUID(), facility: facility, item: item, lot: lot, expiry: nil,
                                                            kind: .count, quantity: onHand + 3, reason: "", occurredAt: now.addingTimeInterval(-3600)), recordedBy: "clerk")
        _ = try await ledger.record(MovementRequest(id: UUID(), facility: facility, item: item, lot: lot, expiry: nil,
                                                    kind: .issue, quantity: 4, reason: "", occurredAt: now.addingTimeInterval(-4000)), recordedBy: "clerk")

        // Transfers: two orders of the plan dispatched, one received, the other still on its way.
        let orders = PostgresReallocations(database, scope: .system("command"))
        let plan = try await orders.create(requestID: UUID(), plan: PlanRequest(asOf: today)).orders
        try #require(plan.count >= 2)
        for order in plan.prefix(2) {
            _ = try await orders.approve(order.id)
            _ = try await orders.dispatch(order.id)
        }
        _ = try await orders.receive(plan[0].id, received: nil, reason: "")

        let (first, summary) = try await roundTrip(location, database, dates: [today, today.adding(days: -10)])
        #expect(summary.inTransit.lines >= 1)
        let facilities = try text(first, "facilities.csv")
        #expect(facilities.hasPrefix("\u{FEFF}code,name,kind,region_code,beds,latitude,longitude,designated\r\n"))
        #expect(facilities.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"点我\"\")\""))
        #expect(try text(first, "contracts.csv").contains(",'@SUM(A1),"))
        let movements = try text(first, "movements.csv")
        #expect(movements.contains(",'-L9,2029-01-31,receipt,7,") && movements.contains(",'=cmd|' /C calc'!A0"))
        #expect(movements.contains("\"damage: 漏水\n第二行\""))
        #expect(movements.contains(",transfer_out,") && movements.contains(",transfer_in,"))
        // The count is written with what it leaves when the earlier issue comes first: 4 less than it counted.
        let countLine = try #require(movements.split(separator: "\r\n").first { $0.hasPrefix(count.id) })
        #expect(countLine.contains(",count,\(onHand + 3 - 4),"))
        // Every movement's instant to the microsecond, in the service's zone.
        #expect(movements.split(separator: "\r\n").dropFirst().allSatisfy { $0.contains("+08:00") })
        await database.shutdown()
    }

    @Test func theExampleDistrictComesBackTheSame() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("import")).importDirectory(TestDatabase.districtA)
        let asOf = LocalDate("2026-11-22")!
        let (first, _) = try await roundTrip(location, database, dates: [asOf, asOf.adding(days: -7), today])
        // Its history came back whole: every movement of the ledger but the stock.csv counts that changed nothing.
        let lines = try text(first, "movements.csv").split(separator: "\r\n").count - 1
        let ledger = try TestDatabase.ownerConnection(location).query("""
            SELECT count(*) FILTER (WHERE NOT (kind = 'count' AND quantity = 0 AND reason = 'stock.csv')) AS n,
                   count(*) FILTER (WHERE reason = 'stock.csv' AND quantity <> 0) AS counted FROM movements
            """).first!
        let (movements, counted) = (try ledger.decode("n", as: Int.self), try ledger.decode("counted", as: Int.self))
        #expect(lines == movements && counted > 0 && lines >= 699)
        await database.shutdown()
    }

    @Test func aSubtreeExportsItsOwnFacilitiesAndTheRegionsAboveThem() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("import")).importDirectory(TestDatabase.districtA)
        let url = try folder()
        let summary = try await CSVExporter.exportDirectory(database, scope: .system("test"), to: url, .init(region: "D1"), movements: false)
        #expect(!summary.files.contains { $0.name == "movements.csv" })
        let regions = try text(url, "regions.csv").split(separator: "\r\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        #expect(regions.contains("C01") && regions.contains("D1") && !regions.contains("D2"))
        let facilities = try text(url, "facilities.csv").split(separator: "\r\n").dropFirst()
        #expect(facilities.count == 8 && facilities.allSatisfy { $0.hasPrefix("D1") })
        let stock = try text(url, "stock.csv").split(separator: "\r\n").dropFirst()
        #expect(!stock.isEmpty && stock.allSatisfy { $0.hasPrefix("D1") })
        // It imports on its own into an empty database.
        let database2 = StockpileDatabase(location: try TestDatabase.freshLocation(), poolSize: 2)
        let loaded = try await CSVImporter(database2, scope: .system("import")).importDirectory(url)
        #expect(loaded.files["facilities.csv"]?.rows == facilities.count)
        await database2.shutdown()

        await #expect(throws: ExportError.self) {
            try await CSVExporter.exportDirectory(database, scope: .system("test"), to: url, .init(region: "NOPE"), movements: false)
        }
        await database.shutdown()
    }

    @Test func onlyAnImportOfScopeAllRecordsATransferWithoutItsOrder() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        let master = [
            "regions": "code,name,parent_code\nC,示范市,\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nH,医院,hospital,C,10,,,false\n",
            "items": "code,name,category,unit,target_days,shelf_life_days\nKIT,器械,device,台,,\n",
        ]
        _ = try await CSVImporter(database, scope: .system("import")).importFiles(master)
        let h = try TestDatabase.ownerConnection(location).query("SELECT id FROM facilities WHERE code = 'H'").first!.decode("id", as: Int.self)
        let history = """
            id,facility_code,item_code,lot,expiry,kind,quantity,occurred_at,reason
            6f1c2a9e-0b7d-4e59-9a51-3c2f8d0e7b11,H,KIT,A,,transfer_in,5,2026-11-01T09:00:00+08:00,
            """
        let clerk = AccessScope(actor: "clerk", role: .admin, facilities: .only([h]))
        await #expect(throws: ImportError.self) {
            _ = try await CSVImporter(database, scope: clerk).importFiles(["movements": history])
        }
        do {
            _ = try await CSVImporter(database, scope: clerk).importFiles(["movements": history])
        } catch let error as ImportError {
            #expect(error.row == 2 && error.column == "kind")
        }
        // A transfer needs the time it happened.
        await #expect(throws: ImportError.self) {
            _ = try await CSVImporter(database, scope: .system("import")).importFiles(["movements": history.replacingOccurrences(of: "2026-11-01T09:00:00+08:00", with: "")])
        }
        let loaded = try await CSVImporter(database, scope: .system("import")).importFiles(["movements": history])
        #expect(loaded.files["movements.csv"]?.changed == 1)
        // Twice is once; more out than there is, refused by row.
        #expect(try await CSVImporter(database, scope: .system("import")).importFiles(["movements": history]).files["movements.csv"]?.unchanged == 1)
        let tooMuch = "id,facility_code,item_code,lot,expiry,kind,quantity,occurred_at,reason\n"
            + "0a1c2a9e-0b7d-4e59-9a51-3c2f8d0e7b12,H,KIT,A,,transfer_out,6,2026-11-02T09:00:00+08:00,\n"
        do {
            _ = try await CSVImporter(database, scope: .system("import")).importFiles(["movements": tooMuch])
            Issue.record("a transfer out of more than is on hand was taken")
        } catch let error as ImportError {
            #expect(error.row == 2 && error.column == "quantity")
        }
        #expect(try TestDatabase.ownerConnection(location).query("SELECT sum(quantity) AS n FROM balances").first!.decode("n", as: Int64.self) == 5)
        await database.shutdown()
    }

    /// A history and a stock.csv longer than one piece (CSVImporter.historyPiece) load as one batch
    /// would, their counts without each compared with every earlier line (sql/0035), and a bad row in
    /// a later piece is named by its own row number.
    @Test func aLongHistoryLoadsAndItsRowsKeepTheirNumbers() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("import")).importFiles([
            "regions": "code,name,parent_code\nC,示范市,\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nH,医院,hospital,C,10,,,false\n",
            "items": "code,name,category,unit,target_days,shelf_life_days\nKIT,器械,device,台,,\n",
        ])
        let n = CSVImporter.historyPiece + 500
        func history(_ lines: [String]) -> String {
            "id,facility_code,item_code,lot,expiry,kind,quantity,occurred_at,reason\n" + lines.joined(separator: "\n") + "\n"
        }
        let receipts = (0..<n).map { i in
            "\(UUID().uuidString),H,KIT,L\(i % 7),,receipt,2,2026-11-01T08:\(String(format: "%02d", i / 60 % 60)):\(String(format: "%02d", i % 60))+08:00,"
        }
        let tooMuch = "\(UUID().uuidString),H,KIT,L1,,issue,100000,2026-11-02T09:00:00+08:00,"
        do {
            _ = try await CSVImporter(database, scope: .system("import")).importFiles(["movements": history(receipts + [tooMuch])])
            Issue.record("an issue of more than is on hand was taken")
        } catch let error as ImportError {
            #expect(error.row == n + 2 && error.column == "quantity", "\(error)")
        }
        let loaded = try await CSVImporter(database, scope: .system("import")).importFiles(["movements": history(receipts)])
        #expect(loaded.files["movements.csv"]?.changed == n)
        // Counts, one of them far down a lot nobody brought in, named by its row.
        var counts = (0..<n).map { i in "H,KIT,C\(i),,1" }
        counts[CSVImporter.historyPiece + 10] = "H,KIT,NOBODY,,0"
        do {
            _ = try await CSVImporter(database, scope: .system("import")).importFiles(["stock": "facility_code,item_code,lot,expiry,quantity\n" + counts.joined(separator: "\n") + "\n"])
            Issue.record("a count of 0 of a lot nobody brought in was taken")
        } catch let error as ImportError {
            #expect(error.row == CSVImporter.historyPiece + 12 && error.column == "lot", "\(error)")
        }
        #expect(try TestDatabase.ownerConnection(location).query("SELECT sum(quantity) AS n FROM balances").first!.decode("n", as: Int64.self) == Int64(2 * n))
        await database.shutdown()
    }
}
