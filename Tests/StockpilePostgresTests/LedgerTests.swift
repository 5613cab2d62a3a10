import Foundation
import PQ
import StockpileCore
import StockpilePostgres
import StockpileTestSupport
import Testing

@Suite(.serialized) struct LedgerTests {
    let location: DatabaseLocation
    let database: StockpileDatabase
    let ledger: PostgresLedger

    init() async throws {
        location = try TestDatabase.freshLocation()
        database = StockpileDatabase(location: location, poolSize: 2)
        ledger = PostgresLedger(database, scope: .system("test"))
        _ = try await CSVImporter(database, scope: .system("test")).importFiles([
            "regions": "code,name,parent_code\nC,示范市,\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nH,人民医院,hospital,C,100,30.1,114.2,true\nW,储备库,warehouse,C,0,30.2,114.3,false\n",
            "items": "code,name,category,unit,target_days,shelf_life_days\nN95,N95口罩,ppe,只,,\nALC,医用酒精,disinfectant,瓶,45,730\n",
        ])
    }

    func movement(_ kind: MovementKind, _ quantity: Int64, lot: String = "L1", expiry: String? = "2027-06-30",
                  reason: String = "", id: UUID = UUID(), facility: String = "H", item: String = "N95") -> MovementRequest {
        MovementRequest(id: id, facility: facility, item: item, lot: lot, expiry: expiry.flatMap(LocalDate.init), kind: kind,
                        quantity: quantity, reason: reason, occurredAt: nil)
    }

    func onHand(_ facility: String = "H", lot: String = "L1") async throws -> Int64 {
        try await ledger.stock(facility: facility)!.first { $0.lot == lot }?.quantity ?? 0
    }

    /// One movement goes through record_movement, a batch through record_movements: the rules are
    /// written twice (for speed), so every rule test runs through both.
    func record(_ m: MovementRequest, batch: Bool) async throws -> RecordedMovement {
        batch ? try await ledger.record(batch: [m], recordedBy: "t")[0] : try await ledger.record(m, recordedBy: "t")
    }

