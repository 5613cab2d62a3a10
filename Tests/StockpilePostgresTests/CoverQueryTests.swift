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
        let cover = expected["cover"] as! [String: [String: Any]]
        func close(_ a: Double?, _ b: Any?, _ tolerance: Double) -> Bool {
            switch (a, b as? Double) {
            case (nil, nil): return true
            case let (x?, y?): return abs(x - y) <= tolerance
            default: return false
            }
        }
        func check(_ rows: [CoverRow], _ path: String) {
            #expect(rows.count == cover.count, "\(path)")
            for row in rows {
                let key = "\(row.facility)|\(row.item)"
                guard let want = cover[key] else { Issue.record("\(path): \(key) is not in expected.json"); continue }
                #expect(close(row.dailyDemand, want["daily_demand"], 0.0001), "\(path) \(key) daily_demand \(row.dailyDemand)")
                #expect(row.targetDays == want["target_days"] as? Int, "\(path) \(key) target_days")
                #expect(close(row.physicalDays, want["physical_days"], 0.01), "\(path) \(key) physical_days \(String(describing: row.physicalDays))")
                #expect(close(row.expiringQty, want["expiring_qty"], 0.000001), "\(path) \(key) expiring_qty")
                #expect(row.contractQty == Int64(want["contract_qty"] as! Int), "\(path) \(key) contract_qty")
                #expect(row.capacityQty == Int64(want["capacity_qty"] as! Int), "\(path) \(key) capacity_qty")
                #expect(close(row.contractDays, want["contract_days"], 0.01), "\(path) \(key) contract_days")
                #expect(close(row.capacityDays, want["capacity_days"], 0.01), "\(path) \(key) capacity_days")
                #expect(row.shortfallQty == Int64(want["shortfall_qty"] as! Int), "\(path) \(key) shortfall_qty \(row.shortfallQty)")
            }
        }
        let cover_ = PostgresCover(database, scope: .system("test"))
        // All three ways of computing: per position in Swift, set-based in PostgreSQL, and the snapshot.
        check(try await cover_.positions(CoverFilter(), asOf: asOf), "service")
        check(try await cover_.positionsInDatabase(CoverFilter(), asOf: asOf), "database")
        #expect(try await cover_.rebuildSnapshot(asOf: asOf) == 144)
        let snapshot = try await cover_.page(CoverQuery(limit: 1000, asOf: asOf))
        #expect(snapshot.source == "snapshot" && snapshot.total == 144)
        check(snapshot.rows, "snapshot")
        // Filters and scope narrow the same computation.
        let one = try await PostgresCover(database, scope: .system("test")).positions(CoverFilter(facility: "D1-H1", item: "MASK"), asOf: asOf)
        #expect(one.count == 1 && one.first?.shortfallQty == 3196)
        let d1 = try await PostgresCover(database, scope: .system("test")).positions(CoverFilter(region: "D1", category: .ppe), asOf: asOf)
        #expect(d1.count == 8 * 3)
        await database.shutdown()
    }

    /// The snapshot follows the ledger: a movement recorded after it was built is in the next answer.
    @Test func theSnapshotRefreshesWhatChanged() async throws {
        let database = try TestDatabase.fresh(poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let cover = PostgresCover(database, scope: .system("test"))
        let asOf = LocalDate("2026-11-22")!
        try await cover.rebuildSnapshot(asOf: asOf)
        let filter = CoverFilter(facility: "D1-H1", item: "MASK")
        let before = try await cover.page(CoverQuery(filter: filter, asOf: asOf))
        #expect(before.source == "snapshot" && before.rows.first?.shortfallQty == 3196)
        let stock = try #require(try await PostgresLedger(database, scope: .system("test")).stock(facility: "D1-H1")?.first { $0.item == "MASK" })
        _ = try await PostgresLedger(database, scope: .system("test")).record(
            MovementRequest(id: UUID(), facility: "D1-H1", item: "MASK", lot: stock.lot, expiry: nil, kind: .issue, quantity: 10,
                            reason: "", occurredAt: nil), recordedBy: "test")
        let after = try await cover.page(CoverQuery(filter: filter, asOf: asOf))
        #expect(after.source == "snapshot")
        #expect(after.rows.first?.physicalQty == before.rows.first!.physicalQty - 10)
        #expect(after.rows.first?.shortfallQty == 3206)
        #expect(after.rows == (try await cover.positions(filter, asOf: asOf)))
        // Movements racing refreshes lose nothing: afterwards the snapshot equals a fresh computation.
        let ledger = PostgresLedger(database, scope: .system("test"))
        let stocked = try #require(try await ledger.stock(facility: "D1-H1")).filter { $0.quantity > 40 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, lot) in stocked.prefix(6).enumerated() {
                group.addTask {
                    for _ in 0..<5 {
                        _ = try await ledger.record(MovementRequest(id: UUID(), facility: "D1-H1", item: lot.item, lot: lot.lot, expiry: nil,
                                                                    kind: .issue, quantity: Int64(1 + n), reason: "", occurredAt: nil), recordedBy: "test")
                    }
                }
                group.addTask { for _ in 0..<3 { _ = try await cover.page(CoverQuery(filter: CoverFilter(facility: "D1-H1"), asOf: asOf)) } }
            }
            try await group.waitForAll()
        }
        let settled = try await cover.page(CoverQuery(filter: CoverFilter(facility: "D1-H1"), sort: .item, limit: 100, asOf: asOf))
        #expect(settled.source == "snapshot")
        #expect(settled.rows == CoverSort.item.sorted(try await cover.positions(CoverFilter(facility: "D1-H1"), asOf: asOf)))
        // Another date is computed, not read from the snapshot.
        #expect(try await cover.page(CoverQuery(filter: filter, asOf: LocalDate("2026-11-20")!)).source == "service")
        #expect(try await cover.page(CoverQuery(filter: CoverFilter(region: "D1"), asOf: LocalDate("2026-11-20")!)).source == "database")
        #expect(try await cover.page(CoverQuery(filter: CoverFilter(region: "D1"), asOf: asOf, surge: 1.5)).source == "database")
        await database.shutdown()
    }

    /// Roll-ups sum the positions of each subtree (never averaging days), the same from the
    /// snapshot's per-facility sums, from its positions, and computed for the request.
    @Test func rollupsSumThePositions() async throws {
        let database = try TestDatabase.fresh(poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let cover = PostgresCover(database, scope: .system("test"))
        let asOf = LocalDate("2026-11-22")!
        let rows = try await cover.positions(CoverFilter(), asOf: asOf)
        let computed = try await cover.rollup(CoverFilter(region: "C01"), group: .region, asOf: asOf)
        #expect(computed.source == "database")
        try await cover.rebuildSnapshot(asOf: asOf)
        let fromSums = try await cover.rollup(CoverFilter(region: "C01"), group: .region, asOf: asOf)
        #expect(fromSums.source == "snapshot")
        let regionOf = Dictionary(uniqueKeysWithValues: rows.map { ("\($0.facility)|\($0.item)", $0.region) })
        #expect(Set(regionOf.values).count > 1)
        for rollup in [computed, fromSums] {
            #expect(rollup.rows.map(\.code) == ["D1", "D2", "D3"])
            for group in rollup.rows {
                let mine = rows.filter { $0.region == group.code || $0.region.hasPrefix(group.code + "T") } // D1 and its towns D1T1…
                #expect(group.positions == mine.count)
                #expect(group.facilities == Set(mine.map(\.facility)).count)
                #expect(group.shortfallQty == mine.reduce(0) { $0 + $1.shortfallQty })
                #expect(group.physicalQty == mine.reduce(0) { $0 + $1.physicalQty })
                #expect(group.contractQty == mine.reduce(0) { $0 + $1.contractQty })
                #expect(abs(group.dailyDemand - mine.reduce(0) { $0 + $1.dailyDemand }) < 1e-6)
                #expect(group.bands["stockout"] == mine.filter { $0.band == .stockout }.count)
            }
        }
        #expect(CoverRollupRow.total(fromSums.rows, code: "C01", name: "").shortfallQty == rows.reduce(0) { $0 + $1.shortfallQty })
        // By item, and one category, from the snapshot's positions.
        let byItem = try await cover.rollup(CoverFilter(region: "D1"), group: .item, asOf: asOf)
        #expect(byItem.source == "snapshot" && byItem.rows.count == 6)
        let d1Masks = rows.filter { ($0.region == "D1" || $0.region.hasPrefix("D1T")) && $0.item == "MASK" }
        #expect(byItem.rows.first { $0.code == "MASK" }?.shortfallQty == d1Masks.reduce(0) { $0 + $1.shortfallQty })
        let ppe = try await cover.rollup(CoverFilter(region: "C01", category: .ppe), group: .region, asOf: asOf)
        #expect(ppe.rows.reduce(0) { $0 + $1.positions } == rows.filter { $0.category == .ppe }.count)
        await database.shutdown()
    }

    /// On random districts (lots in and out of expiry, quarantine, stockouts in the window, history
    /// after as_of, plans, contracts and pledges at the edges of their validity), the per-position
    /// Swift path, the set-based PostgreSQL path and the snapshot give the same numbers.
    @Test(arguments: [UInt64(11), 23, 47])
    func bothPathsAgreeOnRandomData(seed: UInt64) async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cover-random-\(seed)-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var random = SeededRandom(seed: seed)
        let base = LocalDate("2026-06-15")!
        try RandomDistrict.write(to: directory, around: base, random: &random)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(directory)
        let owner = try TestDatabase.ownerConnection(location)
        try owner.execute("UPDATE lots SET quarantined = true WHERE id % 5 = 0")

        let cover = PostgresCover(database, scope: .system("test"))
        for offset in [-5, 0, 9] {
            let asOf = base.adding(days: offset)
            let service = try await cover.positions(CoverFilter(), asOf: asOf)
            let inDatabase = try await cover.positionsInDatabase(CoverFilter(), asOf: asOf)
            try await cover.rebuildSnapshot(asOf: asOf)
            let snapshot = try await cover.page(CoverQuery(sort: .facility, limit: 10_000, asOf: asOf)).rows
            let surged = try await cover.positions(CoverFilter(), asOf: asOf, surge: 1.7)
            let surgedInDatabase = try await cover.positionsInDatabase(CoverFilter(), asOf: asOf, surge: 1.7)
            #expect(service.count == 8 * 7)
            #expect(service.contains { $0.expiringQty > 0 } && service.contains { $0.band == .stockout } && service.contains { $0.contractQty > 0 })
            for (label, other) in [("database", inDatabase), ("snapshot", snapshot)] {
                #expect(other.count == service.count)
                for (a, b) in zip(service, other) { RandomDistrict.expectSame(a, b, "\(label) \(asOf)") }
            }
            for (a, b) in zip(surged, surgedInDatabase) { RandomDistrict.expectSame(a, b, "surge \(asOf)") }
            // Totals of filtered pages (counted from the per-facility sums) match the rows.
            for band in CoverBand.allCases {
                let page = try await cover.page(CoverQuery(band: band, limit: 1, asOf: asOf))
                #expect(page.source == "snapshot" && page.total == service.filter { $0.band == band }.count, "\(band) total")
            }
            let d1 = try await cover.page(CoverQuery(filter: CoverFilter(region: "D1", designated: false), limit: 1, asOf: asOf))
            #expect(d1.total == service.filter { $0.region == "D1" && !$0.designated }.count)
        }
        await database.shutdown()
    }
}

