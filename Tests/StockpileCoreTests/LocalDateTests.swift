import Foundation
import Testing
@testable import StockpileCore

struct LocalDateTests {
    /// Day arithmetic is plain civil-calendar arithmetic; Foundation's Gregorian calendar (the
    /// implementation it replaced) must agree on every day from 1600 to 2400, leap days included.
    @Test func dayArithmeticAgreesWithTheGregorianCalendar() {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let epoch = LocalDate(year: 1970, month: 1, day: 1)!
        var day = LocalDate(year: 1600, month: 1, day: 1)!
        var instant = utc.date(from: DateComponents(year: 1600, month: 1, day: 1))!
        var checked = 0
        while day.year < 2400 {
            let c = utc.dateComponents([.year, .month, .day], from: instant)
            #expect((day.year, day.month, day.day) == (c.year!, c.month!, c.day!))
            if checked % 997 == 0 {
                #expect(epoch.days(until: day) == utc.dateComponents([.day], from: utc.date(from: DateComponents(year: 1970, month: 1, day: 1))!, to: instant).day!)
                #expect(day.adding(days: -checked).adding(days: checked) == day)
            }
            day = day.adding(days: 1)
            instant = utc.date(byAdding: .day, value: 1, to: instant)!
            checked += 1
        }
        #expect(checked == 292_194)
        #expect(LocalDate("2028-02-28")!.adding(days: 1).description == "2028-02-29")
        #expect(LocalDate("2100-02-28")!.adding(days: 1).description == "2100-03-01")
        #expect(LocalDate("2026-11-22")!.days(until: LocalDate("2027-02-20")!) == 90)
    }
}
