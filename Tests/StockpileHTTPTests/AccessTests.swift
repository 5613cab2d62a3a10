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

@Suite(.serialized) struct AccessTests {
    enum Caller: String, CaseIterable {
        case admin, ownClerk, foreignClerk, command, noToken, expired, revoked
    }

    /// A request for each route, aimed at facility H (in region D).
    static func request(_ method: String, _ path: String, n: Int) -> (uri: String, body: ByteBuffer?) {
        // Contracts and pledges are created under a new code each time; call-offs go to KH (a TestService fixture).
        let code = path.hasPrefix("/api/v1/contracts/{code}/") ? "KH" : path.hasPrefix("/api/v1/contracts") || path.hasPrefix("/api/v1/capacity") ? "K\(n)" : "H"
        let uri = path.replacingOccurrences(of: "{code}", with: code).replacingOccurrences(of: "{file}", with: "items")
            .replacingOccurrences(of: "{name}", with: "victim-\(n)").replacingOccurrences(of: "{facility}", with: "H")
            .replacingOccurrences(of: "{item}", with: "N95").replacingOccurrences(of: "{category}", with: "drug")
            .replacingOccurrences(of: "{lot}", with: "KEPT").replacingOccurrences(of: "{id}", with: "1")
            .replacingOccurrences(of: "{date}", with: "2026-11-22")
        switch (method, path) {
        case ("POST", "/api/v1/movements"):
            return (uri, json(movement("receipt", 1, lot: "M\(n)")))
        case ("POST", "/api/v1/movements/batch"):
            return (uri, json(["movements": [movement("receipt", 1, lot: "M\(n)")]]))
        case ("POST", "/api/v1/import/{file}"):
            return (uri, ByteBuffer(string: "code,name,category,unit,target_days,shelf_life_days\nX\(n),物资\(n),ppe,只,,\n"))
        case ("POST", "/api/v1/tokens"):
            return (uri, json(["name": "made-\(n)", "role": "admin"]))
        case ("PUT", "/api/v1/demand/{facility}/{item}"):
            return (uri, json(["full_load_daily": 12.5]))
        case ("POST", "/api/v1/demand/derive"):
            return (uri, json(["item": "N95", "per_bed_day": 0.2]))
        case ("PUT", "/api/v1/targets/{category}"):
            return (uri, json(["target_days": 45]))
        case ("PUT", "/api/v1/contracts/{code}"):
            return (uri, json(["facility": "H", "supplier": "本地供应商", "item": "N95", "quantity": 500, "lead_time_days": 7,
                               "valid_from": "2026-01-01", "valid_to": "2027-12-31", "local": true]))
        case ("POST", "/api/v1/contracts/{code}/calloffs"):
            return (uri, json(["id": UUID().uuidString, "quantity": 1, "note": "matrix"]))
        case ("PUT", "/api/v1/capacity/{code}"):
            return (uri, json(["facility": "H", "manufacturer": "本地企业", "item": "N95", "daily_capacity": 50, "ramp_up_days": 3,
                               "valid_from": "2026-01-01", "valid_to": "2027-12-31", "certified": true]))
        case ("POST", "/api/v1/reallocations"):
            return (uri, json(["id": UUID().uuidString]))
        case ("POST", "/api/v1/lots/{item}/{lot}/hold"):
            return (uri, json(["reason": "质检"]))
        case ("PUT", "/api/v1/lots/{item}/{lot}"):
            return (uri, json(["expiry": "2028-01-31"]))
        case ("POST", "/api/v1/movements/sync"):
            return (uri, json(["movements": [movement("receipt", 1, lot: "S\(n)")]]))
        case ("POST", "/api/v1/attention/{id}/resolve"):
            // No submission has this id: found by nobody.
            return (uri.replacingOccurrences(of: "/1/", with: "/\(UUID().uuidString)/"), json(["resolution": "matrix"]))
        case ("POST", "/api/v1/donations"):
            return (uri, json(["id": UUID().uuidString, "donor": "红十字会", "facility": "H",
                               "lines": [["item": "N95", "lot": "DON\(n)", "expiry": "2028-06-30", "quantity": 5]]]))
        case ("POST", "/api/v1/donations/{id}/inspect"):
            return (uri, json(["lines": [["line": 1, "result": "passed"]]]))
        case ("POST", "/api/v1/plan-approvals"):
            return (uri, json(["plan": "00000000-0000-4000-8000-000000000001"]))
        case ("POST", "/api/v1/scan"):
            return (uri, json(["code": "(01)06901234567892(10)A1(17)270531"]))
        default:
            return (uri, nil)
        }
    }

