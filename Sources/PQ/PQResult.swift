import CLibPQ
import Foundation
/// The rows of a query, copied out of the PGresult so no libpq memory outlives the call.
public struct PQResult: Sendable {
    public let columns: [String]
    public let rows: [PQRow]
    /// PQcmdTuples: rows inserted, updated, deleted or copied.
    public let affectedRows: Int

    public var first: PQRow? { rows.first }
}

public struct PQRow: Sendable {
    let index: PQColumnIndex
    public let values: [String?]

    public func raw(_ column: String) throws -> String? {
        guard let position = index.positions[column] else {
            throw PQError.client("no column \(column) in result (have \(index.names.joined(separator: ", ")))")
        }
        return values[position]
    }

    /// Typed read of a column: `try row.decode("quantity", as: Int64.self)`.
    public func decode<T: PQDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        do {
            return try T.decode(pqText: try raw(column))
        } catch let error as PQError {
            throw PQError.client("column \(column): \(error.message)")
        }
    }
}

final class PQColumnIndex: Sendable {
    let names: [String]
    let positions: [String: Int]
    init(names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
        self.positions = positions
    }
}

/// A row read in place by column position: `PQRowView` (text, from `scan`) and `PQCopyRow`
/// (binary, from `copyRows`), so a reader's code is the same for either.
public protocol PQColumns {
    func isNull(_ column: Int) -> Bool
    func string(_ column: Int) -> String
    func int64(_ column: Int) -> Int64
    func double(_ column: Int) -> Double
    func bool(_ column: Int) -> Bool
}

extension PQColumns {
    public func int64OrNil(_ column: Int) -> Int64? { isNull(column) ? nil : int64(column) }
    public func stringOrNil(_ column: Int) -> String? { isNull(column) ? nil : string(column) }
    public func doubleOrNil(_ column: Int) -> Double? { isNull(column) ? nil : double(column) }
}

/// One row of a result in libpq's memory, read by column position (see `PQConnection.scan`).
/// Valid only inside the scan's closure.
public struct PQRowView: PQColumns {
    let result: OpaquePointer
    let row: Int32

    public func isNull(_ column: Int) -> Bool { PQgetisnull(result, row, Int32(column)) == 1 }
    public func string(_ column: Int) -> String { String(cString: PQgetvalue(result, row, Int32(column))) }
    public func int64(_ column: Int) -> Int64 { strtoll(PQgetvalue(result, row, Int32(column)), nil, 10) }
    public func double(_ column: Int) -> Double { strtod(PQgetvalue(result, row, Int32(column)), nil) }
    public func bool(_ column: Int) -> Bool { PQgetvalue(result, row, Int32(column)).pointee == UInt8(ascii: "t") }
}
