#if canImport(Glibc)
import Glibc
#endif

/// A minimal keep-alive HTTP/1.1 client connection to 127.0.0.1. A few driver threads each run
/// several of these with poll(), as `pgbench -j 2` runs its clients on two threads, so the load
/// generator spends as little of the shared two cores as it can and the figures are the service's.
final class LoopbackClient {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let descriptor: Int32
    private var buffer: [UInt8] = []
    private let authorization: String

    /// `session`: a page session id, sent as its cookie instead of the bearer token (pages only).
    init(port: Int, token: String, session: String? = nil) throws {
        authorization = session.map { "Cookie: sp_session=\($0)\r\n" } ?? "Authorization: Bearer \(token)\r\n"
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(descriptor); throw Failure(description: "connect to port \(port) failed") }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(descriptor) }

    /// Sends a POST; `receive()` collects the response.
    func send(_ path: String, json body: [UInt8]) throws {
        var request = Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\(authorization)Content-Length: \(body.count)\r\n\r\n".utf8)
        request += body
        try write(request)
    }

    /// A GET, waiting for the whole response. Returns its status.
    func get(_ path: String) throws -> Int {
        try write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(authorization)\r\n".utf8))
        while true {
            if let status = try receive() { return status }
        }
    }

    private func write(_ request: [UInt8]) throws {
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed") }
            sent += n
        }
    }

    /// Reads what has arrived (call when poll says readable). Returns the status once a whole
    /// response is in, nil while more is to come.
    func receive() throws -> Int? {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let n = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, 16_384, 0) }
        guard n > 0 else { throw Failure(description: "connection closed by the server") }
        buffer += chunk[0..<n]
        return try completeResponse()
    }

    /// Parses the buffered response if it is complete: the status from bytes 9–11 of
    /// "HTTP/1.1 201 Created", the body length from content-length, byte-wise.
    private func completeResponse() throws -> Int? {
        guard buffer.count >= 4 else { return nil }
        var headerEnd: Int?
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            headerEnd = i
            break
        }
        guard let headerEnd else { return nil }
        guard headerEnd >= 12 else { throw Failure(description: "bad status line") }
        let status = (Int(buffer[9]) - 48) * 100 + (Int(buffer[10]) - 48) * 10 + (Int(buffer[11]) - 48)
        var length = 0
        let key = Array("content-length:".utf8)
        var i = 0
        while i + key.count < headerEnd {
            if buffer[i] == 10 {
                var match = true
                for (j, byte) in key.enumerated() where buffer[i + 1 + j] | 0x20 != byte { match = false; break }
                if match {
                    var k = i + 1 + key.count
                    while buffer[k] == 32 { k += 1 }
                    while buffer[k] >= 48 && buffer[k] <= 57 { length = length * 10 + Int(buffer[k]) - 48; k += 1 }
                    break
                }
            }
            i += 1
        }
        let total = headerEnd + 4 + length
        guard buffer.count >= total else { return nil }
        buffer.removeFirst(total)
        return status
    }
}
