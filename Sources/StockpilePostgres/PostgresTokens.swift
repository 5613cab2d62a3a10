import Foundation
import PQ
import StockpileCore

/// A token as an administrator sees it: never the secret.
public struct TokenInfo: Sendable, Codable, Equatable {
    public var name: String
    public var role: Role
    public var region: String?
    public var facilities: [String]
    public var expiresAt: Date
    public var revokedAt: Date?
    public var createdAt: Date
    public var createdBy: String

    enum CodingKeys: String, CodingKey {
        case name, role, region, facilities
        case expiresAt = "expires_at", revokedAt = "revoked_at", createdAt = "created_at", createdBy = "created_by"
    }
}

/// Bearer tokens: 256 random bits, shown once, stored only as their SHA-256 (computed by the
/// database, so the secret is never hashed or logged by hand here).
public struct PostgresTokens: Sendable {
    let database: StockpileDatabase
    let scope: AccessScope
    public init(_ database: StockpileDatabase, scope: AccessScope) {
        self.database = database
        self.scope = scope
    }

    static let hashSQL = "encode(sha256(convert_to($1, 'UTF8')), 'hex')"

    /// A new secret: "sp_" (or `prefix`) and 43 characters of base64url.
    public static func newSecret(prefix: String = "sp_") -> String {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return prefix + base64
    }

    public enum TokenError: Error, Sendable, CustomStringConvertible {
        case invalid(field: String, reason: String)
        case exists(String)
        public var description: String {
            switch self {
            case .invalid(let field, let reason): return "\(field): \(reason)"
            case .exists(let name): return "a token named \(name) exists already"
            }
        }
    }

    /// Creates a token and returns its secret, the only time it is seen.
    public func create(name: String, role: Role, region: String?, facilities: [String], validDays: Int) async throws -> (secret: String, token: TokenInfo) {
        do { _ = try TextBounds.check(name, field: "name", maxBytes: TextBounds.code) } catch {
            throw TokenError.invalid(field: "name", reason: error.reason)
        }
        guard (1...3660).contains(validDays) else { throw TokenError.invalid(field: "valid_days", reason: "from 1 to 3660") }
        switch role {
        case .warehouse where facilities.isEmpty:
            throw TokenError.invalid(field: "facilities", reason: "a warehouse token needs the facility codes it records for")
        case .command where region == nil:
            throw TokenError.invalid(field: "region", reason: "a command token needs the region at the top of its subtree")
        default: break
        }
        let secret = Self.newSecret()
        let actor = scope.actor
        let created: TokenInfo = try await database.transaction(scope) { c in
            var regionID: Int?
            if role == .command, let region {
                guard let row = try c.query("SELECT id FROM regions WHERE code = $1", [region]).first else {
                    throw TokenError.invalid(field: "region", reason: "unknown region \(region)")
                }
                regionID = try row.decode("id")
            }
            var facilityIDs: [Int] = []
            if role == .warehouse {
                let rows = try c.query("SELECT code, id FROM facilities WHERE code = ANY($1::text[])", [facilities]).rows
                let known = Dictionary(uniqueKeysWithValues: try rows.map { (try $0.decode("code", as: String.self), try $0.decode("id", as: Int.self)) })
                if let unknown = facilities.first(where: { known[$0] == nil }) {
                    throw TokenError.invalid(field: "facilities", reason: "unknown facility \(unknown)")
                }
                facilityIDs = facilities.map { known[$0]! }
            }
            do {
                try c.query("""
                    INSERT INTO tokens (name, hash, role, region_id, facility_ids, expires_at, created_by)
                    VALUES ($2, \(Self.hashSQL), $3, $4, $5::integer[], now() + make_interval(days => $6), $7)
                    """, [secret, name, role.rawValue, regionID, facilityIDs, validDays, actor])
            } catch let error as PQError where error.sqlState == "23505" {
                throw TokenError.exists(name)
            }
            try Self.audit(c, scope: self.scope, action: "token.create", target: name, detail: "role \(role.rawValue)")
            return try Self.list(c, name: name).first!
        }
        return (secret, created)
    }

    public func list() async throws -> [TokenInfo] {
        try await database.withConnection(scope) { c in try Self.list(c, name: nil) }
    }

