import Foundation
import Logging
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Beyond one region (issue 15, part 5; deploy/SCALE.md): a province's per-facility cover sums
/// (national_cover, sql/0021) reach a national instance by logical replication. Two clusters of
/// the test's own: the province (wal_level = logical) publishes, the national one subscribes.
@Suite(.serialized) struct NationalFeedTests {
    static func superuser(_ server: EmbeddedPostgres, _ sql: String) throws -> PQResult {
        try PQConnection(parameters: server.connectionParameters()).execute(sql)
    }

    static func shortfallAndStock(_ server: EmbeddedPostgres) throws -> String {
        try superuser(server, "SELECT coalesce(sum(physical_qty), 0) || '/' || count(*) AS n FROM national_cover WHERE province = 'GD'")
            .rows[0].decode("n", as: String.self)
    }

    @Test func aMovementInAProvinceReachesTheNationalRollupWithinSeconds() async throws {
        let own = OwnClusters("national")
        let province = own.cluster("province"), national = own.cluster("national")
        defer {
            _ = try? Self.superuser(national, "DROP SUBSCRIPTION IF EXISTS gd")
            own.remove(stopping: [national, province])
        }
        try province.start()
        _ = try Self.superuser(province, "ALTER SYSTEM SET wal_level = logical")
        try province.stop(); try province.start()
        try national.start()

        // The province: a migrated Stockpile with a small district (root region GD) and its snapshot.
        let provinceLocation = DatabaseLocation(ownerParameters: province.connectionParameters())
        try StockpileDatabase.migrate(provinceLocation)
        let database = StockpileDatabase(location: provinceLocation, poolSize: 2)
        _ = try await CSVImporter(database, scope: .system("test")).importFiles([
            "regions": "code,name,parent_code\nGD,广东省,\nGZ,广州市,GD\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nGZ-H1,广州市第一人民医院,hospital,GZ,800,23.1,113.3,true\nGZ-W,广州市储备库,warehouse,GZ,0,23.2,113.4,false\n",
            "items": "code,name,category,unit,target_days,shelf_life_days\nN95,N95口罩,ppe,只,,\nALC,医用酒精,disinfectant,瓶,45,730\n",
        ])
        let ledger = PostgresLedger(database, scope: .system("test"))
        _ = try await ledger.record(MovementRequest(id: UUID(), facility: "GZ-H1", item: "N95", lot: "P1", expiry: LocalDate("2029-01-31"),
                                                    kind: .receipt, quantity: 1000, reason: "", occurredAt: nil), recordedBy: "test")
        let cover = PostgresCover(database, scope: .system("test"))
        try await cover.rebuildSnapshot(asOf: LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!))
        #expect(try Self.shortfallAndStock(province) == "1000/4", "2 facilities × 2 categories, keyed by province and facility code")
        _ = try Self.superuser(province, "CREATE PUBLICATION stockpile_national FOR TABLE national_cover")

        // The national instance: the same schema, and one subscription per province.
        try StockpileDatabase.migrate(DatabaseLocation(ownerParameters: national.connectionParameters()))
        _ = try Self.superuser(national, """
            CREATE SUBSCRIPTION gd CONNECTION 'host=\(province.socketDirectory.path) port=\(province.port) user=\(province.superuser) dbname=stockpile'
            PUBLICATION stockpile_national
            """)
        var seen = ""
        for _ in 0..<100 {
            seen = try Self.shortfallAndStock(national)
            if seen == "1000/4" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(seen == "1000/4", "the initial copy")
        // The national instance keeps a snapshot of its own (serve rebuilds it daily): that must not remove the provinces' rows.
        let nationalDatabase = StockpileDatabase(location: DatabaseLocation(ownerParameters: national.connectionParameters()), poolSize: 1)
        try await PostgresCover(nationalDatabase, scope: .system("test")).rebuildSnapshot(asOf: LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!))
        await nationalDatabase.shutdown()
        #expect(try Self.shortfallAndStock(national) == "1000/4")

        // An issue in the province: its snapshot refresh changes the sums, and the national roll-up follows.
        _ = try await ledger.record(MovementRequest(id: UUID(), facility: "GZ-H1", item: "N95", lot: "P1", expiry: nil,
                                                    kind: .issue, quantity: 120, reason: "", occurredAt: nil), recordedBy: "test")
        let issued = ContinuousClock.now
        try await cover.refreshSnapshot()
        for _ in 0..<100 {
            seen = try Self.shortfallAndStock(national)
            if seen == "880/4" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let seconds = ContinuousClock.now - issued
        #expect(seen == "880/4")
        #expect(seconds < .seconds(10))
        print("national feed: a movement in the province reached the national roll-up \(seconds) later")
        await database.shutdown()
    }
}
