import Foundation
import PQ

/// The roles of SPEC.md "Access".
public enum Role: String, Sendable, Codable, CaseIterable {
    case warehouse, command, admin
}

/// What one request (or job) may see and touch, and who it is for the ledger's provenance.
/// StockpileDatabase puts it on the connection before any query, where row-level security reads it.
public struct AccessScope: Sendable, Equatable {
    public enum Facilities: Sendable, Equatable {
        case all
        /// Facility ids (not codes): what the policies compare against.
        case only(Set<Int>)
    }

    public var actor: String
    public var role: Role
    public var facilities: Facilities
    public var clientAddress: String?
    /// For command tokens: the region at the top of their subtree (its code).
    public var regionCode: String?
    /// For warehouse tokens: the facility codes they were issued for.
    public var facilityCodes: [String]
    /// Longest a statement of this scope may run, in milliseconds (0: no limit). Token scopes get the
    /// service's request limit (StockpileDatabase.requestTimeoutMilliseconds), so one expensive
    /// request cannot hold a connection for minutes; jobs the operator runs (nightly, import) have none.
    public var statementTimeoutMilliseconds = 0

    /// The client's own limit on one call (PQConnection.callDeadline): the statement timeout and 2 s
    /// more, so the server's timeout ends a slow statement first, and only a wait the server does not
    /// time out (a commit waiting for a synchronous standby that is gone) is cancelled by the client.
    public var callDeadline: Duration? {
        statementTimeoutMilliseconds > 0 ? .milliseconds(statementTimeoutMilliseconds + 2000) : nil
    }

    public init(actor: String, role: Role, facilities: Facilities, clientAddress: String? = nil,
                regionCode: String? = nil, facilityCodes: [String] = []) {
        self.actor = actor
        self.role = role
        self.facilities = facilities
        self.clientAddress = clientAddress
        self.regionCode = regionCode
        self.facilityCodes = facilityCodes
    }

    /// Jobs the operator runs (import, demo, migrations' data, benchmarks): everything.
    public static func system(_ actor: String = "system") -> AccessScope {
        AccessScope(actor: actor, role: .admin, facilities: .all)
    }

    /// The region a request works in when it names none: a command token's own, else everything.
    public func region(_ asked: String?) -> String? {
        asked ?? (role == .command ? regionCode : nil)
    }

    public func includes(facilityID: Int) -> Bool {
        switch facilities {
        case .all: return true
        case .only(let ids): return ids.contains(facilityID)
        }
    }

    /// The statement that puts this scope on a connection (session settings, reset every checkout).
    public static let applySQL = """
        SELECT set_config('stockpile.scope', $1, false), set_config('stockpile.facility_ids', $2, false),
               set_config('stockpile.token', $3, false), set_config('stockpile.client', $4, false),
               set_config('statement_timeout', $5, false)
        """

    var applyParameters: [any PQEncodable] {
        switch facilities {
        case .all:
            return ["all", "{}", actor, clientAddress ?? "", String(statementTimeoutMilliseconds)]
        case .only(let ids):
            return ["facilities", "{" + ids.sorted().map(String.init).joined(separator: ",") + "}", actor, clientAddress ?? "",
                    String(statementTimeoutMilliseconds)]
        }
    }
}
