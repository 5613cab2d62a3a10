import Foundation
import PQ
import StockpileCore

/// SPEC.md's CSV files written back out (issue 19), with the columns CSVImporter reads, rows in code
/// order so two exports diff cleanly. Each file is read through a cursor, a few thousand rows at a
/// time, so a city's export never holds a whole file in memory.
///
/// Importing an export into an empty database gives the same cover: movements.csv is the ledger in
/// the order the importer applies it (time it happened; at one instant what brings stock in first;
/// then id), with each count's figure the on-hand it leaves in that order, so every movement changes
/// on-hand by exactly what it did here.
public enum CSVExporter {
    /// Import order (CSVImporter.fileOrder), movements last: the one file that is optional.
    public static let files = ["regions", "facilities", "items", "item_barcodes", "demand", "contracts", "capacity", "stock", "movements"]
    /// What a warehouse token may export: its own facilities' stock and ledger.
    public static let warehouseFiles: Set<String> = ["stock", "movements"]

    public static let headers: [String: [String]] = [
        "regions": Region.csvColumns, "facilities": Facility.csvColumns,
        // The two optional columns CSVImporter also reads, so an item's expiry rule and GTIN come back.
        "items": Item.csvColumns + ["expires", "gtin"],
        "item_barcodes": ItemBarcode.csvColumns + ["level"],
        "demand": DemandPlanRow.csvColumns, "contracts": ContractRow.csvColumns, "capacity": CapacityRow.csvColumns,
        "stock": StockCount.csvColumns, "movements": MovementDraft.csvColumns,
    ]

    public struct Options: Sendable {
        /// A region's subtree (its facilities, and the regions down to them and up to the top); nil: everything.
        public var region: String?
        /// movements.csv from this date on (in `timeZone`); nil: the whole history.
        public var since: LocalDate?
        /// The zone occurred_at is written in (the service's).
        public var timeZone: String
        public init(region: String? = nil, since: LocalDate? = nil, timeZone: String = "Asia/Shanghai") {
            self.region = region; self.since = since; self.timeZone = timeZone
        }
    }

    /// Puts the export's time zone on the transaction it runs in (dates of occurred_at and --since).
    public static func begin(on connection: PQConnection, _ options: Options) throws {
        try connection.query("SELECT set_config('TimeZone', $1, true)", [options.timeZone])
    }

    /// Whether the region exists (an export of an unknown one is refused, not written empty).
    public static func regionExists(_ code: String, on connection: PQConnection) throws -> Bool {
        try connection.query("SELECT EXISTS (SELECT 1 FROM regions WHERE code = $1) AS e", [code]).first!.decode("e")
    }

    /// The region subtree ($1, or all) and its facilities the scope may see, for every file's query.
    static let chosen = """
        WITH RECURSIVE down AS (
            SELECT id FROM regions WHERE $1::text IS NULL OR code = $1
            UNION SELECT r.id FROM regions r JOIN down d ON r.parent_id = d.id
        ), chosen AS (
            SELECT f.id, f.code FROM facilities f WHERE f.region_id IN (SELECT id FROM down) AND stockpile_in_scope(f.id)
        )
        """

    /// Each file's rows, every column as text, in code order, and its parameters: the region ($1) for
    /// every file but the master data every district shares (items, their barcodes), and for
    /// movements the first day ($2).
    static func parameters(_ file: String, _ options: Options) -> [any PQEncodable] {
        switch file {
        case "items", "item_barcodes": return []
        case "movements": return [options.region, options.since?.description]
        default: return [options.region]
        }
    }

