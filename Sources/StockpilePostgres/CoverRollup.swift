import Foundation
import PQ
import StockpileCore

/// A roll-up row: quantities and demand summed over a region's subtree or over an item's
/// positions (SPEC.md: roll-ups sum, they never average days), and how many positions are in each band.
public struct CoverRollupRow: Sendable, Codable, Equatable {
    public var code: String
    public var name: String
    public var facilities: Int
    public var positions: Int
    public var dailyDemand: Double
    public var physicalQty: Int64
    public var expiringQty: Double
    public var contractQty: Int64
    public var capacityQty: Int64
    public var shortfallQty: Int64
    public var contractShortfallQty: Int64
    public var bands: [String: Int]

    enum CodingKeys: String, CodingKey {
        case code, name, facilities, positions, bands
        case dailyDemand = "daily_demand", physicalQty = "physical_qty", expiringQty = "expiring_qty", contractQty = "contract_qty",
             capacityQty = "capacity_qty", shortfallQty = "shortfall_qty", contractShortfallQty = "contract_shortfall_qty"
    }

    /// The sum of rows (the roll-up's total line).
    public static func total(_ rows: [CoverRollupRow], code: String, name: String) -> CoverRollupRow {
        var total = CoverRollupRow(code: code, name: name, facilities: 0, positions: 0, dailyDemand: 0, physicalQty: 0, expiringQty: 0,
                                   contractQty: 0, capacityQty: 0, shortfallQty: 0, contractShortfallQty: 0,
                                   bands: Dictionary(uniqueKeysWithValues: CoverBand.allCases.map { ($0.rawValue, 0) }))
        // Saturating: sums over a city must not stop the service, whatever was stored (Ranges.swift).
        for row in rows {
            total.facilities += row.facilities; total.positions += row.positions  // counts of rows: no overflow
            total.dailyDemand += row.dailyDemand; total.expiringQty += row.expiringQty
            total.physicalQty = total.physicalQty.saturatingAdd(row.physicalQty); total.contractQty = total.contractQty.saturatingAdd(row.contractQty)
            total.capacityQty = total.capacityQty.saturatingAdd(row.capacityQty); total.shortfallQty = total.shortfallQty.saturatingAdd(row.shortfallQty)
            total.contractShortfallQty = total.contractShortfallQty.saturatingAdd(row.contractShortfallQty)
            for (band, count) in row.bands { total.bands[band, default: 0] += count }
        }
        return total
    }
}

public enum CoverGrouping: String, Sendable, CaseIterable {
    /// One row per child region of the region asked for (its whole subtree summed), plus one for
    /// facilities attached to that region itself.
    case region
    case item
}

public struct CoverRollup: Sendable {
    public var rows: [CoverRollupRow]
    public var source: String
    /// Which server answered (the read replica, issue 15).
    public var origin: ReadOrigin = .primary
}

enum CoverRollupSQL {
    static let bandColumns = ["stockout", "under_3d", "from_3_to_7d", "from_7_to_14d", "from_14d_to_target", "at_target"]

    /// Aggregates over positions (`cp`). Grouped by item, each facility has one position per group,
    /// so the facilities are counted without the sort a DISTINCT needs.
    static func perPosition(_ grouping: CoverGrouping) -> String {
        """
        \(grouping == .item ? "count(*)" : "count(DISTINCT cp.facility_id)") AS facilities, count(*) AS positions, coalesce(sum(cp.daily_demand), 0) AS daily_demand,
        stockpile_clamp(coalesce(sum(cp.physical_qty), 0)) AS physical_qty, coalesce(sum(cp.expiring_qty), 0) AS expiring_qty,
        stockpile_clamp(coalesce(sum(cp.contract_qty), 0)) AS contract_qty, stockpile_clamp(coalesce(sum(cp.capacity_qty), 0)) AS capacity_qty,
        stockpile_clamp(coalesce(sum(cp.shortfall_qty), 0)) AS shortfall_qty, stockpile_clamp(coalesce(sum(cp.contract_shortfall_qty), 0)) AS contract_shortfall_qty,
        \(zip(bandColumns, CoverBand.allCases).map { "count(*) FILTER (WHERE cp.band = '\($1.rawValue)') AS \($0)" }.joined(separator: ", "))
        """
    }

    /// The same over stored sums (`s`), facilities counted as `facilities` says: distinct ids over
    /// per-facility sums, or the positions over per-item sums (one position per facility and item).
    static func summed(facilities: String) -> String {
        """
        \(facilities) AS facilities, stockpile_clamp(sum(s.positions)) AS positions, sum(s.daily_demand) AS daily_demand,
        stockpile_clamp(sum(s.physical_qty)) AS physical_qty, sum(s.expiring_qty) AS expiring_qty, stockpile_clamp(sum(s.contract_qty)) AS contract_qty,
        stockpile_clamp(sum(s.capacity_qty)) AS capacity_qty, stockpile_clamp(sum(s.shortfall_qty)) AS shortfall_qty,
        stockpile_clamp(sum(s.contract_shortfall_qty)) AS contract_shortfall_qty,
        \(bandColumns.map { "stockpile_clamp(sum(s.\($0))) AS \($0)" }.joined(separator: ", "))
        """
    }

