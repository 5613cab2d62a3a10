import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Synchronization
import Testing

/// The nightly reorder report of NightlyDistrict, every number worked out by hand below.
@Suite(.serialized) struct NightlyTests {
    let asOf = LocalDate(NightlyDistrict.asOf)!

    func district() async throws -> StockpileDatabase {
        let database = try TestDatabase.fresh(poolSize: 4)
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(NightlyDistrict.files)
        return database
    }

    func count(_ database: StockpileDatabase, _ sql: String) throws -> Int {
        try TestDatabase.ownerConnection(database.location).query(sql).rows[0].decode("n")
    }

    @Test func districtDReportEqualsTheHandComputation() async throws {
        let database = try await district()
        let run = try await PostgresNightly(database, scope: .system("test")).run(asOf: asOf, region: "D")
        #expect(!run.replay)
        let report = run.report
        #expect(report.positions == 12) // 4 facilities × 3 items

        // Tonight's orders: H1 needs (30 − 5) × 100 = 2500; W gives all 300 (no demand), H2 gives 400 − 30 × 10 = 100.
        #expect(Set(report.orders.map { "\($0.from)>\($0.to) \($0.item) \($0.quantity)" }) == ["W>H1 N95 300", "H2>H1 N95 100"])

        // Reorder lines: every short position, item then facility.
        #expect(report.reorders.map { "\($0.position.item)@\($0.position.facility)" } == ["GLOVE@C1", "N95@H1"])
        let h1 = try #require(report.reorders.first { $0.position.facility == "H1" })
        // The numbers behind the line: demand from the full-load plan, 500 on hand = 5 days, contracts
        // K1 + K2 = 1800 = 18 days (K3 expired, K4 too slow), pledges P1 20 × (30 − 25) = 100 and P3 5 × 30 = 150 = 2.5 days.
        #expect(h1.position.dailyDemand == 100 && h1.position.demandBasis == "full_load" && h1.position.targetDays == 30)
        #expect(h1.position.physicalQty == 500 && h1.position.physicalDays == 5 && h1.position.shortfallQty == 2500)
        #expect(h1.position.contractQty == 1800 && h1.position.contractDays == 18)
        #expect(h1.position.capacityQty == 250 && h1.position.capacityDays == 2.5)
        // 2500 − 400 reallocated = 2100 still needed.
        #expect(h1.reallocated == 400 && h1.inbound == 0 && h1.need == 2100)
        #expect(Set(h1.reallocatedFrom.map { "\($0.from) \($0.quantity)" }) == ["W 300", "H2 100"])
        #expect(Set(h1.reallocatedFrom.map(\.order)) == Set(report.orders.map(\.id)))
        // Call-offs: local K2 first (800 of 2100), then K1 (lead 3 d, 1000 of the 1300 left); 300 left.
        #expect(h1.callOffs.map { "\($0.contract) \($0.needBefore) \($0.quantity)" } == ["K2 2100 800", "K1 1300 1000"])
        #expect(h1.callOffs.map(\.remaining) == [800, 1000])
        // Activation: local P1 yields 100 within 30 days (all of it, 5 production days), then P3
        // 150 of its 150 (30 days); P2 is not certified. 300 − 100 − 150 = 50 to procure.
        #expect(h1.activations.map { "\($0.pledge) \($0.yieldQty) \($0.needBefore) \($0.quantity) \($0.productionDays)" }
                == ["P1 100 300 100 5", "P3 150 200 150 30"])
        #expect(h1.procurement == 50)
        // C1's gloves: nobody has any to give, K5 is valid only from 2026-12-01: all 30 × 10 = 300 procured.
        let glove = try #require(report.reorders.first { $0.position.item == "GLOVE" })
        #expect(glove.need == 300 && glove.callOffs.isEmpty && glove.activations.isEmpty && glove.procurement == 300)
        #expect(report.items.map { "\($0.item) \($0.shortfall) \($0.reallocated) \($0.calledOff) \($0.activated) \($0.procurement)" }
                == ["GLOVE 300 0 0 0 300", "N95 2500 400 1800 250 50"])

        // Contract gaps after tonight's call-offs: H1's N95 reserve is all called off, 30 × 100 = 3000
        // to contract (renew expired K3, expand local K2); the others have no contract at all: 30 × d.
        #expect(report.contractGaps.map { "\($0.position.item)@\($0.position.facility) \($0.gapQty)" }
                == ["GLOVE@C1 300", "GOWN@C1 60", "GOWN@H1 600", "GOWN@H2 150", "N95@H1 3000", "N95@H2 300"])
        let gap = try #require(report.contractGaps.first { $0.position.facility == "H1" && $0.position.item == "N95" })
        #expect(gap.calledOffTonight == 1800 && gap.contractQtyAfter == 0 && gap.contractDaysAfter == 0)
        #expect(gap.renew == ["K3"] && gap.expand == "K2")
        #expect(gap.contracts.map { "\($0.code) \($0.status)" } == ["K1 valid", "K2 valid", "K3 expired", "K4 lead_time_over_target"])
        let gloves = try #require(report.contractGaps.first)
        #expect(gloves.expand == nil && gloves.renew.isEmpty && gloves.contracts.map(\.status) == ["not_yet_valid"])

        // Expiring: H2 uses 5 GOWN a day, lot GX (800) expires in 60 days: 300 used, 500 left. H1
        // (20/day, own stock 50 days) would use (60 − 50) × 20 = 200 of it; C1's stock lasts 100 days.
        #expect(report.expiringLots.count == 1)
        let lot = try #require(report.expiringLots.first)
        #expect(lot.facility == "H2" && lot.lot == "GX" && lot.expiry == LocalDate("2027-01-21") && lot.daysToExpiry == 60)
        #expect(lot.onHand == 800 && lot.unconsumedQty == 500)
        #expect(lot.moveTo == "H1" && lot.moveToUsableQty == 200 && lot.moveToPhysicalDays == 50 && lot.moveToDailyDemand == 20)
        // 0.1° of latitude on the 6371.0088 km sphere.
        #expect(abs((lot.distanceKm ?? 0) - 11.120) < 0.001)

        // Stale: stock or demand, and nothing recorded since 2026-11-15.
        #expect(report.stale.map { "\($0.facility)/\($0.item) \($0.lastMovement?.description ?? "never") \($0.daysSince.map(String.init) ?? "-")" }
                == ["C1/GLOVE never -", "C1/GOWN 2026-11-01 21", "W/N95 2026-11-01 21"])

        // Stored, and read back the same.
        #expect(try await PostgresNightly(database, scope: .system("test")).stored(asOf: asOf, region: "D") == report)
        await database.shutdown()
    }

    @Test func theCityReportAddsTheOtherDistrict() async throws {
        let database = try await district()
        let report = try await PostgresNightly(database, scope: .system("test")).run(asOf: asOf, region: nil).report
        #expect(report.positions == 15)
        // X (district E) needs 30 × 4 = 120 gloves: procured, a contract gap of 120, stale.
        #expect(report.items.map { "\($0.item) \($0.procurement)" } == ["GLOVE 420", "N95 50"])
        #expect(report.contractGaps.contains { $0.position.facility == "X" && $0.gapQty == 120 })
        #expect(report.stale.map { "\($0.facility)/\($0.item)" } == ["C1/GLOVE", "C1/GOWN", "W/N95", "X/GLOVE"])
        await database.shutdown()
    }

    @Test func aRerunReturnsTheStoredReportAndCreatesNoOrders() async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        let first = try await nightly.run(asOf: asOf, region: "D")
        let second = try await nightly.run(asOf: asOf, region: "D")
        #expect(!first.replay && second.replay)
        #expect(second.report == first.report)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == 2)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 1)
        // Its lines: 2 short positions, 6 contract gaps, 1 expiring lot, 3 stale positions (and the 2 orders).
        #expect(try count(database, "SELECT sum(json_array_length(lines::json)) AS n FROM nightly_lines WHERE section <> 'orders'") == 12)
        await database.shutdown()
    }

    @Test func twoRunsAtOnceMakeOneReportAndOneSetOfOrders() async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        async let a = nightly.run(asOf: asOf, region: "D")
        async let b = nightly.run(asOf: asOf, region: "D")
        let (x, y) = try await (a, b)
        #expect([x.replay, y.replay].sorted { !$0 && $1 } == [false, true])
        #expect(x.report == y.report)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == 2)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 1)
        await database.shutdown()
    }

    struct Killed: Error {}

    @Test func aRunThatDiesHalfWayLeavesNoReportAndTheNextOneCompletesIt() async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        // Dies as it is about to store: the orders are made, the report is not.
        await #expect(throws: Killed.self) {
            try await nightly.run(asOf: asOf, region: "D") { progress in
                if progress.phase == .store { throw Killed() }
            }
        }
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 0)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == 2)
        // The next run replays those orders (same request id) and completes the report.
        let phases = Mutex<[NightlyPhase]>([])
        let rerun = try await nightly.run(asOf: asOf, region: "D") { p in phases.withLock { $0.append(p.phase) } }
        #expect(!rerun.replay)
        // Every phase in order (a phase may report its progress more than once).
        let seen = phases.withLock { $0 }
        #expect(seen.enumerated().filter { $0.offset == 0 || seen[$0.offset - 1] != $0.element }.map(\.element) == NightlyPhase.allCases)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == 2)
        #expect(Set(rerun.report.orders.map(\.id)) == [1, 2])
        #expect(rerun.report.reorders.first { $0.position.facility == "H1" }?.procurement == 50)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 1)
        await database.shutdown()
    }

    /// Tonight's cover is read on the run's connection while the orders are made (on pooled ones):
    /// a run that dies as it turns to the cover, whether or not that read has finished, leaves no
    /// report and no lock behind, and the next run completes with the same orders.
    /// Killed while its cover is read (and its orders are made and stored beside it), or while
    /// the report is made from orders still being stored: no report, nothing of the run's
    /// transaction, no lock left; the orders stored whole or not at all, and the next run's
    /// report has exactly the orders in the table.
    @Test(arguments: [NightlyPhase.cover, .reorder, .interception])
    func aRunThatDiesWhileItsOrdersAreStoredLeavesNoReportAndNoLock(phase: NightlyPhase) async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        let whole = try await PostgresPlanner(database, scope: .system("test")).plan(PlanRequest(asOf: asOf)).orders.count
        #expect(whole > 0)
        await #expect(throws: Killed.self) {
            try await nightly.run(asOf: asOf, region: nil) { progress in
                if progress.phase == phase { throw Killed() }
            }
        }
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 0)
        // Its own transaction: stored before the run died, or never begun.
        let made = try count(database, "SELECT count(*) AS n FROM reallocation_orders")
        #expect(made == 0 || made == whole)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_lines") == 0 || made > 0)
        // Nothing of the dead run's transaction stands: the trends it recorded went with it.
        #expect(try count(database, "SELECT count(*) AS n FROM cover_history WHERE source = 'nightly'") == 0)
        let rerun = try await nightly.run(asOf: asOf, region: nil)
        #expect(!rerun.replay)
        #expect(rerun.report.orders.count == whole)
        #expect(try count(database, "SELECT count(*) AS n FROM cover_history WHERE source = 'nightly'") > 0)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 1)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == whole)
        await database.shutdown()
    }

    /// Killed after the sections that do not wait for the orders are stored (before their header,
    /// their reference to it deferred to the commit): none of those lines stand, and the lock is
    /// free. The next run stores every section once, under its header, and reads back the same.
    @Test func aRunThatDiesAfterItsFirstSectionsAreStoredLeavesNoLines() async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        let stores = Mutex(0)
        await #expect(throws: Killed.self) {
            try await nightly.run(asOf: asOf, region: nil) { progress in
                guard progress.phase == .store else { return }
                if stores.withLock({ $0 += 1; return $0 }) == 2 { throw Killed() }
            }
        }
        #expect(stores.withLock { $0 } == 2)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_lines") == 0)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 0)
        let rerun = try await nightly.run(asOf: asOf, region: nil)
        #expect(!rerun.replay && !rerun.report.reorders.isEmpty && !rerun.report.contractGaps.isEmpty)
        // Each section's lines stored once, under the one header: the lines the stored runs hold,
        // section by section, are the report's (not the dead run's and the rerun's both).
        let report = rerun.report
        let expected: [String: Int] = ["orders": report.orders.count, "reorders": report.reorders.count,
                                       "contract_gaps": report.contractGaps.count, "expiring_lots": report.expiringLots.count,
                                       "stale": report.stale.count, "overdue": report.overdue?.count ?? 0,
                                       "hoarding": report.hoarding?.count ?? 0, "rotation": report.rotation?.count ?? 0]
        let stored = try TestDatabase.ownerConnection(database.location).query("""
            SELECT section, sum(jsonb_array_length(lines::jsonb))::int AS n FROM nightly_lines GROUP BY section
            """).rows.map { (try $0.decode("section", as: String.self), try $0.decode("n", as: Int.self)) }
        #expect(Dictionary(uniqueKeysWithValues: stored) == expected.filter { $0.value > 0 })
        #expect(try count(database, "SELECT count(DISTINCT generation) AS n FROM nightly_lines") == 1)
        let replayed = try await nightly.run(asOf: asOf, region: nil)
        #expect(replayed.replay && replayed.report == rerun.report)
        await database.shutdown()
    }

    /// A line of a report that was never stored is refused at the commit, however it got in: the
    /// deferred reference (sql/0041) is still a reference.
    @Test func linesWithoutTheirHeaderAreRefusedAtCommit() async throws {
        let database = try await district()
        let refused = await #expect(throws: PQError.self) {
            try await database.transaction(.system("test")) { c in
                try c.execute("SET CONSTRAINTS nightly_lines_as_of_scope_generation_fkey DEFERRED")
                try c.query("""
                    INSERT INTO nightly_lines (as_of, scope, generation, section, n, lines)
                    VALUES ('2026-11-22', '*', 1, 'stale', 0, '[]')
                    """)
            }
        }
        #expect(refused?.sqlState == "23503")
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_lines") == 0)
        await database.shutdown()
    }

    @Test func aCommandTokenReadsOnlyItsOwnSubtreesReports() async throws {
        let database = try await district()
        _ = try await PostgresNightly(database, scope: .system("test")).run(asOf: asOf, region: nil)
        _ = try await PostgresNightly(database, scope: .system("test")).run(asOf: asOf, region: "D")
        let tokens = PostgresTokens(database, scope: .system("test"))
        let secret = try await tokens.create(name: "command-e", role: .command, region: "E", facilities: [], validDays: 1).secret
        let scope = try #require(try await PostgresTokens.authenticate(secret, clientAddress: nil, database: database))
        let nightly = PostgresNightly(database, scope: scope)
        await #expect(throws: Refusal.self) { try await nightly.stored(asOf: asOf, region: "D") }
        await #expect(throws: Refusal.self) { try await nightly.stored(asOf: asOf, region: nil) }
        #expect(try await nightly.stored(asOf: asOf, region: "E") == nil)
        await database.shutdown()
    }

    // MARK: issue 14 — an empty database is not reported on; a report can be replaced

    @Test func aFreshDatabaseIsSkippedStoringNothingAndReportedOnceItHasData() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        let nightly = PostgresNightly(database, scope: .system("test"))
        // serve's catch-up at start, and its run at the scheduled time: skipped, with the reason.
        for onlyIfMissing in [true, false] {
            guard case .skipped(let reason) = try await nightly.scheduled(asOf: asOf, onlyIfMissing: onlyIfMissing) else {
                Issue.record("an empty database was reported on")
                return
            }
            #expect(reason.contains("nothing to report for 2026-11-22") && reason.contains("no stock"))
        }
        // By hand: refused, with the same reason.
        let refusal = await #expect(throws: Refusal.self) { try await nightly.run(asOf: asOf, region: nil) }
        #expect(refusal?.field == PostgresNightly.nothingToReportField && refusal?.kind == .conflict)
        // Master data alone (no stock, no plans) is still nothing to report on.
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(NightlyDistrict.files.filter { ["regions", "facilities", "items"].contains($0.key) })
        guard case .skipped = try await nightly.scheduled(asOf: asOf, onlyIfMissing: true) else {
            Issue.record("master data alone was reported on")
            return
        }
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 0)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == 0)
        #expect(try await nightly.isStored(asOf: asOf, region: nil) == false)

        // The first import: the same date's catch-up now makes the real report, and only once.
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(NightlyDistrict.files)
        guard case .ran(let run) = try await nightly.scheduled(asOf: asOf, onlyIfMissing: true) else {
            Issue.record("the catch-up did not run once there was data")
            return
        }
        #expect(!run.replay && run.generation == 1 && run.report.positions == 15)
        #expect(run.report.items.map { "\($0.item) \($0.procurement)" } == ["GLOVE 420", "N95 50"])
        guard case .alreadyStored = try await nightly.scheduled(asOf: asOf, onlyIfMissing: true) else {
            Issue.record("the catch-up ran a stored date again")
            return
        }
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 1)
        await database.shutdown()
    }

    @Test func aReplaceSupersedesTheReportCancelsProposedOrdersAndKeepsApprovedOnes() async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        let orders = PostgresReallocations(database, scope: .system("test"))
        let first = try await nightly.run(asOf: asOf, region: "D")
        let fromW = try #require(first.report.orders.first { $0.from == "W" })
        let fromH2 = try #require(first.report.orders.first { $0.from == "H2" })
        _ = try await orders.approve(fromW.id)

        // The correction: H1's full-load plan was 100 a day, it is 50.
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(["demand": "facility_code,item_code,full_load_daily\nH1,N95,50\n"])
        let second = try await PostgresNightly(database, scope: .system("ops")).replace(asOf: asOf, region: "D")
        #expect(!second.replay && second.generation == 2)
        // The new report reflects it: 30 × 50 − 500 = 1000 short (it was 2500).
        let h1 = try #require(second.report.reorders.first { $0.position.facility == "H1" && $0.position.item == "N95" })
        #expect(h1.position.dailyDemand == 50 && h1.position.shortfallQty == 1000)
        // Its orders are new ones, under a new request id (the old id would have replayed the old orders).
        #expect(second.report.requestID != first.report.requestID)
        #expect(!second.report.orders.isEmpty)
        #expect(Set(second.report.orders.map(\.id)).isDisjoint(with: first.report.orders.map(\.id)))

        // The old run's proposed order is cancelled with the reason; the approved one is kept, and counted.
        let replaced = try #require(second.replaced)
        #expect(replaced.supersededGeneration == 1 && replaced.supersededRequestID == first.report.requestID)
        #expect(replaced.cancelledOrders == 1 && replaced.keptOrders == ["approved": 1])
        let cancelled = try await orders.order(fromH2.id)
        #expect(cancelled.status == "cancelled" && cancelled.cancelledBy == "ops")
        #expect(cancelled.cancelReason == replaced.reason)
        #expect(replaced.reason.hasPrefix("superseded by the nightly report rerun of 2026-11-22 at "))
        #expect(try await orders.order(fromW.id).status == "approved")

        // The new report is the one read; the superseded one is still there, by its generation.
        #expect(try await nightly.stored(asOf: asOf, region: "D") == second.report)
        #expect(try await nightly.stored(asOf: asOf, region: "D", generation: 1) == first.report)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports WHERE superseded_at IS NOT NULL AND superseded_by = 'ops'") == 1)
        // A plain rerun returns the new report and runs nothing.
        let again = try await nightly.run(asOf: asOf, region: "D")
        #expect(again.replay && again.generation == 2 && again.report == second.report)

        // Audited, with who.
        let audit = try TestDatabase.ownerConnection(database.location)
            .query("SELECT token_name, target, detail FROM audit_log WHERE action = 'nightly.replace'").rows
        #expect(audit.count == 1)
        #expect(try audit.first?.decode("token_name", as: String.self) == "ops")
        #expect(try audit.first?.decode("target", as: String.self) == "2026-11-22 D")
        #expect(try audit.first?.decode("detail", as: String.self) == "generation 1 → 2: 1 proposed orders cancelled, 1 kept (approved 1)")

        // A date with no report is not replaced (404): replace supersedes, it does not make the first report.
        let missing = await #expect(throws: Refusal.self) { try await nightly.replace(asOf: asOf.adding(days: 1), region: "D") }
        #expect(missing?.kind == .notFound)
        await database.shutdown()
    }

    @Test func twoReplacesAtOnceMakeOneNewReportAndOneSetOfOrders() async throws {
        let database = try await district()
        let nightly = PostgresNightly(database, scope: .system("test"))
        _ = try await nightly.run(asOf: asOf, region: "D")
        // Hold the run's lock so both replaces are asked while generation 1 is current, then let them go.
        let owner = try TestDatabase.ownerConnection(database.location)
        try owner.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [PostgresNightly.runName(asOf: asOf, region: "D")])
        async let a = nightly.replace(asOf: asOf, region: "D")
        async let b = nightly.replace(asOf: asOf, region: "D")
        let waiting = ContinuousClock.now
        while try count(database, """
            SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """) < 2 {
            guard ContinuousClock.now - waiting < .seconds(60) else {
                Issue.record("the two replaces never both waited for the lock")
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try owner.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [PostgresNightly.runName(asOf: asOf, region: "D")])
        let (x, y) = try await (a, b)
        #expect([x.replay, y.replay].sorted { !$0 && $1 } == [false, true])
        #expect(x.generation == 2 && y.generation == 2 && x.report == y.report)
        #expect(try count(database, "SELECT count(*) AS n FROM nightly_reports") == 2)
        // The first run's 2 orders cancelled, one new set of 2 proposed.
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders WHERE status = 'cancelled'") == 2)
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders WHERE status = 'proposed'") == 2)
        #expect(try count(database, "SELECT count(*) AS n FROM audit_log WHERE action = 'nightly.replace'") == 1)
        await database.shutdown()
    }

    /// What creating orders answers is built from what it stored, not read back (a city's 1.2
    /// million orders): it must be what a replay, which does read them back, answers.
    @Test func createdOrdersAreWhatAReplayReadsBack() async throws {
        let database = try await district()
        let orders = PostgresReallocations(database, scope: .system("planner"))
        let id = UUID()
        let created = try await orders.create(requestID: id, plan: PlanRequest(asOf: asOf, region: "D"))
        #expect(!created.replay && created.orders.count == 2 && created.orders.allSatisfy { !$0.lines.isEmpty })
        let replay = try await orders.create(requestID: id, plan: PlanRequest(asOf: asOf, region: "D"))
        #expect(replay.replay && replay.orders == created.orders)
        #expect(created.orders.allSatisfy { $0.status == "proposed" && $0.createdBy == "planner" && $0.shipment != nil })
        #expect(created.orders.flatMap(\.lines).allSatisfy { $0.received == nil && $0.inTransit == 0 })

        // Rotation orders under the same id, into the plan's shipment W → H1 and a new one H2 → C1.
        let planned = created.orders.first { $0.from == "W" }!
        let rotation = [PlannedOrder(item: planned.item, from: "W", to: "H1", quantity: 1, distanceKm: 1.5,
                                     lines: [.init(lot: planned.lines[0].lot, expiry: planned.lines[0].expiry, quantity: 1)]),
                        PlannedOrder(item: planned.item, from: "H2", to: "C1", quantity: 2, distanceKm: 2.25,
                                     lines: [.init(lot: planned.lines[0].lot, expiry: planned.lines[0].expiry, quantity: 2)])]
        let rotated = try await orders.storeRotation(requestID: id, orders: rotation, asOf: asOf)
        #expect(rotated.count == 2 && rotated[0].shipment == planned.shipment && rotated[1].shipment != planned.shipment)
        let again = try await orders.storeRotation(requestID: id, orders: rotation, asOf: asOf)
        #expect(again == rotated && again.allSatisfy { $0.purpose == "rotation" })
        #expect(try await PostgresReallocations.integrityViolations(database) == [])
        await database.shutdown()
    }

    /// Two creations of one request id prepared at once (a retry racing the original, each with
    /// its own ids drawn): whichever stores second gets the first one's orders back as a replay,
    /// and only one set is stored.
    @Test func twoPreparedCreationsOfOneRequestStoreOneSetOfOrders() async throws {
        let database = try await district()
        let orders = PostgresReallocations(database, scope: .system("planner"))
        let id = UUID()
        let first = try await orders.prepare(requestID: id, plan: PlanRequest(asOf: asOf, region: "D"))
        let second = try await orders.prepare(requestID: id, plan: PlanRequest(asOf: asOf, region: "D"))
        #expect(!first.replay && !second.replay && first.orders().count == 2)
        #expect(Set(first.orders().map(\.id)).isDisjoint(with: second.orders().map(\.id)))
        let stored = try await orders.store(second)
        #expect(!stored.replay && stored.orders == second.orders())
        #expect(try await orders.write(first) == second.orders())
        let late = try await orders.store(first)
        #expect(late.replay && late.orders == second.orders())
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders") == 2)
        #expect(try count(database, "SELECT count(*) AS n FROM shipments") == Set(second.orders().compactMap(\.shipment)).count)
        // Prepared after the store: a replay that stores nothing.
        let after = try await orders.prepare(requestID: id, plan: PlanRequest(asOf: asOf, region: "D"))
        #expect(after.replay && after.orders() == second.orders())
        #expect(try await orders.store(after).orders == second.orders())
        #expect(try await PostgresReallocations.integrityViolations(database) == [])
        await database.shutdown()
    }

    @Test func aClientCannotCreateOrdersUnderTheNightlyRunsIdFirst() async throws {
        let database = try await district()
        let owner = try TestDatabase.ownerConnection(database.location)
        // The id the run used to take (md5 of its name): a client creates its own orders under it first,
        // for W's 300 N95 only (within 10 km).
        let guessed: UUID = try owner.query("SELECT md5($1)::uuid AS id", [PostgresNightly.runName(asOf: asOf, region: "D")]).rows[0].decode("id")
        let client = try await PostgresReallocations(database, scope: .system("client"))
            .create(requestID: guessed, plan: PlanRequest(asOf: asOf, region: "D", maxDistanceKm: 10))
        #expect(!client.replay && client.orders.map { "\($0.from)>\($0.to) \($0.quantity)" } == ["W>H1 300"])
        // The nightly run plans its own orders under an id no client can compute.
        let run = try await PostgresNightly(database, scope: .system("test")).run(asOf: asOf, region: "D")
        #expect(run.report.requestID != guessed.uuidString.lowercased())
        #expect(Set(run.report.orders.map { "\($0.from)>\($0.to) \($0.quantity)" }) == ["W>H1 300", "H2>H1 100"])
        #expect(Set(run.report.orders.map(\.id)).isDisjoint(with: client.orders.map(\.id)))
        #expect(try count(database, "SELECT count(*) AS n FROM reallocation_orders WHERE request_id = md5('\(PostgresNightly.runName(asOf: asOf, region: "D"))')::uuid") == 1)
        // Nor can the service role read the secret the id is made with.
        let service = try PQConnection(parameters: database.location.serviceParameters)
        #expect(throws: PQError.self) { try service.query("SELECT secret FROM nightly_secret") }
        await database.shutdown()
    }
}