/// Random districts as the SPEC.md CSV files, for comparing the two cover paths.
enum RandomDistrict {
    static func expectSame(_ a: CoverRow, _ b: CoverRow, _ label: String) {
        func same(_ x: Double?, _ y: Double?) -> Bool {
            switch (x, y) {
            case (nil, nil): return true
            case let (x?, y?): return abs(x - y) <= 1e-9 * max(1, abs(x))
            default: return false
            }
        }
        let key = "\(label) \(a.facility)|\(a.item)"
        #expect(a.facility == b.facility && a.item == b.item, "\(key) vs \(b.facility)|\(b.item)")
        #expect(same(a.dailyDemand, b.dailyDemand) && same(a.observedDemand, b.observedDemand), "\(key) demand \(a.dailyDemand) \(b.dailyDemand)")
        #expect(a.targetDays == b.targetDays && a.physicalQty == b.physicalQty, "\(key) target/physical_qty")
        #expect(same(a.physicalDays, b.physicalDays), "\(key) physical_days \(String(describing: a.physicalDays)) \(String(describing: b.physicalDays))")
        #expect(same(a.expiringQty, b.expiringQty), "\(key) expiring \(a.expiringQty) \(b.expiringQty)")
        #expect(a.contractQty == b.contractQty && a.capacityQty == b.capacityQty, "\(key) reserves")
        #expect(same(a.contractDays, b.contractDays) && same(a.capacityDays, b.capacityDays) && same(a.totalDays, b.totalDays), "\(key) days")
        #expect(a.shortfallQty == b.shortfallQty && a.contractShortfallQty == b.contractShortfallQty, "\(key) shortfalls \(a.shortfallQty) \(b.shortfallQty)")
        #expect(a.band == b.band, "\(key) band")
    }