    /// Regions below the one asked for ($4; the roots when absent), each labelled with the child it falls under.
    static let labelled = """
        top AS (SELECT id FROM regions WHERE CASE WHEN $4::text IS NULL THEN parent_id IS NULL ELSE code = $4 END),
        groups AS (
            SELECT r.id, r.id AS group_id FROM regions r WHERE r.parent_id IN (SELECT id FROM top)
            UNION ALL SELECT r.id, g.group_id FROM regions r JOIN groups g ON r.parent_id = g.id
        ),
        labelled AS (SELECT id, group_id FROM groups UNION ALL SELECT id, id FROM top)
        """

    /// The sums of positions `cp`, in the column order of cover_facility_sums and cover_region_item_sums after their keys.
    static let positionSums = """
        count(*), sum(cp.daily_demand), stockpile_clamp(sum(cp.physical_qty)), sum(cp.expiring_qty),
        stockpile_clamp(sum(cp.contract_qty)), stockpile_clamp(sum(cp.capacity_qty)), stockpile_clamp(sum(cp.shortfall_qty)),
        stockpile_clamp(sum(cp.contract_shortfall_qty)),
        \(CoverBand.allCases.map { "count(*) FILTER (WHERE cp.band = '\($0.rawValue)')" }.joined(separator: ", "))
        """
    static let sumColumns = """
        positions, daily_demand, physical_qty, expiring_qty, contract_qty, capacity_qty, shortfall_qty, contract_shortfall_qty,
        \(bandColumns.joined(separator: ", "))
        """

    /// Per-facility sums, refreshed for some facilities ($1: '{1,2}') or all (rebuild), in set `t`.
    static func sums(only: Bool, _ t: SnapshotTables = .live) -> String {
        """
        INSERT INTO \(t.facilitySums) (facility_id, category, \(sumColumns))
        SELECT cp.facility_id, i.category, \(positionSums)
        FROM \(t.positions) cp JOIN items i ON i.id = cp.item_id
        \(only ? "WHERE cp.facility_id = ANY ($1::int[])" : "")
        GROUP BY cp.facility_id, i.category
        """
    }

    /// Per-item sums of each region's own facilities (sql/0032), for some groups ($1 regions, $2
    /// designated, $3 items: parallel arrays) or all (rebuild).
    static func itemSums(only: Bool, _ t: SnapshotTables = .live) -> String {
        """
        INSERT INTO \(t.itemSums) (region_id, designated, item_id, \(sumColumns))
        SELECT f.region_id, f.designated, cp.item_id, \(positionSums)
        FROM \(only ? """
            unnest($1::int[], $2::boolean[], $3::int[]) AS g (region_id, designated, item_id)
            JOIN facilities f ON f.region_id = g.region_id AND f.designated = g.designated
            JOIN \(t.positions) cp ON cp.facility_id = f.id AND cp.item_id = g.item_id
            """ : "\(t.positions) cp JOIN facilities f ON f.id = cp.facility_id")
        GROUP BY f.region_id, f.designated, cp.item_id
        """
    }

    static func dropItemSums(_ t: SnapshotTables = .live) -> String {
        """
        DELETE FROM \(t.itemSums) s USING unnest($1::int[], $2::boolean[], $3::int[]) AS g (region_id, designated, item_id)
        WHERE s.region_id = g.region_id AND s.designated = g.designated AND s.item_id = g.item_id
        """
    }

    /// A roll-up by item, or by region for one item, from the per-item sums: a few hundred rows per
    /// region rather than every position. Row-level security passes only regions whose facilities
    /// the scope holds, every one (sql/0032), so only a scope that covers whole regions reads it.
    static func fromItemSums(_ grouping: CoverGrouping) -> String {
        let label = grouping == .region ? "gr.code, gr.name" : "i.code, i.name"
        return """
            WITH RECURSIVE \(CoverSQL.subtree), \(labelled)
            SELECT \(label), \(summed(facilities: "stockpile_clamp(sum(s.positions))"))
            FROM cover_region_item_sums s JOIN items i ON i.id = s.item_id
            JOIN labelled l ON l.id = s.region_id \(grouping == .region ? "JOIN regions gr ON gr.id = l.group_id" : "")
            WHERE ($4::text IS NULL OR s.region_id IN (SELECT id FROM subtree)) AND $5::text IS NULL
              AND ($6::text IS NULL OR i.code = $6) AND ($7::text IS NULL OR i.category = $7)
              AND ($8::boolean IS NULL OR s.designated = $8) \(CoverSQL.snapshotCheck)
            GROUP BY \(label) ORDER BY \(grouping == .region ? "gr.code" : "i.code")
            """
    }

