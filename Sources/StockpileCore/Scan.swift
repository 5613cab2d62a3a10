import Foundation

/// What a scanner typed into the entry field, read (issue 16, part 2; ../shared/research/scanning-gs1-udi.md).
/// One pure parser for every kind of code a clerk meets on emergency supplies:
/// - a GS1 element string (GS1-128, GS1 DataMatrix, GS1 QR), with or without AIM prefix (`]C1`,
///   `]d2`, `]Q3`…) and with GS (0x1D), or the scanner's substitute `|`, between fields;
/// - the bracketed human-readable form, `(01)06901234567892(17)270500(10)A213B1`;
/// - a GS1 Digital Link URL, `https://id.gs1.org/01/06901234567892/10/A213B1?17=270500`;
/// - an MA code (`MA.156.M0.…`, ZIIOT's UDI), with its lot and dates;
/// - a 20-digit drug traceability code (药品追溯码: no lot, no expiry in it);
/// - a bare GTIN (EAN-13, ITF-14…), its check digit verified.
/// What it cannot read for certain it does not fill in: an unknown code is an error naming why,
/// and a field that may have swallowed the next one (its GS lost) is left empty with a warning.
public struct ScannedCode: Sendable, Equatable {
    public enum Kind: String, Sendable { case gs1, digitalLink = "digital_link", maCode = "ma_code", drugTrace = "drug_trace", gtin }
    public enum Warning: Sendable, Equatable {
        /// No lot or expiry in this kind of code: the clerk types them.
        case noLotOrExpiry
        /// The expiry gave a month only (DD = 00): it is that month's last day.
        case expiryMonthOnly
        /// A case or carton identifier (GTIN indicator 1–8): count in its units.
        case caseLevel
        /// (15) best-before is not an expiry: not used as one.
        case bestBeforeNotExpiry
        /// The field `ai` ran to the end and looks as if it swallowed the next field (its GS
        /// separator lost): `text` is what it read; lot and serial are left for the clerk.
        case separatorMissing(ai: String, text: String)
    }

    public var kind: Kind
    /// The AIM symbology identifier the scanner sent (`]d2`), if any.
    public var symbology: String?
    /// GTIN-14 (a GTIN-13 gets a leading 0).
    public var gtin: String?
    public var lot: String?
    public var expiry: LocalDate?
    public var production: LocalDate?
    public var serial: String?
    /// (30) or (37): how many units the code stands for.
    public var count: Int64?
    /// (00), and (02) the GTIN of what a logistics unit contains.
    public var sscc: String?
    public var containedGTIN: String?
    /// The MA code's device identifier (its first five fields), or the drug code's 7-digit 药品标识码.
    public var maDeviceID: String?
    public var drugCode: String?
    /// Every GS1 field read, by AI, as written (dates raw): what the form does not use is kept.
    public var fields: [String: String] = [:]
    public var warnings: [Warning] = []

    public init(kind: Kind) { self.kind = kind }
}

/// Why a scan could not be read; `field` names the part (an AI such as "10", or "code").
public struct ScanError: Error, Equatable, CustomStringConvertible, Sendable {
    public var field: String
    public var reason: String
    public var description: String { "\(field): \(reason)" }
    init(_ field: String, _ reason: String) { self.field = field; self.reason = reason }
}

public enum ScanParser {
    static let groupSeparator: Character = "\u{1D}"
    /// What scanners are set to send instead of GS (neither is in GS1's character set 82).
    static let substitutes: Set<Character> = ["|"]

