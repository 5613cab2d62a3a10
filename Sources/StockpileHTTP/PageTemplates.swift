import Foundation
import Hummingbird
import Mustache
import NIOCore
import StockpilePostgres

/// The pages' Mustache templates, stylesheet and script (Sources/StockpileHTTP/pages), loaded once
/// from the target's resources. Everything is served by the app itself: no CDN on a closed network.
enum PageTemplates {
    static let folder: URL? = Bundle.module.url(forResource: "pages", withExtension: nil)

    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        guard let folder, let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return library }
        for name in names where name.hasSuffix(".mustache") {
            let text = (try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)) ?? ""
            // A template that does not parse is a build mistake; the page tests render every one.
            try? library.register(text, named: String(name.dropLast(".mustache".count)))
        }
        return library
    }()

    static func asset(_ name: String) -> String {
        guard let folder else { return "" }
        return (try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }
    static let stylesheet = asset("pages.css")
    static let script = asset("pages.js")
    static let outboxScript = asset("outbox.js")
    static let scanScript = asset("scan.js")
    static let serviceWorker = asset("sw.js")

    /// Renders `template` inside the layout with the page's words, language and CSRF token.
    static func render(_ template: String, _ values: [String: Any], page: PageRequest, title: String,
                       status: HTTPResponse.Status = .ok, signedIn: Bool = true) -> Response {
        var context = values
        context["t"] = page.t
        context["lang"] = page.language.htmlLang
        context["csrf"] = page.csrf
        context["title"] = title
        context["signedIn"] = signedIn
        context["mayRecord"] = page.role.map(StockpileAPI.writers.contains) ?? false
        context["mayPlan"] = page.role.map(StockpileAPI.planners.contains) ?? false
        let body = library.render(context, withTemplate: template) ?? ""
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            // Scripts and styles come only from this server; no page may be framed (clickjacking).
            .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            .xContentTypeOptions: "nosniff",
        ]
        for cookie in page.setCookies { headers.append(.init(name: .setCookie, value: cookie)) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        for cookie in cookies { headers.append(.init(name: .setCookie, value: cookie)) }
        return Response(status: .seeOther, headers: headers)
    }

    static func assetResponse(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=300"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