    static func fromSums(_ grouping: CoverGrouping) -> String {
        precondition(grouping == .region)
        return """
            WITH RECURSIVE \(CoverSQL.subtree), \(labelled)
            SELECT gr.code, gr.name, \(summed(facilities: "count(DISTINCT s.facility_id)"))
            FROM cover_facility_sums s JOIN facilities f ON f.id = s.facility_id
            JOIN labelled l ON l.id = f.region_id JOIN regions gr ON gr.id = l.group_id
            WHERE stockpile_in_scope(f.id) AND ($4::text IS NULL OR f.region_id IN (SELECT id FROM subtree))
              AND ($5::text IS NULL OR f.code = $5) AND $6::text IS NULL AND ($7::text IS NULL OR s.category = $7)
              AND ($8::boolean IS NULL OR f.designated = $8) \(CoverSQL.snapshotCheck)
            GROUP BY gr.code, gr.name ORDER BY gr.code
            """
    }

    static func grouped(_ grouping: CoverGrouping, from source: String) -> String {
        switch grouping {
        case .region:
            return """
                SELECT gr.code, gr.name, \(perPosition(.region))
                FROM \(source) cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
                JOIN labelled l ON l.id = f.region_id JOIN regions gr ON gr.id = l.group_id
                WHERE \(CoverSQL.filterClause)
                """
        case .item:
            return """
                SELECT i.code, i.name, \(perPosition(.item))
                FROM \(source) cp JOIN facilities f ON f.id = cp.facility_id JOIN items i ON i.id = cp.item_id
                JOIN labelled l ON l.id = f.region_id
                WHERE \(CoverSQL.filterClause)
                """
        }
    }

    static func groupBy(_ grouping: CoverGrouping) -> String {
        grouping == .region ? "GROUP BY gr.code, gr.name ORDER BY gr.code" : "GROUP BY i.code, i.name ORDER BY i.code"
    }

    static func fromSnapshot(_ grouping: CoverGrouping) -> String {
        """
        WITH RECURSIVE \(CoverSQL.subtree), \(labelled)
        \(grouped(grouping, from: "cover_positions")) \(CoverSQL.snapshotCheck)
        \(groupBy(grouping))
        """
    }

    static func computed(_ grouping: CoverGrouping) -> String {
        """
        WITH RECURSIVE \(CoverSQL.subtree), \(labelled),
        positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i
                      WHERE \(CoverSQL.filterClause) AND f.region_id IN (SELECT id FROM labelled)),
        \(CoverSQL.compute(restricted: true))
        \(grouped(grouping, from: "computed"))
        \(groupBy(grouping))
        """
    }

    static func row(_ row: PQRow) throws -> CoverRollupRow {
        var bands: [String: Int] = [:]
        for (column, band) in zip(bandColumns, CoverBand.allCases) { bands[band.rawValue] = try row.decode(column) }
        return CoverRollupRow(code: try row.decode("code"), name: try row.decode("name"), facilities: try row.decode("facilities"),
                              positions: try row.decode("positions"), dailyDemand: try row.decode("daily_demand"),
                              physicalQty: try row.decode("physical_qty"), expiringQty: try row.decode("expiring_qty"),
                              contractQty: try row.decode("contract_qty"), capacityQty: try row.decode("capacity_qty"),
                              shortfallQty: try row.decode("shortfall_qty"), contractShortfallQty: try row.decode("contract_shortfall_qty"),
                              bands: bands)
    }
}

extension PostgresCover {
    /// Roll-up of cover over `filter.region`'s subtree (the whole tree when absent), by child region or by item.
    public func rollup(_ filter: CoverFilter, group: CoverGrouping, asOf: LocalDate, surge: Double = 1) async throws -> CoverRollup {
        let zone = timeZone.identifier
        let parameters: [any PQEncodable] = [asOf.description, zone, surge, filter.region, filter.facility, filter.item,
                                             filter.category?.rawValue, filter.designated]
        if surge == 1, case let state = try await snapshotState(asOf: asOf), state.current {
            // Per-facility sums serve a roll-up by region of all items, per-item sums one by item or of one
            // item, for a scope that holds whole regions; a facility asked for, or a warehouse's few, read positions.
            let wholeRegions = scope.facilities == .all || scope.role == .command
            let sql = filter.facility != nil ? CoverRollupSQL.fromSnapshot(group)
                : group == .region && filter.item == nil ? CoverRollupSQL.fromSums(group)
                : wholeRegions ? CoverRollupSQL.fromItemSums(group) : CoverRollupSQL.fromSnapshot(group)
            let (found, origin): (CoverRollup?, ReadOrigin) = try await database.read(scope, isolation: .repeatableRead, replayed: state.refreshed) { c in
                guard try c.query("SELECT 1 FROM cover_snapshot WHERE as_of = $1::date AND time_zone = $2",
                                  [asOf.description, zone]).rows.count == 1 else { return nil }
                return CoverRollup(rows: try c.query(sql, parameters).rows.map(CoverRollupSQL.row), source: "snapshot")
            }
            if var found { found.origin = origin; return found }
        }
        var (rollup, origin) = try await database.read(scope) { c in
            CoverRollup(rows: try c.query(CoverRollupSQL.computed(group), parameters).rows.map(CoverRollupSQL.row), source: "database")
        }
        rollup.origin = origin
        return rollup
    }
}
