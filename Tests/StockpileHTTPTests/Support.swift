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

    static let regions = "code,name,parent_code\nC,示范市,\nD,第一区,C\n"
    static let facilities = """
        code,name,kind,region_code,beds,latitude,longitude,designated
        H,第一区人民医院,hospital,D,500,30.10,114.20,true
        W,第一区储备库,warehouse,D,0,30.20,114.30,false

        """
    static let items = "code,name,category,unit,target_days,shelf_life_days\nN95,N95口罩,ppe,只,,\nMASK,医用外科口罩,ppe,只,,730\n"

    init(poolSize: Int = 8) async throws {
        location = try TestDatabase.freshLocation()
        database = StockpileDatabase(location: location, poolSize: poolSize)
        _ = try await CSVImporter(database, scope: .system("test")).importFiles(["regions": Self.regions, "facilities": Self.facilities, "items": Self.items])
    }

    var app: some ApplicationProtocol {
        buildApplication(StockpileServices(database: database), settings: HTTPSettings(host: "127.0.0.1", port: 0))
    }

    func scalar(_ sql: String) throws -> Int64 {
        try TestDatabase.ownerConnection(location).query(sql).first!.decode("n", as: Int64.self)
    }

    /// Everything a refused request must leave untouched.
    func ledgerState() throws -> [Int64] {
        [try scalar("SELECT count(*) AS n FROM movements"),
         try scalar("SELECT coalesce(sum(quantity), 0) AS n FROM balances"),
         try scalar("SELECT count(*) AS n FROM lots"),
         try scalar("SELECT count(*) AS n FROM balances")]
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
}
