import Foundation
import PQ
import StockpileCore

/// One date of a region × item series: the sums the dashboard shows, and days computed from them
/// (sums of quantities over sums of demand; days are never averaged, SPEC.md "roll-ups").
public struct TrendPoint: Sendable, Codable, Equatable {
    public var asOf: String
    public var positions: Int
    public var dailyDemand: Double
    public var fullLoadDemand: Double
    public var targetDays: Int
    public var physicalQty: Int64
    public var expiringQty: Double
    public var contractQty: Int64
    public var capacityQty: Int64
    public var shortfallQty: Int64
    public var bands: [String: Int]
    /// nightly (saved by that date's run) or as_stood (reconstructed later from the ledgers).
    public var source: String
    public var physicalDays: Double?
    public var totalDays: Double?
    /// What changed in the demand basis since the point before (the target, the full-load plans); nil when nothing.
    public var basisChange: String?
    enum CodingKeys: String, CodingKey {
        case positions, bands, source
        case asOf = "as_of", dailyDemand = "daily_demand", fullLoadDemand = "full_load_demand", targetDays = "target_days",
             physicalQty = "physical_qty", expiringQty = "expiring_qty", contractQty = "contract_qty", capacityQty = "capacity_qty",
             shortfallQty = "shortfall_qty", physicalDays = "physical_days", totalDays = "total_days", basisChange = "basis_change"
    }
}

public struct TrendSeries: Sendable, Codable, Equatable {
    public var item: String
    public var itemName: String
    public var category: String
    public var points: [TrendPoint]
    enum CodingKeys: String, CodingKey { case item, category, points, itemName = "item_name" }
}

