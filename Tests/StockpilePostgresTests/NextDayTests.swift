import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

/// After midnight (issue 18, part 5): tomorrow's snapshot is built in the evening, kept up with the
/// day's last changes, and switched in when the date turns, so the first request of the new day
/// reads a snapshot instead of computing the city. The keeper's clock is moved by the test.
@Suite(.serialized) struct NextDaySnapshotTests {
    static let zone = TimeZone(identifier: "Asia/Shanghai")!

    /// `hour:minute:second` of `date` in the service's zone.
    func at(_ date: LocalDate, _ hour: Int, _ minute: Int = 0, _ second: Int = 0) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = Self.zone
        return calendar.date(from: DateComponents(year: date.year, month: date.month, day: date.day, hour: hour, minute: minute, second: second))!
    }

    func scalar(_ location: DatabaseLocation, _ sql: String) throws -> Int {
        try TestDatabase.ownerConnection(location).query(sql).first!.decode("n", as: Int.self)
    }

    func receipt(_ database: StockpileDatabase, facility: String, item: String, quantity: Int64) async throws {
        _ = try await PostgresLedger(database, scope: .system("clerk")).record(
            MovementRequest(id: UUID(), facility: facility, item: item, lot: "NIGHT-\(UUID().uuidString.prefix(6))", expiry: LocalDate("2030-01-31"),
                            kind: .receipt, quantity: quantity, reason: "", occurredAt: nil), recordedBy: "clerk")
    }

    @Test func tomorrowsSnapshotIsBuiltAheadKeptUpAndSwitchedInAtMidnight() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 4)
        let today = LocalDate(Date(), in: Self.zone), tomorrow = today.adding(days: 1)
        _ = try await CSVImporter(database, scope: .system("demo")).importFiles(DemoDistrict.csvFiles(today: today))
        let cover = PostgresCover(database, scope: .system("test"), timeZone: Self.zone)

        #expect(try await cover.keepSnapshot(now: at(today, 12)) == .rebuilt)
        #expect(try await cover.keepSnapshot(now: at(today, 22, 59, 59)) == .refreshed)
        #expect(try await cover.nextSnapshot() == nil)
        // 23:00: tomorrow's snapshot is built into the second set; today's stays what requests read.
        #expect(try await cover.keepSnapshot(now: at(today, 23, 0, 5)) == .builtNext)
        let built = try #require(try await cover.nextSnapshot())
        #expect(built.asOf == tomorrow && built.built)
        #expect(try await cover.snapshot()?.asOf == today)
        #expect(try await cover.page(CoverQuery(asOf: today)).source == "snapshot")

        // The evening's changes reach it: one folded in by the keeper's next round, one at the switch.
        let (facility, item) = try TestDatabase.ownerConnection(location).query(
            "SELECT facility_code AS f, item_code AS i FROM cover_positions_next WHERE shortfall_qty > 500 ORDER BY facility_code, item_code LIMIT 1"
        ).first.map { (try $0.decode("f", as: String.self), try $0.decode("i", as: String.self)) }!
        try await receipt(database, facility: facility, item: item, quantity: 300)
        #expect(try await cover.keepSnapshot(now: at(today, 23, 30)) == .refreshed)
        #expect(try scalar(location, "SELECT count(*) AS n FROM cover_dirty_next") == 0)
        try await receipt(database, facility: facility, item: item, quantity: 200)
        _ = try await cover.refreshSnapshot()   // a request's refresh of today's set hands the mark on
        #expect(try scalar(location, "SELECT count(*) AS n FROM cover_dirty_next") > 0)

        // The first request after midnight: the switch, then a page from the snapshot, equal to
        // tomorrow's cover computed from the ledger.
        let first = try await cover.page(CoverQuery(limit: 100_000, asOf: tomorrow))
        #expect(first.source == "snapshot")
        #expect(try await cover.snapshot()?.asOf == tomorrow)
        #expect(try await cover.nextSnapshot() == nil)
        let direct = try await cover.positionsInDatabase(CoverFilter(), asOf: tomorrow)
        #expect(first.rows.count == direct.count && !direct.isEmpty)
        let byKey = Dictionary(uniqueKeysWithValues: direct.map { ("\($0.facility)|\($0.item)", $0) })
        for row in first.rows {
            let want = try #require(byKey["\(row.facility)|\(row.item)"])
            #expect(row.physicalQty == want.physicalQty && row.shortfallQty == want.shortfallQty && row.band == want.band
                        && row.dailyDemand == want.dailyDemand && row.physicalDays == want.physicalDays && row.expiringQty == want.expiringQty,
                    "\(row.facility) \(row.item): snapshot \(row.physicalQty)/\(row.shortfallQty), computed \(want.physicalQty)/\(want.shortfallQty)")
        }
        // Both evening receipts are in it.
        let position = try #require(first.rows.first { $0.facility == facility && $0.item == item })
        let received = try scalar(location, """
            SELECT sum(b.quantity) AS n FROM balances b JOIN facilities f ON f.id = b.facility_id JOIN items i ON i.id = b.item_id
            WHERE f.code = '\(facility)' AND i.code = '\(item)'
            """)
        #expect(position.physicalQty <= Int64(received) && position.physicalQty >= 500)

        // The roll-ups read the switched sums: by region and by item, the same totals as the positions.
        let physical = first.rows.reduce(Int64(0)) { $0 + $1.physicalQty }
        let shortfall = first.rows.reduce(Int64(0)) { $0 + $1.shortfallQty }
        #expect(try await cover.rollup(CoverFilter(), group: .region, asOf: tomorrow).source == "snapshot")
        let byItem = try await cover.rollup(CoverFilter(), group: .item, asOf: tomorrow)
        #expect(byItem.source == "snapshot")
        #expect(byItem.rows.reduce(Int64(0)) { $0 + $1.physicalQty } == physical && byItem.rows.reduce(Int64(0)) { $0 + $1.shortfallQty } == shortfall)
        // The national feed carries the new day's sums, and only them: sent after the switch, off the
        // request's time (the switch started it; running it again here waits for it and changes nothing).
        try await cover.afterSwitch()
        #expect(try scalar(location, "SELECT count(*) AS n FROM national_cover WHERE as_of <> '\(tomorrow)'") == 0)
        #expect(try scalar(location, "SELECT count(*) AS n FROM national_cover") == scalar(location, "SELECT count(*) AS n FROM cover_facility_sums"))
        // Yesterday's tables, now the second set, are emptied; the keeper has nothing left to switch.
        #expect(try scalar(location, "SELECT count(*) AS n FROM cover_positions_next") == 0)
        #expect(try await cover.keepSnapshot(now: at(tomorrow, 0, 0, 10)) == .refreshed)
        #expect(try await PostgresLedger(database, scope: .system("test")).mismatches().isEmpty)
        await database.shutdown()
    }

    @Test func aDayWithoutItsSnapshotReadyIsRebuiltAndAStaleOneDropped() async throws {
        let location = try TestDatabase.freshLocation()
        let database = StockpileDatabase(location: location, poolSize: 4)
        let today = LocalDate(Date(), in: Self.zone)
        _ = try await CSVImporter(database, scope: .system("demo")).importFiles(DemoDistrict.csvFiles(today: today))
        let cover = PostgresCover(database, scope: .system("test"), timeZone: Self.zone)
        #expect(try await cover.keepSnapshot(now: at(today, 23, 10)) == .rebuilt)
        #expect(try await cover.keepSnapshot(now: at(today, 23, 11)) == .builtNext)
        // The service was down over midnight and a day more: tomorrow's set is for a day gone by.
        let later = today.adding(days: 2)
        #expect(try await cover.page(CoverQuery(asOf: later)).source != "snapshot")
        #expect(try await cover.keepSnapshot(now: at(later, 8)) == .rebuilt)
        #expect(try await cover.snapshot()?.asOf == later)
        #expect(try await cover.nextSnapshot() == nil)
        #expect(try scalar(location, "SELECT count(*) AS n FROM cover_positions_next") == 0)
        // No set waits for marks any more: a change is marked for today's set only.
        let (facility, item) = try TestDatabase.ownerConnection(location).query(
            "SELECT facility_code AS f, item_code AS i FROM cover_positions ORDER BY facility_code, item_code LIMIT 1"
        ).first.map { (try $0.decode("f", as: String.self), try $0.decode("i", as: String.self)) }!
        try await receipt(database, facility: facility, item: item, quantity: 5)
        _ = try await cover.refreshSnapshot()
        #expect(try scalar(location, "SELECT count(*) AS n FROM cover_dirty_next") == 0)
        await database.shutdown()
    }
}
