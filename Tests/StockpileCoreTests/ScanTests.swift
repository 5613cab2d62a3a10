import StockpileCore
import Testing

/// The scan parser (issue 16, part 2) over the research's vectors (../shared/research/scanning-gs1-udi.md §5)
/// and cases of our own. "Today" is fixed, for the two-digit-year window.
struct ScanTests {
    static let today = LocalDate("2026-12-01")!
    static let gs = "\u{1D}"
    static func parse(_ text: String) throws -> ScannedCode { try ScanParser.parse(text, today: today) }
    static func date(_ text: String) -> LocalDate { LocalDate(text)! }

    @Test func t1AndT2DataMatrixWithAndWithoutItsAIMPrefix() throws {
        for prefix in ["]d2", ""] {
            let code = try Self.parse("\(prefix)010415046984897510ABCDE123\(Self.gs)17271031211003214654888\(Self.gs)716123456784")
            #expect(code.kind == .gs1 && code.symbology == (prefix.isEmpty ? nil : "]d2"))
            #expect(code.gtin == "04150469848975" && code.lot == "ABCDE123" && code.expiry == Self.date("2027-10-31"))
            #expect(code.serial == "1003214654888" && code.fields["716"] == "123456784")
            #expect(code.warnings.isEmpty)
        }
    }

    @Test func t3BracketedAndT4TheSameAsScanned() throws {
        for text in ["(01)06901234567892(11)141231(17)150707(10)A213B1(21)1234", "]d20106901234567892111412311715070710A213B1\(Self.gs)211234"] {
            let code = try Self.parse(text)
            #expect(code.gtin == "06901234567892" && code.production == Self.date("2014-12-31") && code.expiry == Self.date("2015-07-07"))
            #expect(code.lot == "A213B1" && code.serial == "1234")
        }
    }

    @Test func t5ALostSeparatorDoesNotPutTheSerialIntoTheLot() throws {
        let code = try Self.parse("]d20106901234567892111412311715070710A213B1211234")
        #expect(code.gtin == "06901234567892" && code.expiry == Self.date("2015-07-07"))
        #expect(code.lot == nil && code.serial == nil)
        #expect(code.warnings == [.separatorMissing(ai: "10", text: "A213B1211234")])
        // biip's documented example: a date swallowed into the lot.
        let other = try Self.parse("010703206980498810032915210526")
        #expect(other.lot == nil && other.warnings == [.separatorMissing(ai: "10", text: "032915210526")])
    }

    @Test func t6ACaseWithAMonthOnlyExpiry() throws {
        let code = try Self.parse("]C1011690123456789917270500" + "10KZ240501")
        #expect(code.gtin == "16901234567899" && code.lot == "KZ240501")
        #expect(code.expiry == Self.date("2027-05-31"))
        #expect(code.warnings.contains(.expiryMonthOnly) && code.warnings.contains(.caseLevel))
    }

    @Test func t7ALeapFebruaryAndT8ItsLostSeparatorRefused() throws {
        let code = try Self.parse("0110366302300017102100437\(Self.gs)1716020021925768618163")
        #expect(code.gtin == "10366302300017" && code.lot == "2100437" && code.expiry == Self.date("2016-02-29"))
        #expect(code.serial == "925768618163")
        #expect(throws: ScanError.self) { try Self.parse("01103663023000171021004371716020021925768618163") }
        do { _ = try Self.parse("01103663023000171021004371716020021925768618163") } catch let error as ScanError {
            #expect(error.field == "10" && error.reason.contains("separator"))
        }
    }

    @Test func t9AdditionalProductIDAndT10ItsLostSeparatorRefused() throws {
        let code = try Self.parse("0104062102661738112401241727072410S230091624\(Self.gs)2400523000302NNN003")
        #expect(code.gtin == "04062102661738" && code.production == Self.date("2024-01-24") && code.expiry == Self.date("2027-07-24"))
        #expect(code.lot == "S230091624" && code.fields["240"] == "0523000302NNN003")
        #expect(throws: ScanError.self) { try Self.parse("0104062102661608112405271727112710S2400424282400522010301NNN003") }
    }

    @Test func t11ALogisticsLabelCounts() throws {
        let code = try Self.parse("]C100069012340000001235" + "0216901234567899" + "3720\(Self.gs)10KZ240501")
        #expect(code.sscc == "069012340000001235" && code.containedGTIN == "16901234567899" && code.gtin == "16901234567899")
        #expect(code.count == 20 && code.lot == "KZ240501")
    }

