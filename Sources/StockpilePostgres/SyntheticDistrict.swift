import Foundation
import PQ
import StockpileCore

/// Synthetic data at any size, for benchmarks (`stockpile generate`): a city (合成市) of districts
/// and townships, facilities × items, a dozen lots per item at staggered expiries (some already
/// expired, devices never), and per position a receipt `days` ago and weekly issues since, plus
/// full-load plans, contracts and capacity pledges on some positions. Everything is derived from
/// a hash of the position and the seed, so a size and seed always give the same data.
///
/// It writes set-based in PostgreSQL, a chunk of facilities per transaction, and keeps the ledger's
/// invariants: every balance is the sum of its movements and none is negative.
public struct SyntheticDistrict: Sendable {
    public var facilities: Int
    public var items: Int
    public var days: Int
    public var seed: Int
    public var asOf: LocalDate
    public var timeZone: TimeZone

    public init(facilities: Int, items: Int, days: Int = 30, seed: Int = 1, asOf: LocalDate, timeZone: TimeZone) {
        self.facilities = facilities; self.items = items; self.days = days; self.seed = seed
        self.asOf = asOf; self.timeZone = timeZone
    }

    public struct Progress: Sendable {
        public var phase: String
        public var done: Int
        public var total: Int
    }

    public struct Summary: Sendable {
        public var positions: Int
        public var movements: Int
        public var balances: Int
        public var databaseBytes: Int64
    }

    public enum GenerateError: Error, CustomStringConvertible {
        case alreadyGenerated, notEmpty, invalid(String)
        public var description: String {
            switch self {
            case .alreadyGenerated: return "this database already has synthetic data (region G); generate into an empty one"
            case .notEmpty: return "this database already has facilities (real data?); generate writes only into an empty database"
            case .invalid(let why): return why
            }
        }
    }

    /// The refusal of a benchmark pointed at a database `generate` did not make.
    public struct NotGenerated: Error, CustomStringConvertible {
        public var description: String
    }

    /// Whether `generate` made this database: it writes the `synthetic_city` row (sql/0013) in the
    /// transaction of its first rows, and only into a database without facilities.
    public static func isGenerated(_ database: StockpileDatabase) async throws -> Bool {
        try await database.withConnection(.system("bench")) { c in
            try c.query("SELECT EXISTS (SELECT 1 FROM synthetic_city) AS generated").rows[0].decode("generated")
        }
    }

    /// The guard of the benchmarks that write into the database they are given (`bench cover`
    /// records issues into the ledger, `bench nightly` deletes the date's report and its orders,
    /// `bench plan` reads only but runs as of the generated date): unless `allowRealData`, refuses
    /// a database `generate` did not make, before anything is written.
    public static func requireGenerated(_ database: StockpileDatabase, allowRealData: Bool, benchmark: String, writes: String) async throws {
        guard !allowRealData, try await !isGenerated(database) else { return }
        throw NotGenerated(description: "\(benchmark): refusing a database `stockpile generate` did not make (no synthetic_city row): "
                           + "it would \(writes). Point --data-dir or DATABASE_URL at a generated database, or pass --allow-real-data if you mean it.")
    }

    var districts: Int { max(1, facilities / 500) }
    static let townshipsPerDistrict = 10
    static let lotsPerItem = 12
    static let chunk = 500

