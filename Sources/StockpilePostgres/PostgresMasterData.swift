import Foundation
import PQ
import StockpileCore

/// Reads of regions, facilities and items.
public struct PostgresMasterData: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    public func regions() async throws -> [Region] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT r.code, r.name, p.code AS parent_code FROM regions r LEFT JOIN regions p ON p.id = r.parent_id ORDER BY r.code
                """).rows.map { row in
                Region(code: try row.decode("code"), name: try row.decode("name"), parentCode: try row.decode("parent_code"))
            }
        }
    }

    /// Facilities, optionally only those in a region's subtree.
    public func facilities(region: String? = nil) async throws -> [Facility] {
        try await database.withConnection(scope) { c in
            try c.query("""
                WITH RECURSIVE scope AS (
                    SELECT id FROM regions WHERE $1::text IS NULL OR code = $1
                    UNION SELECT r.id FROM regions r JOIN scope s ON r.parent_id = s.id
                )
                SELECT f.code, f.name, f.kind, r.code AS region_code, f.beds, f.latitude, f.longitude, f.designated
                FROM facilities f JOIN regions r ON r.id = f.region_id
                WHERE f.region_id IN (SELECT id FROM scope) AND stockpile_in_scope(f.id)
                ORDER BY f.code
                """, [region]).rows.map { row in
                Facility(code: try row.decode("code"), name: try row.decode("name"),
                         kind: FacilityKind(rawValue: try row.decode("kind"))!, regionCode: try row.decode("region_code"),
                         beds: try row.decode("beds"), latitude: try row.decode("latitude"), longitude: try row.decode("longitude"),
                         designated: try row.decode("designated"))
            }
        }
    }

    /// The names of the facilities with these codes (those the scope may see), by code.
    public func facilityNames(_ codes: [String]) async throws -> [String: String] {
        try await database.withConnection(scope) { c in
            var names: [String: String] = [:]
            for row in try c.query("SELECT f.code, f.name FROM facilities f WHERE f.code = ANY ($1::text[]) AND stockpile_in_scope(f.id)",
                                   [codes]).rows {
                names[try row.decode("code")] = try row.decode("name", as: String.self)
            }
            return names
        }
    }

    public func items() async throws -> [Item] {
        try await database.withConnection(scope) { c in
            try c.query("SELECT code, name, category, unit, target_days, shelf_life_days, expires, gtin FROM items ORDER BY code").rows.map(Self.item)
        }
    }

    /// The item whose packaging carries this GTIN-14, if any.
    /// The item a scanned code names (its own GTIN, a box's or carton's, an MA device identifier, a
    /// drug code), with the base units under that code and its packaging level.
    public func item(code: String) async throws -> (item: Item, units: Int64, level: String)? {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT i.code, i.name, i.category, i.unit, i.target_days, i.shelf_life_days, i.expires, i.gtin, k.units, k.level
                  FROM item_codes k JOIN items i ON i.id = k.item_id WHERE k.code = $1
                """, [code]).rows.first.map { (try Self.item($0), try $0.decode("units"), try $0.decode("level")) }
        }
    }

    /// Every code that names an item (GET /api/v1/barcodes; the entry page reads scans offline with it).
    public func barcodes() async throws -> [ItemBarcode] {
        try await database.withConnection(scope) { c in
            try c.query("SELECT k.code, i.code AS item, k.kind, k.units, k.level FROM item_codes k JOIN items i ON i.id = k.item_id ORDER BY i.code, k.units, k.code")
                .rows.map { row in
                    ItemBarcode(item: try row.decode("item"), code: try row.decode("code"),
                                kind: ItemBarcode.Kind(rawValue: try row.decode("kind")) ?? .gtin, units: try row.decode("units"), level: try row.decode("level"))
                }
        }
    }

    static func item(_ row: PQRow) throws -> Item {
        Item(code: try row.decode("code"), name: try row.decode("name"),
             category: ItemCategory(rawValue: try row.decode("category"))!, unit: try row.decode("unit"),
             targetDays: try row.decode("target_days"), shelfLifeDays: try row.decode("shelf_life_days"), expires: try row.decode("expires"),
             gtin: try row.decode("gtin"))
    }
}