    static func write(to directory: URL, around base: LocalDate, random: inout SeededRandom) throws {
        func file(_ name: String, _ lines: [String]) throws {
            try (lines.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let categories = ["ppe", "drug", "consumable", "disinfectant", "device", "test_kit"]
        let facilities = (1...8).map { "F\($0)" }, items = (1...7).map { "I\($0)" }
        try file("regions.csv", ["code,name,parent_code", "C,市,", "D1,一区,C", "D2,二区,C"])
        try file("facilities.csv", ["code,name,kind,region_code,beds,latitude,longitude,designated"]
            + facilities.enumerated().map { "\($1),医院\($0),hospital,D\($0 % 2 + 1),100,30.0,114.0,\($0 == 0)" })
        // expires=false: the random lots include some without an expiry (never expiring), of any category.
        try file("items.csv", ["code,name,category,unit,target_days,shelf_life_days,expires"]
            + items.map { "\($0),物资\($0),\(categories[random.int(categories.count)]),个,\(random.int(3) == 0 ? String(7 + random.int(50)) : ""),,false"})
        var movements = ["id,facility_code,item_code,lot,expiry,kind,quantity,occurred_at,reason"]
        var demand = ["facility_code,item_code,full_load_daily"], contracts = [String](), capacity = [String]()
        let start = base.adding(days: -45)
        for facility in facilities {
            for item in items {
                if random.int(4) == 0 { demand.append("\(facility),\(item),\(Double(random.int(4000)) / 8)") }
                for _ in 0..<random.int(3) {
                    let from = base.adding(days: random.int(30) - 20), to = from.adding(days: random.int(40))
                    contracts.append("K\(contracts.count + 1),\(facility),供应商,\(item),\(1000 + random.int(5000)),\(random.int(1000)),\(random.int(45)),\(from),\(to),\(random.int(2) == 0)")
                }
                for _ in 0..<random.int(2) {
                    let from = base.adding(days: random.int(30) - 20), to = from.adding(days: random.int(40))
                    capacity.append("P\(capacity.count + 1),\(facility),厂家,\(item),\(1 + random.int(300)),\(random.int(40)),\(from),\(to),\(random.int(3) > 0),true")
                }
                guard random.int(6) > 0 else { continue }
                // Lots: expiring before, around and long after the dates tested, or never.
                let lots = (0...random.int(3)).map { n -> (String, String) in
                    ("\(facility)\(item)L\(n)", random.int(5) == 0 ? "" : base.adding(days: random.int(80) - 15).description)
                }
                var onHand = Array(repeating: Int64(0), count: lots.count)
                var minute = 0  // since the start, so the file's order is the ledger's order
                while minute < 60 * 1440 {
                    let lot = random.int(lots.count)
                    let when = "\(start.adding(days: minute / 1440))T\(String(format: "%02d:%02d", minute % 1440 / 60, minute % 60)):00+08:00"
                    let roll = random.int(10)
                    var kind = "issue", quantity = Int64(0), reason = ""
                    if roll < 3 || onHand[lot] == 0 {
                        kind = "receipt"; quantity = Int64(1 + random.int(500))
                    } else if roll == 3 {
                        kind = "issue"; quantity = onHand[lot]  // runs the lot dry: stockout days follow
                    } else if roll == 4 {
                        kind = "adjustment"; quantity = Int64(1 + random.int(Int(min(onHand[lot], 20)))); reason = "loss"
                    } else if roll == 5 {
                        kind = "count"; quantity = Int64(random.int(400))
                    } else {
                        quantity = Int64(1 + random.int(Int(onHand[lot])))
                    }
                    if kind == "receipt" && random.int(3) == 0 && minute < 40 * 1440 { minute += (4 + random.int(8)) * 1440; continue } // a gap with nothing
                    switch kind {
                    case "receipt": onHand[lot] += quantity
                    case "count": onHand[lot] = quantity
                    default: onHand[lot] -= quantity
                    }
                    movements.append("\(UUID().uuidString),\(facility),\(item),\(lots[lot].0),\(lots[lot].1),\(kind),\(quantity),\(when),\(reason)")
                    minute += 1 + random.int(4 * 1440)
                }
            }
        }
        try file("movements.csv", movements)
        try file("demand.csv", demand)
        try file("contracts.csv", ["code,facility_code,supplier,item_code,quantity,called_off,lead_time_days,valid_from,valid_to,local"] + contracts)
        try file("capacity.csv", ["code,facility_code,manufacturer,item_code,daily_capacity,ramp_up_days,valid_from,valid_to,certified,local"] + capacity)
    }
}