    public func generate(into database: StockpileDatabase, progress: @escaping @Sendable (Progress) -> Void) async throws -> Summary {
        guard facilities >= 1, items >= 1, days >= 9, days <= 365 else {
            throw GenerateError.invalid("need at least 1 facility and 1 item, and 9…365 days of history")
        }
        let scope = AccessScope.system("generate")
        let asOf = self.asOf.description, zone = timeZone.identifier
        let districts = self.districts, facilities = self.facilities, items = self.items, historyDays = self.days, seed = self.seed
        progress(Progress(phase: "master data", done: 0, total: 1))
        try await database.transaction(scope) { c in
            guard try c.query("SELECT 1 FROM regions WHERE code = 'G'").rows.isEmpty else { throw GenerateError.alreadyGenerated }
            guard try c.query("SELECT 1 FROM facilities LIMIT 1").rows.isEmpty else { throw GenerateError.notEmpty }
            // The mark the benchmarks look for before they write into a database (sql/0013).
            try c.query("INSERT INTO synthetic_city (facilities, items, days, seed, as_of) VALUES ($1, $2, $3, $4, $5::date)",
                        [facilities, items, historyDays, seed, asOf])
            try c.query("INSERT INTO regions (code, name) VALUES ('G', '合成市')")
            try c.query("""
                INSERT INTO regions (code, name, parent_id)
                SELECT 'G-D' || lpad(d::text, 3, '0'), '合成' || d || '区', (SELECT id FROM regions WHERE code = 'G')
                FROM generate_series(1, $1::int) d
                """, [districts])
            try c.query("""
                INSERT INTO regions (code, name, parent_id)
                SELECT 'G-D' || lpad(d::text, 3, '0') || '-T' || lpad(t::text, 2, '0'), '合成' || d || '区' || t || '镇', r.id
                FROM generate_series(1, $1::int) d CROSS JOIN generate_series(1, \(Self.townshipsPerDistrict)) t
                JOIN regions r ON r.code = 'G-D' || lpad(d::text, 3, '0')
                """, [districts])
            // Items before facilities: each new facility marks its positions dirty for the cover snapshot.
            try c.query("""
                INSERT INTO items (code, name, category, unit, target_days)
                SELECT 'G-I' || lpad(n::text, 4, '0'), '合成物资' || n,
                       (ARRAY['ppe', 'drug', 'consumable', 'disinfectant', 'device', 'test_kit'])[1 + n % 6], '件',
                       CASE WHEN n % 25 = 0 THEN 45 END
                FROM generate_series(1, $1::int) n
                """, [items])
            try c.query("""
                INSERT INTO lots (item_id, lot_number, expiry)
                SELECT i.id, 'L' || lpad(k::text, 2, '0'),
                       CASE WHEN i.category <> 'device' THEN $1::date - 20 + 60 * k + i.id % 30 END
                FROM items i CROSS JOIN generate_series(0, \(Self.lotsPerItem - 1)) k WHERE i.code LIKE 'G-I%'
                """, [asOf])
            try c.query("""
                INSERT INTO facilities (code, name, kind, region_id, beds, latitude, longitude, designated)
                SELECT 'G-F' || lpad(n::text, 6, '0'),
                       CASE WHEN n % 10 = 0 THEN '合成储备库' WHEN n % 10 < 3 THEN '合成疾控中心' WHEN n % 10 < 6 THEN '合成卫生院' ELSE '合成医院' END || n,
                       CASE WHEN n % 10 = 0 THEN 'warehouse' WHEN n % 10 < 3 THEN 'cdc' WHEN n % 10 < 6 THEN 'clinic' ELSE 'hospital' END,
                       r.id, CASE WHEN n % 10 >= 6 THEN 50 + n * 7919 % 750 ELSE 0 END,
                       29.5 + (n * 7919 % 1000) / 1000.0, 113.5 + (n * 104729 % 1000) / 1000.0, n % 50 = 1
                FROM generate_series(1, $1::int) n
                JOIN regions r ON r.code = 'G-D' || lpad((1 + (n - 1) % $2::int)::text, 3, '0')
                                  || '-T' || lpad((1 + (n - 1) / $2::int % \(Self.townshipsPerDistrict))::text, 2, '0')
                """, [facilities, districts])
        }
        progress(Progress(phase: "master data", done: 1, total: 1))

        let ids: [Int] = try await database.withConnection(scope) { c in
            try c.query("SELECT id FROM facilities WHERE code LIKE 'G-F%' ORDER BY id").rows.map { try $0.decode("id") }
        }
        let chunks = stride(from: 0, to: ids.count, by: Self.chunk).map { ids[$0...min($0 + Self.chunk, ids.count) - 1] }
        let issues = (days - 2) / 7
        for (n, chunk) in chunks.enumerated() {
            let parameters: [any PQEncodable] = [chunk.first!, chunk.last!, seed, asOf, zone, days, issues]
            try await database.transaction(scope) { c in
                try c.execute("DROP TABLE IF EXISTS gen_positions, gen_lots")
                // Bits of one hash per position pick everything about it.
                try c.query("""
                    CREATE TEMP TABLE gen_positions ON COMMIT DROP AS
                    SELECT f.id AS fid, f.code AS fcode, f.kind, i.id AS iid, i.code AS icode, x.h,
                           1 + ((x.h >> 8) & 127) AS rate, (x.h >> 16) & 63 AS spare_days
                    FROM facilities f CROSS JOIN items i
                    CROSS JOIN LATERAL (SELECT hashtextextended(f.id || '/' || i.id, $3::bigint) AS h) x
                    WHERE f.id BETWEEN $1::int AND $2::int AND f.code LIKE 'G-F%' AND i.code LIKE 'G-I%'
                      AND $4::date IS NOT NULL AND $5::text IS NOT NULL AND $6::int > 0 AND $7::int >= 0
                    """, parameters)
                // ~85% of positions hold stock: one lot, or two (the second untouched by issues).
                try c.query("""
                    CREATE TEMP TABLE gen_lots ON COMMIT DROP AS
                    SELECT p.fid, p.fcode, p.iid, p.icode, p.rate, k, l.id AS lot_id, l.lot_number, l.expiry,
                           CASE WHEN k = 0 THEN p.rate * (7 * $7::int + p.spare_days) ELSE 1 + ((p.h >> 32) & 4095) END AS received
                    FROM gen_positions p CROSS JOIN generate_series(0, ((p.h >> 24) & 1)::int) k
                    JOIN lots l ON l.item_id = p.iid AND l.lot_number = 'L' || lpad((((p.h >> 28) & 7) + 3 * k)::text, 2, '0')
                    WHERE (p.h & 127) < 109
                      AND $1::int IS NOT NULL AND $2::int IS NOT NULL AND $3::bigint IS NOT NULL AND $4::date IS NOT NULL
                      AND $5::text IS NOT NULL AND $6::int > 0
                    """, parameters)
                // Positions first: every movement is at one (sql/0036 checks it when the insert ends).
                try c.query("""
                    INSERT INTO balances (facility_id, lot_id, item_id, quantity)
                    SELECT fid, lot_id, iid, CASE WHEN k = 0 THEN received - 7 * rate * $1::int ELSE received END FROM gen_lots
                    """, [issues])
                // The receipts `days` ago, then weekly issues from the first lot. Ids sort by position,
                // so the ledger's primary key grows at its end.
                try c.query("""
                    INSERT INTO movements (id, facility_id, item_id, lot_id, kind, quantity, requested, balance_after, reason,
                                           occurred_at, recorded_by, fingerprint)
                    SELECT (lpad(to_hex(g.fid), 8, '0') || '-' || lpad(to_hex(g.iid), 4, '0') || '-4' || lpad(to_hex(g.k), 3, '0')
                            || '-8000-' || lpad(to_hex(j), 12, '0'))::uuid,
                           g.fid, g.iid, g.lot_id, m.kind, m.quantity, abs(m.quantity), m.after, '', m.at, 'generate',
                           movement_fingerprint(m.kind, g.fcode, g.icode, g.lot_number, g.expiry, abs(m.quantity), '', m.at)
                    FROM gen_lots g
                    CROSS JOIN generate_series(0, CASE WHEN g.k = 0 THEN $7::int ELSE 0 END) j
                    CROSS JOIN LATERAL (SELECT
                        CASE WHEN j = 0 THEN 'receipt' ELSE 'issue' END AS kind,
                        CASE WHEN j = 0 THEN g.received ELSE -7 * g.rate END AS quantity,
                        g.received - 7 * g.rate * j AS after,
                        CASE WHEN j = 0 THEN ($4::date - $6::int + time '09:00') AT TIME ZONE $5
                             ELSE ($4::date - $6::int + 2 + 7 * (j - 1) + time '14:00') AT TIME ZONE $5 END AS at) m
                    WHERE $1::int IS NOT NULL AND $2::int IS NOT NULL AND $3::bigint IS NOT NULL
                    ORDER BY 1
                    """, parameters)
                // Plans on an eighth of hospital positions; contracts on an eighth of all; pledges on a 32nd.
                try c.execute("""
                    INSERT INTO demand_plans (facility_id, item_id, full_load_daily)
                    SELECT fid, iid, rate * (1 + ((h >> 44) & 3)) FROM gen_positions WHERE kind = 'hospital' AND (h >> 40) & 7 = 0
                    """)
                try c.query("""
                    INSERT INTO contracts (code, facility_id, item_id, supplier, committed, called_off, lead_time_days,
                                           valid_from, valid_to, local)
                    SELECT 'G-K' || fid || '-' || iid, fid, iid, '合成供应商' || (1 + ((h >> 53) & 15)), 30 * rate, ((h >> 54) & 31) * rate / 8,
                           3 + ((h >> 56) & 15), $1::date - 100, $1::date + 265, (h >> 60) & 1 = 1
                    FROM gen_positions WHERE (h >> 48) & 7 = 0
                    """, [asOf])
                try c.query("""
                    INSERT INTO capacity_pledges (code, facility_id, item_id, manufacturer, daily_capacity, ramp_up_days,
                                                  valid_from, valid_to, certified, local)
                    SELECT 'G-P' || fid || '-' || iid, fid, iid, '合成生产企业' || (1 + ((h >> 53) & 7)), 1 + rate / 2,
                           (h >> 36) & 15, $1::date - 30, $1::date + 335, (h >> 41) & 3 <> 0, true
                    FROM gen_positions WHERE (h >> 50) & 31 = 0
                    """, [asOf])
            }
            progress(Progress(phase: "positions", done: (n + 1) * Self.chunk * items > facilities * items ? facilities * items : (n + 1) * Self.chunk * items,
                              total: facilities * items))
        }
        progress(Progress(phase: "analyze", done: 0, total: 1))
        try await database.asOwner { try $0.execute("ANALYZE") }
        return try await database.withConnection(scope) { c in
            let row = try c.query("""
                SELECT (SELECT count(*) FROM movements) AS movements, (SELECT count(*) FROM balances) AS balances,
                       pg_database_size(current_database()) AS bytes
                """).rows[0]
            return Summary(positions: facilities * items, movements: try row.decode("movements"), balances: try row.decode("balances"),
                           databaseBytes: try row.decode("bytes"))
        }
    }
}