    static func list(_ c: PQConnection, name: String?) throws -> [TokenInfo] {
        try c.query("""
            SELECT t.name, t.role, r.code AS region,
                   coalesce((SELECT array_agg(f.code ORDER BY f.code) FROM facilities f WHERE f.id = ANY (t.facility_ids)), '{}') AS facilities,
                   t.expires_at, t.revoked_at, t.created_at, t.created_by
            FROM tokens t LEFT JOIN regions r ON r.id = t.region_id
            WHERE $1::text IS NULL OR t.name = $1
            ORDER BY t.name
            """, [name]).rows.map { row in
            TokenInfo(name: try row.decode("name"), role: Role(rawValue: try row.decode("role"))!, region: try row.decode("region"),
                      facilities: PQArrayText.parse(try row.decode("facilities")), expiresAt: try row.decode("expires_at"),
                      revokedAt: try row.decode("revoked_at"), createdAt: try row.decode("created_at"), createdBy: try row.decode("created_by"))
        }
    }

    /// Revokes a token at once: the next request with it is refused. False if no such token.
    public func revoke(name: String) async throws -> Bool {
        try await database.transaction(scope) { c in
            let changed = try c.query("UPDATE tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", [name]).affectedRows
            if changed > 0 { try Self.audit(c, scope: self.scope, action: "token.revoke", target: name, detail: nil) }
            return changed > 0
        }
    }

    /// The token behind a secret, with the facility ids its scope covers (a command token's whole
    /// region subtree). The ingest benchmark runs this same statement through pgbench.
    public static let authenticateSQL = tokenSQL(matching: "t.hash = \(hashSQL)")

    /// The token behind a page session's id, while the session is open (sql/0018).
    static let sessionSQL = tokenSQL(matching: """
        t.id = (SELECT s.token_id FROM page_sessions s WHERE s.hash = \(hashSQL) AND s.ended_at IS NULL AND s.expires_at > now())
        """)

    static func tokenSQL(matching: String) -> String { """
        SELECT t.name, t.role, r.code AS region,
                       CASE t.role
                           WHEN 'warehouse' THEN t.facility_ids
                           WHEN 'command' THEN (
                               WITH RECURSIVE subtree AS (
                                   SELECT t.region_id AS id
                                   UNION SELECT child.id FROM regions child JOIN subtree s ON child.parent_id = s.id)
                               SELECT coalesce(array_agg(f.id), '{}') FROM facilities f WHERE f.region_id IN (SELECT id FROM subtree))
                       END AS facility_ids,
                       coalesce((SELECT array_agg(f.code) FROM facilities f WHERE f.id = ANY (t.facility_ids)), '{}') AS facility_codes
                FROM tokens t LEFT JOIN regions r ON r.id = t.region_id
                WHERE \(matching) AND t.revoked_at IS NULL AND t.expires_at > now()
        """ }

    /// The scope a secret grants, or nil for an unknown, expired or revoked one.
    public static func authenticate(_ secret: String, clientAddress: String?, database: StockpileDatabase) async throws -> AccessScope? {
        // Only well-formed secrets reach the database.
        guard secret.hasPrefix("sp_"), secret.count == 46, secret.utf8.allSatisfy({ $0 < 128 }) else { return nil }
        return try await scope(authenticateSQL, secret, clientAddress: clientAddress, database: database)
    }

    /// The scope of a page session (the pages' cookie), or nil when it is unknown, ended, expired,
    /// or its token is revoked or expired. A token's secret is not a session, nor a session a secret.
    public static func authenticateSession(_ session: String, clientAddress: String?, database: StockpileDatabase) async throws -> AccessScope? {
        guard session.hasPrefix("ps_"), session.count == 46, session.utf8.allSatisfy({ $0 < 128 }) else { return nil }
        return try await scope(sessionSQL, session, clientAddress: clientAddress, database: database)
    }

