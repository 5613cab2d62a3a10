import ArgumentParser
import Foundation
import StockpileCore
import StockpilePostgres

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Synthetic data at any size for benchmarks (合成市), then the cover snapshot for --as-of.",
        discussion: "Writes into the database of --data-dir or DATABASE_URL; use a database of its own, never real data.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Facilities.") var facilities = 10_000
    @Option(help: "Items.") var items = 300
    @Option(help: "Days of history before --as-of.") var days = 30
    @Option(help: "Seed: the same size and seed give the same data.") var seed = 1
    @Option(help: "The date the history leads up to (default today).") var asOf: String?

    func run() async throws {
        guard let date = asOf.map({ LocalDate($0) }) ?? Environment.today else {
            throw ValidationError("--as-of: a date YYYY-MM-DD")
        }
        let generator = SyntheticDistrict(facilities: facilities, items: items, days: days, seed: seed, asOf: date,
                                          timeZone: Environment.timeZone)
        let terminal = isatty(STDOUT_FILENO) != 0
        let started = ContinuousClock.now
        try await database.withDatabase { db in
            let summary: SyntheticDistrict.Summary
            do {
                summary = try await generator.generate(into: db) { p in
                    let line = String(format: "%@: %d/%d (%.0f%%), %.0f s", p.phase, p.done, p.total,
                                      100 * Double(p.done) / Double(max(p.total, 1)), (ContinuousClock.now - started).inSeconds)
                    // Straight to the descriptor: print() is block-buffered when the output is a file or a pipe.
                    FileHandle.standardOutput.write(Data((terminal ? "\r\(line)" : "\(line)\n").utf8))
                }
            } catch let error as SyntheticDistrict.GenerateError {
                FileHandle.standardError.write(Data("generate: \(error)\n".utf8))
                throw ExitCode(2)
            }
            if terminal { print("") }
            let generated = (ContinuousClock.now - started).inSeconds
            print("cover snapshot for \(date)…")
            let snapshotStarted = ContinuousClock.now
            let positions = try await PostgresCover(db, scope: .system("generate"), timeZone: Environment.timeZone).rebuildSnapshot(asOf: date)
            let snapshotSeconds = (ContinuousClock.now - snapshotStarted).inSeconds
            // A bulk load leaves every table unvacuumed, and autovacuum then works through millions
            // of rows while the benches measure (issue 18: "worst 100 after 100 new movements" p95
            // 335 ms right after generating, 78 ms once it was done). Vacuumed here, as an operator
            // would after a restore, so the benches measure the steady state.
            print("vacuum…")
            let vacuumStarted = ContinuousClock.now
            try await db.asOwner { try $0.execute("VACUUM (ANALYZE)") }
            print(String(format: "generated %d positions (%d facilities × %d items), %d movements, %d balances in %.0f s; "
                         + "cover snapshot of %d positions in %.0f s; vacuum %.0f s; database %.2f GB",
                         summary.positions, facilities, items, summary.movements, summary.balances, generated,
                         positions, snapshotSeconds, (ContinuousClock.now - vacuumStarted).inSeconds, Double(summary.databaseBytes) / 1e9))
        }
    }
}