    /// What each caller must get. Generated for every route in StockpileAPI.routes, so a new
    /// endpoint cannot escape the matrix.
    static func expected(_ caller: Caller, method: String, path: String, roles: Set<Role>) -> HTTPResponse.Status {
        let role: Role
        switch caller {
        case .noToken, .expired, .revoked: return .unauthorized
        case .admin: role = .admin
        case .ownClerk, .foreignClerk: role = .warehouse
        case .command: role = .command
        }
        guard roles.contains(role) else { return .forbidden }
        // Order {id} is TestService's H → W order: approved, dispatched by admin (H's clerk: a replay), received (W's clerk: a
        // replay), and by then it cannot be cancelled.
        // Shipment {id} is that order's (the fixture's shipment 1): its steps answer as the order's.
        if path.hasPrefix("/api/v1/reallocations/{id}/") || path.hasPrefix("/api/v1/shipments/{id}/") {
            if path.hasSuffix("/cancel") { return .conflict }
            if path.hasSuffix("/dispatch") && caller == .foreignClerk { return .forbidden }
            if path.hasSuffix("/receive") && caller == .ownClerk { return .forbidden }
            return .ok
        }
        if path == "/api/v1/attention/{id}/resolve" { return .notFound }
        // {file} is items: a warehouse token exports its facilities' stock and movements, not master data.
        if path == "/api/v1/export/{file}" && role == .warehouse { return .forbidden }
        // The fixture's plan: nothing left proposed in it by then, so approving it approves nothing, for whoever may.
        if path == "/api/v1/plan-approvals" { return .ok }
        // Donation 1 is the first the matrix recorded (as admin); inspected passed, then again (a replay).
        if path == "/api/v1/donations/{id}/inspect" { return .ok }
        if caller == .foreignClerk && method == "POST" && path == "/api/v1/donations" { return .forbidden }
        // A sync answers 200 with each movement's outcome; another facility's is refused in it, not by status.
        if path == "/api/v1/movements/sync" { return .ok }
        let created = (method == "POST" && path != "/api/v1/import/{file}" && path != "/api/v1/reallocations/plan" && path != "/api/v1/scan")
            || (method == "PUT" && (path.hasPrefix("/api/v1/contracts") || path.hasPrefix("/api/v1/capacity")))
        let success: HTTPResponse.Status = created ? .created : .ok
        if caller == .foreignClerk {
            if method == "POST" && path.hasPrefix("/api/v1/movements") { return .forbidden }
            if path == "/api/v1/facilities/{code}/stock" || path == "/api/v1/contracts/{code}/calloffs" { return .notFound }
        }
        return success
    }

