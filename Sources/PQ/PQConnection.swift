import CLibPQ
import Foundation
import Synchronization

/// One libpq connection. Not thread-safe: a connection is used by one thread at a time
/// (the pool hands it to exactly one task, whose blocking calls run on the pool's threads).
public final class PQConnection: @unchecked Sendable {
    private(set) var handle: OpaquePointer?
    public let parameters: [(String, String)]
    /// What the notice receiver saw during the current call (see `connect`).
    private let notices = NoticeLog()
    /// Longest one call may take before this client cancels it (PQcancel), or nil. The server's
    /// statement_timeout ends a slow statement first; this ends what it cannot: a commit waiting
    /// for a synchronous standby that is gone (PostgreSQL disables the timeout before the commit).
    /// The cancel turns that wait into success with a WARNING, which `confirmCommit` reports as an
    /// unknown outcome; the request is answered 503 and its connection is free again.
    public var callDeadline: Duration?

    /// Statements prepared on this session (`queryPrepared`), by their text, with their names, and
    /// how many names were given.
    private var prepared: [String: String] = [:]
    private var preparedNames = 0

    /// Set by the notice receiver, read after each call on the same thread.
    final class NoticeLog {
        /// A WARNING with SQLSTATE 01000 or 57P01 arrived: what a commit gets when its wait for the
        /// synchronous standby is cancelled (pg_cancel_backend, a client's cancel) or terminated.
        /// The commit then reports success although only the primary has it. Matched by SQLSTATE
        /// and severity, not by text: servers translate their messages. The ledger raises no warnings.
        var commitUnconfirmed = false
    }

    /// Connection settings on top of whatever the caller gives: the session speaks UTC and ISO
    /// dates so text results decode the same way everywhere.
    static let sessionDefaults: [(String, String)] = [
        ("connect_timeout", "10"),
        ("keepalives", "1"),
        ("keepalives_idle", "30"),
        ("keepalives_interval", "10"),
        ("keepalives_count", "3"),
        ("client_encoding", "UTF8"),
    ]

    /// Connects with PQconnectdbParams. `parameters` are libpq keywords; a `dbname` holding a
    /// `postgresql://` URL is expanded (expand_dbname), and later keywords override it.
    public init(parameters: [(String, String)]) throws {
        var all = parameters
        for (key, value) in Self.sessionDefaults where !parameters.contains(where: { $0.0 == key }) {
            all.append((key, value))
        }
        // Session time zone and date style, sent as startup options so no extra round trip is needed.
        let options = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601"
        if let i = all.firstIndex(where: { $0.0 == "options" }) {
            all[i].1 = options + " " + all[i].1
        } else {
            all.append(("options", options))
        }
        self.parameters = all
        try connect()
    }

    /// Convenience: a URL or a libpq keyword string, plus extra keywords.
    public convenience init(url: String, extra: [(String, String)] = []) throws {
        try self.init(parameters: [("dbname", url)] + extra)
    }

