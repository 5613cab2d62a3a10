import CSV
import Foundation
import PQ
import StockpileCore

/// One bad row rejects the whole import; this says where and why.
public struct ImportError: Error, Sendable, CustomStringConvertible {
    public var file: String
    /// The spreadsheet row: the header is row 1, the first data row is row 2.
    public var row: Int
    public var column: String?
    public var reason: String
    public init(file: String, row: Int, column: String?, reason: String) {
        self.file = file
        self.row = row
        self.column = column
        self.reason = reason
    }
    public var description: String {
        "\(file) row \(row)\(column.map { ", column \($0)" } ?? ""): \(reason)"
    }
}

/// What an import did, per file.
public struct ImportSummary: Sendable, Codable, Equatable {
    public var files: [String: FileSummary] = [:]
    public struct FileSummary: Sendable, Codable, Equatable {
        public var rows = 0
        /// Master data rows inserted or changed; movements recorded; counts that changed on-hand.
        public var changed = 0
        /// Rows already in the database as they are: unchanged master data, replayed movements, counts that matched.
        public var unchanged = 0
        public init(rows: Int = 0, changed: Int = 0, unchanged: Int = 0) {
            self.rows = rows
            self.changed = changed
            self.unchanged = unchanged
        }
    }
}

/// Loads SPEC.md's CSV files (UTF-8, header row, Chinese text) in dependency order, in one
/// transaction. Upserts master data by code; movement ids make a history replay a no-op, and stock
/// counts get ids from the file's content. So importing the same folder twice changes nothing.
public struct CSVImporter: Sendable {
    /// Dependency order. History (movements) goes before counts (stock), which say what is on hand now.
    public static let fileOrder = ["regions", "facilities", "items", "item_barcodes", "demand", "contracts", "capacity", "movements", "stock"]
    public static let columns: [String: [String]] = [
        "regions": Region.csvColumns, "facilities": Facility.csvColumns, "items": Item.csvColumns, "item_barcodes": ItemBarcode.csvColumns,
        "demand": DemandPlanRow.csvColumns, "contracts": ContractRow.csvColumns, "capacity": CapacityRow.csvColumns,
        "movements": MovementDraft.csvColumns, "stock": StockCount.csvColumns,
    ]

    let database: StockpileDatabase
    let scope: AccessScope
    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    /// Imports whichever of the known files are in `directory`.
    public func importDirectory(_ directory: URL, recordedBy: String = "import") async throws -> ImportSummary {
        var contents: [String: String] = [:]
        for name in Self.fileOrder {
            let url = directory.appendingPathComponent("\(name).csv")
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let data = try Data(contentsOf: url)
            guard let text = String(data: data, encoding: .utf8) else {
                throw ImportError(file: "\(name).csv", row: 1, column: nil, reason: "not UTF-8 text (save the spreadsheet as CSV UTF-8)")
            }
            contents[name] = text
        }
        guard !contents.isEmpty else {
            throw ImportError(file: directory.path, row: 0, column: nil,
                              reason: "no CSV files found; expected any of \(Self.fileOrder.map { "\($0).csv" }.joined(separator: ", "))")
        }
        return try await importFiles(contents, recordedBy: recordedBy)
    }

