/// An error from libpq or the server, always carrying the SQLSTATE when the server sent one.
public struct PQError: Error, CustomStringConvertible, Sendable {
    /// The five-character SQLSTATE, or nil for client-side and connection-level failures.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The column named by the error (`RAISE ... USING COLUMN =` sets it too).
    public var column: String?
    public var constraint: String?
    /// True when the connection itself is gone (killed backend, network, server shutdown).
    public var isConnectionFailure: Bool

    public init(sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil,
                column: String? = nil, constraint: String? = nil, isConnectionFailure: Bool = false) {
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.column = column
        self.constraint = constraint
        self.isConnectionFailure = isConnectionFailure
    }

    /// Serialization failures and deadlocks: the transaction may simply be run again.
    public var isRetryableTransactionFailure: Bool {
        sqlState == "40001" || sqlState == "40P01"
    }

    public var description: String {
        var text = "PostgreSQL error"
        if let sqlState { text += " \(sqlState)" }
        text += ": \(message)"
        if let detail { text += " (\(detail))" }
        return text
    }

    public static func client(_ message: String) -> PQError { PQError(message: message) }
}

extension PQError {
    /// A text parameter holding a NUL byte, which no PostgreSQL text can (refused before sending;
    /// the SQLSTATE the server gives for the same).
    static let textWithNUL = PQError(sqlState: "22021", message: "text contains a NUL byte")
}
