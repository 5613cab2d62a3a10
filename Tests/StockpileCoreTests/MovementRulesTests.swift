import Foundation
import StockpileCore
import Testing

struct MovementRulesTests {
    let valid = MovementDraft(id: "6f1c2a9e-0b7d-4e59-9a51-3c2f8d0e7b11", facility: "D1-H1", item: "N95", lot: "L1",
                              expiry: "2027-06-30", kind: "receipt", quantity: 100, reason: "采购入库",
                              occurredAt: "2026-11-20T09:30:00+08:00")

    func field(_ change: (inout MovementDraft) -> Void) -> String? {
        var draft = valid
        change(&draft)
        do {
            _ = try draft.validated()
            return nil
        } catch {
            return error.field
        }
    }

    @Test func aWellFormedMovementPasses() throws {
        let request = try valid.validated()
        #expect(request.quantity == 100)
        #expect(request.kind == .receipt)
        #expect(request.expiry == LocalDate(year: 2027, month: 6, day: 30))
        #expect(request.occurredAt == Date(timeIntervalSince1970: 1_795_138_200))
    }

    @Test func eachBadFieldIsNamed() {
        #expect(field { $0.id = nil } == "id")
        #expect(field { $0.id = "12345" } == "id")
        #expect(field { $0.facility = "  " } == "facility")
        #expect(field { $0.item = nil } == "item")
        #expect(field { $0.lot = "L\u{0}1" } == "lot")
        #expect(field { $0.kind = "theft" } == "kind")
        #expect(field { $0.kind = "transfer_out" } == "kind")
        #expect(field { $0.quantity = nil } == "quantity")
        #expect(field { $0.quantity = 0 } == "quantity")
        #expect(field { $0.quantity = -3 } == "quantity")
        #expect(field { $0.quantity = 2.5 } == "quantity")
        #expect(field { $0.expiry = "2027-02-30" } == "expiry")
        #expect(field { $0.expiry = "30/06/2027" } == "expiry")
        #expect(field { $0.occurredAt = "yesterday" } == "occurred_at")
        #expect(field { $0.occurredAt = "2099-01-01T00:00:00Z" } == "occurred_at")
        #expect(field { $0.kind = "adjustment"; $0.reason = "" } == "reason")
        #expect(field { $0.kind = "adjustment"; $0.reason = "damage: 漏水" } == nil)
        // A count may be zero: the shelf was found empty.
        #expect(field { $0.kind = "count"; $0.quantity = 0 } == nil)
        #expect(field { $0.kind = "count"; $0.quantity = -1 } == "quantity")
        #expect(field { $0.expiry = "" } == nil)
    }

    @Test func adjustmentReasonsGiveTheSign() {
        #expect(AdjustmentReason(reasonText: "loss")?.sign == -1)
        #expect(AdjustmentReason(reasonText: "expired: 过期报废")?.sign == -1)
        #expect(AdjustmentReason(reasonText: "found: 盘盈")?.sign == 1)
        #expect(AdjustmentReason(reasonText: "lost") == nil)
    }

    @Test func datesAreStrict() {
        #expect(LocalDate("2028-02-29") != nil)
        #expect(LocalDate("2027-02-29") == nil)
        #expect(LocalDate("2027-1-5") == nil)
        #expect(LocalDate("2026-11-22")!.adding(days: 10).description == "2026-12-02")
        #expect(LocalDate("2026-11-22")!.days(until: LocalDate("2027-11-22")!) == 365)
        let shanghai = TimeZone(identifier: "Asia/Shanghai")!
        // 2026-11-21 17:00 UTC is already the 22nd in Shanghai.
        #expect(LocalDate(Date(timeIntervalSince1970: 1_795_280_400), in: shanghai).description == "2026-11-22")
        for bad in ["", "2027-06-3", "2027-06-300", "2027/06/30", "２０２７-06-30", "2027-06-3\u{301}0", "-027-06-30", " 2027-06-30", "2027-00-10"] {
            #expect(LocalDate(bad) == nil, "\(bad)")
        }
        #expect(LocalDate("0001-01-01")?.year == 1 && LocalDate("9999-12-31")?.day == 31)
    }

