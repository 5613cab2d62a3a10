import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PQ
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// A fresh database with a small district, and the application over it.
struct TestService: Sendable {
    let location: DatabaseLocation
    let database: StockpileDatabase
    /// Secrets of tokens made for the tests: an administrator, a clerk of facility H, the
    /// command centre of region D, and a clerk of W.
    let admin: String
    let clerkH: String
    let commandD: String
    let clerkW: String

    static let regions = "code,name,parent_code\nC,示范市,\nD,第一区,C\n"
    static let facilities = """
        code,name,kind,region_code,beds,latitude,longitude,designated
        H,第一区人民医院,hospital,D,500,30.10,114.20,true
        W,第一区储备库,warehouse,D,0,30.20,114.30,false

        """
    static let items = "code,name,category,unit,target_days,shelf_life_days\nN95,N95口罩,ppe,只,,\nMASK,医用外科口罩,ppe,只,,730\n"

    /// `reserves`: also contract KH (1000 N95 for H) and 40 N95 in lot KEPT at H.
    init(poolSize: Int = 8, reserves: Bool = false) async throws {
        let location = try TestDatabase.freshLocation()
        try await self.init(location: location, database: StockpileDatabase(location: location, poolSize: poolSize), reserves: reserves)
    }

    /// The same district on a migrated database of the caller's (the replica test's own cluster).
    init(location: DatabaseLocation, database: StockpileDatabase, reserves: Bool = false) async throws {
        self.location = location
        self.database = database
        var files = ["regions": Self.regions, "facilities": Self.facilities, "items": Self.items]
        if reserves {
            files["contracts"] = "code,facility_code,supplier,item_code,quantity,called_off,lead_time_days,valid_from,valid_to,local\nKH,H,本地供应商,N95,1000,0,7,2026-01-01,2027-12-31,true\n"
            files["stock"] = "facility_code,item_code,lot,expiry,quantity\nH,N95,KEPT,2028-01-31,40\n"
        }
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(files)
        if reserves {
            // Order 1: 10 N95 of lot KEPT from H to W, proposed, in shipment 1 of its plan.
            try TestDatabase.ownerConnection(location).execute("""
                INSERT INTO shipments (request_id, from_facility_id, to_facility_id, distance_km, as_of)
                SELECT '00000000-0000-4000-8000-000000000001', h.id, w.id, 14.5, current_date
                FROM facilities h, facilities w WHERE h.code = 'H' AND w.code = 'W';
                INSERT INTO reallocation_orders (request_id, item_id, from_facility_id, to_facility_id, quantity, distance_km, as_of, created_by,
                                                 shipment_id)
                SELECT '00000000-0000-4000-8000-000000000001', i.id, h.id, w.id, 10, 14.5, current_date, 'test', 1
                FROM items i, facilities h, facilities w WHERE i.code = 'N95' AND h.code = 'H' AND w.code = 'W';
                INSERT INTO reallocation_lines (order_id, line_no, lot_id, quantity)
                SELECT 1, 1, l.id, 10 FROM lots l WHERE l.lot_number = 'KEPT';
                """)
        }
        let tokens = PostgresTokens(database, scope: .system("test"))
        admin = try await tokens.create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 30).secret
        clerkH = try await tokens.create(name: "clerk-h", role: .warehouse, region: nil, facilities: ["H"], validDays: 30).secret
        commandD = try await tokens.create(name: "command-d", role: .command, region: "D", facilities: [], validDays: 30).secret
        clerkW = try await tokens.create(name: "clerk-w", role: .warehouse, region: nil, facilities: ["W"], validDays: 30).secret
    }

    func app(rateLimit: Double = 100_000) -> some ApplicationProtocol {
        buildApplication(StockpileServices(database: database, rateLimit: rateLimit), settings: HTTPSettings(host: "127.0.0.1", port: 0))
    }

    /// Runs `body` against the router with a client that sends the admin token unless told otherwise.
    func test<T: Sendable>(rateLimit: Double = 100_000, _ body: @escaping @Sendable (AuthorizedClient) async throws -> T) async throws -> T {
        try await app(rateLimit: rateLimit).test(.router) { client in try await body(AuthorizedClient(base: client, token: admin)) }
    }

    func scalar(_ sql: String) throws -> Int64 {
        try TestDatabase.ownerConnection(location).query(sql).first!.decode("n", as: Int64.self)
    }

    /// Everything a refused request must leave untouched: the ledger, both balances (on hand and
    /// in transit), the lots, the holds and the audit log.
    func ledgerState() throws -> [Int64] {
        [try scalar("SELECT count(*) AS n FROM movements"),
         try scalar("SELECT coalesce(sum(quantity), 0) AS n FROM balances"),
         try scalar("SELECT count(*) AS n FROM lots"),
         try scalar("SELECT count(*) AS n FROM balances"),
         try scalar("SELECT coalesce(sum(quantity), 0) AS n FROM in_transit"),
         try scalar("SELECT count(*) AS n FROM transit_movements"),
         try scalar("SELECT count(*) AS n FROM lot_holds"),
         try scalar("SELECT count(*) AS n FROM audit_log")]
    }

    func mismatches() async throws -> Int { try await PostgresLedger(database, scope: .system("test")).mismatches().count }
}

func json(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

func body(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
}

func errorOf(_ response: TestResponse) -> (code: String?, field: String?, message: String?) {
    let error = body(response)["error"] as? [String: Any]
    return (error?["code"] as? String, error?["field"] as? String, error?["message"] as? String)
}

func movement(_ kind: String, _ quantity: Any, lot: String = "L1", id: String = UUID().uuidString, facility: String = "H",
              item: String = "N95", extra: [String: Any] = [:]) -> [String: Any] {
    var m: [String: Any] = ["id": id, "facility": facility, "item": item, "lot": lot, "kind": kind, "quantity": quantity]
    if kind == "receipt" { m["expiry"] = "2028-06-30" }
    for (k, v) in extra { m[k] = v }
    return m
}

extension TestClientProtocol {
    @discardableResult
    func post(_ uri: String, _ object: [String: Any]) async throws -> TestResponse {
        try await execute(uri: uri, method: .post, headers: [.contentType: "application/json"], body: json(object))
    }

    func get(_ uri: String) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: [:], body: nil)
    }
}

/// A test client that adds `Authorization: Bearer <token>` to every request that has none.
struct AuthorizedClient: TestClientProtocol {
    let base: any TestClientProtocol
    let token: String?

    func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> TestResponse {
        var headers = headers
        if headers[.authorization] == nil, let token { headers[.authorization] = "Bearer \(token)" }
        return try await base.executeRequest(uri: uri, method: method, headers: headers, body: body)
    }

    var port: Int? { base.port }

    /// The same client with another token (nil: none).
    func with(_ token: String?) -> AuthorizedClient { AuthorizedClient(base: base, token: token) }
}
