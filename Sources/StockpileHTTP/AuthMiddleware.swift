import Foundation
import Hummingbird
import NIOCore
import StockpileCore
import StockpilePostgres
import Synchronization

/// Resolves the bearer token of every /api/v1 request into an AccessScope (a database lookup per
/// request, so a revoked token is refused at once) and applies the per-token rate limit.
/// Routes then decide what the scope's role may do (StockpileRequestContext.require).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = StockpileRequestContext
    let database: StockpileDatabase
    let limiter: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // One spelling per route: the router drops empty segments, so "//api/…" would reach the API
        // handlers while a prefix test took it for a page (cookie-signed, not rate-limited). Refuse it.
        let path = request.uri.path
        guard !path.contains("//") else { throw APIError(.notFound, "not_found", "no such resource: \(path)") }
        let first = path.split(separator: "/").first
        guard first == "api" else {
            // Pages (PageRoutes) are signed in by the session cookie the login form sets; the API never reads it.
            guard first != "static", let secret = PageSession.secret(request) else { return try await next(request, context) }
            var context = context
            context.scope = try await PostgresTokens.authenticateSession(secret, clientAddress: context.remoteAddress.flatMap { $0.ipAddress }, database: database)
            if let scope = context.scope { context.logger[metadataKey: "token"] = .string(scope.actor) }
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        guard header.hasPrefix("Bearer ") else {
            throw APIError(.unauthorized, "unauthenticated", "the Authorization header must be: Bearer sp_…")
        }
        let secret = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        let client = context.remoteAddress.flatMap { $0.ipAddress }
        guard let scope = try await PostgresTokens.authenticate(secret, clientAddress: client, database: database) else {
            throw APIError(.unauthorized, "unauthenticated", "the token is unknown, expired or revoked")
        }
        if let retryAfter = limiter.admit(scope.actor) {
            var error = APIError(.tooManyRequests, "rate_limited", "too many requests for token \(scope.actor); retry after \(retryAfter) s")
            error.headers[.retryAfter] = String(retryAfter)
            throw error
        }
        var context = context
        context.scope = scope
        // The token's name may be logged; the secret never is.
        context.logger[metadataKey: "token"] = .string(scope.actor)
        return try await next(request, context)
    }
}

/// A token bucket per token name: `perSecond` sustained, a burst of twice that.
final class RateLimiter: Sendable {
    private struct Bucket { var tokens: Double; var updated: ContinuousClock.Instant }
    private let buckets = Mutex<[String: Bucket]>([:])
    let perSecond: Double

    init(perSecond: Double) { self.perSecond = perSecond }

    /// nil when admitted; otherwise the whole seconds to wait.
    func admit(_ key: String) -> Int? {
        let now = ContinuousClock.now
        let capacity = perSecond * 2
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            bucket.tokens = min(capacity, bucket.tokens + perSecond * elapsed.inSeconds)
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
        }
    }
}
