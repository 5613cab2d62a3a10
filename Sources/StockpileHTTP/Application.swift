import Foundation
import Hummingbird
import Logging
import NIOCore
import PQ
import Prometheus
import StockpileCore
import StockpilePostgres

/// The per-request context. Auth (tokens, scope) will live here.
public struct StockpileRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }
    /// JSON bodies larger than this are refused with 413.
    public var maxUploadSize: Int { StockpileAPI.maxJSONBody }
}

/// What the HTTP layer needs from the rest of the program.
public struct StockpileServices: Sendable {
    public var database: StockpileDatabase
    public var metrics: PrometheusCollectorRegistry?
    public var timeZone: TimeZone
    public var logger: Logger

    public init(database: StockpileDatabase, metrics: PrometheusCollectorRegistry? = nil,
                timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!, logger: Logger = Logger(label: "stockpile")) {
        self.database = database
        self.metrics = metrics
        self.timeZone = timeZone
        self.logger = logger
    }
}

public struct HTTPSettings: Sendable {
    public var host: String
    public var port: Int
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

public enum StockpileAPI {
    public static let maxJSONBody = 1 << 20
    public static let maxCSVBody = 64 << 20
    public static let maxBatch = 1000

    /// Every route the service answers: the OpenAPI test checks each is documented.
    public static let routes: [(method: String, path: String)] = [
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.yaml"),
        ("POST", "/api/v1/movements"), ("POST", "/api/v1/movements/batch"), ("GET", "/api/v1/movements"),
        ("GET", "/api/v1/facilities"), ("GET", "/api/v1/facilities/{code}/stock"), ("GET", "/api/v1/items"),
        ("GET", "/api/v1/regions"), ("POST", "/api/v1/import/{file}"),
    ]
}

/// Builds the router: the whole HTTP surface, testable without a socket.
public func buildRouter(_ services: StockpileServices) -> Router<StockpileRequestContext> {
    let router = Router(context: StockpileRequestContext.self)
    router.addMiddleware {
        ErrorMiddleware()
        MetricsMiddleware()
        LogRequestsMiddleware(.debug)
    }
    // Until tokens (next step), the API works under the system scope.
    let scope = AccessScope.system("api")
    let ledger = PostgresLedger(services.database, scope: scope)
    let masterData = PostgresMasterData(services.database, scope: scope)
    let importer = CSVImporter(services.database, scope: scope)

    router.get("/healthz") { _, _ in try JSON.response(["status": "ok"]) }
    router.get("/readyz") { _, _ in
        guard await services.database.isReachable() else {
            throw APIError(.serviceUnavailable, "database_unavailable", "the database is unreachable")
        }
        return try JSON.response(["status": "ready"])
    }
    router.get("/metrics") { _, _ in
        var buffer: [UInt8] = []
        services.metrics?.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }
    router.get("/openapi.yaml") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
    }

    let api = router.group("api/v1")

    api.post("movements") { request, context in
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let movement = try JSON.decode(MovementInput.self, from: body).draft.validated()
        let recorded = try await ledger.record(movement, recordedBy: recorder(request))
        return try JSON.response(MovementOutput(movement: recorded), status: recorded.replay ? .ok : .created)
    }

    api.post("movements/batch") { request, context in
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        guard let inputs = try JSON.decode(BatchInput.self, from: body).movements else {
            throw APIError(.badRequest, "invalid", "movements: required, an array of movements", field: "movements")
        }
        guard !inputs.isEmpty, inputs.count <= StockpileAPI.maxBatch else {
            throw APIError(.badRequest, "invalid", "movements: between 1 and \(StockpileAPI.maxBatch) per batch", field: "movements")
        }
        var movements: [MovementRequest] = []
        for (i, input) in inputs.enumerated() {
            do { movements.append(try input.draft.validated()) } catch let error as FieldError { throw APIError.invalid(error, prefix: "movements[\(i)].") }
        }
        do {
            let recorded = try await ledger.record(batch: movements, recordedBy: recorder(request))
            let output = BatchOutput(recorded)
            return try JSON.response(output, status: output.recorded == 0 ? .ok : .created)
        } catch let error as BatchError {
            throw APIError.from(error.underlying, fieldPrefix: "movements[\(error.index)].")
        }
    }

    api.get("movements") { request, context in
        let query = request.uri.queryParameters
        var since: Date?
        if let text = query["since"].map(String.init) {
            guard let date = Timestamps.parse(text) ?? LocalDate(text).map({ date in
                Calendar.gregorian(in: services.timeZone).date(from: DateComponents(year: date.year, month: date.month, day: date.day))!
            }) else {
                throw APIError(.badRequest, "invalid", "since: must be a date YYYY-MM-DD or an ISO-8601 time", field: "since")
            }
            since = date
        }
        let limit = try intParameter(query["limit"], name: "limit", default: 100, range: 1...1000)
        let page = try await ledger.movements(facility: query["facility"].map(String.init), item: query["item"].map(String.init),
                                              since: since, after: query["after"].map(String.init), limit: limit)
        return try JSON.response(MovementsPageOutput(movements: page.movements, next: page.next))
    }

    api.get("facilities/{code}/stock") { request, context in
        let code = try context.parameters.require("code")
        guard let lots = try await ledger.stock(facility: code) else {
            throw APIError(.notFound, "not_found", "unknown facility \(code)", field: "code")
        }
        return try JSON.response(StockOutput(facility: code, lots: lots))
    }

    api.get("facilities") { request, _ in
        try JSON.response(["facilities": try await masterData.facilities(region: request.uri.queryParameters["region"].map(String.init))])
    }
    api.get("items") { _, _ in try JSON.response(["items": try await masterData.items()]) }
    api.get("regions") { _, _ in try JSON.response(["regions": try await masterData.regions()]) }

    api.post("import/{file}") { request, context in
        let file = try context.parameters.require("file")
        guard CSVImporter.fileOrder.contains(file) else {
            throw APIError(.notFound, "not_found", "unknown import \(file); expected one of \(CSVImporter.fileOrder.joined(separator: ", "))", field: "file")
        }
        let body = try await request.body.collect(upTo: StockpileAPI.maxCSVBody)
        guard body.readableBytes > 0 else {
            throw APIError(.badRequest, "invalid", "send the CSV file as the request body (UTF-8)")
        }
        // Refuse, rather than repair, a file that is not UTF-8 (a GBK export would become mojibake).
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw APIError(.unprocessableContent, "invalid_csv", "\(file).csv is not UTF-8 text; save the spreadsheet as CSV UTF-8")
        }
        do {
            let summary = try await importer.importFiles([file: text], recordedBy: recorder(request))
            return try JSON.response(summary)
        } catch let error as ImportError {
            throw APIError(.unprocessableContent, "invalid_csv", error.description, field: error.column)
        }
    }
    return router
}

/// Who recorded a write. Until tokens exist (the access issue), the API records "api".
func recorder(_ request: Request) -> String { "api" }

func intParameter(_ value: Substring?, name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
    guard let value else { return defaultValue }
    guard let number = Int(value), range.contains(number) else {
        throw APIError(.badRequest, "invalid", "\(name): must be a whole number in \(range.lowerBound)…\(range.upperBound)", field: name)
    }
    return number
}

extension Calendar {
    static func gregorian(in zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }
}

/// The application: the router on a socket, with the services' lifecycle.
public func buildApplication(_ services: StockpileServices, settings: HTTPSettings,
                             onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
    Application(router: buildRouter(services),
                configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "stockpile"),
                onServerRunning: onServerRunning,
                logger: services.logger)
}
