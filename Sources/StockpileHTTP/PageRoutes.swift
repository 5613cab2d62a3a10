import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PQ
import StockpileCore
import StockpilePostgres

// The web pages (SPEC.md "Web pages", issue 7). They live outside /api, so they are neither in
// openapi.yaml nor in StockpileAPI.routes (whose access matrix AccessTests generates); PageTests
// check their access instead: no session → the login page, another facility → not found.

/// Page paths and who may open them; a signed-in role not listed gets the "forbidden" page.
enum PagePaths {
    static let dashboard = "/", facility = "/facilities/", entry = "/entry", login = "/login", logout = "/logout"
    static let recorders: Set<Role> = StockpileAPI.writers
}

func addPageRoutes(_ router: Router<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database

    router.get("/static/pages.css") { _, _ in PageTemplates.assetResponse(PageTemplates.stylesheet, type: "text/css; charset=utf-8") }
    router.get("/static/pages.js") { _, _ in PageTemplates.assetResponse(PageTemplates.script, type: "text/javascript; charset=utf-8") }

    router.get("/login") { request, _ in
        let page = PageRequest(request)
        return loginPage(page, next: safeNext(request.uri.queryParameters["next"].map(String.init)))
    }
    router.post("/login") { request, context in
        var page = PageRequest(request)
        let form = PageSession.form(try await request.body.collect(upTo: 16 << 10))
        let next = safeNext(form["next"])
        guard page.accepts(form) else {
            return loginPage(page, next: next, error: "err.csrf", status: .forbidden)
        }
        let secret = (form["token"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let client = context.remoteAddress.flatMap { $0.ipAddress }
        guard !secret.isEmpty, secret.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }),
              let (session, scope) = try await PostgresTokens.startSession(secret, clientAddress: client, seconds: PageSession.sessionSeconds,
                                                                           database: database) else {
            return loginPage(page, next: next, error: "badToken", status: .unauthorized)
        }
        // The cookie carries a session id of its own, never the token's secret (sql/0018); and a new
        // CSRF token with the new session, so one planted before the login is worthless after it.
        page.setCookies = [PageSession.cookie(PageSession.sessionCookie, session, maxAge: PageSession.sessionSeconds),
                           PageSession.cookie(PageSession.csrfCookie, PageSession.newCSRF(), maxAge: PageSession.sessionSeconds)]
        let home = scope.role == .warehouse ? PagePaths.entry : PagePaths.dashboard
        return PageTemplates.redirect(next ?? home, cookies: page.setCookies)
    }
    router.post("/logout") { request, _ in
        let page = PageRequest(request)
        let form = PageSession.form(try await request.body.collect(upTo: 16 << 10))
        guard page.accepts(form) else { return PageTemplates.redirect(PagePaths.dashboard) }
        // Ended on the server: a copy of the cookie opens nothing after sign-out.
        if let session = PageSession.secret(request) { try await PostgresTokens.endSession(session, database: database) }
        var response = PageTemplates.redirect(PagePaths.login, cookies: [PageSession.cookie(PageSession.sessionCookie, "", maxAge: 0),
                                                                         PageSession.cookie(PageSession.csrfCookie, "", maxAge: 0)])
        // The kept entry page was this session's: no one after it should open it offline. (The outbox's
        // entries are storage, not cache: a clerk's unsent entries survive signing out.)
        response.headers[HTTPField.Name("Clear-Site-Data")!] = "\"cache\""
        return response
    }

    router.get("/") { request, context in
        try await signedIn(request, context) { scope, page in
            try await DashboardPage(database: database, timeZone: services.timeZone, scope: scope, transit: services.transit).response(request, page: page)
        }
    }
    // The dashboard's download links: the same files as GET /api/v1/export/{file}, for the signed-in scope.
    router.get("/export/{file}") { request, context in
        let file = try context.parameters.require("file")
        return try await signedIn(request, context) { scope, page in
            do {
                return try await exportResponse(request, file: file, scope: scope, services: services)
            } catch let error as APIError {
                return PageTemplates.render("message", ["message": error.message], page: page, title: page.t["export"]!, status: error.status)
            }
        }
    }
    router.get("/facilities/{code}") { request, context in
        let code = try context.parameters.require("code")
        return try await signedIn(request, context) { scope, page in
            try await FacilityPage(database: database, timeZone: services.timeZone, scope: scope)
                .response(code, page: page, surge: request.uri.queryParameters["surge"].map(String.init))
        }
    }
    router.get("/orders") { request, context in
        try await signedIn(request, context) { scope, page in
            try await OrdersPage(database: database, timeZone: services.timeZone, scope: scope, transit: services.transit)
                .response(page: page, status: request.uri.queryParameters["status"].map(String.init))
        }
    }
    // The printable 调拨单 of one order (A4): who sends, who receives, the lots, signature lines.
    router.get("/orders/{id}/print") { request, context in
        let id = try context.parameters.require("id")
        return try await signedIn(request, context) { scope, page in
            try await OrdersPage(database: database, timeZone: services.timeZone, scope: scope, transit: services.transit).printable(id, page: page)
        }
    }
    router.post("/orders/{id}") { request, context in
        let id = try context.parameters.require("id")
        let body = try await request.body.collect(upTo: 16 << 10)
        return try await signedIn(request, context) { scope, page in
            try await OrdersPage(database: database, timeZone: services.timeZone, scope: scope, transit: services.transit).submit(id, form: PageSession.form(body), page: page)
        }
    }
    // Shipments (调拨单 by truck): the printable one, a step on one, and a whole plan approved.
    router.get("/shipments/{id}/print") { request, context in
        let id = try context.parameters.require("id")
        return try await signedIn(request, context) { scope, page in
            try await ShipmentsPage(database: database, timeZone: services.timeZone, scope: scope).printable(id, page: page)
        }
    }
    router.post("/shipments/{id}") { request, context in
        let id = try context.parameters.require("id")
        let body = try await request.body.collect(upTo: 256 << 10)
        return try await signedIn(request, context) { scope, page in
            try await ShipmentsPage(database: database, timeZone: services.timeZone, scope: scope)
                .submit(id, form: PageSession.form(body), page: page,
                        orders: OrdersPage(database: database, timeZone: services.timeZone, scope: scope, transit: services.transit))
        }
    }
    router.post("/plans/{plan}/approve") { request, context in
        let plan = try context.parameters.require("plan")
        let body = try await request.body.collect(upTo: 16 << 10)
        return try await signedIn(request, context) { scope, page in
            try await ShipmentsPage(database: database, timeZone: services.timeZone, scope: scope)
                .approvePlan(plan, form: PageSession.form(body), page: page,
                             orders: OrdersPage(database: database, timeZone: services.timeZone, scope: scope, transit: services.transit))
        }
    }
    // The donation register (社会捐赠, issue 17 part 2): record a donation, inspect its lines, its CSV.
    router.get("/donations") { request, context in
        try await signedIn(request, context) { scope, page in
            try await DonationsPage(database: database, timeZone: services.timeZone, scope: scope)
                .response(page: page, message: request.uri.queryParameters["done"].map { _ in page.t["donationRecorded"]! })
        }
    }
    router.post("/donations") { request, context in
        let body = try await request.body.collect(upTo: 64 << 10)
        return try await signedIn(request, context, roles: PagePaths.recorders) { scope, page in
            try await DonationsPage(database: database, timeZone: services.timeZone, scope: scope).record(PageSession.form(body), page: page)
        }
    }
    router.post("/donations/{id}/inspect") { request, context in
        let id = try context.parameters.require("id")
        let body = try await request.body.collect(upTo: 16 << 10)
        return try await signedIn(request, context, roles: StockpileAPI.planners) { scope, page in
            try await DonationsPage(database: database, timeZone: services.timeZone, scope: scope).inspect(id, form: PageSession.form(body), page: page)
        }
    }
    router.get("/donations/csv") { request, context in
        try await signedIn(request, context) { scope, _ in
            DonationRegister.csv(try await PostgresDonations(database, scope: scope).list(facility: nil), timeZone: services.timeZone)
        }
    }
    // Days of cover over time (issue 17, part 6).
    router.get("/trends") { request, context in
        try await signedIn(request, context, roles: StockpileAPI.planners) { scope, page in
            try await TrendsPage(database: database, timeZone: services.timeZone, scope: scope).response(request, page: page)
        }
    }
    router.get("/reports") { request, context in
        try await signedIn(request, context, roles: StockpileAPI.planners) { scope, page in
            try await ReportPage(database: database, timeZone: services.timeZone, scope: scope)
                .response(date: request.uri.queryParameters["date"].map(String.init), page: page)
        }
    }
    router.get("/reports/{date}/print") { request, context in
        let date = try context.parameters.require("date")
        return try await signedIn(request, context, roles: StockpileAPI.planners) { scope, page in
            try await ReportPage(database: database, timeZone: services.timeZone, scope: scope).printable(date, page: page)
        }
    }
    router.get("/reports/{date}/csv/{section}") { request, context in
        let date = try context.parameters.require("date"), section = try context.parameters.require("section")
        return try await signedIn(request, context, roles: StockpileAPI.planners) { scope, page in
            try await ReportPage(database: database, timeZone: services.timeZone, scope: scope).csv(date, section: section, page: page)
        }
    }
    router.get("/entry") { request, context in
        try await signedIn(request, context, roles: PagePaths.recorders) { scope, page in
            try await EntryPage(database: database, scope: scope, timeZone: services.timeZone).response(page: page, form: [:])
        }
    }
    // The offline outbox (pages/outbox.js, pages/sw.js). The worker is served from the root so its
    // scope can cover /entry; it is never cached by the browser's HTTP cache, so an update reaches it.
    router.get("/sw.js") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "no-cache"],
                 body: .init(byteBuffer: ByteBuffer(string: PageTemplates.serviceWorker)))
    }
    router.get("/static/outbox.js") { _, _ in PageTemplates.assetResponse(PageTemplates.outboxScript, type: "text/javascript; charset=utf-8") }
    router.get("/static/scan.js") { _, _ in PageTemplates.assetResponse(PageTemplates.scanScript, type: "text/javascript; charset=utf-8") }
    // Who is signed in, and the CSRF token to send with: fetched at send time, never taken from the
    // cached page (a sign-in since has changed both). JSON, and 401 rather than the login page.
    router.get("/entry/session") { request, context in
        let page = PageRequest(request)
        guard let scope = context.scope, PagePaths.recorders.contains(scope.role) else {
            throw APIError(.unauthorized, "sign_in", "sign in to send the entries waiting on this device")
        }
        var response = try JSON.response(["user": scope.actor, "csrf": page.csrf, "session": page.sessionTag])
        response.headers[.cacheControl] = "no-store"
        for cookie in page.setCookies { response.headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return response
    }
    router.post("/entry/sync") { request, context in
        let page = PageRequest(request)
        guard let scope = context.scope, PagePaths.recorders.contains(scope.role) else {
            throw APIError(.unauthorized, "sign_in", "sign in to send the entries waiting on this device")
        }
        // Double submit, as the forms: the header must equal the SameSite=Strict cookie.
        guard PageSession.same(request.headers[PageSession.csrfHeader] ?? "", page.csrf) else {
            throw APIError(.forbidden, "csrf", "the page's token is stale; fetch /entry/session and send again", field: "csrf")
        }
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        return try JSON.response(try await MovementSync.run(body, scope: scope, database: database, sessionUser: scope.actor))
    }
    // The clerk marks a refused entry resolved from the outbox, once what happened is recorded.
    router.post("/entry/resolve") { request, context in
        let page = PageRequest(request)
        guard let scope = context.scope, PagePaths.recorders.contains(scope.role) else {
            throw APIError(.unauthorized, "sign_in", "sign in to resolve an entry")
        }
        guard PageSession.same(request.headers[PageSession.csrfHeader] ?? "", page.csrf) else {
            throw APIError(.forbidden, "csrf", "the page's token is stale; fetch /entry/session and send again", field: "csrf")
        }
        let input = try JSON.decode(PageResolveInput.self, from: try await request.body.collect(upTo: 64 << 10))
        return try await resolveSubmission(id: input.id ?? "", resolution: input.resolution, scope: scope, database: database)
    }
    router.post("/entry") { request, context in
        let body = try await request.body.collect(upTo: 64 << 10)
        return try await signedIn(request, context, roles: PagePaths.recorders) { scope, page in
            try await EntryPage(database: database, scope: scope, timeZone: services.timeZone).submit(PageSession.form(body), page: page)
        }
    }
}

