import CLibPQ
import Foundation

extension PQConnection {
    /// A query's rows as they arrive, in PostgreSQL's binary COPY format (`COPY (sql) TO STDOUT`):
    /// for reads of millions of rows. `scan` waits for the whole result before the first row and
    /// has the server print every number as text for the client to parse back; here the client
    /// works on each row while the server produces the next, and numbers travel as they are
    /// stored (issue 18: a city's plan inputs).
    ///
    /// COPY takes no bind parameters, so each `$n` becomes a literal escaped by libpq
    /// (PQescapeLiteral, for this connection's encoding): a value can never end the literal.
    /// Every `$` of `sql` is taken for a placeholder (no `$` in its own string literals or dollar
    /// quotes), and each should carry a cast (`$1::date`), as a literal has no type of its own.
    /// Binary parameters are refused. Columns are read by position with `PQCopyRow`; integer
    /// and float columns may be of any width, other types should be cast to text in the query.
    public func copyRows(_ sql: String, _ parameters: [any PQEncodable] = [], _ body: (PQCopyRow) throws -> Void) throws {
        // On lines of their own: the query may end in a -- comment.
        let statement = "COPY (\n\(try inlined(sql, parameters))\n) TO STDOUT (FORMAT binary)"
        try withinDeadline {
            guard let handle else { throw PQError(message: "connection is closed", isConnectionFailure: true) }
            guard let started = PQexec(handle, statement) else { throw connectionError() }
            defer { PQclear(started) }
            guard PQresultStatus(started) == PGRES_COPY_OUT else { throw error(from: started) }
            // Each row's column places, reused from row to row (millions of rows, no allocation each).
            var fields = [(start: Int, length: Int)](repeating: (0, 0), count: 16)
            var failure: Error?
            var headerSeen = false
            while true {
                var buffer: UnsafeMutablePointer<CChar>?
                let length = PQgetCopyData(handle, &buffer, 0)
                guard length > 0, let buffer else {
                    if length == -2 { failure = failure ?? connectionError() }
                    break
                }
                defer { PQfreemem(buffer) }
                // After a failure the rest is only drained, so the connection stays usable.
                guard failure == nil else { continue }
                do {
                    try buffer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { bytes in
                        var at = 0
                        let message = UnsafeBufferPointer(start: bytes, count: Int(length))
                        if !headerSeen {
                            at = try PQCopyRow.skipHeader(message)
                            headerSeen = true
                        }
                        while at < message.count {
                            guard let count = try PQCopyRow.parse(message, at: &at, into: &fields) else { break }  // the trailer
                            try fields.withUnsafeBufferPointer { try body(PQCopyRow(bytes: message, fields: $0, count: count)) }
                        }
                    }
                } catch {
                    failure = error
                }
            }
            // The command's own result: an error the server raised halfway comes here.
            while let result = PQgetResult(handle) {
                if PQresultStatus(result) != PGRES_COMMAND_OK, failure == nil { failure = error(from: result) }
                PQclear(result)
            }
            if let failure { throw failure }
        }
    }

    /// `sql` with each `$n` replaced by its parameter as an escaped literal (NULL for nil).
    func inlined(_ sql: String, _ parameters: [any PQEncodable]) throws -> String {
        guard let handle else { throw PQError(message: "connection is closed", isConnectionFailure: true) }
        let literals: [String] = try parameters.map { parameter in
            switch parameter.pqValue {
            case .null: return "NULL"
            case .binary: throw PQError(message: "copyRows takes text parameters only")
            case .text(let text):
                if text.utf8.contains(0) { throw PQError.textWithNUL }
                guard let escaped = PQescapeLiteral(handle, text, text.utf8.count) else { throw connectionError() }
                defer { PQfreemem(escaped) }
                return String(cString: escaped)
            }
        }
        var out = "", digits = ""
        var pending = false
        func flush() throws {
            guard pending else { return }
            guard let n = Int(digits), n >= 1, n <= literals.count else {
                throw PQError(message: "the query names $\(digits), but \(literals.count) parameters were given")
            }
            out += literals[n - 1]
            pending = false
            digits = ""
        }
        for character in sql {
            if pending, character.isASCII, character.isNumber { digits.append(character); continue }
            try flush()
            if character == "$" { pending = true } else { out.append(character) }
        }
        try flush()
        return out
    }
}

/// One row of a binary COPY, read in place: valid only inside the `copyRows` callback.
public struct PQCopyRow: PQColumns {
    let bytes: UnsafeBufferPointer<UInt8>
    /// Each column's first byte and length (-1: NULL).
    let fields: UnsafeBufferPointer<(start: Int, length: Int)>
    public let count: Int

    static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]

    /// Past the file header (signature, flags, extension) at the start of the first message.
    static func skipHeader(_ message: UnsafeBufferPointer<UInt8>) throws -> Int {
        guard message.count >= 19, Array(message[0..<11]) == signature else {
            throw PQError(message: "COPY did not start with the binary signature")
        }
        return 19 + Int(readInteger(message, 15, 4))
    }

    /// The row at `at`: its columns' places into `fields` (grown if need be), `at` moved past it.
    /// Returns the column count, nil at the trailer.
    static func parse(_ message: UnsafeBufferPointer<UInt8>, at: inout Int, into fields: inout [(start: Int, length: Int)]) throws -> Int? {
        guard at + 2 <= message.count else { throw PQError(message: "COPY row cut short") }
        let count = Int(readInteger(message, at, 2))
        at += 2
        if count == -1 { return nil }
        guard count >= 0 else { throw PQError(message: "COPY row with \(count) columns") }
        if fields.count < count { fields += Array(repeating: (0, 0), count: count - fields.count) }
        for column in 0..<count {
            guard at + 4 <= message.count else { throw PQError(message: "COPY row cut short") }
            let length = Int(readInteger(message, at, 4))
            at += 4
            fields[column] = (at, length)
            if length > 0 {
                guard at + length <= message.count else { throw PQError(message: "COPY field cut short") }
                at += length
            }
        }
        return count
    }

    /// A big-endian signed integer of 2, 4 or 8 bytes.
    @inline(__always)
    static func readInteger(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int, _ width: Int) -> Int64 {
        var value: UInt64 = 0
        for k in 0..<width { value = value << 8 | UInt64(bytes[at + k]) }
        // Sign-extend from the width read.
        let shift = UInt64(64 - 8 * width)
        return Int64(bitPattern: value << shift) >> Int64(shift)
    }

    public func isNull(_ column: Int) -> Bool { fields[column].length < 0 }

    /// smallint, integer or bigint.
    public func int64(_ column: Int) -> Int64 {
        let width = fields[column].length
        precondition(width == 2 || width == 4 || width == 8, "column \(column) is not an integer (\(width) bytes)")
        return Self.readInteger(bytes, fields[column].start, width)
    }

    /// real or double precision.
    public func double(_ column: Int) -> Double {
        let width = fields[column].length
        precondition(width == 4 || width == 8, "column \(column) is not a float (\(width) bytes)")
        let raw = UInt64(bitPattern: Self.readInteger(bytes, fields[column].start, width))
        return width == 8 ? Double(bitPattern: raw) : Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
    }

    public func bool(_ column: Int) -> Bool {
        precondition(fields[column].length == 1, "column \(column) is not a boolean")
        return bytes[fields[column].start] != 0
    }

    /// text (or anything whose binary form is its UTF-8 text: varchar, name).
    public func string(_ column: Int) -> String {
        let (start, length) = fields[column]
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<start + max(0, length)]), as: UTF8.self)
    }
}