    @Test func t12ADigitalLink() throws {
        let code = try Self.parse("]Q1https://id.gs1.org/01/06901234567892/10/A213B1?17=270500")
        #expect(code.kind == .digitalLink && code.symbology == "]Q1")
        #expect(code.gtin == "06901234567892" && code.lot == "A213B1" && code.expiry == Self.date("2027-05-31"))
        // Any host (a brand's own domain), percent-encoded values.
        let own = try Self.parse("https://example.cn/shop/01/06901234567892/10/A%2F1?17=270531")
        #expect(own.lot == "A/1" && own.expiry == Self.date("2027-05-31"))
        #expect(throws: ScanError.self) { try Self.parse("https://example.cn/product/42") }
    }

    @Test func t13AndT14MACodes() throws {
        let a = try Self.parse("MA.156.M0.100761.21234561.Sx00008.M220117.L20220117.D20220118.E220130.V220117.C3")
        #expect(a.kind == .maCode && a.maDeviceID == "MA.156.M0.100761.21234561")
        #expect(a.serial == "x00008" && a.lot == "20220117" && a.production == Self.date("2022-01-17"))
        #expect(a.expiry == Self.date("2022-01-17"), "有效期 (.V) is the last usable day")
        let b = try Self.parse("]Q1MA.156.M0.100350.01004YA10017.SLMSAGAAAC.M210628.LAY21062803.E220628.V220627.C3")
        #expect(b.maDeviceID == "MA.156.M0.100350.01004YA10017" && b.serial == "LMSAGAAAC" && b.lot == "AY21062803")
        #expect(b.expiry == Self.date("2022-06-27") && b.production == Self.date("2021-06-28"))
        // Only 失效期 (.E), as YYYYMMDD: the day before it.
        let c = try Self.parse("MA.156.M0.100350.01004YA10017.LQ1.E20290101")
        #expect(c.expiry == Self.date("2028-12-31") && c.lot == "Q1")
    }

    @Test func t15ADrugTraceCodeHasNoLotOrExpiry() throws {
        for text in ["83857930000879766660", "]C083857930000879766660"] {
            let code = try Self.parse(text)
            #expect(code.kind == .drugTrace && code.drugCode == "8385793" && code.serial == "0000879766660")
            #expect(code.lot == nil && code.expiry == nil && code.warnings == [.noLotOrExpiry])
        }
    }

    @Test func bareGTINsAndTheSubstituteSeparator() throws {
        for text in ["6901234567892", "]E06901234567892"] {
            let code = try Self.parse(text)
            #expect(code.kind == .gtin && code.gtin == "06901234567892" && code.warnings == [.noLotOrExpiry])
        }
        let carton = try Self.parse("]I116901234567899")
        #expect(carton.gtin == "16901234567899" && carton.warnings.contains(.caseLevel))
        let piped = try Self.parse("0106901234567892" + "10A213B1|17270531")
        #expect(piped.lot == "A213B1" && piped.expiry == Self.date("2027-05-31"))
        // Trailing CR/LF a scanner adds.
        #expect(try Self.parse("6901234567892\r\n").gtin == "06901234567892")
    }

    @Test func wrongCheckDigitsImpossibleDatesAndUnknownCodesAreRefused() throws {
        let refused: [(String, String)] = [
            ("(01)06901234567893(17)270531", "01"),   // check digit should be 2
            ("(01)06901234567892(17)270230", "17"),   // no 30 February
            ("(01)06901234567892(17)271300", "17"),   // no month 13
            ("6901234567893", "code"),                // a misread EAN-13
            ("hello", "code"),
            ("(17)270531(10)A1", "01"),               // no GTIN: which item?
            ("0106901234567892(10)", "code"),
            ("", "code"),
            ("(01)06901234567892(10)ABCDEFGHIJKLMNOPQRSTU", "10"),   // 21 characters
            ("(01)0690123456789X", "01"),
        ]
        for (text, field) in refused {
            do {
                let code = try Self.parse(text)
                Issue.record("\(text) was read as \(code)")
            } catch let error as ScanError {
                #expect(error.field == field, "\(text): \(error)")
            }
        }
    }

    @Test func twoDigitYearsFollowGS1sSlidingWindow() throws {
        #expect(try Self.parse("(01)06901234567892(17)760101").expiry == Self.date("2076-01-01"))
        #expect(try Self.parse("(01)06901234567892(17)770101").expiry == Self.date("1977-01-01"))
        #expect(try ScanParser.parse("(01)06901234567892(17)010101", today: LocalDate("2099-06-01")!).expiry == Self.date("2101-01-01"))
    }

    @Test func checkDigits() {
        #expect(ScanParser.checkDigitValid("06901234567892"))
        #expect(!ScanParser.checkDigitValid("06901234567893"))
        #expect(ScanParser.checkDigitValid("069012340000001235"))
        #expect(!ScanParser.checkDigitValid("0690123456789X"))
    }
}
