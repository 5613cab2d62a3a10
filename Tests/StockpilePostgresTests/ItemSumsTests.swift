import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

/// The snapshot's per-item sums (sql/0032, issue 18): a roll-up by item, or by region for one item,
/// reads them instead of every position. They must say what the positions say, after movements,
/// after a facility moves region or stops being designated, and only to a scope that holds whole regions.
@Suite(.serialized) struct ItemSumsTests {
    static let asOf = LocalDate("2026-11-22")!

    /// What a roll-up by item over `rows` must say, per item.
    static func expectItemRollup(_ rollup: CoverRollup, _ rows: [CoverRow], _ label: String) {
        let items = Dictionary(grouping: rows, by: \.item)
        #expect(rollup.rows.map(\.code) == items.keys.sorted(), "\(label): items")
        for group in rollup.rows {
            let mine = items[group.code] ?? []
            #expect(group.positions == mine.count && group.facilities == mine.count, "\(label) \(group.code) positions")
            #expect(group.shortfallQty == mine.reduce(0) { $0 + $1.shortfallQty }, "\(label) \(group.code) shortfall")
            #expect(group.physicalQty == mine.reduce(0) { $0 + $1.physicalQty }, "\(label) \(group.code) physical")
            #expect(group.contractQty == mine.reduce(0) { $0 + $1.contractQty }, "\(label) \(group.code) contract")
            #expect(group.capacityQty == mine.reduce(0) { $0 + $1.capacityQty }, "\(label) \(group.code) capacity")
            #expect(abs(group.dailyDemand - mine.reduce(0) { $0 + $1.dailyDemand }) < 1e-6, "\(label) \(group.code) demand")
            #expect(abs(group.expiringQty - mine.reduce(0) { $0 + $1.expiringQty }) < 1e-6, "\(label) \(group.code) expiring")
            for band in CoverBand.allCases {
                #expect(group.bands[band.rawValue] == mine.filter { $0.band == band }.count, "\(label) \(group.code) \(band)")
            }
        }
    }