    static func query(_ file: String) -> String {
        switch file {
        case "regions":
            // The subtree, and the regions above it: the file imports on its own, and into the city's tree unchanged.
            return """
                WITH RECURSIVE down AS (
                    SELECT id FROM regions WHERE $1::text IS NULL OR code = $1
                    UNION SELECT r.id FROM regions r JOIN down d ON r.parent_id = d.id
                ), up AS (
                    SELECT parent_id AS id FROM regions WHERE code = $1 AND parent_id IS NOT NULL
                    UNION SELECT r.parent_id FROM regions r JOIN up u ON r.id = u.id WHERE r.parent_id IS NOT NULL
                )
                SELECT r.code, r.name, p.code FROM regions r LEFT JOIN regions p ON p.id = r.parent_id
                WHERE r.id IN (SELECT id FROM down UNION SELECT id FROM up) ORDER BY r.code
                """
        case "facilities":
            return chosen + """
                SELECT f.code, f.name, f.kind, r.code, f.beds::text, f.latitude::text, f.longitude::text, f.designated::text
                FROM chosen c JOIN facilities f ON f.id = c.id JOIN regions r ON r.id = f.region_id ORDER BY f.code
                """
        case "items":
            return """
                SELECT code, name, category, unit, target_days::text, shelf_life_days::text, expires::text, gtin FROM items ORDER BY code
                """
        case "item_barcodes":
            return """
                SELECT i.code, b.code, b.units::text, b.level FROM item_barcodes b JOIN items i ON i.id = b.item_id ORDER BY i.code, b.code
                """
        case "demand":
            // As a double: what the importer reads back, so a second export is the same bytes (12.50 is 12.5).
            return chosen + """
                SELECT c.code, i.code, d.full_load_daily::float8::text FROM demand_plans d JOIN chosen c ON c.id = d.facility_id
                JOIN items i ON i.id = d.item_id ORDER BY c.code, i.code
                """
        case "contracts":
            return chosen + """
                SELECT k.code, c.code, k.supplier, i.code, k.committed::text, k.called_off::text, k.lead_time_days::text,
                       k.valid_from::text, k.valid_to::text, k.local::text
                FROM contracts k JOIN chosen c ON c.id = k.facility_id JOIN items i ON i.id = k.item_id ORDER BY k.code
                """
        case "capacity":
            return chosen + """
                SELECT p.code, c.code, p.manufacturer, i.code, p.daily_capacity::text, p.ramp_up_days::text,
                       p.valid_from::text, p.valid_to::text, p.certified::text, p.local::text
                FROM capacity_pledges p JOIN chosen c ON c.id = p.facility_id JOIN items i ON i.id = p.item_id ORDER BY p.code
                """
        case "stock":
            // On hand now, as counts. A lot with nothing on hand is left out: a count of 0 brings no lot in (sql/0017).
            return chosen + """
                SELECT c.code, i.code, l.lot_number, l.expiry::text, b.quantity::text
                FROM balances b JOIN chosen c ON c.id = b.facility_id JOIN items i ON i.id = b.item_id JOIN lots l ON l.id = b.lot_id
                WHERE b.quantity > 0 ORDER BY c.code, i.code, l.lot_number
                """
        default:
            // The ledger in the importer's order. A count's figure is the on-hand it leaves in this order
            // (the running sum of the position's changes), which is what it counted unless a movement
            // that happened before it was recorded after it. Counts a stock.csv import recorded that
            // changed nothing are left out: stock.csv carries their figure, and importing it records them again.
            return chosen + """
                , ledger AS (
                    SELECT m.id, m.facility_id, m.item_id, m.lot_id, m.kind, m.quantity, m.reason, m.occurred_at,
                           sum(m.quantity) OVER (PARTITION BY m.facility_id, m.lot_id ORDER BY m.occurred_at, m.quantity < 0, m.id
                                                 ROWS UNBOUNDED PRECEDING) AS on_hand
                    FROM movements m JOIN chosen c ON c.id = m.facility_id
                    WHERE NOT (m.kind = 'count' AND m.quantity = 0 AND m.reason = 'stock.csv')
                )
                SELECT m.id::text, c.code, i.code, l.lot_number, l.expiry::text, m.kind,
                       (CASE WHEN m.kind = 'count' THEN m.on_hand ELSE abs(m.quantity) END)::text,
                       to_char(m.occurred_at, 'YYYY-MM-DD"T"HH24:MI:SS')
                           || CASE WHEN extract(microseconds FROM m.occurred_at)::bigint % 1000000 <> 0 THEN to_char(m.occurred_at, '.US') ELSE '' END
                           || to_char(m.occurred_at, 'TZH:TZM'),
                       m.reason
                FROM ledger m JOIN chosen c ON c.id = m.facility_id JOIN items i ON i.id = m.item_id JOIN lots l ON l.id = m.lot_id
                WHERE $2::date IS NULL OR m.occurred_at >= $2::date::timestamptz
                ORDER BY m.occurred_at, m.quantity < 0, m.id
                """
        }
    }

    /// Rows fetched from the cursor at a time.
    public static let fetchRows = 5000