    @Test(arguments: [false, true]) func receiptIssueAdjustmentAndCount(batch: Bool) async throws {
        let lot = batch ? "RB" : "RS"
        let receipt = try await record(movement(.receipt, 100, lot: lot), batch: batch)
        #expect(receipt.quantity == 100 && receipt.balanceAfter == 100 && !receipt.replay)
        #expect(receipt.expiry == LocalDate("2027-06-30"))
        let issue = try await record(movement(.issue, 30, lot: lot, expiry: nil), batch: batch)
        #expect(issue.quantity == -30 && issue.balanceAfter == 70)
        let damage = try await record(movement(.adjustment, 5, lot: lot, expiry: nil, reason: "damage: 漏水"), batch: batch)
        #expect(damage.quantity == -5 && damage.balanceAfter == 65)
        let found = try await record(movement(.adjustment, 2, lot: lot, expiry: nil, reason: "found"), batch: batch)
        #expect(found.quantity == 2 && found.balanceAfter == 67)
        // The reason code is read the same way by the service and the database, spaces and all.
        let spaced = try await record(movement(.adjustment, 3, lot: lot, expiry: nil, reason: " found : 盘盈"), batch: batch)
        #expect(spaced.quantity == 3 && spaced.balanceAfter == 70)
        // A count sets on-hand to the counted figure and records the difference.
        let count = try await record(movement(.count, 60, lot: lot, expiry: nil), batch: batch)
        #expect(count.quantity == -10 && count.balanceAfter == 60)
        let zero = try await record(movement(.count, 0, lot: lot, expiry: nil), batch: batch)
        #expect(zero.quantity == -60 && zero.balanceAfter == 0)
        #expect(try await onHand(lot: lot) == 0)
        // Found stock may introduce a lot (with its expiry, N95 being PPE); a loss may not.
        let newLot = try await record(movement(.adjustment, 4, lot: lot + "-F", expiry: "2027-09-30", reason: "found"), batch: batch)
        #expect(newLot.balanceAfter == 4)
        let error = await #expect(throws: (any Error).self) {
            try await record(movement(.adjustment, 1, lot: lot + "-L", expiry: nil, reason: "loss"), batch: batch)
        }
        let pq = (error as? PQError) ?? (error as? BatchError)?.underlying
        #expect(pq?.sqlState == "SP404" && pq?.column == "lot")
        #expect(try await ledger.mismatches().isEmpty)
    }

    @Test func aBatchNamesTheSameFaultsAsSingleMovements() async throws {
        // An issue from a lot that only a later movement of the batch would bring in: unknown lot, as alone.
        let error = await #expect(throws: BatchError.self) {
            try await ledger.record(batch: [movement(.issue, 1, lot: "NB", expiry: nil), movement(.receipt, 5, lot: "NB")], recordedBy: "t")
        }
        #expect(error?.index == 0 && error?.underlying.sqlState == "SP404" && error?.underlying.column == "lot")
        // The same id twice in a batch: the second is a replay of the first.
        let m = movement(.receipt, 9, lot: "DUP")
        let twice = try await ledger.record(batch: [m, m], recordedBy: "t")
        #expect(twice.map(\.replay) == [false, true])
        #expect(try await onHand(lot: "DUP") == 9)
    }

    /// A WARNING 01000 inside an open transaction is not a commit's cancelled wait for the
    /// synchronous standby: nothing was committed. ANALYZE by the service's role (not the tables'
    /// owner) warns so, and a city's plan (over 10,000 orders) runs one before storing its lines;
    /// taking it for an unconfirmed commit stopped the city's nightly run.
    @Test func aWarningInsideATransactionIsNotAnUnconfirmedCommit() async throws {
        let counted = try await database.transaction(.system("test")) { c -> Int64 in
            try c.query("ANALYZE reallocation_orders")
            return try c.query("SELECT count(*) AS n FROM reallocation_orders").rows[0].decode("n")
        }
        #expect(counted == 0)
        // The statistics a large plan refreshes before storing its lines are refreshed for the
        // service's role too (as the owner, sql/0031), counting the transaction's own new orders.
        try TestDatabase.ownerConnection(location).execute("""
            INSERT INTO shipments (request_id, from_facility_id, to_facility_id, distance_km, as_of)
            SELECT '00000000-0000-4000-8000-0000000000aa', h.id, w.id, 1, current_date
            FROM facilities h, facilities w WHERE h.code = 'H' AND w.code = 'W'
            """)
        let analysed = try await database.transaction(.system("test")) { c -> Double in
            try c.query("""
                INSERT INTO reallocation_orders (request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by)
                SELECT '00000000-0000-4000-8000-0000000000aa', i.id, h.id, w.id, 1, 1, current_date, 'test'
                FROM items i, facilities h, facilities w, generate_series(1, 500) WHERE i.code = 'N95' AND h.code = 'H' AND w.code = 'W'
                """)
            try c.query("SELECT stockpile_analyze_orders()")
            return try c.query("SELECT reltuples::float8 AS n FROM pg_class WHERE relname = 'reallocation_orders'").rows[0].decode("n")
        }
        #expect(analysed == 500)
    }

    @Test func fingerprintsCannotBeForgedBySeparators() throws {
        let c = try TestDatabase.ownerConnection(location)
        let row = try c.query("""
            SELECT movement_fingerprint('receipt', 'A|B', 'C', 'L', NULL, 1, '', NULL)
                 = movement_fingerprint('receipt', 'A', 'B|C', 'L', NULL, 1, '', NULL) AS same
            """).first!
        #expect(try row.decode("same", as: Bool.self) == false)
    }

    @Test func aReplayReturnsTheOriginalAndADifferentBodyIsRefused() async throws {
        let id = UUID()
        let first = try await ledger.record(movement(.receipt, 40, lot: "R1", id: id), recordedBy: "t")
        _ = try await ledger.record(movement(.issue, 10, lot: "R1", expiry: nil), recordedBy: "t")
        let again = try await ledger.record(movement(.receipt, 40, lot: "R1", id: id), recordedBy: "t")
        #expect(again.replay)
        #expect(again.balanceAfter == first.balanceAfter)
        #expect(again.recordedAt == first.recordedAt)
        #expect(try await onHand(lot: "R1") == 30)
        let error = await #expect(throws: PQError.self) { try await ledger.record(movement(.receipt, 41, lot: "R1", id: id), recordedBy: "t") }
        #expect(error?.sqlState == "SP409" && error?.column == "id")
        #expect(try await onHand(lot: "R1") == 30)
    }

    @Test func anIssueLargerThanTheBalanceIsRefusedWithTheBalance() async throws {
        _ = try await ledger.record(movement(.receipt, 12, lot: "S1"), recordedBy: "t")
        let error = await #expect(throws: PQError.self) { try await ledger.record(movement(.issue, 13, lot: "S1", expiry: nil), recordedBy: "t") }
        #expect(error?.sqlState == "SP409")
        #expect(error?.column == "quantity")
        #expect(error?.message.contains("only 12 on hand") == true)
        #expect(try await onHand(lot: "S1") == 12)
        // Stock at another facility is not this facility's.
        let elsewhere = await #expect(throws: PQError.self) { try await ledger.record(movement(.issue, 1, lot: "S1", expiry: nil, facility: "W"), recordedBy: "t") }
        #expect(elsewhere?.message.contains("only 0 on hand") == true)
    }

    @Test func unknownReferencesAndContradictoryExpiry() async throws {
        _ = try await ledger.record(movement(.receipt, 5, lot: "E1", expiry: "2027-01-31"), recordedBy: "t")
        let facility = await #expect(throws: PQError.self) { try await ledger.record(movement(.receipt, 1, facility: "NOPE"), recordedBy: "t") }
        #expect(facility?.sqlState == "SP404" && facility?.column == "facility")
        let item = await #expect(throws: PQError.self) { try await ledger.record(movement(.receipt, 1, item: "NOPE"), recordedBy: "t") }
        #expect(item?.sqlState == "SP404" && item?.column == "item")
        let lot = await #expect(throws: PQError.self) { try await ledger.record(movement(.issue, 1, lot: "NOPE", expiry: nil), recordedBy: "t") }
        #expect(lot?.sqlState == "SP404" && lot?.column == "lot")
        let expiry = await #expect(throws: PQError.self) { try await ledger.record(movement(.receipt, 1, lot: "E1", expiry: "2027-02-01"), recordedBy: "t") }
        #expect(expiry?.sqlState == "SP422" && expiry?.column == "expiry")
        #expect(try await onHand(lot: "E1") == 5)
    }

    @Test func aBatchIsAllOrNothing() async throws {
        let good = movement(.receipt, 10, lot: "B1")
        let bad = movement(.issue, 11, lot: "B1", expiry: nil)
        let error = await #expect(throws: BatchError.self) { try await ledger.record(batch: [good, bad], recordedBy: "t") }
        #expect(error?.index == 1)
        #expect(try await onHand(lot: "B1") == 0)
        let done = try await ledger.record(batch: [good, movement(.issue, 4, lot: "B1", expiry: nil)], recordedBy: "t")
        #expect(done.map(\.balanceAfter) == [10, 6])
    }

    @Test func theServiceRoleCannotRewriteTheLedger() async throws {
        _ = try await ledger.record(movement(.receipt, 3, lot: "A1"), recordedBy: "t")
        for statement in ["UPDATE movements SET quantity = 1000", "DELETE FROM movements"] {
            let error = await #expect(throws: PQError.self) {
                try await database.pool.withConnection { c in try c.execute(statement) }
            }
            #expect(error?.sqlState == "42501")
        }
        // Not even the owner: the trigger refuses.
        let owner = try TestDatabase.ownerConnection(location)
        let error = #expect(throws: PQError.self) { try owner.execute("UPDATE movements SET quantity = 1000") }
        #expect(error?.sqlState == "42501")
        // And balances cannot go negative whatever writes them.
        let negative = #expect(throws: PQError.self) { try owner.execute("UPDATE balances SET quantity = -1") }
        #expect(negative?.sqlState == "23514")
    }

    /// The batch endpoint's lean answer is the full answer's id, change, balance and replay flag.
    @Test func aBatchsOutcomesAreItsFullAnswersInBrief() async throws {
        let first = [movement(.receipt, 50, lot: "O1"), movement(.issue, 20, lot: "O1", expiry: nil), movement(.count, 25, lot: "O1", expiry: nil)]
        let full = try await ledger.record(batch: first, recordedBy: "t")
        let second = first + [movement(.adjustment, 3, lot: "O1", expiry: nil, reason: "found")]
        let brief = try await ledger.recordOutcomes(batch: second, recordedBy: "t")
        #expect(brief.prefix(3).map { "\($0.id) \($0.quantity) \($0.balanceAfter)" } == full.map { "\($0.id) \($0.quantity) \($0.balanceAfter)" })
        #expect(brief.map(\.replay) == [true, true, true, false])
        #expect(brief.map(\.quantity) == [50, -20, -5, 3] && brief.last?.balanceAfter == 28)
        #expect(brief.map(\.id) == second.map { $0.id.uuidString.lowercased() })
        #expect(try await onHand(lot: "O1") == 28)
    }

    /// Every movement is at a position (a balance of its facility and lot, of the same item), and
    /// positions stay: sql/0036 checks this once per statement where three foreign keys per line did.
    @Test func movementsStayAtPositionsThatStay() async throws {
        _ = try await ledger.record(movement(.receipt, 3, lot: "P1"), recordedBy: "t")
        let owner = try TestDatabase.ownerConnection(location)
        try owner.execute("SELECT set_config('stockpile.scope', 'all', false)")
        for statement in ["DELETE FROM balances", "TRUNCATE balances"] {
            let error = #expect(throws: PQError.self) { try owner.execute(statement) }
            #expect(error?.sqlState == "42501")
        }
        let before = try owner.query("SELECT count(*) AS n FROM movements").first!.decode("n", as: Int.self)
        // Straight into the table, past the functions: the lot at a facility that never held it, the
        // lot under another item, and (in one statement) a good line beside a bad one.
        let at = { (facility: String, item: String) in """
            SELECT gen_random_uuid(), f.id, i.id, l.id, 'receipt', 1, 1, 1, '', now(), 't', 'x'
              FROM facilities f, items i, lots l WHERE f.code = '\(facility)' AND i.code = '\(item)' AND l.lot_number = 'P1'
            """ }
        for rows in [at("W", "N95"), at("H", "ALC"), at("H", "N95") + " UNION ALL " + at("W", "N95")] {
            let error = #expect(throws: PQError.self) {
                try owner.execute("""
                    INSERT INTO movements (id, facility_id, item_id, lot_id, kind, quantity, requested, balance_after, reason,
                                           occurred_at, recorded_by, fingerprint)
                    \(rows)
                    """)
            }
            #expect(error?.sqlState == "23503")
        }
        #expect(try owner.query("SELECT count(*) AS n FROM movements").first!.decode("n", as: Int.self) == before)
        #expect(try await onHand(lot: "P1") == 3)
    }

    /// Orders, lines and shipments refer to what exists, their references never change, and what
    /// they refer to stays (sql/0037 and 0039: checks per statement in place of foreign keys).
    @Test func ordersReferToWhatExistsAndItStays() async throws {
        _ = try await ledger.record(movement(.receipt, 5, lot: "R1", facility: "W"), recordedBy: "t")
        let owner = try TestDatabase.ownerConnection(location)
        try owner.execute("SELECT set_config('stockpile.scope', 'all', false)")
        func id(_ sql: String) throws -> Int { try owner.query(sql).first!.decode("id") }
        let (h, w, n95, lot) = (try id("SELECT id FROM facilities WHERE code = 'H'"), try id("SELECT id FROM facilities WHERE code = 'W'"),
                                try id("SELECT id FROM items WHERE code = 'N95'"), try id("SELECT id FROM lots WHERE lot_number = 'R1'"))
        let shipment = try id("""
            INSERT INTO shipments (request_id, from_facility_id, to_facility_id, distance_km, as_of)
            VALUES (gen_random_uuid(), \(w), \(h), 3, '2026-12-01') RETURNING id
            """)
        func order(item: Int, from: Int, shipment: Int?) throws -> Int { try id("""
            INSERT INTO reallocation_orders (request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by, shipment_id)
            VALUES (gen_random_uuid(), \(item), \(from), \(h), 2, 3, '2026-12-01', 't', \(shipment.map(String.init) ?? "NULL")) RETURNING id
            """) }
        let good = try order(item: n95, from: w, shipment: shipment)
        try owner.execute("INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) VALUES (\(good), 1, \(lot), 2)")
        func refused(_ state: String, sourceLocation: SourceLocation = #_sourceLocation, _ sql: @escaping () throws -> Void) {
            let error = #expect(throws: PQError.self, sourceLocation: sourceLocation) { try sql() }
            #expect(error?.sqlState == state, sourceLocation: sourceLocation)
        }
        refused("23503") { _ = try order(item: 999_999, from: w, shipment: nil) }
        refused("23503") { _ = try order(item: n95, from: 999_999, shipment: nil) }
        refused("23503") { _ = try order(item: n95, from: w, shipment: 999_999) }
        refused("23503") { try owner.execute("INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) VALUES (999999, 1, \(lot), 1)") }
        refused("23503") { try owner.execute("INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) VALUES (\(good), 2, 999999, 1)") }
        refused("42501") { try owner.execute("UPDATE reallocation_orders SET from_facility_id = \(h) WHERE id = \(good)") }
        refused("42501") { try owner.execute("UPDATE reallocation_lines SET lot_id = lot_id + 1 WHERE order_id = \(good)") }
        refused("23503") { try owner.execute("DELETE FROM reallocation_orders WHERE id = \(good)") }
        refused("23503") { try owner.execute("DELETE FROM shipments WHERE id = \(shipment)") }
        // Shipments too (sql/0039): their ends exist and stay as stored; only the carrier changes.
        for (from, to) in [(999_999, h), (w, 999_999)] {
            refused("23503") { try owner.execute("""
                INSERT INTO shipments (request_id, from_facility_id, to_facility_id, distance_km, as_of)
                VALUES (gen_random_uuid(), \(from), \(to), 3, '2026-12-01')
                """) }
        }
        refused("42501") { try owner.execute("UPDATE shipments SET to_facility_id = \(w), from_facility_id = \(h) WHERE id = \(shipment)") }
        try owner.execute("UPDATE shipments SET carrier = '顺丰' WHERE id = \(shipment)")
        for table in ["facilities", "items", "lots"] {
            refused("42501") { try owner.execute("DELETE FROM \(table) WHERE false") }
            refused("42501") { try owner.execute("TRUNCATE \(table) CASCADE") }
        }
        // What moves does: a status, a received quantity; and lines, then orders, then shipments go in that order.
        try owner.execute("UPDATE reallocation_orders SET status = 'approved' WHERE id = \(good)")
        try owner.execute("UPDATE reallocation_lines SET received = 1 WHERE order_id = \(good)")
        try owner.execute("DELETE FROM reallocation_lines WHERE order_id = \(good)")
        try owner.execute("DELETE FROM reallocation_orders WHERE id = \(good)")
        try owner.execute("DELETE FROM shipments WHERE id = \(shipment)")
        #expect(try owner.query("SELECT count(*) AS n FROM reallocation_orders").first!.decode("n", as: Int.self) == 0)
    }

    /// The second wall: whatever query the service sends, row-level security shows and accepts only
    /// the rows of the scope on the connection.
    @Test func rowLevelSecurityHoldsEvenForACarelessQuery() async throws {
        _ = try await ledger.record(movement(.receipt, 10, lot: "RLS", facility: "H"), recordedBy: "t")
        _ = try await ledger.record(movement(.receipt, 20, lot: "RLS", facility: "W"), recordedBy: "t")
        let owner = try TestDatabase.ownerConnection(location)
        let h = try owner.query("SELECT id FROM facilities WHERE code = 'H'").first!.decode("id", as: Int.self)
        let clerk = AccessScope(actor: "clerk-h", role: .warehouse, facilities: .only([h]))
        // No WHERE on facility at all, as a buggy query would have it.
        let (balances, movements) = try await database.withConnection(clerk) { c in
            (try c.query("SELECT count(*) AS n, sum(quantity) AS q FROM balances").first!.decode("q", as: Int.self),
             try c.query("SELECT count(DISTINCT facility_id) AS n FROM movements").first!.decode("n", as: Int.self))
        }
        #expect(balances == 10)
        #expect(movements == 1)
        // Writing elsewhere is refused by the database itself, even through the ledger function.
        let refused = await #expect(throws: PQError.self) {
            try await PostgresLedger(database, scope: clerk).record(movement(.receipt, 5, lot: "RLS", facility: "W"), recordedBy: "clerk-h")
        }
        #expect(refused?.sqlState == "42501")
        // A connection on which no scope was set sees no stock at all.
        let unscoped = try await database.pool.withConnection { c in
            try c.query("SELECT set_config('stockpile.scope', '', false)")
            return try c.query("SELECT count(*) AS n FROM balances").first!.decode("n", as: Int.self)
        }
        #expect(unscoped == 0)
        // The ledger records who wrote, from the scope, without the caller passing it.
        let provenance = try owner.query("SELECT token_name FROM movements WHERE quantity = 10 AND facility_id = $1", [h]).first!
        #expect(try provenance.decode("token_name", as: String?.self) == "test")
    }

    /// An order's lines and both transit ledgers answer as their order does (sql/0014), now that
    /// their policies test the whole-city scope inline before the function (sql/0038): a facility
    /// scope sees and writes its own orders' rows only, a connection with no scope nothing.
    @Test func anOrdersLinesAndTransitAnswerOnlyWithinItsScope() async throws {
        let receipt = try await ledger.record(movement(.receipt, 5, lot: "S1", facility: "W"), recordedBy: "t")
        let owner = try TestDatabase.ownerConnection(location)
        try owner.execute("SELECT set_config('stockpile.scope', 'all', false)")
        func id(_ sql: String) throws -> Int { try owner.query(sql).first!.decode("id") }
        let (h, w, lot) = (try id("SELECT id FROM facilities WHERE code = 'H'"), try id("SELECT id FROM facilities WHERE code = 'W'"),
                           try id("SELECT id FROM lots WHERE lot_number = 'S1'"))
        let order = try id("""
            INSERT INTO reallocation_orders (request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by)
            VALUES (gen_random_uuid(), (SELECT id FROM items WHERE code = 'N95'), \(w), \(h), 2, 3, '2026-12-01', 't') RETURNING id
            """)
        try owner.execute("INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) VALUES (\(order), 1, \(lot), 2)")
        try owner.execute("INSERT INTO transit_movements (order_id, line_no, kind, quantity, recorded_by) VALUES (\(order), 1, 'dispatch', 2, 't')")
        try owner.execute("INSERT INTO transfer_movements (order_id, line_no, kind, movement_id) VALUES (\(order), 1, 'transfer_out', '\(receipt.id)')")
        let seen = "SELECT (SELECT count(*) FROM reallocation_lines) + (SELECT count(*) FROM transit_movements) + (SELECT count(*) FROM transfer_movements) AS n"

        let clerkH = AccessScope(actor: "clerk-h", role: .warehouse, facilities: .only([h]))
        let elsewhere = AccessScope(actor: "clerk-x", role: .warehouse, facilities: .only([999_999]))
        #expect(try await database.withConnection(.system("city")) { try $0.query(seen).first!.decode("n", as: Int.self) } == 3)
        #expect(try await database.withConnection(clerkH) { try $0.query(seen).first!.decode("n", as: Int.self) } == 3)
        #expect(try await database.withConnection(elsewhere) { try $0.query(seen).first!.decode("n", as: Int.self) } == 0)
        let unscoped = try await database.pool.withConnection { c in
            try c.query("SELECT set_config('stockpile.scope', '', false)")
            return try c.query(seen).first!.decode("n", as: Int.self)
        }
        #expect(unscoped == 0)
        // Writing: the order's own end may add a line; a scope without either end is refused by the policy.
        try await database.withConnection(clerkH) { c in
            try c.execute("INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) VALUES (\(order), 2, \(lot), 1)")
        }
        for sql in ["INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) VALUES (\(order), 3, \(lot), 1)",
                    "INSERT INTO transit_movements (order_id, line_no, kind, quantity, recorded_by) VALUES (\(order), 2, 'dispatch', 1, 'x')"] {
            let refused = await #expect(throws: PQError.self) { try await self.database.withConnection(elsewhere) { try $0.execute(sql) } }
            #expect(refused?.sqlState == "42501")
        }
        #expect(try owner.query(seen).first!.decode("n", as: Int.self) == 4)
    }

    @Test func movementsArePagedInRecordedOrder() async throws {
        for i in 1...5 { _ = try await ledger.record(movement(.receipt, Int64(i), lot: "P1", item: "ALC"), recordedBy: "t") }
        var seen: [Int64] = []
        var cursor: String?
        repeat {
            let page = try await ledger.movements(facility: "H", item: "ALC", since: nil, after: cursor, limit: 2)
            seen += page.movements.map(\.quantity)
            cursor = page.next
        } while cursor != nil
        #expect(seen == [1, 2, 3, 4, 5])
    }
}
