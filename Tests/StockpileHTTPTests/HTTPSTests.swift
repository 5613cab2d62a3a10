import Foundation
import HummingbirdTesting
import StockpileHTTP
import StockpilePostgres
import Testing

/// Cookies and HSTS on an HTTPS service (issue 16, part 3; deploy/tls.sh checks the TLS itself).
@Suite struct HTTPSTests {
    @Test func cookiesAreSecureAndHSTSIsSentOnlyWhenServedOverHTTPS() async throws {
        let service = try await TestService()
        for https in [false, true] {
            var services = StockpileServices(database: service.database, rateLimit: 10_000)
            services.https = https
            try await buildApplication(services, settings: HTTPSettings(port: 0)).test(.router) { client in
                let login = try await client.execute(uri: "/login", method: .get)
                let cookies = login.headers[values: .setCookie]
                #expect(!cookies.isEmpty)
                #expect(cookies.allSatisfy { $0.hasSuffix("; Secure") == https && $0.contains("HttpOnly; SameSite=Strict") }, "\(cookies)")
                #expect((login.headers[.strictTransportSecurity] == "max-age=31536000") == https)
                // Error answers too (a 404 page sets the language and CSRF cookies like any page).
                let missing = try await client.execute(uri: "/facilities/NOPE?lang=en", method: .get)
                #expect(missing.headers[values: .setCookie].allSatisfy { $0.hasSuffix("; Secure") == https })
            }
        }
    }
}
