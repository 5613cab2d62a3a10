import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import PQ
import Prometheus
import StockpileCore
import StockpilePostgres

/// The per-request context: who is asking (set by AuthMiddleware from the bearer token).
public struct StockpileRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var remoteAddress: SocketAddress?
    public var scope: AccessScope?
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
    /// JSON bodies larger than this are refused with 413.
    public var maxUploadSize: Int { StockpileAPI.maxJSONBody }

    /// The caller's scope, if its role may use this route: 401 without a valid token, 403 for a
    /// role the route does not admit.
    func require(_ roles: Set<Role>, to action: String) throws -> AccessScope {
        guard let scope else {
            throw APIError(.unauthorized, "unauthenticated", "send a valid bearer token: Authorization: Bearer sp_…")
        }
        guard roles.contains(scope.role) else {
            throw APIError(.forbidden, "forbidden", "a \(scope.role.rawValue) token may not \(action)")
        }
        return scope
    }
}

/// What the HTTP layer needs from the rest of the program.
public struct StockpileServices: Sendable {
    public var database: StockpileDatabase
    public var metrics: PrometheusCollectorRegistry?
    public var timeZone: TimeZone
    public var logger: Logger
    /// Requests per second each token may make (a burst of twice that is allowed).
    public var rateLimit: Double
    /// Whether people reach the service over HTTPS (its own TLS, or a proxy's in front): then every
    /// cookie is `Secure` and responses carry HSTS. Never on plain loopback, where a Secure cookie
    /// would not be sent back and nobody could sign in.
    public var https = false
    /// When an order on the road is overdue (STOCKPILE_TRANSIT_KMH, STOCKPILE_TRANSIT_MIN_HOURS).
    public var transit = TransitRule.standard
    /// The exports streaming now (each holds a pooled connection while its client reads).
    let exportGate = ExportGate()

    public init(database: StockpileDatabase, metrics: PrometheusCollectorRegistry? = nil,
                timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai")!, logger: Logger = Logger(label: "stockpile"),
                rateLimit: Double = 200) {
        self.database = database
        self.metrics = metrics
        self.timeZone = timeZone
        self.logger = logger
        self.rateLimit = rateLimit
    }
}

public struct HTTPSettings: Sendable {
    public var host: String
    public var port: Int
    /// The HTTP server: HTTP/1.1, wrapped in TLS when `https(certificateFile:keyFile:)` made it.
    public var server: HTTPServerBuilder = Self.plain
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }

    /// A connection that sends nothing for 30 s is closed, so idle or stalled clients cannot hold sockets.
    static let plain: HTTPServerBuilder = .http1(configuration: .init(idleTimeout: .seconds(30)))

    /// The same settings serving HTTPS with a certificate chain and key from PEM files (the
    /// server's certificate first). Errors name the file and what is wrong with it.
    public func https(certificateFile: String, keyFile: String) throws -> HTTPSettings {
        var settings = self
        settings.server = try .tls(Self.plain, tlsConfiguration: try Self.tls(certificateFile: certificateFile, keyFile: keyFile))
        return settings
    }

    static func tls(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw TLSFileError(file: certificateFile, problem: "not a readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw TLSFileError(file: certificateFile, problem: "holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw TLSFileError(file: keyFile, problem: "not a readable PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }
}

public struct TLSFileError: Error, CustomStringConvertible {
    public var file: String
    public var problem: String
    public var description: String { "\(file): \(problem)" }
}

/// On an HTTPS service: every cookie `Secure`, and HSTS (a year) so a browser that has been here
/// once never falls back to plain HTTP for this host.
struct HTTPSMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        let cookies = response.headers[values: .setCookie]
        if !cookies.isEmpty {
            response.headers[.setCookie] = nil
            for cookie in cookies {
                response.headers.append(.init(name: .setCookie, value: cookie.contains("; Secure") ? cookie : cookie + "; Secure"))
            }
        }
        response.headers[.strictTransportSecurity] = "max-age=31536000"
        return response
    }
}

public enum StockpileAPI {
    public static let maxJSONBody = 1 << 20
    public static let maxCSVBody = 64 << 20
    public static let maxBatch = 1000

    /// Every route the service answers, with the roles that may use it (empty: no token needed).
    /// The OpenAPI test checks each is documented; the access matrix test is generated from it.
    public static let routes: [(method: String, path: String, roles: Set<Role>)] = [
        ("GET", "/healthz", []), ("GET", "/readyz", []), ("GET", "/metrics", []), ("GET", "/openapi.yaml", []),
        ("POST", "/api/v1/movements", writers), ("POST", "/api/v1/movements/batch", writers),
        ("GET", "/api/v1/movements", readers), ("GET", "/api/v1/facilities", readers),
        ("GET", "/api/v1/facilities/{code}/stock", readers), ("GET", "/api/v1/items", readers),
        ("GET", "/api/v1/regions", readers), ("POST", "/api/v1/import/{file}", admins),
        ("GET", "/api/v1/tokens", admins), ("POST", "/api/v1/tokens", admins), ("DELETE", "/api/v1/tokens/{name}", admins),
        ("GET", "/api/v1/audit", [.admin, .command]), ("GET", "/api/v1/cover", readers), ("GET", "/api/v1/cover/rollup", readers),
    ] + reserveRoutes + planRoutes + orderRoutes + nightlyRoutes + scanRoutes + syncRoutes + transitRoutes + donationRoutes
        + shipmentRoutes + trendRoutes + exportRoutes
    /// Warehouse staff record for their own facilities; the command centre reads and plans, it does not record stock.
    static let writers: Set<Role> = [.warehouse, .admin]
    static let readers: Set<Role> = [.warehouse, .command, .admin]
    static let admins: Set<Role> = [.admin]
}

