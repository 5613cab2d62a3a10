import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StockpilePostgres

/// The pages' session: the login form opens a server-side session (a random id, ended at sign-out,
/// sql/0018) and puts its id in an HttpOnly, SameSite=Strict cookie, which AuthMiddleware reads for page paths only (never for /api, which stays bearer-only, so a
/// cross-site form can never reach the API with it). Forms carry a CSRF token in a hidden field that
/// must equal a second SameSite=Strict cookie (double submit): another site can neither read the
/// cookie nor, with SameSite=Strict, get it sent.
/// The cookies are not marked Secure: serve listens on plain HTTP behind the operator's TLS proxy.
enum PageSession {
    static let sessionCookie = "sp_session"
    static let csrfCookie = "sp_csrf"
    static let languageCookie = "sp_lang"
    /// The outbox's sends carry the CSRF token in this header (pages/outbox.js).
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    /// A shared PC in a warehouse: a session lasts a working day.
    static let sessionSeconds = 12 * 3600

    static func cookies(_ request: Request) -> [String: String] {
        var found: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                found[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return found
    }

    static func secret(_ request: Request) -> String? {
        cookies(request)[sessionCookie].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// FNV-1a over the session id, as 16 hex digits: stable across restarts (the session lives in
    /// the database), and telling nothing usable about a random 128-bit id.
    static func tag(_ session: String) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in session.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        return String(format: "%016llx", hash)
    }

    /// 32 random hex digits from the system's generator.
    static func newCSRF() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    static func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
    }

    /// An application/x-www-form-urlencoded body as a dictionary (the last value of a repeated name wins).
    static func form(_ buffer: ByteBuffer) -> [String: String] {
        let text = String(buffer: buffer)
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let name = parts.first.map(decode), !name.isEmpty else { continue }
            fields[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    /// Constant-time comparison, so a wrong CSRF token takes as long whatever its prefix.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count, !x.isEmpty else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// What every page render needs from its request: language, CSRF token and the cookies to set.
struct PageRequest {
    var language: PageLanguage
    var csrf: String
    var setCookies: [String] = []
    /// The signed-in role, for the navigation: links only to pages the role may open.
    var role: Role?
    /// A stable tag of the session (not its secret): the outbox marks entries with the session they
    /// were made in, and holds those of an earlier one for the clerk to confirm before sending.
    var sessionTag = ""

    init(_ request: Request) {
        let cookies = PageSession.cookies(request)
        if let asked = request.uri.queryParameters["lang"].flatMap({ PageLanguage(rawValue: String($0)) }) {
            language = asked
            setCookies.append(PageSession.cookie(PageSession.languageCookie, asked.rawValue, maxAge: 365 * 86400))
        } else {
            language = cookies[PageSession.languageCookie].flatMap(PageLanguage.init(rawValue:)) ?? .zh
        }
        if let session = cookies[PageSession.sessionCookie], !session.isEmpty { sessionTag = PageSession.tag(session) }
        if let csrf = cookies[PageSession.csrfCookie], csrf.count == 64 {
            self.csrf = csrf
        } else {
            csrf = PageSession.newCSRF()
            setCookies.append(PageSession.cookie(PageSession.csrfCookie, csrf, maxAge: PageSession.sessionSeconds))
        }
    }

    /// Whether a posted form carries this session's CSRF token.
    func accepts(_ form: [String: String]) -> Bool {
        PageSession.same(form["csrf"] ?? "", csrf)
    }

    var t: [String: String] { language.strings }
}
