import Foundation
import Hummingbird
import NIOCore
import PQ
import StockpileCore
import StockpilePostgres

/// Every error the API returns, as `{"error": {"code", "message", "field"}}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var field: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    struct Body: Encodable {
        struct Detail: Encodable { var code: String; var message: String; var field: String? }
        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(Body(error: .init(code: code, message: message, field: field)))
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        // Every 503 says when to try again (with the same id: a retried write is a replay).
        if status == .serviceUnavailable && headers[.retryAfter] == nil { headers[.retryAfter] = "1" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func invalid(_ error: FieldError, prefix: String = "") -> APIError {
        APIError(.badRequest, "invalid", "\(prefix)\(error.field): \(error.reason)", field: prefix + error.field)
    }
}

extension APIError {
    init(refusal: Refusal) {
        switch refusal.kind {
        case .notFound: self.init(.notFound, "not_found", refusal.description, field: refusal.field)
        case .conflict: self.init(.conflict, "conflict", refusal.description, field: refusal.field)
        case .forbidden: self.init(.forbidden, "forbidden", refusal.description, field: refusal.field)
        case .invalid: self.init(.badRequest, "invalid", refusal.description, field: refusal.field)
        case .held: self.init(.conflict, "lot_held", refusal.description, field: refusal.field)
        }
    }

    /// Maps what the ledger and the database say to statuses a client can act on.
    /// SP4xx are the ledger's own codes (sql/0001_ledger.sql).
    static func from(_ error: PQError, fieldPrefix: String = "") -> APIError {
        let field = error.column.map { fieldPrefix + $0 }
        let message = fieldPrefix.isEmpty ? error.message : "\(fieldPrefix.dropLast()): \(error.message)"
        switch error.sqlState {
        case "SP400": return APIError(.badRequest, "invalid", message, field: field)
        case "SP404": return APIError(.unprocessableContent, "unknown_reference", message, field: field)
        case "SP409" where error.column == "id": return APIError(.conflict, "id_conflict", message, field: field)
        case "SP409": return APIError(.conflict, "insufficient_stock", message, field: field)
        case "SP422": return APIError(.unprocessableContent, "expiry_mismatch", message, field: field)
        case "SP423": return APIError(.conflict, "lot_held", message, field: field)
        case "57014", "55P03": return APIError(.serviceUnavailable, "busy", "the service is busy; retry shortly")
        // Row-level security refused a row outside the token's scope (the service's checks should come first).
        case "42501": return APIError(.forbidden, "forbidden", "outside this token's scope", field: field)
        // A value too long for an index (a text field past its bound).
        case "54000": return APIError(.badRequest, "invalid", "a value is too long", field: field)
        case "40001", "40P01": return APIError(.serviceUnavailable, "busy", "a conflicting write got there first; retry with the same id")
        // A commit whose wait for the synchronous standby was cancelled (PQConnection.confirmCommit).
        case "01000": return APIError(.serviceUnavailable, "unconfirmed",
                                      "the write is not yet confirmed by the standby database; retry with the same id (a replay waits for it)")
        // Validation should catch these first; if a value still reaches the database malformed or
        // out of range (class 22) or breaks a constraint (class 23), it is the client's input.
        case let state? where state.hasPrefix("22"):
            return APIError(.badRequest, "invalid", "a value is malformed or out of range: \(error.message)", field: field)
        case let state? where state.hasPrefix("23"):
            return APIError(.conflict, "conflict", "the request conflicts with stored data: \(error.message)", field: field)
        default:
            if error.isConnectionFailure {
                return APIError(.serviceUnavailable, "database_unavailable", "the database is unreachable; retry shortly")
            }
            return APIError(.internalServerError, "internal", "internal error")
        }
    }
}

/// Turns anything thrown below it into the JSON error shape, so clients see one format everywhere:
/// unknown routes, oversized bodies, database failures.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as PQError {
            let apiError = APIError.from(error)
            if apiError.status == .internalServerError {
                context.logger.error("database error", metadata: ["error": "\(error)"])
            }
            // A person on a page gets a page, not JSON, while the database is away.
            if apiError.status == .serviceUnavailable, !request.uri.path.hasPrefix("/api/") {
                let page = PageRequest(request)
                var response = PageTemplates.render("message", ["message": page.t["err.unavailable"]!], page: page,
                                                    title: page.t["err.unavailableTitle"]!, status: .serviceUnavailable, signedIn: false)
                response.headers[.retryAfter] = "5"
                return response
            }
            throw apiError
        } catch let error as Refusal {
            throw APIError(refusal: error)
        } catch let error as FieldError {
            throw APIError.invalid(error)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "too_large", "request body is larger than \(context.maxUploadSize) bytes")
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound: throw APIError(.notFound, "not_found", "no such resource: \(request.uri.path)")
            case .methodNotAllowed: throw APIError(.methodNotAllowed, "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
            case .contentTooLarge: throw APIError(.contentTooLarge, "too_large", "request body is larger than \(context.maxUploadSize) bytes")
            default: throw APIError(error.status, "http_\(error.status.code)", error.status.reasonPhrase)
            }
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            throw APIError(.internalServerError, "internal", "internal error")
        }
    }
}
