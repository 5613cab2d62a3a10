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

/// Issue 17, part 4: rotation (轮换). A reserve warehouse holds 1,000 N95 of a lot that expires in
/// 40 days and uses none itself; a hospital uses 10 a day and holds 100 of a later lot (10 days,
/// target 30). Tonight's plan sends the hospital its shortfall, 200, from that lot. The hospital
/// will use (40 − 10) × 10 = 300 of it before it expires, 200 of which the plan already sends: the
/// rotation sends the other 100 and buys 100 again. The order is proposed in the plan's shipment,
/// approved with the plan, dispatched and received like any other.
@Suite(.serialized) struct RotationTests {
    @Test func aWarehouseLotIsRotatedToAFasterConsumerAndBoughtAgain() async throws {
        let database = try TestDatabase.fresh(poolSize: 4)
        let today = LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!)
        let expiry = today.adding(days: 40)
        _ = try await CSVImporter(database, scope: .system("test")).importFiles([
            "regions": "code,name,parent_code\nC,示范市,\nD,第一区,C\n",
            "facilities": """
                code,name,kind,region_code,beds,latitude,longitude,designated
                H,第一区人民医院,hospital,D,500,30.10,114.20,true
                W,第一区储备库,warehouse,D,0,30.20,114.30,false
                """,
            "items": "code,name,category,unit,target_days,shelf_life_days\nN95,N95口罩,ppe,只,30,\n",
            "demand": "facility_code,item_code,full_load_daily\nH,N95,10\n",
            "stock": "facility_code,item_code,lot,expiry,quantity\nW,N95,EXP,\(expiry),1000\nH,N95,LATE,2029-12-31,100\n",
        ])
        let admin = try await PostgresTokens(database, scope: .system("test")).create(name: "admin", role: .admin, region: nil, facilities: [], validDays: 1).secret
        let run = try await PostgresNightly(database, scope: .system("test")).run(asOf: today, region: nil)
        let report = run.report

        // The plan's order and the rotation's, in one truck W → H.
        let rotation = report.rotation ?? []
        #expect(rotation.count == 1)
        let line = try #require(rotation.first)
        #expect(line.warehouse == "W" && line.to == "H" && line.lot == "EXP" && line.daysToExpiry == 40)
        #expect(line.unusedQty == 800 && line.rotateQty == 100 && line.replacementQty == 100)
        #expect(report.orders.count == 2 && report.shipments == 1)
        #expect(report.orders.map(\.quantity).sorted() == [100, 200])

        let app = buildApplication(StockpileServices(database: database, rateLimit: 10_000), settings: HTTPSettings(port: 0))
        try await app.test(.router) { base in
            let client = AuthorizedClient(base: base, token: admin)
            let order = body(try await client.execute(uri: "/api/v1/reallocations/\(line.order ?? 0)", method: .get))
            #expect(order["purpose"] as? String == "rotation" && order["status"] as? String == "proposed")
            #expect((order["lines"] as? [[String: Any]])?.map { "\($0["lot"]!)×\($0["quantity"]!)" } == ["EXP×100"])
            let plan = report.orders.first { $0.id != line.order }!
            #expect(order["shipment"] as? Int == plan.shipment.map(Int.init))

            // The report: its section, CSV and printable page.
            let csv = String(buffer: try await client.execute(uri: "/api/v1/reports/nightly/\(today)?format=csv&section=rotation", method: .get).body)
            #expect(csv.contains("轮换数量") && csv.contains("W,第一区储备库,N95,N95口罩,EXP,\(expiry),40,1000,800,100,H"))
            let stored = body(try await client.execute(uri: "/api/v1/reports/nightly/\(today)", method: .get))
            #expect((stored["rotation"] as? [[String: Any]])?.first?["rotate_qty"] as? Int == 100)
            let printable = String(buffer: try await client.execute(uri: "/api/v1/reports/nightly/\(today)?format=html", method: .get).body)
            #expect(printable.contains("储备轮换（调出临期批次，等量补购）"))

            // Approved with the plan, in one step; dispatched and received as one shipment.
            let approved = try await client.post("/api/v1/plan-approvals", ["plan": report.requestID])
            #expect(body(approved)["approved"] as? Int == 2 && body(approved)["shipments"] as? Int == 1)
            let shipment = order["shipment"] as! Int
            #expect(try await client.post("/api/v1/shipments/\(shipment)/dispatch", ["carrier": "轮换车"]).status == .ok)
            #expect(try await client.post("/api/v1/shipments/\(shipment)/receive", [:]).status == .ok)
            let atH = try TestDatabase.ownerConnection(database.location).query("""
                SELECT b.quantity AS n FROM balances b JOIN facilities f ON f.id = b.facility_id JOIN lots l ON l.id = b.lot_id
                WHERE f.code = 'H' AND l.lot_number = 'EXP'
                """).rows.first.map { try $0.decode("n", as: Int64.self) }
            #expect(atH == 300)
            #expect(try await PostgresReallocations.integrityViolations(database) == [])
        }
        // The run again is the stored report, its rotation and orders unchanged.
        let again = try await PostgresNightly(database, scope: .system("test")).run(asOf: today, region: nil)
        #expect(again.replay && again.report.rotation == report.rotation)
    }

    /// The rule alone: only warehouses; what the plan already takes out of the lot, and already
    /// sends the consumer, is left out; nothing without a consumer.
    @Test func theRuleLeavesOutWhatThePlanMovesAndNonWarehouses() {
        let position = NightlyPosition(facility: "W", facilityName: "库", item: "N95", itemName: "口罩", dailyDemand: 0, observedDemand: 0,
                                       fullLoadDemand: nil, targetDays: 30, physicalQty: 500, physicalDays: nil, contractQty: 0, contractDays: nil,
                                       capacityQty: 0, capacityDays: nil, shortfallQty: 0)
        let asOf = LocalDate("2026-12-01")!
        let consumer = Reorder.Consumer(site: PlanSite(code: "H", latitude: 30, longitude: 114), name: "医院", dailyDemand: 10, physicalDays: 5)
        let line = ExpiringLotLine(position: position, lot: "A", expiry: asOf.adding(days: 30), asOf: asOf, onHand: 500, unconsumedQty: 500,
                                   moveTo: (consumer, 250, 12.5))
        var clinic = line
        clinic.facility = "C"
        let none = ExpiringLotLine(position: position, lot: "B", expiry: asOf.adding(days: 30), asOf: asOf, onHand: 50, unconsumedQty: 50, moveTo: nil)
        let lines = Rotation.lines(expiring: [line, clinic, none], warehouses: ["W"], plannedOut: ["W|N95|A": 100], plannedIn: ["H|N95": 50])
        #expect(lines.count == 1 && lines[0].unusedQty == 400 && lines[0].rotateQty == 200 && lines[0].replacementQty == 200)
        #expect(Rotation.orders(lines).map(\.quantity) == [200])
        #expect(Rotation.lines(expiring: [line], warehouses: ["W"], plannedOut: ["W|N95|A": 500], plannedIn: [:]).isEmpty)
        #expect(Rotation.lines(expiring: [line], warehouses: ["W"], plannedOut: [:], plannedIn: ["H|N95": 250]).isEmpty)
    }
}