    private func connect() throws {
        if let handle { PQfinish(handle) }
        prepared = [:]
        let keys = parameters.map(\.0)
        let values = parameters.map(\.1)
        handle = CStringArray.with(keys) { keyPointers in
            CStringArray.with(values) { valuePointers in
                PQconnectdbParams(keyPointers, valuePointers, 1)
            }
        }
        guard let handle else { throw PQError(message: "out of memory creating a connection", isConnectionFailure: true) }
        if PQstatus(handle) != CONNECTION_OK {
            let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(handle)
            self.handle = nil
            throw PQError(message: "could not connect: \(message)", isConnectionFailure: true)
        }
        // Notices ("relation already exists, skipping") would otherwise go to stderr; the receiver
        // only keeps note of a cancelled wait for the synchronous standby.
        PQsetNoticeReceiver(handle, { arg, result in
            guard let arg, let result else { return }
            let log = Unmanaged<NoticeLog>.fromOpaque(arg).takeUnretainedValue()
            let field = { (code: Character) in PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) } }
            if field("V") == "WARNING", let state = field("C"), state == "01000" || state == "57P01" { log.commitUnconfirmed = true }
        }, Unmanaged.passUnretained(notices).toOpaque())
    }

    /// Throws when the call just made drew a cancelled synchronous-replication wait: whatever it
    /// committed is on the primary only, so its outcome is unknown, like a connection lost at
    /// COMMIT. Callers retry with the same ids (a replay then waits for the standby: sql/0020).
    ///
    /// Only a call that left the connection outside a transaction block can have committed: a
    /// WARNING 01000 inside an open transaction is some other warning (ANALYZE by a role that does
    /// not own the table gives one), and taking it for a commit's stopped a city's nightly run.
    private func confirmCommit() throws {
        guard notices.commitUnconfirmed else { return }
        notices.commitUnconfirmed = false
        if let handle, PQtransactionStatus(handle) == PQTRANS_INTRANS || PQtransactionStatus(handle) == PQTRANS_INERROR { return }
        throw PQError(sqlState: "01000", message: "the commit was not confirmed by the synchronous standby (its wait was cancelled); its outcome is unknown",
                      isConnectionFailure: true)
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// True when libpq has noticed the connection is gone; the pool then replaces it.
    public var isBroken: Bool {
        guard let handle else { return true }
        return PQstatus(handle) != CONNECTION_OK
    }

    public enum TransactionStatus: Sendable { case idle, active, inTransaction, inError, unknown }

    public var transactionStatus: TransactionStatus {
        guard let handle else { return .unknown }
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: return .idle
        case PQTRANS_ACTIVE: return .active
        case PQTRANS_INTRANS: return .inTransaction
        case PQTRANS_INERROR: return .inError
        default: return .unknown
        }
    }

    /// The server process id, for pg_terminate_backend in tests and for logs.
    public var backendPID: Int32 {
        guard let handle else { return 0 }
        return PQbackendPID(handle)
    }

    /// Drops and re-opens the connection with the same parameters.
    public func reconnect() throws { try connect() }

    /// A parameterized query (PQexecParams): parameters never travel inside the SQL text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PQEncodable] = []) throws -> PQResult {
        notices.commitUnconfirmed = false
        let result = try withinDeadline { try consume(try send(sql, parameters)) }
        try confirmCommit()
        return result
    }

    /// `query`, with the statement parsed and planned once per connection (PQprepare) and only
    /// executed after that: for the few statements every request sends (the token, the scope, a
    /// movement), whose planning was a large share of the server's time per request (issue 18).
    /// Only for statements whose plan does not depend on the values: a prepared statement may keep
    /// one generic plan.
    @discardableResult
    public func queryPrepared(_ sql: String, _ parameters: [any PQEncodable] = []) throws -> PQResult {
        do {
            return try runPrepared(sql, parameters)
        } catch let error as PQError where (error.sqlState == "0A000" || error.sqlState == "26000") && transactionStatus == .idle {
            // The statement no longer fits the schema (a migration changed what a function returns)
            // or is gone from the session: outside a transaction, prepared afresh and run once more.
            return try runPrepared(sql, parameters)
        }
    }

    private func runPrepared(_ sql: String, _ parameters: [any PQEncodable]) throws -> PQResult {
        guard let handle else { throw PQError(message: "connection is closed", isConnectionFailure: true) }
        notices.commitUnconfirmed = false
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            preparedNames += 1
            name = "stockpile_\(preparedNames)"
            _ = try withinDeadline { try consume(PQprepare(handle, name, sql, Int32(parameters.count), nil)) }
            prepared[sql] = name
        }
        do {
            let result = try withinDeadline { try consume(try send(sql, parameters, prepared: name)) }
            try confirmCommit()
            return result
        } catch let error as PQError where error.sqlState == "0A000" || error.sqlState == "26000" {
            prepared[sql] = nil
            throw error
        }
    }

    /// Runs one libpq call, cancelling it from another thread if it outlives `callDeadline`.
    func withinDeadline<T>(_ call: () throws -> T) throws -> T {
        guard let deadline = callDeadline, let handle, let cancel = PQgetCancel(handle) else { return try call() }
        // The cancel object is freed only once the timer can no longer use it.
        let state = Mutex<(done: Bool, cancel: OpaquePointer?)>((false, cancel))
        let timer = DispatchWorkItem {
            state.withLock { state in
                guard !state.done, let cancel = state.cancel else { return }
                var message = [CChar](repeating: 0, count: 256)
                _ = PQcancel(cancel, &message, Int32(message.count))
            }
        }
        let (seconds, attoseconds) = deadline.components
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)),
                                          execute: timer)
        defer {
            timer.cancel()
            state.withLock { state in
                state.done = true
                if let cancel = state.cancel { PQfreeCancel(cancel) }
                state.cancel = nil
            }
        }
        return try call()
    }

    /// A parameterized query whose rows are read in place, one at a time, by column position:
    /// for reads of millions of rows, where copying every value into a String first costs more
    /// than the query.
    public func scan(_ sql: String, _ parameters: [any PQEncodable] = [], _ body: (PQRowView) throws -> Void) throws {
        guard let result = try send(sql, parameters) else { throw connectionError() }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else { throw error(from: result) }
        for row in 0..<PQntuples(result) { try body(PQRowView(result: result, row: row)) }
    }

    private func send(_ sql: String, _ parameters: [any PQEncodable], prepared name: String? = nil) throws -> OpaquePointer? {
        guard let handle else { throw PQError(message: "connection is closed", isConnectionFailure: true) }
        let values = parameters.map(\.pqValue)
        // Copy every parameter into one buffer we own, each NUL-terminated, and hand libpq
        // pointers into it only inside this scope.
        var buffer: [UInt8] = []
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for value in values {
            switch value {
            case .null:
                offsets.append(nil); lengths.append(0); formats.append(0)
            case .text(let text):
                offsets.append(buffer.count)
                let bytes = Array(text.utf8)
                if bytes.contains(0) { throw PQError.textWithNUL }
                buffer.append(contentsOf: bytes)
                buffer.append(0)
                lengths.append(Int32(bytes.count)); formats.append(0)
            case .binary(let bytes):
                offsets.append(buffer.count)
                buffer.append(contentsOf: bytes)
                buffer.append(0)
                lengths.append(Int32(bytes.count)); formats.append(1)
            }
        }
        let result: OpaquePointer? = buffer.withUnsafeBufferPointer { raw in
            let base = raw.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in offset.flatMap { o in base.map { $0 + o } } }
            return pointers.withUnsafeBufferPointer { pointerBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    formats.withUnsafeBufferPointer { formatBuffer in
                        if let name {
                            return PQexecPrepared(handle, name, Int32(values.count),
                                                  pointerBuffer.baseAddress, lengthBuffer.baseAddress, formatBuffer.baseAddress, 0)
                        }
                        return PQexecParams(handle, sql, Int32(values.count), nil,
                                            pointerBuffer.baseAddress, lengthBuffer.baseAddress, formatBuffer.baseAddress, 0)
                    }
                }
            }
        }
        return result
    }

    /// Runs one or more statements with the simple query protocol (migrations, SET, BEGIN).
    /// Never pass it text that holds user input.
    @discardableResult
    public func execute(_ sql: String) throws -> PQResult {
        guard let handle else { throw PQError(message: "connection is closed", isConnectionFailure: true) }
        notices.commitUnconfirmed = false
        let result = try withinDeadline { try consume(PQexec(handle, sql)) }
        try confirmCommit()
        return result
    }

    private func consume(_ result: OpaquePointer?) throws -> PQResult {
        guard let result else { throw connectionError() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN:
            return Self.copyOut(result)
        default:
            throw error(from: result)
        }
    }

    static func copyOut(_ result: OpaquePointer) -> PQResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var names: [String] = []
        names.reserveCapacity(columnCount)
        // COPY results have columns but no names.
        for c in 0..<columnCount { names.append(PQfname(result, Int32(c)).map { String(cString: $0) } ?? "column\(c)") }
        let index = PQColumnIndex(names: names)
        var rows: [PQRow] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                }
            }
            rows.append(PQRow(index: index, values: values))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PQResult(columns: names, rows: rows, affectedRows: affected)
    }

    private func field(_ result: OpaquePointer, _ code: Character) -> String? {
        guard let ascii = code.asciiValue, let pointer = PQresultErrorField(result, Int32(ascii)) else { return nil }
        return String(cString: pointer)
    }

    func error(from result: OpaquePointer) -> PQError {
        let sqlState = field(result, "C")
        let message = field(result, "M") ?? String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
        // Class 08 is connection exception; 57P0x is the server (or pg_terminate_backend) ending the session.
        // An error without a SQLSTATE was made by libpq, not the server: "server closed the connection
        // unexpectedly" when a backend died hard comes that way, sometimes before PQstatus says so.
        let lost = sqlState == nil || isBroken || (sqlState?.hasPrefix("08") ?? false) || ["57P01", "57P02", "57P03"].contains(sqlState ?? "")
        return PQError(sqlState: sqlState, message: message, detail: field(result, "D"), hint: field(result, "H"),
                       column: field(result, "c"), constraint: field(result, "n"), isConnectionFailure: lost)
    }

    func connectionError() -> PQError {
        let message = handle.map { String(cString: PQerrorMessage($0)) } ?? "connection is closed"
        return PQError(message: message.trimmingCharacters(in: .whitespacesAndNewlines), isConnectionFailure: true)
    }

    // MARK: Transactions

    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` in a transaction, and runs it again (up to `maxAttempts` in all) when the
    /// server reports a serialization failure or deadlock (40001, 40P01).
    public func transaction<T>(isolation: Isolation = .readCommitted, maxAttempts: Int = 5,
                               _ body: (PQConnection) throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                try execute(isolation == .readCommitted ? "BEGIN" : "BEGIN ISOLATION LEVEL \(isolation.rawValue)")
                let value = try body(self)
                // COMMIT of an aborted transaction "succeeds" as a ROLLBACK; never report that as a commit.
                if transactionStatus == .inError {
                    throw PQError(sqlState: "25P02", message: "the transaction failed and was rolled back")
                }
                try execute("COMMIT")
                return value
            } catch let error as PQError {
                if !isBroken && transactionStatus != .idle { _ = try? execute("ROLLBACK") }
                if error.isRetryableTransactionFailure && attempt < maxAttempts && !isBroken {
                    attempt += 1
                    // Back off a little, randomly, so the colliding transactions do not meet again.
                    usleep(UInt32.random(in: 1_000...(5_000 * UInt32(attempt))))
                    continue
                }
                throw error
            } catch {
                if !isBroken && transactionStatus != .idle { _ = try? execute("ROLLBACK") }
                throw error
            }
        }
    }

    // MARK: COPY

    /// COPY ... FROM STDIN in text format. Each element of `rows` is one row's fields;
    /// nil is NULL. Returns the number of rows the server took.
    @discardableResult
    public func copyIn(_ sql: String, rows: some Sequence<[String?]>) throws -> Int {
        guard let handle else { throw PQError(message: "connection is closed", isConnectionFailure: true) }
        try consume(PQexec(handle, sql)) // PGRES_COPY_IN
        var chunk: [UInt8] = []
        chunk.reserveCapacity(1 << 16)
        func flush() throws {
            guard !chunk.isEmpty else { return }
            let sent = chunk.withUnsafeBufferPointer { raw in
                raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) {
                    PQputCopyData(handle, $0, Int32(raw.count))
                }
            }
            chunk.removeAll(keepingCapacity: true)
            if sent != 1 { throw connectionError() }
        }
        for row in rows {
            PQCopyText.append(row, to: &chunk)
            if chunk.count >= 1 << 16 { try flush() }
        }
        try flush()
        if PQputCopyEnd(handle, nil) != 1 { throw connectionError() }
        var firstError: PQError?
        var copied = 0
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if firstError == nil {
                firstError = error(from: result)
            }
            PQclear(result)
        }
        if let firstError { throw firstError }
        return copied
    }
}

/// COPY's text format: tab-separated, `\N` for NULL, backslash escapes for the specials.
public enum PQCopyText {
    public static func append(_ row: [String?], to out: inout [UInt8]) {
        for (i, field) in row.enumerated() {
            if i > 0 { out.append(0x09) }
            guard let field else { out.append(contentsOf: [0x5C, 0x4E]); continue }
            for byte in field.utf8 {
                switch byte {
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x09: out.append(contentsOf: [0x5C, 0x74])
                case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: out.append(contentsOf: [0x5C, 0x72])
                default: out.append(byte)
                }
            }
        }
        out.append(0x0A)
    }
}

/// A NULL-terminated array of C strings that lives only for the duration of `body`.
enum CStringArray {
    static func with<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        var buffer: [UInt8] = []
        var offsets: [Int] = []
        for s in strings {
            offsets.append(buffer.count)
            buffer.append(contentsOf: s.utf8)
            buffer.append(0)
        }
        return buffer.withUnsafeBufferPointer { raw in
            let base = UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { base + $0 } + [nil]
            return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }
}