    /// Reads one scan. `today` decides the century of two-digit years (GS1 GenSpecs §7.12).
    public static func parse(_ raw: String, today: LocalDate) throws -> ScannedCode {
        var text = raw.trimmingCharacters(in: CharacterSet(charactersIn: " \r\n\t"))
        var symbology: String?
        if text.hasPrefix("]"), text.count >= 3 {
            symbology = String(text.prefix(3))
            text = String(text.dropFirst(3))
        }
        guard !text.isEmpty else { throw ScanError("code", "empty scan") }
        var code: ScannedCode
        if text.hasPrefix("MA.") || text.hasPrefix("ma.") {
            code = try ma(text, today: today)
        } else if text.lowercased().hasPrefix("http://") || text.lowercased().hasPrefix("https://") {
            code = try digitalLink(text, today: today)
        } else if text.count == 20, text.first == "8", text.allSatisfy(\.isASCIIDigit) {
            code = ScannedCode(kind: .drugTrace)
            code.drugCode = String(text.prefix(7))
            code.serial = String(text.dropFirst(7))
            code.warnings.append(.noLotOrExpiry)
        } else if [8, 12, 13, 14].contains(text.count), text.allSatisfy(\.isASCIIDigit), symbology.map({ !gs1Symbologies.contains($0) }) ?? true {
            let gtin = String(repeating: "0", count: 14 - text.count) + text
            guard checkDigitValid(gtin) else { throw ScanError("code", "\(text): the check digit is wrong (a misread, or not a GTIN)") }
            code = ScannedCode(kind: .gtin)
            code.gtin = gtin
            code.warnings.append(.noLotOrExpiry)
        } else if text.hasPrefix("(") {
            code = try gs1(fields: try bracketed(text), today: today)
        } else {
            code = try gs1(fields: try elementString(text), today: today)
        }
        code.symbology = symbology
        if let gtin = code.gtin, let indicator = gtin.first, ("1"..."8").contains(indicator) { code.warnings.append(.caseLevel) }
        return code
    }

    /// AIM identifiers of symbols that carry GS1 data: digits after them are an element string, not a bare GTIN.
    static let gs1Symbologies: Set<String> = ["]C1", "]d2", "]Q3", "]e0", "]J1"]

    // MARK: GS1 application identifiers

    struct AI {
        var minLength: Int
        var maxLength: Int
        var numeric: Bool
        /// Predefined length: never followed by a GS (GS1's table of such prefixes, not every fixed length).
        var predefined: Bool
    }

    /// The AIs a medical supply label carries (research §2.1), and the families 31nn–36nn, 41n.
    static func ai(_ code: String) -> AI? {
        switch code {
        case "00": return AI(minLength: 18, maxLength: 18, numeric: true, predefined: true)
        case "01", "02", "03": return AI(minLength: 14, maxLength: 14, numeric: true, predefined: true)
        case "11", "12", "13", "15", "16", "17": return AI(minLength: 6, maxLength: 6, numeric: true, predefined: true)
        case "20": return AI(minLength: 2, maxLength: 2, numeric: true, predefined: true)
        case "10", "21", "22": return AI(minLength: 1, maxLength: 20, numeric: false, predefined: false)
        case "235": return AI(minLength: 1, maxLength: 28, numeric: false, predefined: false)
        case "240", "241", "250", "251": return AI(minLength: 1, maxLength: 30, numeric: false, predefined: false)
        case "30", "37": return AI(minLength: 1, maxLength: 8, numeric: true, predefined: false)
        case "7003": return AI(minLength: 10, maxLength: 10, numeric: true, predefined: false)
        case "90": return AI(minLength: 1, maxLength: 30, numeric: false, predefined: false)
        default: break
        }
        if code.count == 3, ["710", "711", "712", "713", "714", "715", "716"].contains(code) {
            return AI(minLength: 1, maxLength: 20, numeric: false, predefined: false)
        }
        if code.count == 3, code.hasPrefix("41"), ("0"..."7").contains(code.last!) {
            return AI(minLength: 13, maxLength: 13, numeric: true, predefined: true)
        }
        if code.count == 4, ["31", "32", "33", "34", "35", "36"].contains(String(code.prefix(2))), code.allSatisfy(\.isASCIIDigit) {
            return AI(minLength: 6, maxLength: 6, numeric: true, predefined: true)
        }
        if code.count == 2, let n = Int(code), (91...99).contains(n) {
            return AI(minLength: 1, maxLength: 90, numeric: false, predefined: false)
        }
        return nil
    }