    /// The service's own trim removes what Foundation's does, character for character (it replaced
    /// Foundation's on the batch path for speed: issue 18).
    @Test func trimmingAgreesWithFoundation() {
        for value in 0..<0x11_0000 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = "x" + String(scalar)
            #expect(TextBounds.trimmed(text) == text.trimmingCharacters(in: .whitespacesAndNewlines), "U+\(String(value, radix: 16))")
            #expect(TextBounds.trimmed(text, newlines: false) == text.trimmingCharacters(in: .whitespaces), "U+\(String(value, radix: 16))")
        }
        let ends = ["", " ", "\t", "\n", "\r\n", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{3000}", "\u{2028}", "\u{2029}", "\u{200B}",
                    "\u{FEFF}", "\u{1680}", "\u{202F}", "x", "口罩", "\u{301}"]
        let middles = ["", "N95", "医用 口罩", " a\tb ", "e\u{301}", "\u{3000}"]
        for head in ends {
            for middle in middles {
                for tail in ends {
                    let text = head + middle + tail
                    #expect(TextBounds.trimmed(text) == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(Array(text.unicodeScalars))")
                    #expect(TextBounds.trimmed(text, newlines: false) == text.trimmingCharacters(in: .whitespaces), "\(Array(text.unicodeScalars))")
                }
            }
        }
    }
}

struct DemoDistrictTests {
    @Test func theDemoIsDeterministicAndWellFormed() throws {
        let today = LocalDate("2026-11-22")!
        let a = DemoDistrict.csvFiles(today: today)
        #expect(a == DemoDistrict.csvFiles(today: today))
        let facilities = a["facilities"]!.split(separator: "\n").dropFirst()
        #expect(facilities.count == 23)
        #expect(facilities.filter { $0.hasSuffix(",true") }.count == 1)
        #expect(a["items"]!.contains("二氧化氯消毒粉"))
        let movements = a["movements"]!.split(separator: "\n").dropFirst()
        #expect(movements.count > 5000)
        // The reserve layers too: plans for hospitals, contracts, capacity pledges, every row valid.
        #expect(a["demand"]!.split(separator: "\n").count > 10)
        let contracts = a["contracts"]!.split(separator: "\n").dropFirst(), pledges = a["capacity"]!.split(separator: "\n").dropFirst()
        #expect(contracts.count > 10 && !pledges.isEmpty)
        for line in contracts {
            let values = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            _ = try ContractRow(csv: CSVFields(Dictionary(uniqueKeysWithValues: zip(ContractRow.csvColumns, values))))
        }
        // Every row validates as the importer would validate it, and none is in the future.
        let header = MovementDraft.csvColumns
        for line in movements.prefix(2000) {
            let values = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(values.count == header.count)
            let request = try MovementDraft.validated(csv: CSVFields(Dictionary(uniqueKeysWithValues: zip(header, values))))
            #expect(request.occurredAt! < Date())
        }
    }
}

/// Issue 17, part 3: when an order on the road is overdue.
@Suite struct TransitRuleTests {
    @Test func anOrderIsDueAfterItsDistanceAtTheSpeedButNeverSoonerThanTheMinimum() throws {
        let rule = TransitRule(kmh: 30, minimumHours: 24)
        #expect(rule.expectedHours(distanceKm: 15) == 24)            // a short hop still gets a day
        #expect(rule.expectedHours(distanceKm: 900) == 30)           // 900 km at 30 km/h
        #expect(rule.expectedHours(distanceKm: .nan) == 24 && rule.expectedHours(distanceKm: -5) == 24)
        let sent = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(rule.daysOverdue(dispatched: sent, distanceKm: 15, now: sent.addingTimeInterval(23 * 3600)) == nil)
        #expect(rule.daysOverdue(dispatched: sent, distanceKm: 15, now: sent.addingTimeInterval(24 * 3600)) == nil)
        #expect(rule.daysOverdue(dispatched: sent, distanceKm: 15, now: sent.addingTimeInterval(72 * 3600)) == 2)
        #expect(rule.daysOverdue(dispatched: sent, distanceKm: 900, now: sent.addingTimeInterval(42 * 3600)) == 0.5)
    }

    @Test func theSettingsAreCheckedByName() throws {
        #expect(try TransitRule(kmh: nil, minimumHours: "") == .standard)
        #expect(try TransitRule(kmh: "60", minimumHours: "12") == TransitRule(kmh: 60, minimumHours: 12))
        for (kmh, hours, name) in [("0", nil, "STOCKPILE_TRANSIT_KMH"), ("fast", nil, "STOCKPILE_TRANSIT_KMH"), ("inf", nil, "STOCKPILE_TRANSIT_KMH"),
                                   (nil, "-1", "STOCKPILE_TRANSIT_MIN_HOURS"), (nil, "1000", "STOCKPILE_TRANSIT_MIN_HOURS")] as [(String?, String?, String)] {
            #expect(throws: FieldError.self) { try TransitRule(kmh: kmh, minimumHours: hours) }
            do { _ = try TransitRule(kmh: kmh, minimumHours: hours) } catch { #expect(error.field == name) }
        }
    }
}