    /// Writes one file (byte-order mark, header, rows) through `sink`, a few thousand rows at a
    /// time, inside the caller's transaction (after `begin`). `progress` hears the rows written so
    /// far after each batch. Returns the rows written.
    @discardableResult
    public static func write(_ file: String, _ options: Options, on connection: PQConnection,
                             progress: (Int) -> Void = { _ in }, to sink: ([UInt8]) throws -> Void) throws -> Int {
        guard let header = headers[file] else { throw PQError(message: "unknown export file \(file)") }
        try connection.query("DECLARE export_rows NO SCROLL CURSOR FOR \(query(file))", parameters(file, options))
        defer { _ = try? connection.execute("CLOSE export_rows") }
        // The header goes out with the first rows: a caller that waits for the first chunk before it
        // answers (the API) hears of a query that fails.
        var text = SpreadsheetCSV.byteOrderMark + SpreadsheetCSV.line(header)
        var rows = 0
        // Before the first rows: a city's ledger takes PostgreSQL a minute or two to put in order.
        progress(0)
        while true {
            var fetched = 0
            try connection.scan("FETCH \(fetchRows) FROM export_rows") { row in
                var cells: [String] = []
                cells.reserveCapacity(header.count)
                for column in 0..<header.count { cells.append(row.stringOrNil(column) ?? "") }
                text += SpreadsheetCSV.line(cells)
                fetched += 1
            }
            if !text.isEmpty { try sink(Array(text.utf8)) }
            text = ""
            rows += fetched
            progress(rows)
            if fetched < fetchRows { return rows }
        }
    }

    /// Stock on its way between facilities of the scope: in no file (orders are not exported), so
    /// an import of these files has it neither at the donor nor at the receiver.
    public static func inTransit(_ options: Options, on connection: PQConnection) throws -> (lines: Int, units: Int64) {
        let row = try connection.query(chosen + """
            SELECT count(*) AS lines, coalesce(sum(t.quantity), 0)::bigint AS units FROM in_transit t
            WHERE t.quantity > 0 AND (t.to_facility_id IN (SELECT id FROM chosen) OR t.from_facility_id IN (SELECT id FROM chosen))
            """, [options.region]).first!
        return (try row.decode("lines"), try row.decode("units"))
    }

    /// What an export to a folder wrote.
    public struct Summary: Sendable {
        public var files: [(name: String, rows: Int, bytes: Int)] = []
        public var inTransit: (lines: Int, units: Int64) = (0, 0)
        public var rows: Int { files.reduce(0) { $0 + $1.rows } }
        public var bytes: Int { files.reduce(0) { $0 + $1.bytes } }
    }

    /// Writes the files into `folder`, all from one consistent reading of the database (a repeatable
    /// read transaction). Each goes to NAME.csv.partial and is renamed when whole, so an export that
    /// dies leaves the previous file, never half a file under the real name. `progress` hears the file
    /// and its rows and bytes so far.
    public static func exportDirectory(_ database: StockpileDatabase, scope: AccessScope, to folder: URL, _ options: Options,
                                       movements: Bool, progress: @escaping @Sendable (String, Int, Int) -> Void = { _, _, _ in }) async throws -> Summary {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let files = Self.files.filter { $0 != "movements" || movements }
        return try await database.transaction(scope, isolation: .repeatableRead) { c in
            try begin(on: c, options)
            if let region = options.region, try !regionExists(region, on: c) {
                throw ExportError(reason: "no region \(region)")
            }
            var summary = Summary()
            for file in files {
                let target = folder.appendingPathComponent("\(file).csv")
                let partial = folder.appendingPathComponent("\(file).csv.partial")
                guard FileManager.default.createFile(atPath: partial.path, contents: nil) else {
                    throw ExportError(reason: "cannot write \(partial.path)")
                }
                let handle = try FileHandle(forWritingTo: partial)
                var bytes = 0
                let rows: Int
                do {
                    rows = try write(file, options, on: c, progress: { progress("\(file).csv", $0, bytes) }) { chunk in
                        try handle.write(contentsOf: chunk)
                        bytes += chunk.count
                    }
                    try handle.close()
                } catch {
                    try? handle.close()
                    try? FileManager.default.removeItem(at: partial)
                    throw error
                }
                _ = try? FileManager.default.removeItem(at: target)
                try FileManager.default.moveItem(at: partial, to: target)
                summary.files.append(("\(file).csv", rows, bytes))
            }
            summary.inTransit = try inTransit(options, on: c)
            return summary
        }
    }
}

/// An export that cannot be written (an unknown region, a folder it cannot write to).
public struct ExportError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
