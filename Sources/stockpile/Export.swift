import ArgumentParser
import Foundation
import Synchronization
import StockpileCore
import StockpilePostgres

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the district back out as the CSV files import reads (UTF-8 with a byte-order mark, for Excel and WPS).",
        discussion: """
            Writes regions.csv, facilities.csv, items.csv, item_barcodes.csv, demand.csv, contracts.csv, capacity.csv and \
            stock.csv (on hand now, as counts), and with --movements also movements.csv (the ledger, transfers included). \
            Rows are in code order, so two exports diff cleanly; all files come from one consistent reading of the database. \
            `stockpile import DIR` loads them into another database and gives the same cover.

            Example: stockpile export ./导出 --movements --region D1
            """)
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "Folder to write into (created if missing; files of the same names are replaced).") var directory: String
    @Option(help: "Only this region's subtree: its facilities, and the regions from the top down to them.") var region: String?
    @Flag(help: "Write movements.csv too: the whole ledger, or from --since on.") var movements = false
    @Option(help: "With --movements: only movements that happened on or after this date (YYYY-MM-DD, in STOCKPILE_TIME_ZONE).") var since: String?

    func validate() throws {
        if let since, LocalDate(since) == nil { throw ValidationError("--since: a date YYYY-MM-DD, not \(since)") }
        if since != nil, !movements { throw ValidationError("--since goes with --movements") }
        if let region { _ = try validatedCode(region, "--region") }
    }

    func validatedCode(_ text: String, _ option: String) throws -> String {
        do { return try TextBounds.check(text, field: option, maxBytes: TextBounds.code) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        let folder = URL(fileURLWithPath: directory, isDirectory: true)
        let options = CSVExporter.Options(region: region, since: since.flatMap(LocalDate.init), timeZone: Environment.timeZone.identifier)
        // Progress on a terminal only, a few times a second; a timer's journal gets the summary.
        let terminal = isatty(STDERR_FILENO) == 1
        let shown = Mutex(ContinuousClock.now - .seconds(1))
        let started = ContinuousClock.now
        let summary: CSVExporter.Summary
        do {
            summary = try await database.withDatabase { db in
                try await CSVExporter.exportDirectory(db, scope: .system("export"), to: folder, options, movements: movements) { file, rows, bytes in
                    guard terminal, shown.withLock({ last in
                        guard rows == 0 || ContinuousClock.now - last > .milliseconds(250) else { return false }
                        last = ContinuousClock.now
                        return true
                    }) else { return }
                    let line = rows == 0 ? "\(file): reading…" : "\(file): \(rows) rows, \(bytes / 1_048_576) MB"
                    FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
                }
            }
        } catch let error as ExportError {
            FileHandle.standardError.write(Data("export failed: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        for file in summary.files { print("\(file.name): \(file.rows) rows, \(file.bytes) bytes") }
        print(String(format: "exported %d files, %d rows, %.1f MB in %.1f s to %@", summary.files.count, summary.rows,
                     Double(summary.bytes) / 1_048_576, (ContinuousClock.now - started).inSeconds, folder.path))
        if summary.inTransit.lines > 0 {
            print("note: \(summary.inTransit.units) units on \(summary.inTransit.lines) order lines are in transit. No file carries orders, "
                  + "so an import of these files has them at neither end (their dispatch is in movements.csv).")
        }
    }
}
