import Foundation

/// Cells of the CSV files Stockpile writes and reads: UTF-8 with a byte-order mark (so Excel and WPS
/// show Chinese), CRLF line ends, and text a spreadsheet would run as a formula made inert.
public enum SpreadsheetCSV {
    /// What a spreadsheet takes as the start of a formula (OWASP "CSV injection"): = + - @ TAB CR.
    public static let formulaStart: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]
    public static let byteOrderMark = "\u{FEFF}"

    /// Whether `text` gets a leading apostrophe when written: it would start a formula once any
    /// apostrophes in front are set aside (so a name that really begins with `'=` keeps its own
    /// apostrophe through a round trip), and it is not a plain number (-5, -0.25 stay numbers).
    static func needsApostrophe(_ text: Substring) -> Bool {
        let body = text.drop { $0 == "'" }
        guard let first = body.unicodeScalars.first, formulaStart.contains(first) else { return false }
        return text.wholeMatch(of: /-?[0-9]+(\.[0-9]+)?/) == nil
    }

    /// One cell as written. Clerks choose lot numbers and command tokens supplier names, so a text a
    /// spreadsheet would evaluate gets a leading apostrophe; `reading` takes it off again.
    public static func field(_ raw: String) -> String {
        let text = needsApostrophe(raw[...]) ? "'" + raw : raw
        return text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// One cell as read back: the apostrophe `field` put in front is dropped, and nothing else. (Every
    /// text that `field` would give an apostrophe to, with one already in front, got one too, so a
    /// cell is never read as less than was written.)
    public static func reading(_ cell: String) -> String {
        cell.hasPrefix("'") && needsApostrophe(cell.dropFirst()) ? String(cell.dropFirst()) : cell
    }

    /// One line, CRLF-terminated.
    public static func line(_ cells: [String]) -> String {
        cells.map(field).joined(separator: ",") + "\r\n"
    }

    /// A whole file's text: byte-order mark, header, rows.
    public static func text(header: [String], rows: [[String]]) -> String {
        byteOrderMark + line(header) + rows.map(line).joined()
    }
}