    /// Imports files given by name (`regions`, `facilities`, …) and their CSV text.
    public func importFiles(_ contents: [String: String], recordedBy: String = "import") async throws -> ImportSummary {
        for name in contents.keys where Self.columns[name] == nil {
            throw ImportError(file: name, row: 0, column: nil,
                              reason: "unknown file; expected one of \(Self.fileOrder.joined(separator: ", "))")
        }
        // Parse and validate everything before touching the database.
        var regions: [(Int, Region)] = []
        var facilities: [(Int, Facility)] = []
        var items: [(Int, Item)] = []
        var movements: [(Int, MovementRequest)] = []
        var counts: [(Int, StockCount)] = []
        if let text = contents["regions"] { regions = try Self.parse("regions", text, Region.init(csv:)) }
        if let text = contents["facilities"] { facilities = try Self.parse("facilities", text, Facility.init(csv:)) }
        if let text = contents["items"] { items = try Self.parse("items", text, Item.init(csv:)) }
        var barcodes: [(Int, ItemBarcode)] = []
        if let text = contents["item_barcodes"] { barcodes = try Self.parse("item_barcodes", text, ItemBarcode.init(csv:)) }
        try Self.rejectDuplicates("item_barcodes", barcodes.map { ($0.0, $0.1.code) }, column: "code")
        let b = barcodes
        if let text = contents["movements"] { movements = try Self.parse("movements", text, MovementDraft.validated(csv:)) }
        if let text = contents["stock"] { counts = try Self.parse("stock", text, StockCount.init(csv:)) }
        var demand: [(Int, DemandPlanRow)] = []
        var contracts: [(Int, ContractRow)] = []
        var capacity: [(Int, CapacityRow)] = []
        if let text = contents["demand"] { demand = try Self.parse("demand", text, DemandPlanRow.init(csv:)) }
        if let text = contents["contracts"] { contracts = try Self.parse("contracts", text, ContractRow.init(csv:)) }
        if let text = contents["capacity"] { capacity = try Self.parse("capacity", text, CapacityRow.init(csv:)) }
        try Self.rejectDuplicates("demand", demand.map { ($0.0, "\($0.1.facility)|\($0.1.item)") }, column: "item_code")
        try Self.rejectDuplicates("contracts", contracts.map { ($0.0, $0.1.code) }, column: "code")
        try Self.rejectDuplicates("capacity", capacity.map { ($0.0, $0.1.code) }, column: "code")
        let (d, k, p) = (demand, contracts, capacity)
        try Self.rejectDuplicates("regions", regions.map { ($0.0, $0.1.code) }, column: "code")
        try Self.rejectDuplicates("facilities", facilities.map { ($0.0, $0.1.code) }, column: "code")
        try Self.rejectDuplicates("items", items.map { ($0.0, $0.1.code) }, column: "code")
        try Self.rejectDuplicates("items", items.compactMap { row in row.1.gtin.map { (row.0, $0) } }, column: "gtin")
        try Self.rejectDuplicates("movements", movements.map { ($0.0, $0.1.id.uuidString) }, column: "id")
        try Self.rejectDuplicates("stock", counts.map { ($0.0, "\($0.1.facility)|\($0.1.item)|\($0.1.lot)") }, column: "lot")

        let (r, f, i, m, c) = (regions, facilities, items, movements, counts)
        let present = Set(contents.keys)
        let stockText = contents["stock"]
        return try await database.transaction(scope, retryOnConnectionLoss: true) { connection in
            var summary = ImportSummary()
            if present.contains("regions") { summary.files["regions.csv"] = try Self.loadRegions(r, on: connection) }
            if present.contains("facilities") { summary.files["facilities.csv"] = try Self.loadFacilities(f, on: connection) }
            if present.contains("items") { summary.files["items.csv"] = try Self.loadItems(i, on: connection) }
            if present.contains("item_barcodes") { summary.files["item_barcodes.csv"] = try Self.loadItemBarcodes(b, on: connection) }
            if present.contains("demand") { summary.files["demand.csv"] = try Self.loadDemand(d, on: connection) }
            if present.contains("contracts") { summary.files["contracts.csv"] = try Self.loadContracts(k, on: connection) }
            if present.contains("capacity") { summary.files["capacity.csv"] = try Self.loadCapacity(p, on: connection) }
            if present.contains("movements") { summary.files["movements.csv"] = try Self.loadMovements(m, recordedBy: recordedBy, on: connection) }
            if let text = stockText { summary.files["stock.csv"] = try Self.loadCounts(c, text: text, recordedBy: recordedBy, on: connection) }
            let counts = summary.files.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.rows) rows, \($0.value.changed) changed" }
            try PostgresTokens.audit(connection, scope: self.scope, action: "import", target: summary.files.keys.sorted().joined(separator: ","),
                                     detail: counts.joined(separator: "; "))
            return summary
        }
    }

    // MARK: Parsing

    static func parse<T>(_ name: String, _ text: String, _ make: (CSVFields) throws(FieldError) -> T) throws -> [(Int, T)] {
        let file = "\(name).csv"
        // Spreadsheet programs write a byte-order mark at the start of UTF-8 CSV.
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        let reader: CSVReader
        do {
            reader = try CSVReader(string: body, hasHeaderRow: true, trimFields: false)
        } catch {
            throw ImportError(file: file, row: 1, column: nil, reason: "no header row")
        }
        let header = (reader.headerRow ?? []).map { $0.trimmingCharacters(in: .whitespaces) }
        for column in columns[name]! where !header.contains(column) {
            throw ImportError(file: file, row: 1, column: column,
                              reason: "missing column; the header must be \(columns[name]!.joined(separator: ","))")
        }
        var rows: [(Int, T)] = []
        var rowNumber = 1
        while let values = reader.next() {
            rowNumber += 1
            if values.count == 1 && values[0].trimmingCharacters(in: .whitespaces).isEmpty { continue } // blank line
            guard values.count == header.count else {
                throw ImportError(file: file, row: rowNumber, column: nil,
                                  reason: "has \(values.count) fields, the header has \(header.count)")
            }
            var fields: [String: String] = [:]
            for (column, value) in zip(header, values) { fields[column] = SpreadsheetCSV.reading(value) }
            do {
                rows.append((rowNumber, try make(CSVFields(fields))))
            } catch {
                throw ImportError(file: file, row: rowNumber, column: error.field, reason: error.reason)
            }
        }
        if let error = reader.error {
            throw ImportError(file: file, row: rowNumber + 1, column: nil, reason: "unreadable CSV: \(error)")
        }
        return rows
    }

    static func rejectDuplicates(_ name: String, _ keys: [(Int, String)], column: String) throws {
        var seen: [String: Int] = [:]
        for (row, key) in keys {
            if let first = seen[key] {
                throw ImportError(file: "\(name).csv", row: row, column: column, reason: "duplicate of row \(first)")
            }
            seen[key] = row
        }
    }

    // MARK: Loading

    /// The first staged row a check query returns becomes the import's error.
    static func failIfAny(_ connection: PQConnection, file: String, column: String, _ sql: String, reason: (String) -> String) throws {
        if let row = try connection.query(sql).first {
            throw ImportError(file: file, row: try row.decode("row_no"), column: column, reason: reason(try row.decode("value")))
        }
    }

    static func stage(_ connection: PQConnection, table: String, columns: String, rows: [[String?]]) throws {
        try connection.execute("CREATE TEMP TABLE \(table) (\(columns)) ON COMMIT DROP")
        try connection.copyIn("COPY \(table) FROM STDIN", rows: rows)
    }

    static func loadRegions(_ regions: [(Int, Region)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_regions", columns: "row_no int, code text, name text, parent_code text",
                  rows: regions.map { [String($0.0), $0.1.code, $0.1.name, $0.1.parentCode] })
        try failIfAny(c, file: "regions.csv", column: "parent_code", """
            SELECT s.row_no, s.parent_code AS value FROM stage_regions s
            WHERE s.parent_code IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM stage_regions p WHERE p.code = s.parent_code)
              AND NOT EXISTS (SELECT 1 FROM regions r WHERE r.code = s.parent_code)
            ORDER BY s.row_no LIMIT 1
            """) { "unknown parent region \($0)" }
        let inserted = try c.query("""
            INSERT INTO regions (code, name) SELECT code, name FROM stage_regions
            ON CONFLICT (code) DO UPDATE SET name = excluded.name, updated_at = now()
            WHERE regions.name IS DISTINCT FROM excluded.name
            """).affectedRows
        let reparented = try c.query("""
            UPDATE regions r SET parent_id = p.id, updated_at = now()
            FROM stage_regions s LEFT JOIN regions p ON p.code = s.parent_code
            WHERE r.code = s.code AND r.parent_id IS DISTINCT FROM p.id
            """).affectedRows
        // A region may not be its own ancestor.
        try failIfAny(c, file: "regions.csv", column: "parent_code", """
            WITH RECURSIVE up(start_id, id) AS (
                SELECT r.id, r.parent_id FROM regions r JOIN stage_regions s ON s.code = r.code
                UNION
                SELECT up.start_id, r.parent_id FROM up JOIN regions r ON r.id = up.id WHERE up.id <> up.start_id
            )
            SELECT s.row_no, s.parent_code AS value FROM up
            JOIN regions r ON r.id = up.start_id JOIN stage_regions s ON s.code = r.code
            WHERE up.id = up.start_id ORDER BY s.row_no LIMIT 1
            """) { "parent \($0) makes the region its own ancestor" }
        return .init(rows: regions.count, changed: max(inserted, reparented), unchanged: regions.count - max(inserted, reparented))
    }

    static func loadFacilities(_ facilities: [(Int, Facility)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_facilities",
                  columns: "row_no int, code text, name text, kind text, region_code text, beds int, latitude float8, longitude float8, designated bool",
                  rows: facilities.map { (row, f) in
                      [String(row), f.code, f.name, f.kind.rawValue, f.regionCode, String(f.beds),
                       f.latitude.map { String($0) }, f.longitude.map { String($0) }, f.designated ? "t" : "f"]
                  })
        try failIfAny(c, file: "facilities.csv", column: "region_code", """
            SELECT s.row_no, s.region_code AS value FROM stage_facilities s
            WHERE NOT EXISTS (SELECT 1 FROM regions r WHERE r.code = s.region_code) ORDER BY s.row_no LIMIT 1
            """) { "unknown region \($0)" }
        let changed = try c.query("""
            INSERT INTO facilities (code, name, kind, region_id, beds, latitude, longitude, designated)
            SELECT s.code, s.name, s.kind, r.id, s.beds, s.latitude, s.longitude, s.designated
            FROM stage_facilities s JOIN regions r ON r.code = s.region_code
            ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, region_id = excluded.region_id,
                beds = excluded.beds, latitude = excluded.latitude, longitude = excluded.longitude,
                designated = excluded.designated, updated_at = now()
            WHERE (facilities.name, facilities.kind, facilities.region_id, facilities.beds, facilities.latitude,
                   facilities.longitude, facilities.designated)
                IS DISTINCT FROM (excluded.name, excluded.kind, excluded.region_id, excluded.beds, excluded.latitude,
                   excluded.longitude, excluded.designated)
            """).affectedRows
        return .init(rows: facilities.count, changed: changed, unchanged: facilities.count - changed)
    }

    static func loadItems(_ items: [(Int, Item)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_items",
                  columns: "row_no int, code text, name text, category text, unit text, target_days int, shelf_life_days int, expires boolean, gtin text",
                  rows: items.map { (row, i) in
                      [String(row), i.code, i.name, i.category.rawValue, i.unit, i.targetDays.map { String($0) },
                       i.shelfLifeDays.map { String($0) }, i.expires.map { String($0) }, i.gtin]
                  })
        // A GTIN names one item: one already on another item is refused by row, not by a constraint's words.
        try failIfAny(c, file: "items.csv", column: "gtin", """
            SELECT s.row_no, s.gtin || ' (item ' || i.code || ')' AS value FROM stage_items s JOIN items i ON i.gtin = s.gtin AND i.code <> s.code
            ORDER BY s.row_no LIMIT 1
            """) { "this GTIN belongs to another item: \($0)" }
        try failIfAny(c, file: "items.csv", column: "gtin", """
            SELECT s.row_no, s.gtin || ' (item ' || i.code || ', item_barcodes.csv)' AS value FROM stage_items s
              JOIN item_barcodes b ON b.code = s.gtin JOIN items i ON i.id = b.item_id AND i.code <> s.code
            ORDER BY s.row_no LIMIT 1
            """) { "this GTIN is another item's barcode: \($0)" }
        let changed = try c.query("""
            INSERT INTO items (code, name, category, unit, target_days, shelf_life_days, expires, gtin)
            SELECT code, name, category, unit, target_days, shelf_life_days, expires, gtin FROM stage_items
            ON CONFLICT (code) DO UPDATE SET name = excluded.name, category = excluded.category, unit = excluded.unit,
                target_days = excluded.target_days, shelf_life_days = excluded.shelf_life_days, expires = excluded.expires,
                gtin = excluded.gtin, updated_at = now()
            WHERE (items.name, items.category, items.unit, items.target_days, items.shelf_life_days, items.expires, items.gtin)
                IS DISTINCT FROM (excluded.name, excluded.category, excluded.unit, excluded.target_days, excluded.shelf_life_days, excluded.expires, excluded.gtin)
            """).affectedRows
        return .init(rows: items.count, changed: changed, unchanged: items.count - changed)
    }

    static func loadItemBarcodes(_ rows: [(Int, ItemBarcode)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_item_barcodes", columns: "row_no int, item_code text, code text, kind text, units bigint, level text",
                  rows: rows.map { [String($0.0), $0.1.item, $0.1.code, $0.1.kind.rawValue, String($0.1.units), $0.1.level] })
        try failIfAny(c, file: "item_barcodes.csv", column: "item_code", """
            SELECT s.row_no, s.item_code AS value FROM stage_item_barcodes s
            WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.code = s.item_code) ORDER BY s.row_no LIMIT 1
            """) { "unknown item \($0)" }
        // A code names one item: not another item's, and not again the item's own GTIN (that is its base unit's).
        try failIfAny(c, file: "item_barcodes.csv", column: "code", """
            SELECT s.row_no, s.code || ' (item ' || i.code || ')' AS value FROM stage_item_barcodes s
              JOIN item_codes k ON k.code = s.code JOIN items i ON i.id = k.item_id
             WHERE i.code <> s.item_code OR i.gtin = s.code
            ORDER BY s.row_no LIMIT 1
            """) { "this code already names an item: \($0)" }
        let changed = try c.query("""
            INSERT INTO item_barcodes (code, item_id, kind, units, level)
            SELECT s.code, i.id, s.kind, s.units, coalesce(s.level, '') FROM stage_item_barcodes s JOIN items i ON i.code = s.item_code
            ON CONFLICT (code) DO UPDATE SET units = excluded.units, level = excluded.level
            WHERE (item_barcodes.units, item_barcodes.level) IS DISTINCT FROM (excluded.units, excluded.level)
            """).affectedRows
        return .init(rows: rows.count, changed: changed, unchanged: rows.count - changed)
    }

    /// Unknown facility or item codes in a staged file, reported by row.
    static func checkReferences(_ c: PQConnection, table: String, file: String) throws {
        try failIfAny(c, file: file, column: "facility_code", """
            SELECT s.row_no, s.facility_code AS value FROM \(table) s
            WHERE NOT EXISTS (SELECT 1 FROM facilities f WHERE f.code = s.facility_code) ORDER BY s.row_no LIMIT 1
            """) { "unknown facility \($0)" }
        try failIfAny(c, file: file, column: "item_code", """
            SELECT s.row_no, s.item_code AS value FROM \(table) s
            WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.code = s.item_code) ORDER BY s.row_no LIMIT 1
            """) { "unknown item \($0)" }
    }

    static func loadDemand(_ rows: [(Int, DemandPlanRow)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_demand", columns: "row_no int, facility_code text, item_code text, full_load_daily numeric",
                  rows: rows.map { [String($0.0), $0.1.facility, $0.1.item, String($0.1.fullLoadDaily)] })
        try checkReferences(c, table: "stage_demand", file: "demand.csv")
        let changed = try c.query("""
            INSERT INTO demand_plans (facility_id, item_id, full_load_daily)
            SELECT f.id, i.id, s.full_load_daily FROM stage_demand s
            JOIN facilities f ON f.code = s.facility_code JOIN items i ON i.code = s.item_code
            ON CONFLICT (facility_id, item_id) DO UPDATE SET full_load_daily = excluded.full_load_daily, updated_at = now()
            WHERE demand_plans.full_load_daily IS DISTINCT FROM excluded.full_load_daily
            """).affectedRows
        return .init(rows: rows.count, changed: changed, unchanged: rows.count - changed)
    }

    static func loadContracts(_ rows: [(Int, ContractRow)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_contracts", columns: """
            row_no int, code text, facility_code text, supplier text, item_code text, quantity bigint, called_off bigint,
            lead_time_days int, valid_from date, valid_to date, local bool
            """, rows: rows.map { (n, r) in
                [String(n), r.code, r.facility, r.supplier, r.item, String(r.quantity), String(r.calledOff), String(r.leadTimeDays),
                 r.validFrom.description, r.validTo.description, r.local ? "t" : "f"]
            })
        try checkReferences(c, table: "stage_contracts", file: "contracts.csv")
        // Once Stockpile has recorded call-offs against a contract, they alone move its called-off quantity.
        if let row = try c.query("""
            SELECT s.row_no, s.code, s.called_off AS file, k.called_off AS stored FROM stage_contracts s JOIN contracts k ON k.code = s.code
            WHERE s.called_off <> k.called_off AND EXISTS (SELECT 1 FROM contract_calloffs o WHERE o.contract_id = k.id)
            ORDER BY s.row_no LIMIT 1
            """).rows.first {
            throw ImportError(file: "contracts.csv", row: try row.decode("row_no"), column: "called_off",
                              reason: "contract \(try row.decode("code", as: String.self)) has call-offs recorded in Stockpile (\(try row.decode("stored", as: Int64.self)) called off); "
                                  + "the file says \(try row.decode("file", as: Int64.self)). Record call-offs through POST /api/v1/contracts/{code}/calloffs")
        }
        let changed = try c.query("""
            INSERT INTO contracts (code, facility_id, item_id, supplier, committed, called_off, lead_time_days, valid_from, valid_to, local)
            SELECT s.code, f.id, i.id, s.supplier, s.quantity, s.called_off, s.lead_time_days, s.valid_from, s.valid_to, s.local
            FROM stage_contracts s JOIN facilities f ON f.code = s.facility_code JOIN items i ON i.code = s.item_code
            ON CONFLICT (code) DO UPDATE SET facility_id = excluded.facility_id, item_id = excluded.item_id, supplier = excluded.supplier,
                committed = excluded.committed, called_off = excluded.called_off, lead_time_days = excluded.lead_time_days,
                valid_from = excluded.valid_from, valid_to = excluded.valid_to, local = excluded.local, updated_at = now()
            WHERE (contracts.facility_id, contracts.item_id, contracts.supplier, contracts.committed, contracts.called_off,
                   contracts.lead_time_days, contracts.valid_from, contracts.valid_to, contracts.local)
                IS DISTINCT FROM (excluded.facility_id, excluded.item_id, excluded.supplier, excluded.committed, excluded.called_off,
                   excluded.lead_time_days, excluded.valid_from, excluded.valid_to, excluded.local)
            """).affectedRows
        return .init(rows: rows.count, changed: changed, unchanged: rows.count - changed)
    }

    static func loadCapacity(_ rows: [(Int, CapacityRow)], on c: PQConnection) throws -> ImportSummary.FileSummary {
        try stage(c, table: "stage_capacity", columns: """
            row_no int, code text, facility_code text, manufacturer text, item_code text, daily_capacity bigint, ramp_up_days int,
            valid_from date, valid_to date, certified bool, local bool
            """, rows: rows.map { (n, r) in
                [String(n), r.code, r.facility, r.manufacturer, r.item, String(r.dailyCapacity), String(r.rampUpDays),
                 r.validFrom.description, r.validTo.description, r.certified ? "t" : "f", r.local ? "t" : "f"]
            })
        try checkReferences(c, table: "stage_capacity", file: "capacity.csv")
        let changed = try c.query("""
            INSERT INTO capacity_pledges (code, facility_id, item_id, manufacturer, daily_capacity, ramp_up_days, valid_from, valid_to, certified, local)
            SELECT s.code, f.id, i.id, s.manufacturer, s.daily_capacity, s.ramp_up_days, s.valid_from, s.valid_to, s.certified, s.local
            FROM stage_capacity s JOIN facilities f ON f.code = s.facility_code JOIN items i ON i.code = s.item_code
            ON CONFLICT (code) DO UPDATE SET facility_id = excluded.facility_id, item_id = excluded.item_id, manufacturer = excluded.manufacturer,
                daily_capacity = excluded.daily_capacity, ramp_up_days = excluded.ramp_up_days, valid_from = excluded.valid_from,
                valid_to = excluded.valid_to, certified = excluded.certified, local = excluded.local, updated_at = now()
            WHERE (capacity_pledges.facility_id, capacity_pledges.item_id, capacity_pledges.manufacturer, capacity_pledges.daily_capacity,
                   capacity_pledges.ramp_up_days, capacity_pledges.valid_from, capacity_pledges.valid_to, capacity_pledges.certified,
                   capacity_pledges.local)
                IS DISTINCT FROM (excluded.facility_id, excluded.item_id, excluded.manufacturer, excluded.daily_capacity,
                   excluded.ramp_up_days, excluded.valid_from, excluded.valid_to, excluded.certified, excluded.local)
            """).affectedRows
        return .init(rows: rows.count, changed: changed, unchanged: rows.count - changed)
    }

    /// CSV column names for the ledger's field names.
    static let csvColumn = ["facility": "facility_code", "item": "item_code"]

    static func loadMovements(_ movements: [(Int, MovementRequest)], recordedBy: String, on c: PQConnection) throws -> ImportSummary.FileSummary {
        // History is applied in the order it happened, so balances never dip below zero on the way.
        let ordered = movements.sorted { a, b in
            let (x, y) = (a.1.occurredAt ?? .distantFuture, b.1.occurredAt ?? .distantFuture)
            return x != y ? x < y : a.0 < b.0
        }
        // Runs of recordable movements go through the batch ledger; a transfer (an exported history's
        // dispatch or receipt, without its order) through record_history_transfer, in its place.
        var replays = 0
        var run: [(Int, MovementRequest)] = []
        func flush() throws {
            replays += try record(run, file: "movements.csv", recordedBy: recordedBy, on: c).filter(\.replay).count
            run = []
        }
        for movement in ordered {
            guard movement.1.kind == .transferOut || movement.1.kind == .transferIn else {
                run.append(movement)
                continue
            }
            try flush()
            do {
                if try PostgresLedger.recordHistoryTransfer(movement.1, recordedBy: recordedBy, on: c) { replays += 1 }
            } catch let error as PQError where error.sqlState?.hasPrefix("SP") == true || error.sqlState == "42501" {
                throw ImportError(file: "movements.csv", row: movement.0, column: error.column.map { csvColumn[$0] ?? $0 }, reason: error.message)
            }
        }
        try flush()
        return .init(rows: movements.count, changed: movements.count - replays, unchanged: replays)
    }

    /// The most lines one record_movements call of an import takes. Its per-line work grows with the
    /// batch's length: one township's 70,609 movements in one call took 62 s (see the closing note of
    /// issue 19). In order, in one transaction, pieces record what one batch would.
    public static let historyPiece = 2000

    /// Movements of a file, each with its row, through the batch ledger in pieces; a refused one is
    /// that row's error, with the file's column names.
    static func record(_ rows: [(Int, MovementRequest)], file: String, recordedBy: String, on c: PQConnection) throws -> [MovementOutcome] {
        var recorded: [MovementOutcome] = []
        for start in stride(from: 0, to: rows.count, by: historyPiece) {
            let piece = rows[start..<min(rows.count, start + historyPiece)]
            do {
                recorded += try PostgresLedger.recordOutcomes(batch: piece.map(\.1), recordedBy: recordedBy, on: c)
            } catch let error as BatchError {
                throw ImportError(file: file, row: piece[start + error.index].0, column: error.underlying.column.map { csvColumn[$0] ?? $0 },
                                  reason: error.underlying.message)
            }
        }
        return recorded
    }

    /// Counts are recorded as `count` movements whose ids derive from the file's content and the
    /// row, so importing the same stock.csv again — or retrying an import whose connection died
    /// after it committed — replays them instead of re-applying figures that stock has since moved on from.
    static func loadCounts(_ counts: [(Int, StockCount)], text: String, recordedBy: String, on c: PQConnection) throws -> ImportSummary.FileSummary {
        guard !counts.isEmpty else { return .init() }
        let ids = try c.query("SELECT md5(md5($1) || ':' || r)::uuid AS id FROM unnest($2::int[]) WITH ORDINALITY AS u(r, o) ORDER BY o",
                              [text, counts.map(\.0)]).rows.map { try $0.decode("id", as: UUID.self) }
        let movements = zip(ids, counts).map { id, row in
            MovementRequest(id: id, facility: row.1.facility, item: row.1.item, lot: row.1.lot, expiry: row.1.expiry,
                            kind: .count, quantity: row.1.quantity, reason: "stock.csv", occurredAt: nil)
        }
        // A count that found on-hand as it said changed nothing, though it is recorded (its id makes a
        // second import of a file that stock has since moved on from a replay).
        let changed = try record(Array(zip(counts.map(\.0), movements)), file: "stock.csv", recordedBy: recordedBy, on: c)
            .filter { !$0.replay && $0.quantity != 0 }.count
        return .init(rows: counts.count, changed: changed, unchanged: counts.count - changed)
    }
}