/// Cover over time (issue 17, part 6): per date, region and item, the dashboard's sums (sql/0029).
public struct PostgresTrends: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    let timeZone: TimeZone

    public init(_ database: StockpileDatabase, scope: AccessScope, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!) {
        self.database = database
        self.scope = scope
        self.timeZone = timeZone
    }

    /// Sums of `relation` (rows with CoverSQL's columns) per facility region and item, stored as
    /// date $1's (`source`), replacing what that date had for those regions and items.
    static func recordSQL(from relation: String, source: String) -> String {
        let bands = zip(CoverRollupSQL.bandColumns, CoverBand.allCases)
        return """
            INSERT INTO cover_history (as_of, region_id, item_id, facilities, positions, daily_demand, full_load_demand, target_days,
                                       physical_qty, expiring_qty, contract_qty, capacity_qty, shortfall_qty,
                                       \(CoverRollupSQL.bandColumns.joined(separator: ", ")), source)
            SELECT $1::date, f.region_id, nc.item_id, count(DISTINCT nc.facility_id), count(*), coalesce(sum(nc.daily_demand), 0),
                   coalesce(sum(nc.full_load_demand), 0), coalesce(max(nc.target_days), 0),
                   stockpile_clamp(coalesce(sum(nc.physical_qty), 0)), coalesce(sum(nc.expiring_qty), 0),
                   stockpile_clamp(coalesce(sum(nc.contract_qty), 0)), stockpile_clamp(coalesce(sum(nc.capacity_qty), 0)),
                   stockpile_clamp(coalesce(sum(nc.shortfall_qty), 0)),
                   \(bands.map { "count(*) FILTER (WHERE nc.band = '\($1.rawValue)')" }.joined(separator: ", ")), '\(source)'
            FROM \(relation) nc JOIN facilities f ON f.id = nc.facility_id
            GROUP BY f.region_id, nc.item_id
            ON CONFLICT (as_of, region_id, item_id) DO UPDATE SET
                facilities = EXCLUDED.facilities, positions = EXCLUDED.positions, daily_demand = EXCLUDED.daily_demand,
                full_load_demand = EXCLUDED.full_load_demand, target_days = EXCLUDED.target_days, physical_qty = EXCLUDED.physical_qty,
                expiring_qty = EXCLUDED.expiring_qty, contract_qty = EXCLUDED.contract_qty, capacity_qty = EXCLUDED.capacity_qty,
                shortfall_qty = EXCLUDED.shortfall_qty,
                \(CoverRollupSQL.bandColumns.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")),
                source = EXCLUDED.source, recorded_at = now()
            """
    }

    /// The nightly run's date, from tonight's cover table, in the run's transaction.
    static func recordNightly(_ c: PQConnection, asOf: LocalDate) throws {
        try c.query(recordSQL(from: "nightly_cover", source: "nightly"), [asOf.description])
    }

    /// A past date as it stood, from the ledgers (every position); what `stockpile history` fills in.
    /// Returns the rows written.
    public func recordAsStood(asOf: LocalDate) async throws -> Int {
        let zone = timeZone.identifier
        return try await database.transaction(scope) { c in
            try c.query("""
                WITH positions AS (SELECT f.id AS facility_id, i.id AS item_id FROM facilities f CROSS JOIN items i),
                \(CoverSQL.compute(restricted: false, asStood: true))
                \(Self.recordSQL(from: "computed", source: "as_stood"))
                """, [asOf.description, zone, 1.0]).affectedRows
        }
    }

    /// Each item's series over region `region`'s subtree (nil: everything in scope), `from` … `to`,
    /// with the basis changes marked.
    public func series(region: String?, item: String?, from: LocalDate, to: LocalDate) async throws -> [TrendSeries] {
        let scope = self.scope
        return try await database.withConnection(scope) { c in
            try PostgresNightly.requireRegion(c, region, scope: scope)
            var series: [TrendSeries] = []
            try c.scan("""
                WITH RECURSIVE subtree AS (
                    SELECT id FROM regions WHERE $1::text IS NULL OR code = $1
                    UNION SELECT r.id FROM regions r JOIN subtree s ON r.parent_id = s.id
                )
                SELECT h.as_of::text, i.code, i.name, i.category, sum(h.positions)::bigint, sum(h.daily_demand), sum(h.full_load_demand),
                       max(h.target_days)::bigint, stockpile_clamp(sum(h.physical_qty)), sum(h.expiring_qty), stockpile_clamp(sum(h.contract_qty)),
                       stockpile_clamp(sum(h.capacity_qty)), stockpile_clamp(sum(h.shortfall_qty)),
                       \(CoverRollupSQL.bandColumns.map { "sum(h.\($0))::bigint" }.joined(separator: ", ")),
                       CASE WHEN bool_or(h.source = 'as_stood') THEN 'as_stood' ELSE 'nightly' END
                FROM cover_history h JOIN items i ON i.id = h.item_id
                WHERE h.region_id IN (SELECT id FROM subtree) AND ($2::text IS NULL OR i.code = $2)
                  AND h.as_of BETWEEN $3::date AND $4::date
                GROUP BY h.as_of, i.code, i.name, i.category
                ORDER BY i.code, h.as_of
                """, [region, item, from.description, to.description]) { row in
                let code = row.string(1)
                if series.last?.item != code {
                    series.append(TrendSeries(item: code, itemName: row.string(2), category: row.string(3), points: []))
                }
                let demand = row.double(5), physical = row.int64(8), contract = row.int64(10), capacity = row.int64(11)
                let bands = Dictionary(uniqueKeysWithValues: CoverBand.allCases.enumerated().map { ($1.rawValue, Int(row.int64(13 + $0))) })
                series[series.count - 1].points.append(TrendPoint(
                    asOf: row.string(0), positions: Int(row.int64(4)), dailyDemand: demand, fullLoadDemand: row.double(6),
                    targetDays: Int(row.int64(7)), physicalQty: physical, expiringQty: row.double(9), contractQty: contract,
                    capacityQty: capacity, shortfallQty: row.int64(12), bands: bands, source: row.string(13 + CoverBand.allCases.count),
                    physicalDays: demand > 0 ? Double(physical) / demand : nil,
                    totalDays: demand > 0 ? (Double(physical) + Double(contract) + Double(capacity)) / demand : nil))
            }
            return series.map(Self.markBasisChanges)
        }
    }

    /// Marks each point whose target or full-load plans differ from the point before.
    static func markBasisChanges(_ series: TrendSeries) -> TrendSeries {
        var marked = series
        for i in marked.points.indices.dropFirst() {
            let before = marked.points[i - 1], now = marked.points[i]
            var changes: [String] = []
            if now.targetDays != before.targetDays { changes.append("目标 \(before.targetDays)→\(now.targetDays) 天") }
            if abs(now.fullLoadDemand - before.fullLoadDemand) > 1e-9 * max(1, abs(before.fullLoadDemand)) {
                changes.append(String(format: "满负荷需求 %.1f→%.1f/日", before.fullLoadDemand, now.fullLoadDemand))
            }
            marked.points[i].basisChange = changes.isEmpty ? nil : changes.joined(separator: "；")
        }
        return marked
    }
}