    /// Opens a page session for a token's secret: a new random id (shown only to the browser, kept
    /// as its hash) valid for `seconds`, never past the token. Nil when the secret grants nothing.
    public static func startSession(_ secret: String, clientAddress: String?, seconds: Int,
                                    database: StockpileDatabase) async throws -> (session: String, scope: AccessScope)? {
        guard let scope = try await authenticate(secret, clientAddress: clientAddress, database: database) else { return nil }
        let session = newSecret(prefix: "ps_")
        return try await database.transaction(scope) { c in
            try c.query("""
                INSERT INTO page_sessions (hash, token_id, expires_at, client_address)
                SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex'), t.id, least(now() + make_interval(secs => $3), t.expires_at), $4
                FROM tokens t WHERE t.hash = encode(sha256(convert_to($2, 'UTF8')), 'hex')
                """, [session, secret, Double(seconds), clientAddress])
            try audit(c, scope: scope, action: "session.start", target: nil, detail: nil)
            return (session, scope)
        }
    }

    /// Ends a page session (sign-out): from now on its id opens nothing. Safe to repeat.
    public static func endSession(_ session: String, database: StockpileDatabase) async throws {
        guard let scope = try await authenticateSession(session, clientAddress: nil, database: database) else { return }
        try await database.transaction(scope) { c in
            try c.query("UPDATE page_sessions SET ended_at = now() WHERE hash = \(hashSQL) AND ended_at IS NULL", [session])
            try audit(c, scope: scope, action: "session.end", target: nil, detail: nil)
        }
    }

    static func scope(_ sql: String, _ secret: String, clientAddress: String?, database: StockpileDatabase) async throws -> AccessScope? {
        try await database.pool.withConnection { c in
            guard let row = try c.queryPrepared(sql, [secret]).first else { return nil }
            let role = Role(rawValue: try row.decode("role"))!
            let ids = PQArrayText.parse(try row.decode("facility_ids", as: String?.self) ?? "{}").compactMap { Int($0) }
            var scope = AccessScope(actor: try row.decode("name"), role: role, facilities: role == .admin ? .all : .only(Set(ids)),
                                    clientAddress: clientAddress, regionCode: try row.decode("region"),
                                    facilityCodes: PQArrayText.parse(try row.decode("facility_codes")))
            scope.statementTimeoutMilliseconds = database.requestTimeoutMilliseconds
            return scope
        }
    }

    /// Appends to the audit log in the caller's transaction.
    public static func audit(_ c: PQConnection, scope: AccessScope, action: String, target: String?, detail: String?,
                             status: Int? = nil, facilityIDs: [Int] = []) throws {
        try c.query("""
            INSERT INTO audit_log (token_name, role, client_address, action, target, status, detail, facility_ids)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer[])
            """, [scope.actor, scope.role.rawValue, scope.clientAddress, action, target, status, detail, facilityIDs])
    }
}

/// Reads a one-dimensional array in PostgreSQL's text output (`{a,"b c",NULL}`).
public enum PQArrayText {
    public static func parse(_ text: String) -> [String] {
        guard text.count >= 2, text.first == "{", text.last == "}" else { return [] }
        var items: [String] = []
        var current = ""
        var quoted = false, escaped = false, sawQuotes = false
        for c in text.dropFirst().dropLast() {
            if escaped { current.append(c); escaped = false; continue }
            switch c {
            case "\\" where quoted: escaped = true
            case "\"": quoted.toggle(); sawQuotes = true
            case "," where !quoted:
                if sawQuotes || current != "NULL" { items.append(current) }
                current = ""; sawQuotes = false
            default: current.append(c)
            }
        }
        if !(text == "{}") && (sawQuotes || current != "NULL") { items.append(current) }
        return items
    }
}

/// One audited write.
public struct AuditEntry: Sendable, Codable, Equatable {
    public var at: Date
    public var token: String
    public var role: String
    public var clientAddress: String?
    public var action: String
    public var target: String?
    public var detail: String?
    enum CodingKeys: String, CodingKey { case at, token, role, action, target, detail, clientAddress = "client_address" }
}

extension PostgresTokens {
    /// The newest audit entries the scope may see (row-level security narrows command tokens).
    public func auditLog(limit: Int) async throws -> [AuditEntry] {
        try await database.withConnection(scope) { c in
            try c.query("""
                SELECT at, token_name, role, client_address, action, target, detail FROM audit_log ORDER BY at DESC, id DESC LIMIT $1
                """, [limit]).rows.map { row in
                AuditEntry(at: try row.decode("at"), token: try row.decode("token_name"), role: try row.decode("role"),
                           clientAddress: try row.decode("client_address"), action: try row.decode("action"),
                           target: try row.decode("target"), detail: try row.decode("detail"))
            }
        }
    }
}
