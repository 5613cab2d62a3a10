import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import StockpileCore
import StockpileHTTP
import StockpilePostgres
import StockpileTestSupport
import Testing

/// Demand plans, targets, contracts and call-offs, pledges and holds change cover, through the
/// snapshot as much as through a fresh computation, and refuse bad input with the field.
@Suite(.serialized) struct ReserveAPITests {
    @Test func reserveChangesMoveCover() async throws {
        let service = try await TestService(reserves: true)
        let today = LocalDate(Date(), in: TimeZone(identifier: "Asia/Shanghai")!)
        let cover = PostgresCover(service.database, scope: .system("test"))
        try await cover.rebuildSnapshot(asOf: today)
        try await service.test { client in
            func position() async throws -> [String: Any] {
                let page = body(try await client.execute(uri: "/api/v1/cover?as_of=\(today)&facility=H&item=N95", method: .get))
                #expect(page["source"] as? String == "snapshot")
                return try #require((page["rows"] as? [[String: Any]])?.first)
            }
            // Stock: the fixture's 40 in lot KEPT, and 100 more in Q1.
            #expect(try await client.post("/api/v1/movements", movement("receipt", 100, lot: "Q1")).status == .created)
            #expect(try await position()["physical_qty"] as? Int == 140)

            // Full-load demand: set, derived from beds (H has 500 beds), cleared.
            let set = try await client.execute(uri: "/api/v1/demand/H/N95", method: .put, headers: [.contentType: "application/json"],
                                               body: json(["full_load_daily": 12.5]))
            #expect(set.status == .ok)
            #expect(try await position()["daily_demand"] as? Double == 12.5)
            #expect(try await position()["shortfall_qty"] as? Int == 90 * 25 / 2 - 140)  // ppe: 90 days
            let derived = try await client.post("/api/v1/demand/derive", ["item": "N95", "per_bed_day": 0.2])
            #expect(derived.status == .created)
            #expect((body(derived)["plans"] as? [[String: Any]])?.first { $0["facility"] as? String == "H" }?["full_load_daily"] as? Double == 100)
            #expect(try await position()["daily_demand"] as? Double == 100)
            let negative = try await client.execute(uri: "/api/v1/demand/H/N95", method: .put, headers: [.contentType: "application/json"],
                                                    body: json(["full_load_daily": -1]))
            #expect(negative.status == .badRequest && errorOf(negative).field == "full_load_daily")
            let unknown = try await client.execute(uri: "/api/v1/demand/H/NOPE", method: .put, headers: [.contentType: "application/json"],
                                                   body: json(["full_load_daily": 1]))
            #expect(unknown.status == .notFound && errorOf(unknown).field == "item")

            // Targets: ppe from 90 to 60 days, for every ppe position.
            let target = try await client.execute(uri: "/api/v1/targets/ppe", method: .put, headers: [.contentType: "application/json"],
                                                  body: json(["target_days": 60]))
            #expect(target.status == .ok)
            #expect(try await position()["target_days"] as? Int == 60)
            #expect(try await position()["shortfall_qty"] as? Int == 60 * 100 - 140)
            let zero = try await client.execute(uri: "/api/v1/targets/ppe", method: .put, headers: [.contentType: "application/json"],
                                                body: json(["target_days": 0]))
            #expect(zero.status == .badRequest && errorOf(zero).field == "target_days")

            // Contracts: KH (1000, lead 7) counts; call-offs reduce it exactly once.
            #expect(try await position()["contract_qty"] as? Int == 1000)
            let id = UUID().uuidString
            let first = try await client.post("/api/v1/contracts/KH/calloffs", ["id": id, "quantity": 300, "note": "疫情"])
            #expect(first.status == .created)
            #expect((body(first)["contract"] as? [String: Any])?["remaining"] as? Int == 700)
            let again = try await client.post("/api/v1/contracts/KH/calloffs", ["id": id, "quantity": 300, "note": "疫情"])
            #expect(again.status == .ok && body(again)["replay"] as? Bool == true)
            let reused = try await client.post("/api/v1/contracts/KH/calloffs", ["id": id, "quantity": 5, "note": "疫情"])
            #expect(reused.status == .conflict && errorOf(reused).field == "id")
            let tooMuch = try await client.post("/api/v1/contracts/KH/calloffs", ["id": UUID().uuidString, "quantity": 701])
            #expect(tooMuch.status == .conflict && errorOf(tooMuch).field == "quantity")
            #expect(try await position()["contract_qty"] as? Int == 700)
            let calloffs = body(try await client.execute(uri: "/api/v1/contracts/KH/calloffs", method: .get))["calloffs"] as? [[String: Any]]
            #expect(calloffs?.count == 1)
            // A spreadsheet cannot overwrite what call-offs recorded.
            let overwrite = try await client.execute(
                uri: "/api/v1/import/contracts", method: .post,
                body: ByteBuffer(string: "code,facility_code,supplier,item_code,quantity,called_off,lead_time_days,valid_from,valid_to,local\nKH,H,本地供应商,N95,1000,0,7,2026-01-01,2027-12-31,true\n"))
            #expect(overwrite.status == .unprocessableContent && errorOf(overwrite).field == "called_off")
            // The committed quantity cannot drop below what was called off; the called-off quantity is not an input.
            let shrink = try await client.execute(uri: "/api/v1/contracts/KH", method: .put, headers: [.contentType: "application/json"],
                                                  body: json(["facility": "H", "supplier": "本地供应商", "item": "N95", "quantity": 200,
                                                              "lead_time_days": 7, "valid_from": "2026-01-01", "valid_to": "2027-12-31",
                                                              "called_off": 0]))
            #expect(shrink.status == .conflict && errorOf(shrink).field == "quantity")
            let slow = try await client.execute(uri: "/api/v1/contracts/KH", method: .put, headers: [.contentType: "application/json"],
                                                body: json(["facility": "H", "supplier": "本地供应商", "item": "N95", "quantity": 1000,
                                                            "lead_time_days": 61, "valid_from": "2026-01-01", "valid_to": "2027-12-31"]))
            #expect(slow.status == .ok && (body(slow)["called_off"] as? Int) == 300)
            #expect(try await position()["contract_qty"] as? Int == 0)  // a lead time beyond the 60-day target does not count
            let backwards = try await client.execute(uri: "/api/v1/contracts/K2", method: .put, headers: [.contentType: "application/json"],
                                                     body: json(["facility": "H", "supplier": "s", "item": "N95", "quantity": 1,
                                                                 "lead_time_days": 1, "valid_from": "2027-01-01", "valid_to": "2026-01-01"]))
            #expect(backwards.status == .badRequest && errorOf(backwards).field == "valid_to")

            // Capacity: 50 a day after 10 days' ramp-up, over the 60-day target.
            let pledge = try await client.execute(uri: "/api/v1/capacity/PH", method: .put, headers: [.contentType: "application/json"],
                                                  body: json(["facility": "H", "manufacturer": "本地企业", "item": "N95", "daily_capacity": 50,
                                                              "ramp_up_days": 10, "valid_from": "2026-01-01", "valid_to": "2030-12-31",
                                                              "certified": true, "local": true]))
            #expect(pledge.status == .created)
            #expect(try await position()["capacity_qty"] as? Int == 50 * 50)

            // A hold takes the lot out of usable stock; a release brings it back.
            let noReason = try await client.post("/api/v1/lots/N95/Q1/hold", [:])
            #expect(noReason.status == .badRequest && errorOf(noReason).field == "reason")
            #expect(try await client.post("/api/v1/lots/N95/Q1/hold", ["reason": "召回"]).status == .created)
            #expect(try await position()["physical_qty"] as? Int == 40)
            let held = body(try await client.execute(uri: "/api/v1/lots?held=true", method: .get))["lots"] as? [[String: Any]]
            #expect(held?.map { $0["lot"] as? String } == ["Q1"])
            #expect(try await client.post("/api/v1/lots/N95/Q1/release", [:]).status == .created)
            #expect(try await position()["physical_qty"] as? Int == 140)
            let missing = try await client.post("/api/v1/lots/N95/NOPE/hold", ["reason": "质检"])
            #expect(missing.status == .notFound && errorOf(missing).field == "lot")

            // Every change is in the audit log.
            let audit = body(try await client.execute(uri: "/api/v1/audit?limit=100", method: .get))["entries"] as? [[String: Any]] ?? []
            let actions = Set(audit.compactMap { $0["action"] as? String })
            for action in ["demand.set", "demand.derive", "target.set", "contract.calloff", "contract.update", "capacity.create", "lot.hold", "lot.release"] {
                #expect(actions.contains(action), "\(action) is not audited")
            }
        }
        // The snapshot answered with what a fresh computation gives.
        let fresh = try await cover.positions(CoverFilter(facility: "H"), asOf: today)
        let snapshot = try await cover.page(CoverQuery(filter: CoverFilter(facility: "H"), sort: .facility, asOf: today))
        #expect(snapshot.source == "snapshot" && snapshot.rows == CoverSort.facility.sorted(fresh))
        #expect(try await service.mismatches() == 0)
    }
}
