import StockpileCore
import Testing

/// The cells every CSV the service writes is made of, and how the importer reads them back.
@Suite struct SpreadsheetCSVTests {
    /// The text inside one written cell, as a CSV reader gives it (quotes taken off).
    func unquoted(_ cell: String) -> String {
        guard cell.hasPrefix("\"") else { return cell }
        return String(cell.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
    }

    @Test func aFormulaIsMadeInertAndEveryTextComesBackAsItWas() {
        #expect(SpreadsheetCSV.field("=1+2") == "'=1+2")
        #expect(SpreadsheetCSV.field("@SUM(A1)") == "'@SUM(A1)")
        #expect(SpreadsheetCSV.field("-5") == "-5")
        #expect(SpreadsheetCSV.field("-0.25") == "-0.25")
        #expect(SpreadsheetCSV.field("'=x") == "''=x")
        #expect(SpreadsheetCSV.field("'abc") == "'abc")
        #expect(SpreadsheetCSV.field("=HYPERLINK(\"http://x\",\"点\")") == "\"'=HYPERLINK(\"\"http://x\"\",\"\"点\"\")\"")
        let texts = ["=1+2", "'=x", "''=x", "-5", "-口罩", "'-5", "'abc", "@SUM(A1)", "+86 138", "\tTab", "\r\n", "plain", "人民医院",
                     "a,b", "say \"hi\"", "damage: 漏水\n第二行", "'", "''", "", "-", "=", "'-", "5-", "1e5", "-1e5"]
        for text in texts {
            let cell = SpreadsheetCSV.field(text)
            #expect(SpreadsheetCSV.reading(unquoted(cell)) == text, "\(text) was written as \(cell)")
            if let first = text.unicodeScalars.first, SpreadsheetCSV.formulaStart.contains(first), Double(text) == nil {
                #expect(unquoted(cell).hasPrefix("'"), "\(text) would run as a formula: \(cell)")
            }
        }
    }

    @Test func aFileHasItsByteOrderMarkHeaderAndCRLF() {
        let text = SpreadsheetCSV.text(header: ["code", "name"], rows: [["H", "人民医院"], ["W", "=1"]])
        #expect(text == "\u{FEFF}code,name\r\nH,人民医院\r\nW,'=1\r\n")
    }
}