    @Test func everyRouteAnswersEveryCallerAsItsRoleAndScopeAllow() async throws {
        let service = try await TestService(reserves: true)
        // The nightly reports GET /api/v1/reports/nightly/{date} reads: the whole city's (admin's) and region D's (its command token's).
        for region in [nil, "D"] as [String?] {
            _ = try await PostgresNightly(service.database, scope: .system("test")).run(asOf: LocalDate("2026-11-22")!, region: region)
        }
        let tokens = PostgresTokens(service.database, scope: .system("test"))
        let expired = try await tokens.create(name: "expired", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let owner = try TestDatabase.ownerConnection(service.location)
        try owner.execute("UPDATE tokens SET expires_at = now() - interval '1 minute' WHERE name = 'expired'")
        let revoked = try await tokens.create(name: "revoked", role: .admin, region: nil, facilities: [], validDays: 30).secret
        #expect(try await tokens.revoke(name: "revoked"))
        var n = 0
        for route in StockpileAPI.routes where !route.roles.isEmpty {
            for caller in Caller.allCases {
                n += 1
                // Something for DELETE /api/v1/tokens/{name} to revoke.
                _ = try await tokens.create(name: "victim-\(n)", role: .admin, region: nil, facilities: [], validDays: 30)
                let secret: String? = switch caller {
                case .admin: service.admin
                case .ownClerk: service.clerkH
                case .foreignClerk: service.clerkW
                case .command: service.commandD
                case .noToken: nil
                case .expired: expired
                case .revoked: revoked
                }
                let (uri, body) = Self.request(route.method, route.path, n: n)
                let before = try service.ledgerState()
                let tokenCount = try service.scalar("SELECT count(*) AS n FROM tokens WHERE revoked_at IS NULL")
                let response = try await service.test { client in
                    try await client.with(secret).execute(uri: uri, method: .init(rawValue: route.method)!,
                                                         headers: [.contentType: "application/json"], body: body)
                }
                let want = Self.expected(caller, method: route.method, path: route.path, roles: route.roles)
                #expect(response.status == want, "\(route.method) \(route.path) as \(caller): \(String(buffer: response.body))")
                if response.status.code >= 400 {
                    // A refused request changes nothing: not the ledger, not the tokens.
                    #expect(try service.ledgerState() == before, "\(route.method) \(route.path) as \(caller) changed the ledger")
                    #expect(try service.scalar("SELECT count(*) AS n FROM tokens WHERE revoked_at IS NULL") == tokenCount)
                    #expect(errorOf(response).code != nil)
                }
            }
        }
    }

    @Test func listsNarrowToTheTokensScope() async throws {
        let service = try await TestService()
        try await service.test { client in
            try await client.post("/api/v1/movements", movement("receipt", 5, lot: "N1", facility: "H"))
            try await client.post("/api/v1/movements", movement("receipt", 7, lot: "N1", facility: "W"))
            let clerk = client.with(service.clerkH)
            let movements = body(try await clerk.execute(uri: "/api/v1/movements", method: .get))["movements"] as? [[String: Any]] ?? []
            #expect(movements.map { $0["facility"] as? String } == ["H"])
            let facilities = body(try await clerk.execute(uri: "/api/v1/facilities", method: .get))["facilities"] as? [[String: Any]] ?? []
            #expect(facilities.map { $0["code"] as? String } == ["H"])
            // The command centre of D sees both; the ledger recorded who wrote.
            let all = body(try await client.with(service.commandD).execute(uri: "/api/v1/movements", method: .get))["movements"] as? [[String: Any]] ?? []
            #expect(all.count == 2)
            #expect(all.map { $0["recorded_by"] as? String } == ["admin", "admin"])
        }
    }

    @Test func writesAreAuditedAndSecretsAreKeptOnlyAsHashes() async throws {
        let service = try await TestService()
        try await service.test { client in
            let created = try await client.post("/api/v1/tokens", ["name": "new-clerk", "role": "warehouse", "facilities": ["H"]])
            #expect(created.status == .created)
            let secret = try #require(body(created)["secret"] as? String)
            // The new token works at once, and stops working at once when revoked.
            #expect(try await client.with(secret).post("/api/v1/movements", movement("receipt", 3, lot: "A1")).status == .created)
            #expect(try await client.execute(uri: "/api/v1/tokens/new-clerk", method: .delete).status == .ok)
            #expect(try await client.with(secret).post("/api/v1/movements", movement("receipt", 3, lot: "A2")).status == .unauthorized)
            let audit = body(try await client.execute(uri: "/api/v1/audit", method: .get))["entries"] as? [[String: Any]] ?? []
            #expect(audit.map { $0["action"] as? String }.prefix(2) == ["token.revoke", "token.create"])
            #expect(audit.first?["token"] as? String == "admin")
            // Only the hash is stored: no column of any token row holds the secret, and a dump does not either.
            let owner = try TestDatabase.ownerConnection(service.location)
            let leaked = try owner.query("SELECT count(*) AS n FROM tokens t WHERE strpos(t::text, $1) > 0", [secret]).first!
            #expect(try leaked.decode("n", as: Int.self) == 0)
            let hashed = try owner.query("SELECT count(*) AS n FROM tokens WHERE hash = encode(sha256(convert_to($1, 'UTF8')), 'hex')", [secret]).first!
            #expect(try hashed.decode("n", as: Int.self) == 1)
            let dump = try Subprocess.run(try #require(EmbeddedPostgres.findBinary("pg_dump")),
                                          ["-h", TestDatabase.embedded.socketDirectory.path, "-p", String(TestDatabase.embedded.port),
                                           "-U", TestDatabase.embedded.superuser, service.location.ownerParameters.first { $0.0 == "dbname" }!.1])
            #expect(dump.contains("new-clerk"))
            #expect(!dump.contains(secret))
        }
    }

    @Test func aTokenOverItsRateIsToldToWait() async throws {
        let service = try await TestService()
        // Two a second with a burst of four: the fifteen requests must take over 5.5 s for the
        // bucket never to run dry (at 5 a second, a machine busy with other suites got there in 3 s).
        let statuses = try await service.test(rateLimit: 2) { client in
            var statuses: [HTTPResponse.Status] = []
            var retryAfter: String?
            for _ in 0..<15 {
                let response = try await client.execute(uri: "/api/v1/items", method: .get)
                statuses.append(response.status)
                if response.status == .tooManyRequests { retryAfter = response.headers[.retryAfter] }
            }
            #expect(retryAfter != nil)
            return statuses
        }
        #expect(statuses.prefix(4).allSatisfy { $0 == .ok })
        #expect(statuses.contains(.tooManyRequests))
    }
}
