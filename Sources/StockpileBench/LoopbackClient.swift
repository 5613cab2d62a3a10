#if canImport(Glibc)
import Glibc
#endif

/// A minimal keep-alive HTTP/1.1 client over a blocking socket to 127.0.0.1, one per load thread.
/// It exists so the ingest benchmark measures the service, not a client library's scheduling.
final class LoopbackClient {
    struct Failure: Error, CustomStringConvertible { var description: String }

    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw Failure(description: "connect to port \(port) failed") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Sends a POST and returns the status code once the whole response has been read.
    func post(_ path: String, json body: [UInt8]) throws -> Int {
        var request = Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        request += body
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed") }
            sent += n
        }
        // Headers, then Content-Length bytes of body.
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = findHeaderEnd()
            if headerEnd == nil { try fill() }
        }
        // "HTTP/1.1 201 Created": the status is bytes 9–11. Then find content-length, byte-wise,
        // so the client spends as little of the shared CPU as it can.
        guard headerEnd! >= 12 else { throw Failure(description: "bad status line") }
        let status = (Int(buffer[9]) - 48) * 100 + (Int(buffer[10]) - 48) * 10 + (Int(buffer[11]) - 48)
        var length = 0
        let key = Array("content-length:".utf8)
        var i = 0
        while i + key.count < headerEnd! {
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
        let total = headerEnd! + 4 + length
        while buffer.count < total { try fill() }
        buffer.removeFirst(total)
        return status
    }

    private func findHeaderEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 16_384, 0) }
        guard n > 0 else { throw Failure(description: "connection closed by the server") }
        buffer += chunk[0..<n]
    }
}