/// Builds the router: the whole HTTP surface, testable without a socket.
public func buildRouter(_ services: StockpileServices) -> Router<StockpileRequestContext> {
    let router = Router(context: StockpileRequestContext.self)
    // Outermost, so the error pages' cookies are Secure too.
    if services.https { router.addMiddleware { HTTPSMiddleware() } }
    router.addMiddleware {
        ErrorMiddleware()
        MetricsMiddleware()
        LogRequestsMiddleware(.debug)
        AuthMiddleware(database: services.database, limiter: RateLimiter(perSecond: services.rateLimit))
    }
    let database = services.database

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
        let scope = try context.require(StockpileAPI.writers, to: "record stock")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let movement = try JSON.decode(MovementInput.self, from: body).draft.validated()
        try requireFacility(movement.facility, in: scope)
        let recorded = try await PostgresLedger(database, scope: scope).record(movement, recordedBy: scope.actor)
        return try JSON.response(MovementOutput(movement: recorded), status: recorded.replay ? .ok : .created)
    }

    api.post("movements/batch") { request, context in
        let scope = try context.require(StockpileAPI.writers, to: "record stock")
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
            try requireFacility(movements[i].facility, in: scope, field: "movements[\(i)].facility")
        }
        do {
            let recorded = try await PostgresLedger(database, scope: scope).recordOutcomes(batch: movements, recordedBy: scope.actor)
            let output = BatchOutput(recorded)
            return JSON.response(json: output.json(), status: output.recorded == 0 ? .ok : .created)
        } catch let error as BatchError {
            throw APIError.from(error.underlying, fieldPrefix: "movements[\(error.index)].")
        }
    }

    api.get("movements") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read movements")
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
        // Row-level security narrows the list to the token's facilities.
        let page = try await PostgresLedger(database, scope: scope).movements(
            facility: query["facility"].map(String.init), item: query["item"].map(String.init),
            since: since, after: query["after"].map(String.init), limit: limit)
        return try JSON.response(MovementsPageOutput(movements: page.movements, next: page.next))
    }

    api.get("facilities/{code}/stock") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read stock")
        let code = try context.parameters.require("code")
        // A facility outside the token's scope is, to it, a facility that does not exist.
        guard let lots = try await PostgresLedger(database, scope: scope).stock(facility: code) else {
            throw APIError(.notFound, "not_found", "unknown facility \(code)", field: "code")
        }
        return try JSON.response(StockOutput(facility: code, lots: lots))
    }

    api.get("facilities") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read facilities")
        let region = request.uri.queryParameters["region"].map(String.init)
        return try JSON.response(["facilities": try await PostgresMasterData(database, scope: scope).facilities(region: region)])
    }
    api.get("items") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read items")
        return try JSON.response(["items": try await PostgresMasterData(database, scope: scope).items()])
    }
    api.get("regions") { _, context in
        let scope = try context.require(StockpileAPI.readers, to: "read regions")
        return try JSON.response(["regions": try await PostgresMasterData(database, scope: scope).regions()])
    }

    api.post("import/{file}") { request, context in
        let scope = try context.require(StockpileAPI.admins, to: "import master data")
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
            let summary = try await CSVImporter(database, scope: scope).importFiles([file: text], recordedBy: scope.actor)
            return try JSON.response(summary)
        } catch let error as ImportError {
            throw APIError(.unprocessableContent, "invalid_csv", error.description, field: error.column)
        }
    }

    api.get("tokens") { _, context in
        let scope = try context.require(StockpileAPI.admins, to: "manage tokens")
        return try JSON.response(["tokens": try await PostgresTokens(database, scope: scope).list()])
    }
    api.post("tokens") { request, context in
        let scope = try context.require(StockpileAPI.admins, to: "manage tokens")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let input = try JSON.decode(TokenInput.self, from: body)
        guard let name = input.name else { throw APIError(.badRequest, "invalid", "name: required", field: "name") }
        guard let roleText = input.role, let role = Role(rawValue: roleText) else {
            throw APIError(.badRequest, "invalid", "role: one of warehouse, command, admin", field: "role")
        }
        do {
            let (secret, token) = try await PostgresTokens(database, scope: scope).create(
                name: name, role: role, region: input.region, facilities: input.facilities ?? [], validDays: try input.validDays.map { try whole($0, in: Ranges.tokenDays, "valid_days", "days") } ?? 365)
            return try JSON.response(CreatedToken(token: token, secret: secret), status: .created)
        } catch let error as PostgresTokens.TokenError {
            switch error {
            case .invalid(let field, let reason): throw APIError(.badRequest, "invalid", "\(field): \(reason)", field: field)
            case .exists: throw APIError(.conflict, "exists", error.description, field: "name")
            }
        }
    }
    api.delete("tokens/{name}") { _, context in
        let scope = try context.require(StockpileAPI.admins, to: "manage tokens")
        let name = try context.parameters.require("name")
        guard try await PostgresTokens(database, scope: scope).revoke(name: name) else {
            throw APIError(.notFound, "not_found", "no active token named \(name)", field: "name")
        }
        return try JSON.response(["revoked": name])
    }

    api.get("cover") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read cover")
        let query = request.uri.queryParameters
        let common = try CoverParameters(query, timeZone: services.timeZone)
        var band: CoverBand?
        if let value = common.text("band") {
            guard let parsed = CoverBand(rawValue: value) else {
                throw APIError(.badRequest, "invalid", "band: one of \(CoverBand.allCases.map(\.rawValue).joined(separator: ", "))", field: "band")
            }
            band = parsed
        }
        let sort = common.text("sort") ?? "shortfall"
        guard let order = CoverSort(rawValue: sort) else {
            throw APIError(.badRequest, "invalid", "sort: one of \(CoverSort.allCases.map(\.rawValue).joined(separator: ", "))", field: "sort")
        }
        let limit = try intParameter(query["limit"], name: "limit", default: 100, range: 1...10_000)
        let offset = try intParameter(query["offset"], name: "offset", default: 0, range: 0...10_000_000)
        let found = try await PostgresCover(database, scope: scope, timeZone: services.timeZone)
            .page(CoverQuery(filter: common.filter, band: band, sort: order, limit: limit, offset: offset, asOf: common.asOf, surge: common.surge,
                             asStood: common.asStood))
        if common.wantsCSV(request) {
            return CoverCSV.response(found.rows, chinese: common.text("lang") != "en")
        }
        return try JSON.response(CoverOutput(asOf: common.asOf, surge: common.surge, total: found.total, source: found.source, origin: found.origin,
                                             rows: found.rows, asStood: common.asStood))
    }

    api.get("cover/rollup") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read cover")
        let common = try CoverParameters(request.uri.queryParameters, timeZone: services.timeZone)
        guard !common.asStood else {
            throw APIError(.badRequest, "invalid", "as_stood: cover as it stood is read per position (/api/v1/cover) or over time (/api/v1/trends)", field: "as_stood")
        }
        let groupText = common.text("group") ?? "region"
        guard let group = CoverGrouping(rawValue: groupText) else {
            throw APIError(.badRequest, "invalid", "group: region or item", field: "group")
        }
        var filter = common.filter
        // A command token's roll-up starts at its own region unless it names one inside it.
        filter.region = scope.region(filter.region)
        let cover = PostgresCover(database, scope: scope, timeZone: services.timeZone)
        let found = try await cover.rollup(filter, group: group, asOf: common.asOf, surge: common.surge)
        let total = CoverRollupRow.total(found.rows, code: filter.region ?? "", name: "合计")
        if common.wantsCSV(request) {
            return RollupCSV.response(found.rows + [total], group: group, chinese: common.text("lang") != "en")
        }
        return try JSON.response(RollupOutput(asOf: common.asOf, surge: common.surge, region: filter.region, group: group.rawValue,
                                              source: found.source, origin: found.origin, rows: found.rows, total: total))
    }

    addReserveRoutes(api, database: database)
    addPlanRoutes(api, services: services)
    addOrderRoutes(api, services: services)
    addShipmentRoutes(api, services: services)
    addTrendRoutes(api, services: services)
    addNightlyRoutes(api, services: services)
    addSyncRoutes(api, services: services)
    addTransitRoutes(api, services: services)
    addDonationRoutes(api, services: services)
    addExportRoutes(api, services: services)
    addScanRoute(api, services: services)
    addPageRoutes(router, services: services)

    api.get("audit") { request, context in
        let scope = try context.require([.admin, .command], to: "read the audit log")
        let limit = try intParameter(request.uri.queryParameters["limit"], name: "limit", default: 100, range: 1...1000)
        return try JSON.response(["entries": try await PostgresTokens(database, scope: scope).auditLog(limit: limit)])
    }
    return router
}

/// A warehouse token records only for the facilities it was issued for (403 otherwise, before
/// anything reaches the database, where row-level security would refuse it again).
func requireFacility(_ code: String, in scope: AccessScope, field: String = "facility") throws {
    guard scope.role == .warehouse else { return }
    guard scope.facilityCodes.contains(code) else {
        throw APIError(.forbidden, "forbidden", "this token records for \(scope.facilityCodes.joined(separator: ", ")), not \(code)", field: field)
    }
}

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
                server: settings.server,
                configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "stockpile"),
                onServerRunning: onServerRunning,
                logger: services.logger)
}
