import Foundation
import PQ
import StockpileCore

/// A stored nightly report read a run of lines at a time (issue 14): a city's report is about 2 GB
/// of JSON, so its readers — the API, the page, the CSV and printable downloads — take the header
/// first and then each section's runs in small batches, never the whole report at once.
public struct StoredNightly: Sendable {
    /// The report without its lines (every section empty): summary, per-item totals, phases.
    public var header: NightlyReport
    public var generation: Int
    /// Lines per stored section ("orders", "reorders", "contract_gaps", "expiring_lots", "stale").
    public var lineCounts: [String: Int]
    let date: String
    let key: String
    /// Where the header was read; the lines are read from the same server (a replica that had the
    /// header has every line written before it), or from the primary, which has them all.
    public var origin: ReadOrigin = .primary

    /// The stored sections in the order the report lists them.
    public static let sections = ["orders", "reorders", "contract_gaps", "expiring_lots", "stale", "overdue", "hoarding", "rotation"]
}

extension PostgresNightly {
    /// Runs read per query: at most this many × 1,000 lines are in memory at once.
    static let runsPerBatch = 8

    /// The header of the stored report of a date and scope (the current one, or `generation`), and
    /// how many lines each section has; nil when there is none. Two small queries however large the city.
    public func header(asOf: LocalDate, region: String?, generation: Int? = nil) async throws -> StoredNightly? {
        let scope = self.scope
        let (stored, origin) = try await database.read(scope) { c -> StoredNightly? in
            try Self.requireRegion(c, region, scope: scope)
            let date = asOf.description, key = Self.scopeKey(region)
            guard let row = try c.query("""
                SELECT report::text AS report, generation FROM nightly_reports
                WHERE as_of = $1::date AND scope = $2::text AND (CASE WHEN $3::int IS NULL THEN superseded_at IS NULL ELSE generation = $3::int END)
                """, [date, key, generation]).rows.first else { return nil }
            let header = try JSONDecoder().decode(NightlyReport.self, from: Data(try row.decode("report", as: String.self).utf8))
            let found: Int = try row.decode("generation")
            // Every run but the last holds linesPerRun lines; only the last one is opened to count.
            var counts: [String: Int] = [:]
            for run in try c.query("""
                SELECT l.section, l.n, json_array_length(l.lines::json) AS length FROM nightly_lines l
                WHERE l.as_of = $1::date AND l.scope = $2 AND l.generation = $3
                  AND l.n = (SELECT max(m.n) FROM nightly_lines m
                             WHERE m.as_of = l.as_of AND m.scope = l.scope AND m.generation = l.generation AND m.section = l.section)
                """, [date, key, found]).rows {
                let n: Int = try run.decode("n"), length: Int = try run.decode("length")
                counts[try run.decode("section")] = n * Self.linesPerRun + length
            }
            return StoredNightly(header: header, generation: found, lineCounts: counts, date: date, key: key)
        }
        return stored.map { var s = $0; s.origin = origin; return s }
    }

    /// Each stored run of `section`, in order, as the JSON array text it was stored as, `runsPerBatch`
    /// runs a query. `body` returns false to stop early (a page that has the rows it shows).
    public func forEachRun(of stored: StoredNightly, section: String, _ body: (Data) async throws -> Bool) async throws {
        let lines = stored.lineCounts[section] ?? 0
        guard lines > 0 else { return }
        let runs = (lines + Self.linesPerRun - 1) / Self.linesPerRun
        let scope = self.scope
        for first in stride(from: 0, to: runs, by: Self.runsPerBatch) {
            let (batch, _): ([Data], ReadOrigin) = try await database.read(scope, preferReplica: stored.origin.servedBy == "standby") { c in
                try c.query("""
                    SELECT lines FROM nightly_lines
                    WHERE as_of = $1::date AND scope = $2 AND generation = $3 AND section = $4 AND n >= $5 AND n < $6 ORDER BY n
                    """, [stored.date, stored.key, stored.generation, section, first, first + Self.runsPerBatch]).rows
                    .map { Data(try $0.decode("lines", as: String.self).utf8) }
            }
            for run in batch { guard try await body(run) else { return } }
        }
    }

    /// The header with one run of `section` decoded into it (every other section empty): what the
    /// table renderers take, a thousand lines at a time.
    public static func piece(of stored: StoredNightly, section: String, run: Data) throws -> NightlyReport {
        var report = stored.header
        try append(run, section: section, to: &report)
        return report
    }

    static func append(_ run: Data, section: String, to report: inout NightlyReport) throws {
        let decoder = JSONDecoder()
        switch section {
        case "orders": report.orders += try decoder.decode([NightlyOrder].self, from: run)
        case "reorders": report.reorders += try decoder.decode([ReorderLine].self, from: run)
        case "contract_gaps": report.contractGaps += try decoder.decode([ContractGapLine].self, from: run)
        case "expiring_lots": report.expiringLots += try decoder.decode([ExpiringLotLine].self, from: run)
        case "overdue": report.overdue = (report.overdue ?? []) + (try decoder.decode([OverdueLine].self, from: run))
        case "hoarding": report.hoarding = (report.hoarding ?? []) + (try decoder.decode([HoardingLine].self, from: run))
        case "rotation": report.rotation = (report.rotation ?? []) + (try decoder.decode([RotationLine].self, from: run))
        default: report.stale += try decoder.decode([StaleLine].self, from: run)
        }
    }
}
