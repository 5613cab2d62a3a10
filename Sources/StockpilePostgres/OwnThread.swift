import Foundation

/// Runs blocking or CPU-heavy work on a thread of its own, never on Swift's cooperative pool,
/// whose few threads (one per core) serve every HTTP request.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
