import Foundation

/// Runs blocking or CPU-heavy work on a thread of its own, never on Swift's cooperative pool,
/// whose few threads (one per core) serve every HTTP request.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A value built on a thread of its own from the moment this is made, for blocking code (a
/// connection's thread) to go on meanwhile and wait for it where it needs it: `value` blocks until
/// it is built, and may be read any number of times.
final class Prebuilt<T: Sendable>: @unchecked Sendable {
    private let built = DispatchSemaphore(value: 0)
    // Written once, by the building thread, before `built` is signalled; read only after waiting on it.
    private var result: T?

    init(_ build: @escaping @Sendable () -> T) {
        Thread { [self] in
            result = build()
            built.signal()
        }.start()
    }

    var value: T {
        built.wait()
        defer { built.signal() }
        return result!
    }
}