    /// The AI at the start of `text`: the shortest prefix (2, 3 or 4 digits) that is one.
    static func aiPrefix(_ text: Substring) -> String? {
        for length in [2, 3, 4] where text.count >= length {
            let candidate = String(text.prefix(length))
            guard candidate.allSatisfy(\.isASCIIDigit) else { return nil }
            // 2-digit families that are longer AIs (24x, 25x, 31nn…, 41n, 70nn, 71n) are not 2-digit AIs.
            if length == 2, ["23", "24", "25", "31", "32", "33", "34", "35", "36", "41", "70", "71"].contains(candidate) { continue }
            if length == 3, ["31", "32", "33", "34", "35", "36", "70"].contains(String(candidate.prefix(2))) { continue }
            if ai(candidate) != nil { return candidate }
        }
        return nil
    }

    /// An element string as scanned: fields one after another, GS (or `|`) after a variable-length one.
    static func elementString(_ text: String) throws -> [(ai: String, value: String, last: Bool)] {
        let normalised = String(text.map { substitutes.contains($0) ? groupSeparator : $0 })
        var rest = Substring(normalised)
        while rest.first == groupSeparator { rest = rest.dropFirst() }   // a leading FNC1 sent as GS
        var fields: [(ai: String, value: String, last: Bool)] = []
        while !rest.isEmpty {
            guard let code = aiPrefix(rest), let spec = ai(code) else {
                throw ScanError("code", "no GS1 application identifier at \"\(rest.prefix(12))\": not a GS1 code this service knows")
            }
            rest = rest.dropFirst(code.count)
            let value: Substring
            if spec.predefined {
                guard rest.count >= spec.maxLength else { throw ScanError(code, "(\(code)) needs \(spec.maxLength) characters, has \(rest.count)") }
                value = rest.prefix(spec.maxLength)
                rest = rest.dropFirst(spec.maxLength)
            } else {
                value = rest.prefix { $0 != groupSeparator }
                rest = rest.dropFirst(value.count)
                guard value.count <= spec.maxLength else {
                    throw ScanError(code, "(\(code)) is \(value.count) characters, at most \(spec.maxLength): the GS separator after it was probably lost; type the fields")
                }
            }
            while rest.first == groupSeparator { rest = rest.dropFirst() }
            fields.append((code, String(value), rest.isEmpty))
        }
        return fields
    }

    /// `(01)…(17)…(10)…`: the printed form, typed or sent by some apps. `\(` is a literal parenthesis.
    static func bracketed(_ text: String) throws -> [(ai: String, value: String, last: Bool)] {
        var fields: [(ai: String, value: String, last: Bool)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            guard rest.first == "(", let close = rest.firstIndex(of: ")") else { throw ScanError("code", "expected (AI) at \"\(rest.prefix(12))\"") }
            let code = String(rest[rest.index(after: rest.startIndex)..<close])
            guard ai(code) != nil else { throw ScanError("code", "(\(code)) is not an application identifier this service knows") }
            rest = rest[rest.index(after: close)...]
            var value = ""
            while let c = rest.first, c != "(" {
                if c == "\\", rest.dropFirst().first == "(" { value.append("("); rest = rest.dropFirst(2); continue }
                value.append(c); rest = rest.dropFirst()
            }
            fields.append((code, value, false))
        }
        return fields
    }