    @Test func itemSumsFollowTheSnapshotAndItsScope() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("test")).importDirectory(TestDatabase.districtA)
        let admin = PostgresCover(database, scope: .system("test"))
        try await admin.rebuildSnapshot(asOf: Self.asOf)

        func check(_ label: String) async throws {
            let rows = try await admin.positions(CoverFilter(), asOf: Self.asOf)
            let byItem = try await admin.rollup(CoverFilter(region: "C01"), group: .item, asOf: Self.asOf)
            #expect(byItem.source == "snapshot")
            Self.expectItemRollup(byItem, rows, "\(label) city")
            let d2 = rows.filter { $0.region == "D2" || $0.region.hasPrefix("D2T") }
            Self.expectItemRollup(try await admin.rollup(CoverFilter(region: "D2"), group: .item, asOf: Self.asOf), d2, "\(label) D2")
            let designated = rows.filter(\.designated)
            Self.expectItemRollup(try await admin.rollup(CoverFilter(designated: true), group: .item, asOf: Self.asOf), designated, "\(label) designated")
            // By region for one item: each district's subtree, of that item only.
            let n95 = try await admin.rollup(CoverFilter(region: "C01", item: "N95"), group: .region, asOf: Self.asOf)
            #expect(n95.rows.map(\.code) == ["D1", "D2", "D3"], "\(label)")
            for group in n95.rows {
                let mine = rows.filter { ($0.region == group.code || $0.region.hasPrefix(group.code + "T")) && $0.item == "N95" }
                #expect(group.positions == mine.count && group.shortfallQty == mine.reduce(0) { $0 + $1.shortfallQty }, "\(label) N95 \(group.code)")
            }
        }
        try await check("rebuilt")

        // Movements: the next read refreshes their positions and the groups they fall in.
        let ledger = PostgresLedger(database, scope: .system("test"))
        let issues = [("D1-H1", "N95", "L960213", Int64(90_000)), ("D2-H1", "MASK", nil, Int64(5))]
        for (facility, item, lot, quantity) in issues {
            let found: String
            if let lot { found = lot } else {
                let owner = try TestDatabase.ownerConnection(location)
                found = try owner.query("""
                    SELECT l.lot_number FROM balances b JOIN lots l ON l.id = b.lot_id JOIN facilities f ON f.id = b.facility_id
                    JOIN items i ON i.id = b.item_id WHERE f.code = $1 AND i.code = $2 AND b.quantity >= $3 ORDER BY l.id LIMIT 1
                    """, [facility, item, quantity]).rows[0].decode("lot_number")
            }
            _ = try await ledger.record(MovementRequest(id: UUID(), facility: facility, item: item, lot: found, expiry: nil, kind: .issue,
                                                        quantity: quantity, reason: "test", occurredAt: nil), recordedBy: "test")
        }
        try await check("after movements")

        // A facility moves to another district, and a hospital stops being designated: both groups change.
        let owner = try TestDatabase.ownerConnection(location)
        try owner.execute("UPDATE facilities SET region_id = (SELECT id FROM regions WHERE code = 'D3') WHERE code = 'D2-CDC'")
        try owner.execute("UPDATE facilities SET designated = false WHERE code = 'D1-H1'")
        try await check("after moves")

        // A command token of D1 reads its own subtree's sums, whatever region it names.
        let ids: [String: Int] = Dictionary(uniqueKeysWithValues: try owner.query("SELECT code, id FROM facilities").rows.map {
            (try $0.decode("code", as: String.self), try $0.decode("id", as: Int.self))
        })
        let rows = try await admin.positions(CoverFilter(), asOf: Self.asOf)
        let d1Codes = Set(rows.filter { $0.region == "D1" || $0.region.hasPrefix("D1T") }.map(\.facility))
        let command = AccessScope(actor: "cmd-d1", role: .command, facilities: .only(Set(d1Codes.map { ids[$0]! })), regionCode: "D1")
        let commandRollup = try await PostgresCover(database, scope: command).rollup(CoverFilter(region: "C01"), group: .item, asOf: Self.asOf)
        Self.expectItemRollup(commandRollup, rows.filter { d1Codes.contains($0.facility) }, "command D1")
        // Naming another district reads none of its sums, nor its one item by region.
        let elsewhere = try await PostgresCover(database, scope: command).rollup(CoverFilter(region: "D2"), group: .item, asOf: Self.asOf)
        #expect(elsewhere.rows.allSatisfy { $0.positions == 0 && $0.shortfallQty == 0 })
        let elsewhereN95 = try await PostgresCover(database, scope: command).rollup(CoverFilter(region: "D2", item: "N95"), group: .region, asOf: Self.asOf)
        #expect(elsewhereN95.rows.allSatisfy { $0.positions == 0 })

        // A warehouse token holds one facility, not a region: its roll-up is its own positions.
        let clerk = AccessScope(actor: "clerk", role: .warehouse, facilities: .only([ids["D1-W"]!]))
        let clerkRollup = try await PostgresCover(database, scope: clerk).rollup(CoverFilter(), group: .item, asOf: Self.asOf)
        Self.expectItemRollup(clerkRollup, rows.filter { $0.facility == "D1-W" }, "warehouse D1-W")

        // Row-level security: a scope holding only part of a region reads none of its sums, even
        // asking the table directly, and a command scope writes none outside its regions.
        let partial = AccessScope(actor: "partial", role: .command, facilities: .only([ids["D1-H2"]!, ids["D1-W"]!]), regionCode: "D1")
        let seen: Int = try await database.withConnection(partial) { c in
            try c.query("SELECT count(*) AS n FROM cover_region_item_sums").rows[0].decode("n")
        }
        #expect(seen == 0)
        let partialRollup = try await PostgresCover(database, scope: partial).rollup(CoverFilter(), group: .item, asOf: Self.asOf)
        #expect(partialRollup.rows.allSatisfy { $0.positions == 0 })
        let commandSees: Int = try await database.withConnection(command) { c in
            try c.query("SELECT count(DISTINCT region_id) AS n FROM cover_region_item_sums").rows[0].decode("n")
        }
        #expect(commandSees == Set(rows.filter { d1Codes.contains($0.facility) }.map(\.region)).count)
        await #expect(throws: PQError.self) {
            try await database.withConnection(command) { c in
                try c.query("""
                    INSERT INTO cover_region_item_sums SELECT (SELECT id FROM regions WHERE code = 'D2'), false, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
                    """)
            }
        }
        await database.shutdown()
    }
}