func loginPage(_ page: PageRequest, next: String?, error: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
    var values: [String: Any] = [:]
    if let next { values["next"] = next }
    if let error { values["error"] = page.t[error]! }
    return PageTemplates.render("login", values, page: page, title: page.t["login"]!, status: status, signedIn: false)
}

/// Runs `body` for a signed-in caller whose role may open the page; otherwise the login page (303)
/// or the "forbidden" page.
func signedIn(_ request: Request, _ context: StockpileRequestContext, roles: Set<Role> = StockpileAPI.readers,
              _ body: (AccessScope, PageRequest) async throws -> Response) async throws -> Response {
    var page = PageRequest(request)
    guard let scope = context.scope else {
        let here = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        let next = here.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"
        return PageTemplates.redirect("\(PagePaths.login)?next=\(next)", cookies: page.setCookies)
    }
    page.role = scope.role
    guard roles.contains(scope.role) else {
        return PageTemplates.render("message", ["message": page.t["forbidden"]!], page: page, title: page.t["forbidden"]!, status: .forbidden)
    }
    return try await body(scope, page)
}

/// Where a login may send the browser on: a path on this site only (not `//other.example`).
func safeNext(_ next: String?) -> String? {
    // No control character, space, DEL or C1 anywhere: browsers strip tabs and newlines before
    // parsing a Location, so "/\t/evil.example" would become "//evil.example".
    guard let next, next.utf8.count <= 2048,
          !next.unicodeScalars.contains(where: { $0.value <= 0x20 || (0x7F...0x9F).contains($0.value) }),
          next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\") else { return nil }
    return next
}

/// Days as the pages print them: one decimal, "—" when unbounded (no demand).
func daysText(_ days: Double?, _ t: [String: String]) -> String {
    guard let days else { return t["unbounded"]! }
    return String(format: "%.1f", days)
}
