import Foundation
import Logging
import Metrics
import NIOPosix
import Synchronization

/// A fixed-size pool of connections. Blocking libpq calls run on the pool's own NIOThreadPool,
/// one thread per connection, never on Swift's cooperative threads.
public final class PQPool: Sendable {
    public struct Configuration: Sendable {
        public var parameters: [(String, String)]
        public var size: Int
        /// How long a request waits for a free connection before it is refused (503).
        public var checkoutTimeout: Duration
        /// Statements sent once on every new connection (e.g. `SET ROLE`).
        public var onConnect: [String]

        public init(parameters: [(String, String)], size: Int = 8, checkoutTimeout: Duration = .seconds(10), onConnect: [String] = []) {
            self.parameters = parameters
            self.size = size
            self.checkoutTimeout = checkoutTimeout
            self.onConnect = onConnect
        }
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<PQConnection?, any Error>
    }

    private struct State {
        var idle: [PQConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    public let configuration: Configuration
    private let threads: NIOThreadPool
    private let state = Mutex(State())
    private let logger: Logger
    private let waitTimer = Timer(label: "stockpile_pool_wait_seconds")
    private let reconnects = Counter(label: "stockpile_pool_reconnects_total")

    public init(_ configuration: Configuration, logger: Logger = Logger(label: "stockpile.pool")) {
        self.configuration = configuration
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: configuration.size)
        threads.start()
    }

    /// Closes idle connections and stops the threads; checked-out connections close on return.
    public func shutdown() async {
        // Dropping the idle connections closes them (PQfinish in deinit).
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume(throwing: PQError(message: "pool is shut down")) }
        try? await threads.shutdownGracefully()
    }

    /// Checks a connection out, runs the blocking `body` on the pool's threads, and returns it.
    /// Blocking work that is not a pooled query (a one-off connection), on the pool's threads.
    public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        let connection = try await checkout()
        do {
            let value = try await threads.runIfActive { try body(connection) }
            await checkin(connection)
            return value
        } catch {
            await checkin(connection)
            throw error
        }
    }

    /// A transaction on a pooled connection. Serialization failures and deadlocks are retried
    /// by the connection. With `retryOnConnectionLoss`, a transaction whose connection died is
    /// run again on a fresh one: only for bodies that are safe to repeat (every ledger write is,
    /// because movement ids make a second application a replay).
    public func transaction<T: Sendable>(isolation: PQConnection.Isolation = .readCommitted,
                                         retryOnConnectionLoss: Bool = false,
                                         _ body: @escaping @Sendable (PQConnection) throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await withConnection { try $0.transaction(isolation: isolation, body) }
            } catch let error as PQError where error.isConnectionFailure && retryOnConnectionLoss && attempt < 3 {
                attempt += 1
                logger.warning("connection lost, running the transaction again", metadata: ["error": "\(error)"])
            }
        }
    }

    private func checkout() async throws -> PQConnection {
        let started = ContinuousClock.now
        enum Next { case ready(PQConnection), create, wait }
        let next: Next = try state.withLock { state in
            if state.closed { throw PQError(message: "pool is shut down") }
            if let connection = state.idle.popLast() { return .ready(connection) }
            if state.open < configuration.size { state.open += 1; return .create }
            return .wait
        }
        let connection: PQConnection
        switch next {
        case .ready(let c):
            connection = c
        case .create:
            do {
                connection = try await threads.runIfActive { try self.open() }
            } catch {
                releaseSlot()
                throw error
            }
        case .wait:
            connection = try await waitForConnection()
        }
        let waited = (ContinuousClock.now - started).components
        waitTimer.recordNanoseconds(waited.seconds * 1_000_000_000 + waited.attoseconds / 1_000_000_000)
        return connection
    }

    private func waitForConnection() async throws -> PQConnection {
        let id = state.withLock { state -> UInt64 in state.nextWaiterID += 1; return state.nextWaiterID }
        let timeout = configuration.checkoutTimeout
        let timer = Task {
            try await Task.sleep(for: timeout)
            let waiter = self.state.withLock { state -> Waiter? in
                guard let i = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: i)
            }
            waiter?.continuation.resume(throwing: PQError(sqlState: "57014",
                message: "no database connection free within \(timeout); the service is overloaded"))
        }
        defer { timer.cancel() }
        let handed = try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.waiters.append(Waiter(id: id, continuation: continuation)) }
        }
        if let handed { return handed }
        // A slot was freed by a discarded connection: open a new one in its place.
        do {
            return try await threads.runIfActive { try self.open() }
        } catch {
            releaseSlot()
            throw error
        }
    }

    /// A connection could not be opened: give its slot to a waiter (who will try to open one in
    /// turn, e.g. once the server is back) rather than leave the waiter until its timeout.
    private func releaseSlot() {
        let waiter: Waiter? = state.withLock { state in
            if !state.closed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: nil)
    }

    private func open() throws -> PQConnection {
        let connection = try PQConnection(parameters: configuration.parameters)
        for statement in configuration.onConnect { try connection.execute(statement) }
        return connection
    }

    private func checkin(_ connection: PQConnection) async {
        var healthy = !connection.isBroken
        if healthy && connection.transactionStatus != .idle {
            // A body that left a transaction open (or a cancelled call): roll it back, off the cooperative pool.
            healthy = (try? await threads.runIfActive { () -> Bool in
                _ = try? connection.execute("ROLLBACK")
                return connection.transactionStatus == .idle
            }) ?? false
        }
        if !healthy { reconnects.increment() }
        // Hand the connection (or, if it is broken, its slot) to the first waiter.
        let waiter: Waiter? = state.withLock { state in
            if state.closed {
                state.open -= 1
                return nil
            }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            if healthy { state.idle.append(connection) } else { state.open -= 1 }
            return nil
        }
        waiter?.continuation.resume(returning: healthy ? connection : nil)
    }
}