    /// The fields checked (lengths, digits, check digits, dates) and mapped.
    static func gs1(fields: [(ai: String, value: String, last: Bool)], kind: ScannedCode.Kind = .gs1, today: LocalDate) throws -> ScannedCode {
        var code = ScannedCode(kind: kind)
        for (name, value, last) in fields {
            guard let spec = ai(name) else { throw ScanError(name, "(\(name)) is not an application identifier this service knows") }
            guard (spec.minLength...spec.maxLength).contains(value.count) else {
                throw ScanError(name, "(\(name)) must be \(spec.minLength == spec.maxLength ? "\(spec.maxLength)" : "\(spec.minLength)–\(spec.maxLength)") characters, is \(value.count)")
            }
            if spec.numeric, !value.allSatisfy(\.isASCIIDigit) { throw ScanError(name, "(\(name)) must be digits: \(value)") }
            guard code.fields[name] == nil else { throw ScanError(name, "(\(name)) appears twice") }
            code.fields[name] = value
            switch name {
            case "01", "02", "00":
                guard checkDigitValid(value) else { throw ScanError(name, "(\(name)) \(value): the check digit is wrong") }
                if name == "01" { code.gtin = value } else if name == "02" { code.containedGTIN = value } else { code.sscc = value }
            case "17":
                let (date, monthOnly) = try gs1Date(value, ai: name, today: today)
                code.expiry = date
                if monthOnly { code.warnings.append(.expiryMonthOnly) }
            case "11":
                code.production = try gs1Date(value, ai: name, today: today).date
            case "12", "13", "16":
                _ = try gs1Date(value, ai: name, today: today)
            case "15":
                _ = try gs1Date(value, ai: name, today: today)
                code.warnings.append(.bestBeforeNotExpiry)
            case "10", "21":
                // A variable field that ran to the end may hold the next field too, when the GS
                // before it was lost: then it is not filled in (research §6.1, vectors T5).
                if last, swallowsAnotherField(value, today: today) {
                    code.warnings.append(.separatorMissing(ai: name, text: value))
                } else if name == "10" { code.lot = value } else { code.serial = value }
            case "30", "37":
                code.count = Int64(value)
            default:
                break
            }
        }
        if code.gtin == nil && code.containedGTIN == nil {
            throw ScanError("01", "no GTIN in the code: it does not say which item this is")
        }
        if code.gtin == nil { code.gtin = code.containedGTIN }
        return code
    }

    /// Whether a lot or serial that ran to the end of the scan ends in what looks like another
    /// field: (21) and more, (10) and more, or (11)/(15)/(17) with a valid date.
    /// A lot with "21" or "10" inside is flagged too: a false alarm costs the clerk one confirmation,
    /// a serial taken for a lot would be stored as fact.
    static func swallowsAnotherField(_ value: String, today: LocalDate) -> Bool {
        let characters = Array(value)
        for start in 1..<max(characters.count - 2, 1) {
            let tail = String(characters[start...])
            let ai = String(tail.prefix(2))
            if ["21", "10"].contains(ai), tail.count > 2 { return true }
            if ["11", "15", "17"].contains(ai), tail.count >= 8, (try? gs1Date(String(tail.dropFirst(2).prefix(6)), ai: ai, today: today)) != nil {
                return true
            }
        }
        return false
    }

    /// YYMMDD; DD = 00 is the month's last day; the century by GS1's sliding window from `today`.
    static func gs1Date(_ text: String, ai: String, today: LocalDate) throws -> (date: LocalDate, monthOnly: Bool) {
        guard text.count == 6, text.allSatisfy(\.isASCIIDigit), let yy = Int(text.prefix(2)), let mm = Int(text.dropFirst(2).prefix(2)),
              let dd = Int(text.suffix(2)) else { throw ScanError(ai, "(\(ai)) must be a date YYMMDD: \(text)") }
        let year = fullYear(yy, today: today)
        guard (1...12).contains(mm) else { throw ScanError(ai, "(\(ai)) \(text): there is no month \(mm)") }
        let day = dd == 0 ? LocalDate.daysIn(month: mm, year: year) : dd
        guard let date = LocalDate(year: year, month: mm, day: day) else { throw ScanError(ai, "(\(ai)) \(text): there is no such day") }
        return (date, dd == 0)
    }

    /// GS1 GenSpecs §7.12: from 49 years back to 50 ahead of `today`'s year.
    static func fullYear(_ yy: Int, today: LocalDate) -> Int {
        let century = today.year - today.year % 100
        let diff = yy - today.year % 100
        if diff >= 51 { return century - 100 + yy }
        if diff <= -50 { return century + 100 + yy }
        return century + yy
    }

