import Foundation
import Hummingbird
import NIOCore
import StockpileCore
import StockpilePostgres

/// A stored nightly report written out as it is read, a run of a thousand lines at a time: the JSON
/// of the API, one section's CSV, the printable page. A city's report is about 2 GB of JSON; read
/// whole, every view of it held that in memory (issue 14).
struct NightlyReportStream: Sendable {
    let reader: PostgresNightly
    let stored: StoredNightly

    /// What is buffered before it is written: large enough that a write is not a syscall per row.
    static let flushBytes = 256 << 10

    /// The report as the API's JSON: the header's fields, then each section's lines as they were
    /// stored (the runs are JSON arrays already: they are copied, not decoded).
    func json() throws -> Response {
        var fields = try JSONSerialization.jsonObject(with: try JSON.encoder.encode(stored.header)) as? [String: Any] ?? [:]
        for key in StoredNightly.sections { fields.removeValue(forKey: key) }
        let head = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])
        let reader = self.reader, stored = self.stored, headerFields = fields.count
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody { writer in
            var out = ByteBuffer(bytes: head.dropLast())   // "{…" without its "}"
            var members = headerFields
            for section in StoredNightly.sections {
                out.writeString("\(members > 0 ? "," : "")\"\(section)\":[")
                members += 1
                var first = true
                try await reader.forEachRun(of: stored, section: section) { run in
                    // "[a,b]" → "a,b"
                    guard let open = run.firstIndex(of: UInt8(ascii: "[")), let close = run.lastIndex(of: UInt8(ascii: "]")), open + 1 < close else {
                        return true
                    }
                    if !first { out.writeString(",") }
                    out.writeBytes(run[(open + 1)..<close])
                    first = false
                    if out.readableBytes >= Self.flushBytes { try await writer.write(out); out.clear() }
                    return true
                }
                out.writeString("]")
            }
            out.writeString("}")
            try await writer.write(out)
            try await writer.finish(nil)
        })
    }

    /// Each row of a table, in order, a run's worth at a time; `body` returns false to stop.
    func forEachRows(_ section: NightlyReportTables.Section, _ body: ([[String]]) async throws -> Bool) async throws {
        let stored = self.stored, source = NightlyReportTables.source(section)
        try await reader.forEachRun(of: stored, section: source) { run in
            try await body(NightlyReportTables.rows(section, of: try PostgresNightly.piece(of: stored, section: source, run: run)))
        }
    }

    /// One section as CSV: byte-order mark, Chinese header, CRLF line ends, streamed.
    func csv(_ section: NightlyReportTables.Section) -> Response {
        let stream = self
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                               .contentDisposition: "attachment; filename=\"\(NightlyReportTables.filename(section, of: stored.header))\""],
                        body: ResponseBody { writer in
            var out = ByteBuffer(string: "\u{FEFF}" + NightlyReportTables.header(section).map(CSVDownload.field).joined(separator: ",") + "\r\n")
            try await stream.forEachRows(section) { rows in
                for row in rows { out.writeString(row.map(CSVDownload.field).joined(separator: ",") + "\r\n") }
                if out.readableBytes >= Self.flushBytes { try await writer.write(out); out.clear() }
                return true
            }
            try await writer.write(out)
            try await writer.finish(nil)
        })
    }

    /// The printable page, streamed section by section.
    func html() -> Response {
        let stream = self
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: ResponseBody { writer in
            var out = ByteBuffer(string: NightlyReportTables.htmlStart(stream.stored.header, orders: stream.stored.lineCounts["orders"] ?? 0))
            for section in NightlyReportTables.Section.allCases {
                out.writeString(NightlyReportTables.sectionStart(section))
                var count = 0
                try await stream.forEachRows(section) { rows in
                    if count == 0 && !rows.isEmpty { out.writeString(NightlyReportTables.tableStart(NightlyReportTables.header(section))) }
                    out.writeString(NightlyReportTables.tableRows(rows))
                    count += rows.count
                    if out.readableBytes >= Self.flushBytes { try await writer.write(out); out.clear() }
                    return true
                }
                if count > 0 { out.writeString(NightlyReportTables.tableEnd) }
                out.writeString(NightlyReportTables.sectionEnd(rows: count))
            }
            out.writeString(NightlyReportTables.htmlEnd)
            try await writer.write(out)
            try await writer.finish(nil)
        })
    }

    /// A table's first `limit` rows, and how many it has when that is known without reading the
    /// rest (tables of one stored section; a call-off, activation or procurement table counts its
    /// rows only while reading: nil past `limit`).
    func firstRows(_ section: NightlyReportTables.Section, limit: Int) async throws -> (rows: [[String]], count: Int?) {
        var rows: [[String]] = [], seen = 0
        try await forEachRows(section) { more in
            seen += more.count
            if rows.count < limit { rows += more.prefix(limit - rows.count) }
            return seen <= limit
        }
        switch section {
        case .orders, .contractGaps, .expiring, .stale, .overdue, .hoarding, .rotation:
            return (rows, stored.lineCounts[NightlyReportTables.source(section)] ?? 0)
        case .callOffs, .activations, .procurement:
            return (rows, seen <= limit ? seen : nil)
        }
    }
}
