import Foundation
import Hummingbird
import NIOCore
import StockpileCore
import StockpilePostgres
import Synchronization

// `GET /api/v1/export/{file}` (issue 19): one of the files `stockpile export` writes, streamed as it
// is read. An administrator exports everything (or `region=` a subtree), a command token its own
// subtree, a warehouse token its own facilities' stock and movements.
extension StockpileAPI {
    static let exportRoutes: [(method: String, path: String, roles: Set<Role>)] = [("GET", "/api/v1/export/{file}", readers)]
}

func addExportRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    api.get("export/{file}") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "export")
        return try await exportResponse(request, file: try context.parameters.require("file"), scope: scope, services: services)
    }
}

/// One export file as a streamed CSV answer, for the API and the dashboard's download links alike.
func exportResponse(_ request: Request, file named: String, scope: AccessScope, services: StockpileServices) async throws -> Response {
    let database = services.database
    let file = named.hasSuffix(".csv") ? String(named.dropLast(4)) : named
    guard CSVExporter.files.contains(file) else {
        throw APIError(.notFound, "not_found", "unknown export \(file.prefix(60)); expected one of \(CSVExporter.files.joined(separator: ", "))", field: "file")
    }
    if scope.role == .warehouse, !CSVExporter.warehouseFiles.contains(file) {
        throw APIError(.forbidden, "forbidden", "a warehouse token exports its own facilities' stock and movements, not \(file).csv", field: "file")
    }
    var region: String?
    if let asked = text(request, "region") {
        do throws(FieldError) { region = try TextBounds.check(asked, field: "region", maxBytes: TextBounds.code) } catch { throw APIError.invalid(error) }
    }
    var since: LocalDate?
    if let asked = text(request, "since") {
        guard file == "movements" else { throw APIError(.badRequest, "invalid", "since: only for movements", field: "since") }
        guard let date = LocalDate(asked) else { throw APIError(.badRequest, "invalid", "since: a date YYYY-MM-DD, not \(asked.prefix(40))", field: "since") }
        since = date
    }
    let options = CSVExporter.Options(region: scope.region(region), since: since, timeZone: services.timeZone.identifier)
    if let region = options.region {
        let exists = try await database.withConnection(scope) { try CSVExporter.regionExists(region, on: $0) }
        guard exists else { throw APIError(.notFound, "not_found", "no region \(region)", field: "region") }
    }
    // Each export holds a pooled connection while its client reads: a few at a time, so slow
    // downloads cannot take every connection the service has.
    let gate = services.exportGate
    guard gate.enter() else {
        var busy = APIError(.serviceUnavailable, "busy", "\(ExportGate.limit) exports are being written; retry in a minute")
        busy.headers[.retryAfter] = "60"
        throw busy
    }
    let handoff = ChunkHandoff()
    Task {
        defer { gate.leave() }
        do {
            _ = try await database.read(scope, isolation: .repeatableRead) { c in
                try CSVExporter.begin(on: c, options)
                try CSVExporter.write(file, options, on: c) { try handoff.send($0) }
            }
            handoff.finish(nil)
        } catch {
            handoff.finish(error)
        }
    }
    // The first chunk (the header and the first rows) before the answer starts: a query that
    // fails fails with its own status, not a 200 cut short.
    let first: [UInt8]?
    do { first = try await handoff.next() } catch { handoff.cancel(); throw error }
    // The region in the name when it is a plain code (a header value must not carry quotes or Chinese).
    let plain = options.region.flatMap { code in code.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") } ? code : nil }
    let name = (plain.map { "\($0)-" } ?? "") + "\(file).csv"
    return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(name)\""],
                    body: ResponseBody { writer in
        do {
            if let first { try await writer.write(ByteBuffer(bytes: first)) }
            while let chunk = try await handoff.next() { try await writer.write(ByteBuffer(bytes: chunk)) }
            try await writer.finish(nil)
        } catch {
            handoff.cancel()
            throw error
        }
    })
}

/// How many exports stream at once, per service.
public final class ExportGate: Sendable {
    public static let limit = 2
    public init() {}
    private let running = Mutex(0)
    public func enter() -> Bool { running.withLock { n in guard n < Self.limit else { return false }; n += 1; return true } }
    public func leave() { running.withLock { $0 -= 1 } }
}

/// Chunks handed from a database thread to a response writer, at most two unread: the producer
/// waits while the client reads slowly, so a city's movements never pile up in memory. A reader
/// that goes away cancels it; a producer nobody reads from gives up after a minute and lets its
/// connection go.
final class ChunkHandoff: @unchecked Sendable {
    struct Abandoned: Error {}
    private let lock = NSLock()
    private var chunks: [[UInt8]] = []
    private var ended = false
    private var failure: (any Error)?
    private var cancelled = false
    private var waiter: CheckedContinuation<[UInt8]?, any Error>?
    private let room = DispatchSemaphore(value: 2)

    func send(_ chunk: [UInt8]) throws {
        guard room.wait(timeout: .now() + 60) == .success else { throw Abandoned() }
        lock.lock()
        if cancelled {
            lock.unlock()
            room.signal()
            throw Abandoned()
        }
        if let waiter {
            self.waiter = nil
            lock.unlock()
            room.signal()
            waiter.resume(returning: chunk)
            return
        }
        chunks.append(chunk)
        lock.unlock()
    }

    func finish(_ error: (any Error)?) {
        lock.lock()
        ended = true
        failure = error
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    func next() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if !chunks.isEmpty {
                let chunk = chunks.removeFirst()
                lock.unlock()
                room.signal()
                continuation.resume(returning: chunk)
            } else if ended {
                let failure = self.failure
                lock.unlock()
                if let failure { continuation.resume(throwing: failure) } else { continuation.resume(returning: nil) }
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
        room.signal()
    }
}