    /// GS1 mod-10: from the right, weights 3, 1, 3, 1… over the digits before the check digit.
    public static func checkDigitValid(_ digits: String) -> Bool {
        let values = digits.compactMap(\.wholeNumberValue)
        guard values.count == digits.count, values.count >= 2 else { return false }
        let body = values.dropLast()
        let sum = body.reversed().enumerated().reduce(0) { $0 + $1.element * ($1.offset.isMultiple(of: 2) ? 3 : 1) }
        return (10 - sum % 10) % 10 == values.last!
    }

    // MARK: Other kinds

    /// `https://<any host>/01/<gtin>[/22/…][/10/<lot>][/21/<serial>]?17=…&…`
    static func digitalLink(_ text: String, today: LocalDate) throws -> ScannedCode {
        guard let url = URLComponents(string: text) else { throw ScanError("code", "not a URL this service can read") }
        // Split before decoding: a value may hold an encoded "/".
        let segments = url.percentEncodedPath.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        guard let start = segments.firstIndex(where: { $0 == "01" }), (segments.count - start) % 2 == 0 else {
            throw ScanError("code", "a web address, but not a GS1 Digital Link (no /01/ followed by a GTIN): not a code this service knows")
        }
        var fields: [(ai: String, value: String, last: Bool)] = []
        for i in stride(from: start, to: segments.count, by: 2) { fields.append((segments[i], segments[i + 1], false)) }
        for item in url.queryItems ?? [] where ai(item.name) != nil { fields.append((item.name, item.value ?? "", false)) }
        return try gs1(fields: fields, kind: .digitalLink, today: today)
    }

    /// `MA.156.M0.<registrant>.<product>.S….M….L….E….V….C…`: the device identifier is the first
    /// five fields; each later one is a letter and its value. The check character is not verified
    /// (ZIIOT says its published algorithm no longer applies).
    static func ma(_ text: String, today: LocalDate) throws -> ScannedCode {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 5, parts[1].allSatisfy(\.isASCIIDigit), !parts[3].isEmpty, !parts[4].isEmpty else {
            throw ScanError("code", "an MA code needs MA.<country>.<industry>.<registrant>.<product>")
        }
        var code = ScannedCode(kind: .maCode)
        code.maDeviceID = parts[0..<5].joined(separator: ".").uppercased()
        var expires: LocalDate?, validThrough: LocalDate?
        for part in parts.dropFirst(5) where !part.isEmpty {
            let key = part.first!.uppercased(), value = String(part.dropFirst())
            code.fields["MA." + key] = value
            switch key {
            case "L": code.lot = value
            case "S": code.serial = value
            case "M", "P": code.production = try maDate(value, unit: key, today: today)
            case "E": expires = try maDate(value, unit: key, today: today)
            case "V": validThrough = try maDate(value, unit: key, today: today)
            default: break
            }
        }
        // The last usable day: 有效期 (.V) when given, else the day before 失效期 (.E).
        code.expiry = validThrough ?? expires.map { $0.adding(days: -1) }
        if code.lot == nil && code.expiry == nil { code.warnings.append(.noLotOrExpiry) }
        return code
    }

    static func maDate(_ text: String, unit: String, today: LocalDate) throws -> LocalDate {
        if text.count == 8, text.allSatisfy(\.isASCIIDigit),
           let date = LocalDate(year: Int(text.prefix(4))!, month: Int(text.dropFirst(4).prefix(2))!, day: Int(text.suffix(2))!) {
            // No device was made or expires before 1900; and 0001-01-01 has no day before it (.E).
            guard date.year >= 1900 else { throw ScanError("MA." + unit, "the date \(text) is out of range") }
            return date
        }
        do { return try gs1Date(text, ai: "MA." + unit, today: today).date } catch {
            throw ScanError("MA." + unit, "the date \(text) is neither YYMMDD nor YYYYMMDD")
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
