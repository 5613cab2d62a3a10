import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PQ
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Issue 14, tried as an attacker, a careless clerk and a fuzzer would: one case per attack, each
/// refused with its documented status, the ledger unchanged by every refusal, and conservation
/// (`stockpile check`, `integrityViolations`) intact after each.
@Suite(.serialized) struct AbuseTests {
    func conserved(_ service: TestService) async throws {
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }

    func balance(_ service: TestService, _ facility: String, _ lot: String) throws -> Int64 {
        try TestDatabase.ownerConnection(service.location).query("""
            SELECT coalesce(sum(b.quantity), 0)::bigint AS n FROM balances b JOIN facilities f ON f.id = b.facility_id
            JOIN lots l ON l.id = b.lot_id WHERE f.code = $1 AND l.lot_number = $2
            """, [facility, lot]).rows[0].decode("n")
    }

    /// Point 1: a clerk records movements under the ids dispatch and receipt used to compute
    /// (md5 of "stockpile/dispatch/<order>/<line>"); the transfers are still written, exactly once.
    @Test func transferIdsCannotBeTakenFirst() async throws {
        let service = try await TestService(reserves: true)
        let owner = try TestDatabase.ownerConnection(service.location)
        func oldID(_ word: String) throws -> String {
            try owner.query("SELECT md5('stockpile/' || $1 || '/1/1')::uuid::text AS id", [word]).rows[0].decode("id")
        }
        let dispatchID = try oldID("dispatch"), receiptID = try oldID("receipt")
        try await service.test { client in
            #expect(try await client.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            let clerkH = client.with(service.clerkH), clerkW = client.with(service.clerkW)
            // The donor's clerk takes the dispatch's old id with a receipt of 5 into the same lot.
            let squat = try await clerkH.post("/api/v1/movements", movement("receipt", 5, lot: "KEPT", id: dispatchID,
                                                                              extra: ["expiry": "2028-01-31"]))
            #expect(squat.status == .created)
            #expect(try balance(service, "H", "KEPT") == 45)
            let dispatched = try await clerkH.post("/api/v1/reallocations/1/dispatch", [:])
            #expect(dispatched.status == .ok)
            // The donor gave the 10 it shipped: 40 + 5 − 10.
            #expect(try balance(service, "H", "KEPT") == 35)
            // A replayed dispatch writes nothing more.
            #expect(try await clerkH.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)
            #expect(try balance(service, "H", "KEPT") == 35)
            try await conserved(service)

            // The receiver's clerk takes the receipt's old id with a receipt of its own.
            let squat2 = try await clerkW.post("/api/v1/movements", movement("receipt", 3, lot: "KEPT", id: receiptID,
                                                                               facility: "W", extra: ["expiry": "2028-01-31"]))
            #expect(squat2.status == .created)
            let received = try await clerkW.post("/api/v1/reallocations/1/receive", [:])
            #expect(received.status == .ok && body(received)["status"] as? String == "received")
            #expect(try balance(service, "W", "KEPT") == 13)
            try await conserved(service)
            // Transfers are not a kind a client may record.
            let forged = try await clerkW.post("/api/v1/movements", movement("transfer_in", 3, lot: "KEPT", facility: "W"))
            #expect(forged.status == .badRequest && errorOf(forged).field == "kind")
        }
        // Each transfer is tied to its line, once, under an id nobody chose.
        #expect(try service.scalar("SELECT count(*) AS n FROM transfer_movements WHERE order_id = 1") == 2)
        #expect(try service.scalar("""
            SELECT count(*) AS n FROM transfer_movements t JOIN movements m ON m.id = t.movement_id
            WHERE m.id::text IN (md5('stockpile/dispatch/1/1')::uuid::text, md5('stockpile/receipt/1/1')::uuid::text)
            """) == 0)
    }

    /// Point 1: what the old trick left behind (stock in transit with no transfer_out at the
    /// donor) is found and named by the check; so is a receipt that does not add up.
    @Test func checkNamesABrokenLine() async throws {
        let service = try await TestService(reserves: true)
        try await conserved(service)
        // Order 1 made to look dispatched into transit without the donor giving anything.
        try TestDatabase.ownerConnection(service.location).execute("""
            SELECT set_config('stockpile.scope', 'all', false);
            UPDATE reallocation_orders SET status = 'dispatched' WHERE id = 1;
            INSERT INTO transit_movements (order_id, line_no, kind, quantity, recorded_by) VALUES (1, 1, 'dispatch', 10, 'forger');
            INSERT INTO in_transit (order_id, line_no, item_id, lot_id, from_facility_id, to_facility_id, quantity)
            SELECT 1, 1, o.item_id, rl.lot_id, o.from_facility_id, o.to_facility_id, 10
            FROM reallocation_orders o JOIN reallocation_lines rl ON rl.order_id = o.id WHERE o.id = 1;
            """)
        let violations = try await PostgresReallocations.integrityViolations(service.database)
        #expect(violations.contains { $0.kind == "dispatch" && $0.subject == "order 1 line 1" })
        // Each ledger still sums to its balance, and so does every lot: only the line-by-line proof sees it.
        #expect(try await service.mismatches() == 0)
        #expect(violations.count == 1)
    }
}

/// Point 3: holds hold, and have a scope.
@Suite(.serialized) struct HoldAbuseTests {
    @Test func aHeldLotIsNotIssuedDispatchedOrPlanned() async throws {
        let service = try await TestService(reserves: true)
        let commandC = try await PostgresTokens(service.database, scope: .system("test"))
            .create(name: "command-c", role: .command, region: "C", facilities: [], validDays: 1).secret
        try await service.test { admin in
            let clerkH = admin.with(service.clerkH), commandD = admin.with(service.commandD)
            #expect(try await admin.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            let held = try await admin.post("/api/v1/lots/N95/KEPT/hold", ["reason": "召回"])
            #expect(held.status == .created && body(held)["quarantined"] as? Bool == true)
            let before = try service.ledgerState()

            // An issue, alone or in a batch, and a dispatch: 409 lot_held, nothing written.
            let issue = try await clerkH.post("/api/v1/movements", movement("issue", 1, lot: "KEPT"))
            #expect(issue.status == .conflict && errorOf(issue).code == "lot_held" && errorOf(issue).field == "lot")
            #expect(errorOf(issue).message?.contains("召回") == true)
            let batch = try await clerkH.post("/api/v1/movements/batch", ["movements": [
                movement("receipt", 2, lot: "NEW1"), movement("issue", 1, lot: "KEPT")]])
            #expect(batch.status == .conflict && errorOf(batch).code == "lot_held" && errorOf(batch).field == "movements[1].lot")
            let dispatch = try await clerkH.post("/api/v1/reallocations/1/dispatch", [:])
            #expect(dispatch.status == .conflict && errorOf(dispatch).code == "lot_held")
            #expect(try service.ledgerState() == before)
            #expect(try service.scalar("SELECT count(*) AS n FROM in_transit") == 0)

            // The command centre of D may not lift the city-wide recall; the city's may not either.
            for token in [service.commandD, commandC] {
                let lifted = try await admin.with(token).post("/api/v1/lots/N95/KEPT/release", [:])
                #expect(lifted.status == .forbidden && errorOf(lifted).message?.contains("召回") == true)
            }
            #expect(try service.scalar("SELECT count(*) AS n FROM lot_holds WHERE released_at IS NULL") == 1)

            // A count and a damage write-off of held stock are still recorded.
            #expect(try await clerkH.post("/api/v1/movements", movement("adjustment", 1, lot: "KEPT", extra: ["reason": "damage: 召回销毁"])).status == .created)

            // The planner does not offer it: H has 39 N95 in KEPT and nothing else to give.
            let plan = try await admin.post("/api/v1/reallocations/plan", ["item": "N95"])
            #expect(plan.status == .ok)
            let lots = ((body(plan)["orders"] as? [[String: Any]]) ?? []).flatMap { ($0["lines"] as? [[String: Any]]) ?? [] }.map { $0["lot"] as? String }
            #expect(!lots.contains("KEPT"))

            // The administrator lifts it; the dispatch goes through.
            #expect(try await admin.post("/api/v1/lots/N95/KEPT/release", [:]).status == .created)
            #expect(try await clerkH.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)

            // A command token's hold covers its subtree; the city's command centre (wider) lifts it,
            // and D's own may lift it too; each step is in D's audit log.
            let regional = try await commandD.post("/api/v1/lots/N95/KEPT/hold", ["reason": "待检"])
            #expect(regional.status == .created)
            #expect(((body(regional)["holds"] as? [[String: Any]])?.first?["region"] as? String) == "D")
            #expect(try await clerkH.post("/api/v1/movements", movement("issue", 1, lot: "KEPT")).status == .conflict)
            #expect(try await admin.with(commandC).post("/api/v1/lots/N95/KEPT/release", [:]).status == .created)
            #expect(try await clerkH.post("/api/v1/movements", movement("issue", 1, lot: "KEPT")).status == .created)
            let audit = try await commandD.execute(uri: "/api/v1/audit?limit=50", method: .get)
            let actions = ((body(audit)["entries"] as? [[String: Any]]) ?? []).compactMap { $0["action"] as? String }
            #expect(actions.filter { $0 == "lot.hold" }.count == 2 && actions.filter { $0 == "lot.release" }.count == 2)
        }
        #expect(try await service.mismatches() == 0)
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }
}

/// Point 2: every number a client sends has a documented range; its extremes never make a 5xx,
/// never stop the process, and a refusal changes nothing.
@Suite(.serialized) struct RangeAbuseTests {
    /// 0, −1, 2⁵³, 2⁶³−1, 1e308 and NaN, as JSON values and as query or path text.
    static var extremes: [(json: Any, text: String)] {
        [(0, "0"), (-1, "-1"), (Int64(1) << 53, "9007199254740992"), (Int64.max, "9223372036854775807"), (1e308, "1e308"), ("NaN", "NaN")]
    }

    /// The request AccessTests makes for the route, with `input` set to `value`.
    static func request(_ input: NumericInput, _ value: (json: Any, text: String), n: Int) -> (uri: String, body: ByteBuffer?) {
        var (uri, body) = AccessTests.request(input.method, input.path, n: n)
        switch input.place {
        case .query:
            uri += (uri.contains("?") ? "&" : "?") + "\(input.name)=\(value.text)"
        case .path:
            uri = input.path.replacingOccurrences(of: "{id}", with: value.text)
        case .body:
            var object = body.flatMap { try? JSONSerialization.jsonObject(with: Data(buffer: $0)) as? [String: Any] } ?? [:]
            switch input.path {
            case "/api/v1/movements/batch":
                object = ["movements": [movement("receipt", value.json, lot: "X\(n)")]]
            case "/api/v1/reallocations/{id}/receive":
                object = ["lines": [["lot": "KEPT", input.name: value.json]], "reason": "范围"]
            case "/api/v1/shipments/{id}/receive":
                var line: [String: Any] = ["order": 1, "lot": "KEPT", "received": 1]
                line[input.name] = value.json
                object = ["lines": [line], "reason": "范围"]
            case "/api/v1/movements":
                object = movement("receipt", value.json, lot: "X\(n)")
            case "/api/v1/movements/sync" where input.name == "quantity":
                object = ["movements": [movement("receipt", value.json, lot: "X\(n)")]]
            case "/api/v1/movements/sync":
                object = ["movements": [movement("receipt", 1, lot: "X\(n)", extra: [input.name: value.json])]]
            case "/api/v1/donations":
                object["lines"] = [["item": "N95", "lot": "DX\(n)", "expiry": "2028-06-30", "quantity": value.json]]
            case "/api/v1/donations/{id}/inspect":
                object["lines"] = [["line": value.json, "result": "passed"]]
            default:
                object[input.name] = value.json
            }
            body = json(object)
        }
        return (uri, body)
    }

    @Test func theExtremesOfEveryNumericInputOfEveryRoute() async throws {
        let service = try await TestService(reserves: true)
        let tried = try await service.test { admin in
            var tried = 0
            // Order 1 dispatched, so that its receipt's figures are weighed.
            #expect(try await admin.post("/api/v1/reallocations/1/approve", [:]).status == .ok)
            #expect(try await admin.post("/api/v1/reallocations/1/dispatch", [:]).status == .ok)
            for route in StockpileAPI.routes {
                for input in StockpileAPI.numericInputs where input.method == route.method && input.path == route.path {
                    for value in Self.extremes {
                        tried += 1
                        let (uri, body) = Self.request(input, value, n: tried)
                        let before = try service.ledgerState()
                        let response = try await admin.execute(uri: uri, method: .init(rawValue: route.method)!,
                                                               headers: [.contentType: "application/json"], body: body)
                        let what = "\(route.method) \(uri) \(input.name)=\(value.text): \(response.status.code) \(String(buffer: response.body).prefix(200))"
                        #expect(response.status.code < 500, "\(what)")
                        if response.status.code >= 400 {
                            #expect(try service.ledgerState() == before, "\(what) changed the ledger")
                            #expect(errorOf(response).code != nil, "\(what)")
                        }
                        // Outside the range is 400 naming the field (an order id outside it is simply not there: 404).
                        let number = Double(value.text)!
                        if input.path == "/api/v1/movements/sync" {
                            // Each movement is answered on its own: outside the range (or NaN) is that movement refused, naming the field.
                            let result = (StockpileHTTPTests.body(response)["results"] as? [[String: Any]])?.first
                            #expect(response.status == .ok, "\(what)")
                            if number.isNaN || number < input.minimum || number > input.maximum {
                                #expect(result?["status"] as? String == "refused" && result?["field"] as? String == input.name, "\(what)")
                                #expect(try service.ledgerState() == before, "\(what) changed the ledger")
                            }
                        } else if !number.isNaN && (number < input.minimum || number > input.maximum) {
                            let want: HTTPResponse.Status = input.place == .path ? .notFound : .badRequest
                            #expect(response.status == want, "\(what)")
                            if input.place != .path { #expect(errorOf(response).field?.hasSuffix(input.name) == true, "\(what)") }
                        }
                    }
                }
            }
            // The process is alive, and cover reads as before.
            #expect(try await admin.execute(uri: "/healthz", method: .get).status == .ok)
            #expect(try await admin.execute(uri: "/api/v1/cover?surge=1.5&facility=H", method: .get).status == .ok)
            return tried
        }
        #expect(tried >= StockpileAPI.numericInputs.count * Self.extremes.count)
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }

    /// The reported attack: a pledge of 2⁶³−1 a day is refused; one that an older version let in
    /// no longer breaks any read of the city, and `stockpile check` names it.
    @Test func anAbsurdPledgeIsRefusedAndOneFromBeforeIsReportedNotFatal() async throws {
        let service = try await TestService(reserves: true)
        let pledge = json(["facility": "H", "manufacturer": "本地企业", "item": "N95", "daily_capacity": Int64.max,
                                     "ramp_up_days": 3, "valid_from": "2026-01-01", "valid_to": "2027-12-31", "certified": true])
        try await service.test { admin in
            let refused = try await admin.execute(uri: "/api/v1/capacity/P-MAX", method: .put, headers: [.contentType: "application/json"],
                                                  body: pledge)
            #expect(refused.status == .badRequest && errorOf(refused).field == "daily_capacity")
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM capacity_pledges") == 0)
        // As an older version stored it, past the constraint that now keeps it out.
        try TestDatabase.ownerConnection(service.location).execute("""
            ALTER TABLE capacity_pledges DROP CONSTRAINT capacity_pledges_in_range;
            ALTER TABLE contracts DROP CONSTRAINT contracts_in_range;
            INSERT INTO capacity_pledges (code, facility_id, item_id, manufacturer, daily_capacity, ramp_up_days, valid_from, valid_to, certified)
            SELECT 'P-MAX', f.id, i.id, '旧版本', 9223372036854775807, 3, '2026-01-01', '2027-12-31', true FROM facilities f, items i
            WHERE f.code = 'H' AND i.code = 'N95';
            INSERT INTO capacity_pledges (code, facility_id, item_id, manufacturer, daily_capacity, ramp_up_days, valid_from, valid_to, certified)
            SELECT 'P-MAX2', f.id, i.id, '旧版本', 9223372036854775807, 0, '2026-01-01', '2027-12-31', true FROM facilities f, items i
            WHERE f.code = 'H' AND i.code = 'N95';
            UPDATE contracts SET committed = 9223372036854775807 WHERE code = 'KH';
            """)
        try await service.test { admin in
            for uri in ["/api/v1/cover", "/api/v1/cover?facility=H&surge=1.5", "/api/v1/cover?facility=H&as_of=2026-11-20",
                        "/api/v1/cover?surge=100", "/api/v1/cover/rollup", "/api/v1/cover/rollup?group=item&surge=1.5",
                        "/api/v1/cover?format=csv", "/api/v1/capacity", "/api/v1/contracts"] {
                let response = try await admin.execute(uri: uri, method: .get)
                #expect(response.status == .ok, "\(uri): \(String(buffer: response.body).prefix(300))")
            }
            let plan = try await admin.post("/api/v1/reallocations/plan", ["item": "N95"])
            #expect(plan.status == .ok)
            let cover = body(try await admin.execute(uri: "/api/v1/cover?facility=H&item=N95", method: .get))
            let row = (cover["rows"] as? [[String: Any]])?.first
            #expect((row?["capacity_qty"] as? Int64 ?? (row?["capacity_qty"] as? Int).map(Int64.init)) == Int64.max)
        }
        _ = try await PostgresNightly(service.database, scope: .system("test")).run(asOf: LocalDate("2026-11-22")!, region: nil)
        let violations = try await PostgresReallocations.integrityViolations(service.database)
        #expect(violations.filter { $0.kind == "range" }.map(\.subject).sorted() == ["capacity pledge P-MAX", "capacity pledge P-MAX2", "contract KH"])
    }
}

/// Point 2: every number the OpenAPI document says a request carries is in the table of ranges,
/// and the document gives each one's minimum and maximum.
@Suite struct DocumentedRangesTests {
    static func format(_ value: Double) -> String {
        if value >= 9.2e18 { return "9223372036854775807" }
        return value == value.rounded() && abs(value) < 1e16 ? String(Int64(value)) : String(value)
    }

    @Test func everyNumericRequestFieldHasItsRangeInTheDocument() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let yaml = try String(contentsOf: source.appendingPathComponent("Sources/StockpileHTTP/openapi.yaml"), encoding: .utf8)
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func indent(_ line: String) -> Int { line.prefix { $0 == " " }.count }
        /// The lines under `header` (at `depth` spaces) inside lines[from...].
        func block(_ header: String, in range: Range<Int>) -> Range<Int>? {
            guard let start = range.first(where: { lines[$0] == header }) else { return nil }
            let depth = indent(header)
            let end = (start + 1..<range.upperBound).first { !lines[$0].trimmingCharacters(in: .whitespaces).isEmpty && indent(lines[$0]) <= depth }
            return start + 1..<(end ?? range.upperBound)
        }
        let all = 0..<lines.count
        /// A method's request: its lines before `responses:`, and the request schemas it refers to.
        func request(_ method: String, _ path: String) -> [String] {
            guard let pathBlock = block("  \(path):", in: all), let methodBlock = block("    \(method.lowercased()):", in: pathBlock) else { return [] }
            var found = Array(lines[methodBlock].prefix { !$0.hasPrefix("      responses:") })
            for line in found {
                guard let ref = line.range(of: "#/components/schemas/") else { continue }
                let name = line[ref.upperBound...].prefix { $0.isLetter || $0.isNumber }
                if let schema = block("    \(name):", in: all) { found += lines[schema] }
            }
            return found
        }
        /// The numbers a line of the document declares: `name: {type: integer…` (also inline, in a
        /// one-line schema), `{name: limit, in: query, schema: {type: integer…`, or a block key
        /// whose next line says `type: integer`.
        func numericNames(_ line: String) -> [(name: String, spec: String)] {
            if let named = line.firstMatch(of: /\{name: (\w+), in: \w+.*type: (?:integer|number)(.*)/) {
                return [(String(named.1), String(named.2))]
            }
            return line.matches(of: /(\w+): \{type: (?:integer|number)([^}]*)\}/).map { (String($0.1), String($0.2)) }
        }
        for route in StockpileAPI.routes {
            let requestLines = request(route.method, route.path)
            let inputs = StockpileAPI.numericInputs.filter { $0.method == route.method && $0.path == route.path }
            let declared = requestLines.flatMap(numericNames)
            for (name, _) in declared {
                #expect(inputs.contains { $0.name == name }, "\(route.method) \(route.path): \(name) is a number in openapi.yaml but not in StockpileAPI.numericInputs")
            }
            for input in inputs {
                let documented = declared.first { $0.name == input.name }?.spec
                #expect(documented?.contains("minimum: \(Self.format(input.minimum))") == true
                        && documented?.contains("maximum: \(Self.format(input.maximum))") == true,
                        "\(route.method) \(route.path) \(input.name): openapi.yaml says \(documented ?? "nothing"), the service \(input.minimum)…\(input.maximum)")
            }
        }
    }
}

/// Point 4: lot data a careless clerk cannot spoil, and an administrator can correct.
@Suite(.serialized) struct LotAbuseTests {
    @Test func expiringLotsNeedAnExpiryAndZeroCountsMakeNoLot() async throws {
        let service = try await TestService(reserves: true)
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles([
            "items": "code,name,category,unit,target_days,shelf_life_days,expires\nTHERMO,体温计,device,支,,,\nGOGGLE,护目镜,ppe,副,,,false\n"])
        try await service.test { admin in
            let clerkH = admin.with(service.clerkH)
            let before = try service.ledgerState()
            // N95 is PPE: a new lot without its expiry is refused, alone or in a batch.
            let noExpiry = try await clerkH.post("/api/v1/movements", movement("receipt", 5, lot: "NEW1", extra: ["expiry": ""]))
            #expect(noExpiry.status == .badRequest && errorOf(noExpiry).field == "expiry")
            let batch = try await clerkH.post("/api/v1/movements/batch", ["movements": [
                movement("receipt", 2, lot: "NEW2"), movement("count", 7, lot: "NEW3")]])
            #expect(batch.status == .badRequest && errorOf(batch).field == "movements[1].expiry")
            // A count of 0 of a lot nothing brought in makes no lot.
            for (item, lot) in [("N95", "GHOST"), ("THERMO", "GHOST")] {
                let zero = try await clerkH.post("/api/v1/movements", movement("count", 0, lot: lot, item: item, extra: ["expiry": "2028-01-31"]))
                #expect(zero.status == .unprocessableContent && errorOf(zero).field == "lot", "\(item): \(String(buffer: zero.body))")
            }
            let zeroInBatch = try await clerkH.post("/api/v1/movements/batch", ["movements": [
                movement("receipt", 2, lot: "NEW4"), movement("count", 0, lot: "GHOST2", extra: ["expiry": "2028-01-31"])]])
            #expect(zeroInBatch.status == .unprocessableContent && errorOf(zeroInBatch).field == "movements[1].lot")
            #expect(try service.ledgerState() == before)
            // A count of 0 of a lot that exists is a count.
            #expect(try await clerkH.post("/api/v1/movements", movement("count", 0, lot: "KEPT")).status == .created)
            // Items whose lots do not expire take none.
            for item in ["THERMO", "GOGGLE"] {
                let ok = try await clerkH.post("/api/v1/movements", movement("count", 3, lot: "D1", item: item))
                #expect(ok.status == .created, "\(item): \(String(buffer: ok.body))")
            }
        }
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }

    @Test func anAdministratorCorrectsALotsExpiry() async throws {
        let service = try await TestService(reserves: true)
        // As an older version let it in: an N95 lot with no expiry, 20 on hand at H.
        try TestDatabase.ownerConnection(service.location).execute("""
            ALTER TABLE lots DISABLE TRIGGER lots_expiry_required;
            INSERT INTO lots (item_id, lot_number) SELECT id, 'OLD' FROM items WHERE code = 'N95';
            ALTER TABLE lots ENABLE TRIGGER lots_expiry_required;
            """)
        let counted = try await service.test { admin in try await admin.post("/api/v1/movements", movement("count", 20, lot: "OLD")).status }
        #expect(counted == .created)
        #expect(try await PostgresReallocations.integrityViolations(service.database).map(\.kind) == ["lot_expiry"])
        try await service.test { admin in
            let right = movement("receipt", 5, lot: "OLD", extra: ["expiry": "2026-12-15"])
            let refused = try await admin.post("/api/v1/movements", right)
            #expect(refused.status == .unprocessableContent && errorOf(refused).code == "expiry_mismatch")
            let put = { (token: String, body: [String: Any]) in
                try await admin.with(token).execute(uri: "/api/v1/lots/N95/OLD", method: .put, headers: [.contentType: "application/json"], body: json(body))
            }
            for token in [service.commandD, service.clerkH] { #expect(try await put(token, ["expiry": "2026-12-15"]).status == .forbidden) }
            let never = try await put(service.admin, ["expiry": NSNull()])
            #expect(never.status == .badRequest && errorOf(never).field == "expiry")
            let bad = try await put(service.admin, ["expiry": "2026-13-01"])
            #expect(bad.status == .badRequest && errorOf(bad).field == "expiry")
            #expect(try await admin.execute(uri: "/api/v1/lots/N95/NOPE", method: .put, headers: [.contentType: "application/json"],
                                            body: json(["expiry": "2026-12-15"])).status == .notFound)
            let fixed = try await put(service.admin, ["expiry": "2026-12-15"])
            #expect(fixed.status == .ok && body(fixed)["expiry"] as? String == "2026-12-15")
            #expect(try await admin.post("/api/v1/movements", right).status == .created)
            // Cover follows: as of 2026-12-20 the lot has expired and no longer counts.
            let cover = body(try await admin.execute(uri: "/api/v1/cover?facility=H&item=N95&as_of=2026-12-20", method: .get))
            let row = (cover["rows"] as? [[String: Any]])?.first
            #expect((row?["physical_qty"] as? Int) == 40)
            let audit = body(try await admin.execute(uri: "/api/v1/audit?limit=5", method: .get))["entries"] as? [[String: Any]] ?? []
            #expect(audit.first?["action"] as? String == "lot.expiry" && (audit.first?["detail"] as? String)?.contains("never → 2026-12-15") == true)
        }
        #expect(try await PostgresReallocations.integrityViolations(service.database) == [])
    }
}

/// Point 6: the edges of the HTTP surface.
@Suite(.serialized) struct EdgeAbuseTests {
    /// A second district E with facility X, and an order X → H (order 2) proposed.
    static func withSecondDistrict(_ service: TestService) async throws -> String {
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles([
            "regions": "code,name,parent_code\nE,第二区,C\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nX,第二区储备库,warehouse,E,0,30.50,114.50,false\n",
            "stock": "facility_code,item_code,lot,expiry,quantity\nX,N95,XLOT,2028-03-31,100\n"])
        try TestDatabase.ownerConnection(service.location).execute("""
            SELECT set_config('stockpile.scope', 'all', false);
            INSERT INTO reallocation_orders (id, request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by)
            SELECT 2, gen_random_uuid(), i.id, x.id, h.id, 10, 50, current_date, 'test'
            FROM items i, facilities x, facilities h WHERE i.code = 'N95' AND x.code = 'X' AND h.code = 'H';
            INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity) SELECT 2, 1, l.id, 10 FROM lots l WHERE l.lot_number = 'XLOT';
            """)
        return try await PostgresTokens(service.database, scope: .system("test"))
            .create(name: "command-c", role: .command, region: "C", facilities: [], validDays: 1).secret
    }

    @Test func doubleSlashPathsNeverReachTheAPIAsPages() async throws {
        let service = try await TestService()
        try await service.test(rateLimit: 1) { client in
            let anonymous = client.with(nil)
            // A real page session of the administrator's (what a browser would hold).
            var browser = PageTests.Browser(client)
            _ = try await browser.signIn(service.admin)
            let session = try #require(browser.cookies["sp_session"])
            #expect(try await anonymous.execute(uri: "/", method: .get, headers: [.cookie: "sp_session=\(session)"]).status == .ok)
            let before = try service.ledgerState()
            for uri in ["//api/v1/movements", "//api//v1/movements", "/api//v1/movements"] {
                for headers: HTTPFields in [[.cookie: "sp_session=\(session)", .contentType: "text/plain"],
                                            [.authorization: "Bearer \(service.admin)", .contentType: "application/json"]] {
                    let response = try await anonymous.execute(uri: uri, method: .post, headers: headers, body: json(movement("receipt", 5, lot: "SL")))
                    #expect(response.status == .notFound, "\(uri)")
                }
            }
            #expect(try service.ledgerState() == before)
            var seen: [HTTPResponse.Status] = []
            for _ in 0..<5 {
                seen.append(try await anonymous.execute(uri: "//api/v1/items", method: .get, headers: [.cookie: "sp_session=\(session)"]).status)
            }
            #expect(!seen.contains(.ok))
        }
    }

    @Test func csvCellsASpreadsheetWouldRunAreNeutralised() async throws {
        let service = try await TestService()
        _ = try await CSVImporter(service.database, scope: .system("test")).importFiles([
            "items": "code,name,category,unit,target_days,shelf_life_days\nEVIL,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",ppe,@SUM(A1),,\n",
            "facilities": "code,name,kind,region_code,beds,latitude,longitude,designated\nHX,+cmd|' /C calc'!A0,hospital,D,10,30.1,114.2,false\n",
            "demand": "facility_code,item_code,full_load_daily\nHX,EVIL,5\n"])
        try await service.test { admin in
            for uri in ["/api/v1/cover?format=csv", "/api/v1/cover/rollup?group=item&format=csv", "/api/v1/cover/rollup?format=csv"] {
                let response = try await admin.execute(uri: uri, method: .get)
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                // Every cell: a text cell never starts with = + - @ (a number may be negative).
                for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
                    for cell in line.split(separator: ",", omittingEmptySubsequences: false) {
                        let bare = cell.hasPrefix("\"") ? cell.dropFirst() : cell[...]
                        if let first = bare.unicodeScalars.first, "=+-@".unicodeScalars.contains(first) {
                            #expect(bare.wholeMatch(of: /-?[0-9]+(\.[0-9]+)?/) != nil, "\(uri): \(cell)")
                        }
                    }
                }
                if uri.contains("cover?") { #expect(text.contains("'=HYPERLINK(") && text.contains("'+cmd")) }
            }
        }
    }

    @Test func theLoginNeverSendsTheBrowserOffTheSite() async throws {
        let service = try await TestService()
        try await service.test { client in
            for evil in ["/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "//evil.example", "/\\evil.example",
                         "https://evil.example", " //evil.example", "/\u{7F}/evil.example"] {
                var browser = PageTests.Browser(client)
                let page = try await browser.request("/login?next=\(evil.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
                #expect(PageTests.hidden("next", in: PageTests.html(page)) == nil, "\(evil.debugDescription)")
                let signedIn = try await browser.request("/login", method: .post, form: ["csrf": browser.csrf, "token": service.admin, "next": evil])
                #expect(signedIn.headers[.location] == "/", "\(evil.debugDescription)")
            }
            var browser = PageTests.Browser(client)
            _ = try await browser.request("/login")
            let ok = try await browser.request("/login", method: .post, form: ["csrf": browser.csrf, "token": service.admin, "next": "/facilities/H"])
            #expect(ok.headers[.location] == "/facilities/H")
        }
    }

    @Test func whatEachRoleMaySeeAndDoAcrossRegions() async throws {
        let service = try await TestService(reserves: true)
        let commandC = try await Self.withSecondDistrict(service)
        try await service.test { admin in
            let commandD = admin.with(service.commandD)
            // A contract or pledge code in use in E: 409 to D's command centre, not a 500, and E's row unchanged.
            let contract: [String: Any] = ["facility": "X", "supplier": "第二区供应商", "item": "N95", "quantity": 500, "lead_time_days": 7,
                                           "valid_from": "2026-01-01", "valid_to": "2027-12-31"]
            let pledge: [String: Any] = ["facility": "X", "manufacturer": "第二区企业", "item": "N95", "daily_capacity": 10, "ramp_up_days": 1,
                                         "valid_from": "2026-01-01", "valid_to": "2027-12-31"]
            for (uri, theirs) in [("/api/v1/contracts/KX", contract), ("/api/v1/capacity/PX", pledge)] {
                #expect(try await admin.execute(uri: uri, method: .put, headers: [.contentType: "application/json"], body: json(theirs)).status == .created)
                var mine = theirs
                mine["facility"] = "H"
                if mine["quantity"] != nil { mine["quantity"] = 1 }
                let taken = try await commandD.execute(uri: uri, method: .put, headers: [.contentType: "application/json"], body: json(mine))
                #expect(taken.status == .conflict && errorOf(taken).field == "code", "\(uri): \(String(buffer: taken.body))")
            }
            #expect(try service.scalar("SELECT count(*) AS n FROM contracts c JOIN facilities f ON f.id = c.facility_id WHERE c.code = 'KX' AND f.code = 'X' AND c.committed = 500") == 1)

            // Order 2 runs X (E) → H (D): D's command centre sees it, but may neither approve nor cancel it.
            #expect(try await commandD.execute(uri: "/api/v1/reallocations/2", method: .get).status == .ok)
            #expect(try await commandD.post("/api/v1/reallocations/2/approve", [:]).status == .forbidden)
            #expect(try await commandD.post("/api/v1/reallocations/2/cancel", ["reason": "截留"]).status == .forbidden)
            #expect(try service.scalar("SELECT count(*) AS n FROM reallocation_orders WHERE id = 2 AND status = 'proposed'") == 1)
            // The city's command centre may; and D's may approve its own H → W.
            #expect(try await admin.with(commandC).post("/api/v1/reallocations/2/approve", [:]).status == .ok)
            #expect(try await commandD.post("/api/v1/reallocations/1/approve", [:]).status == .ok)

            // A warehouse token lists its own lots, not the city's.
            let lots = body(try await admin.with(service.clerkH).execute(uri: "/api/v1/lots", method: .get))["lots"] as? [[String: Any]] ?? []
            #expect(lots.compactMap { $0["lot"] as? String } == ["KEPT"])

            // District E's hold on a lot applies in E only, and shows only there: H's clerk still issues from KEPT.
            let commandE = try await PostgresTokens(service.database, scope: .system("test"))
                .create(name: "command-e", role: .command, region: "E", facilities: [], validDays: 1).secret
            #expect(try await admin.with(commandE).post("/api/v1/lots/N95/KEPT/hold", ["reason": "第二区待检"]).status == .created)
            let seenByH = (body(try await admin.with(service.clerkH).execute(uri: "/api/v1/lots", method: .get))["lots"] as? [[String: Any]] ?? []).first
            #expect(seenByH?["quarantined"] as? Bool == false && (seenByH?["holds"] as? [Any])?.isEmpty == true)
            #expect(try await admin.with(service.clerkH).post("/api/v1/movements", movement("issue", 1, lot: "KEPT")).status == .created)
            let seenByE = (body(try await admin.with(commandE).execute(uri: "/api/v1/lots?item=N95", method: .get))["lots"] as? [[String: Any]] ?? [])
            #expect(seenByE.first { $0["lot"] as? String == "XLOT" } != nil)
            let seenByAdmin = (body(try await admin.execute(uri: "/api/v1/lots?held=true", method: .get))["lots"] as? [[String: Any]] ?? [])
            #expect(seenByAdmin.map { $0["lot"] as? String } == ["KEPT"])
            // D's own hold and release leave E's hold standing.
            #expect(try await commandD.post("/api/v1/lots/N95/KEPT/hold", ["reason": "第一区待检"]).status == .created)
            #expect(try await commandD.post("/api/v1/lots/N95/KEPT/release", [:]).status == .created)
            #expect(try service.scalar("SELECT count(*) AS n FROM lots WHERE lot_number = 'KEPT' AND quarantined") == 1)
        }
        // The transit tables answer only within scope (the second wall, sql/0014).
        let x: Int = try TestDatabase.ownerConnection(service.location).query("SELECT id FROM facilities WHERE code = 'W'").rows[0].decode("id")
        let clerkW = AccessScope(actor: "w", role: .warehouse, facilities: .only([x]))
        let seen: Int64 = try await service.database.withConnection(clerkW) { c in
            try c.query("SELECT count(*) AS n FROM reallocation_lines WHERE order_id = 2").rows[0].decode("n")
        }
        #expect(seen == 0)
        #expect(try service.scalar("SELECT count(*) AS n FROM reallocation_lines WHERE order_id = 2") == 1)
    }

    @Test func textIsBoundedInBytesNotCharacters() async throws {
        let service = try await TestService(reserves: true)
        try await service.test { admin in
            // One character of 6 KB: "A" and 3000 combining marks (an index refused it with a 500 before).
            let heavy = "A" + String(String.UnicodeScalarView((0..<3000).map { Unicode.Scalar(UInt32(0x300 + $0 % 0x70))! }))
            #expect(heavy.count == 1 && heavy.utf8.count > 6000)
            let before = try service.ledgerState()
            let lot = try await admin.with(service.clerkH).post("/api/v1/movements", movement("receipt", 1, lot: heavy))
            #expect(lot.status == .badRequest && errorOf(lot).field == "lot")
            let batch = try await admin.with(service.clerkH).post("/api/v1/movements/batch", ["movements": [movement("receipt", 1, lot: "OK1"),
                                                                                                        movement("receipt", 1, lot: heavy)]])
            #expect(batch.status == .badRequest && errorOf(batch).field == "movements[1].lot")
            #expect(try service.ledgerState() == before)
            let contract: [String: Any] = ["facility": "H", "supplier": String(repeating: "供", count: 300_000), "item": "N95", "quantity": 1,
                                           "lead_time_days": 1, "valid_from": "2026-01-01", "valid_to": "2026-12-31"]
            let supplier = try await admin.execute(uri: "/api/v1/contracts/KBIG", method: .put, headers: [.contentType: "application/json"],
                                                   body: json(contract))
            #expect(supplier.status == .badRequest && errorOf(supplier).field == "supplier")
            var shortSupplier = contract
            shortSupplier["supplier"] = "供应商"
            let code = try await admin.execute(uri: "/api/v1/contracts/" + String(repeating: "K", count: 300), method: .put,
                                               headers: [.contentType: "application/json"], body: json(shortSupplier))
            #expect(code.status == .badRequest && errorOf(code).field == "code")
            let hold = try await admin.post("/api/v1/lots/N95/KEPT/hold", ["reason": String(repeating: "召", count: 1000)])
            #expect(hold.status == .badRequest && errorOf(hold).field == "reason")
            let token = try await admin.post("/api/v1/tokens", ["name": heavy, "role": "admin"])
            #expect(token.status == .badRequest && errorOf(token).field == "name")
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM contracts") == 1)
        #expect(try service.scalar("SELECT count(*) AS n FROM lot_holds") == 0)
    }

    @Test func aSlowStatementIsCancelledNotWaitedFor() async throws {
        let service = try await TestService()
        let quick = StockpileDatabase(location: service.location, poolSize: 2, requestTimeoutMilliseconds: 500)
        let app = buildApplication(StockpileServices(database: quick, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        let owner = try TestDatabase.ownerConnection(service.location)
        try owner.execute("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        let started = ContinuousClock.now
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/api/v1/items", method: .get, headers: [.authorization: "Bearer \(service.admin)"])
            #expect(response.status == .serviceUnavailable && errorOf(response).code == "busy", "\(String(buffer: response.body))")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        try owner.execute("ROLLBACK")
        // The operator's jobs (nightly, import) have no limit.
        let jobs: String = try await quick.withConnection(.system("test")) { try $0.query("SHOW statement_timeout").rows[0].decode("statement_timeout") }
        #expect(jobs == "0")
        await quick.shutdown()
    }

    @Test func signingOutEndsTheSessionOnTheServer() async throws {
        let service = try await TestService()
        try await service.test { client in
            var browser = PageTests.Browser(client)
            _ = try await browser.signIn(service.admin)
            let session = try #require(browser.cookies["sp_session"])
            // The cookie is not the token's secret, and it is no bearer token either.
            #expect(session != service.admin && session.hasPrefix("ps_"))
            #expect(try await client.with(session).execute(uri: "/api/v1/items", method: .get).status == .unauthorized)
            // A token's secret in the cookie opens no page.
            #expect(try await client.with(nil).execute(uri: "/", method: .get, headers: [.cookie: "sp_session=\(service.admin)"]).status == .seeOther)
            #expect(try await browser.request("/").status == .ok)
            _ = try await browser.request("/logout", method: .post, form: ["csrf": browser.csrf])
            // A copy of the cookie made before signing out is dead; the token itself lives on.
            #expect(try await client.with(nil).execute(uri: "/", method: .get, headers: [.cookie: "sp_session=\(session)"]).status == .seeOther)
            #expect(try await client.execute(uri: "/api/v1/items", method: .get).status == .ok)
            // Expiry and revocation end sessions too.
            var second = PageTests.Browser(client)
            _ = try await second.signIn(service.commandD)
            #expect(try await second.request("/").status == .ok)
            try TestDatabase.ownerConnection(service.location).execute("UPDATE page_sessions SET expires_at = now() - interval '1 second'")
            #expect(try await second.request("/").status == .seeOther)
            var third = PageTests.Browser(client)
            _ = try await third.signIn(service.clerkH)
            #expect(try await third.request("/entry").status == .ok)
            #expect(try await client.execute(uri: "/api/v1/tokens/clerk-h", method: .delete).status == .ok)
            #expect(try await third.request("/entry").status == .seeOther)
        }
        #expect(try service.scalar("SELECT count(*) AS n FROM audit_log WHERE action IN ('session.start', 'session.end')") == 4)
    }
}

/// Point 8: a stored report is streamed a run (1,000 lines) at a time; what is streamed must be the
/// report itself, across run boundaries and batches of runs.
@Suite(.serialized) struct ReportStreamTests {
    @Test func theStreamedReportIsTheStoredReport() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        let asOf = LocalDate("2026-11-22")!
        _ = try await SyntheticDistrict(facilities: 300, items: 40, asOf: asOf, timeZone: TimeZone(identifier: "Asia/Shanghai")!)
            .generate(into: database) { _ in }
        _ = try await PostgresNightly(database, scope: .system("test")).run(asOf: asOf, region: nil)
        let stored = try #require(try await PostgresNightly(database, scope: .system("test")).stored(asOf: asOf, region: nil))
        let header = try #require(try await PostgresNightly(database, scope: .system("test")).header(asOf: asOf, region: nil))
        // Some section spans several runs (and more than one batch of them), or the test proves little.
        #expect((header.lineCounts.values.max() ?? 0) > 8 * 1_000 + 1, "\(header.lineCounts)")
        #expect(header.lineCounts["orders"] == stored.orders.count && header.lineCounts["reorders"] == stored.reorders.count
                && header.lineCounts["stale"] == stored.stale.count)
        let admin = try await PostgresTokens(database, scope: .system("test")).create(name: "admin", role: .admin, region: nil, facilities: [],
                                                                                     validDays: 1).secret
        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let json = try await client.execute(uri: "/api/v1/reports/nightly/2026-11-22", method: .get)
            #expect(json.status == .ok)
            let streamed = try JSONDecoder().decode(NightlyReport.self, from: Data(buffer: json.body))
            #expect(streamed == stored)
            for section in NightlyReportTables.Section.allCases {
                let csv = try await client.execute(uri: "/api/v1/reports/nightly/2026-11-22?format=csv&section=\(section.rawValue)", method: .get)
                let lines = String(buffer: csv.body).components(separatedBy: "\r\n").filter { !$0.isEmpty }
                #expect(lines.count == 1 + NightlyReportTables.rows(section, of: stored).count, "\(section)")
            }
            let html = String(buffer: try await client.execute(uri: "/api/v1/reports/nightly/2026-11-22?format=html", method: .get).body)
            #expect(html.components(separatedBy: "<tr>").count - 1
                    == NightlyReportTables.Section.allCases.map { NightlyReportTables.rows($0, of: stored).count + 1 }.reduce(0, +)
                       - NightlyReportTables.Section.allCases.filter { NightlyReportTables.rows($0, of: stored).isEmpty }.count
                       + stored.items.count + (stored.items.isEmpty ? 0 : 1))
            #expect(html.hasSuffix("</html>\n"))
        }
        await database.shutdown()
    }
}

/// Issue 15, part 1: while the database is away, every answer is a 503 that says when to retry —
/// JSON for the API, a readable page for people — never a 500.
@Suite struct OutageTests {
    @Test func aDatabaseThatIsAwayIsA503WithRetryAfter() async throws {
        let nowhere = StockpileDatabase(location: DatabaseLocation(ownerParameters: [("host", "/tmp/stockpile-nowhere-\(getpid())"),
                                                                                   ("port", "1"), ("dbname", "stockpile"),
                                                                                   ("connect_timeout", "2")]), poolSize: 2)
        let app = buildApplication(StockpileServices(database: nowhere, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { client in
            let api = try await client.execute(uri: "/api/v1/items", method: .get,
                                               headers: [.authorization: "Bearer sp_" + String(repeating: "a", count: 43)])
            #expect(api.status == .serviceUnavailable && api.headers[.retryAfter] != nil && errorOf(api).code == "database_unavailable")
            let write = try await client.execute(uri: "/api/v1/movements", method: .post,
                                                 headers: [.authorization: "Bearer sp_" + String(repeating: "a", count: 43), .contentType: "application/json"],
                                                 body: json(movement("receipt", 1)))
            #expect(write.status == .serviceUnavailable && write.headers[.retryAfter] != nil)
            let page = try await client.execute(uri: "/", method: .get, headers: [.cookie: "sp_session=ps_" + String(repeating: "a", count: 43)])
            #expect(page.status == .serviceUnavailable && page.headers[.retryAfter] != nil)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true && String(buffer: page.body).contains("数据库暂时不可用"))
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .serviceUnavailable)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
        await nowhere.shutdown()
    }
}
