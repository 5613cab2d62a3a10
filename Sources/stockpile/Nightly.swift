import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StockpileBench
import StockpileCore
import StockpileHTTP
import StockpilePostgres

struct Nightly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The nightly reorder report (夜间补货报告): reallocation orders, contract call-offs, capacity activation, procurement, contract gaps, expiring lots, stale positions.",
        discussion: "Once per date and region: a rerun prints the stored report and creates nothing. Read it later with GET /api/v1/reports/nightly/{date}.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "The date the report is for (default today).") var date: String?
    @Option(help: "A region code: the report for its subtree (default everything).") var region: String?
    @Option(help: "Also write a CSV per section and the printable HTML page into this folder.") var out: String?

    func run() async throws {
        guard let day = date.map({ LocalDate($0) }) ?? Environment.today else { throw ValidationError("--date: a date YYYY-MM-DD") }
        let logger = makeLogger()
        // Progress on a terminal only; a timer's journal gets the one summary line.
        @Sendable func show(_ p: NightlyProgress) {
            let line = "\r\u{1B}[K\(p.phase.rawValue): \(p.positions) positions, " + String(format: "%.1f s", p.elapsed.inSeconds)
            FileHandle.standardError.write(Data(line.utf8))
        }
        let progress: (@Sendable (NightlyProgress) throws -> Void)? = isatty(STDERR_FILENO) == 1 ? show : nil
        let result: NightlyRun
        do {
            // One connection holds the run's lock; the planner reads positions and lots on two at once.
            result = try await database.withDatabase(poolSize: 3) { db in
                try await NightlyJob.run(db, date: day, region: region, timeZone: Environment.timeZone, logger: logger, progress: progress)
            }
        } catch let error as Refusal {
            FileHandle.standardError.write(Data("nightly: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let report = result.report
        print("夜间补货报告 nightly report \(report.asOf)\(report.region.map { ", region \($0)" } ?? "")\(result.replay ? " (stored earlier; nothing run)" : "")")
        print("item        shortfall  reallocated  in transit  called off  activated  procurement")
        for s in report.items {
            print(s.item.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: "%11lld %12lld %11lld %11lld %10lld %12lld", s.shortfall, s.reallocated, s.inbound, s.calledOff, s.activated, s.procurement))
        }
        print("\(report.orders.count) reallocation orders, \(report.contractGaps.count) contract gaps, \(report.expiringLots.count) expiring lots, \(report.stale.count) stale positions")
        if let out {
            let folder = URL(fileURLWithPath: out, isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for section in NightlyReportTables.Section.allCases {
                try Data(NightlyReportTables.csv(section, of: report).utf8)
                    .write(to: folder.appendingPathComponent(NightlyReportTables.filename(section, of: report)))
            }
            let page = folder.appendingPathComponent("nightly-\(report.asOf)\(report.region.map { "-\($0)" } ?? "").html")
            try Data(NightlyReportTables.html(report).utf8).write(to: page)
            print("wrote \(NightlyReportTables.Section.allCases.count) CSV files and \(page.lastPathComponent) to \(folder.path)")
        }
    }
}

/// One nightly run, for the command and for serve's scheduler, ending in one summary log line.
enum NightlyJob {
    static func run(_ db: StockpileDatabase, date: LocalDate, region: String?, timeZone: TimeZone, logger: Logger,
                    progress: (@Sendable (NightlyProgress) throws -> Void)? = nil) async throws -> NightlyRun {
        let started = ContinuousClock.now
        let result = try await PostgresNightly(db, scope: .system("nightly"), timeZone: timeZone)
            .run(asOf: date, region: region, progress: progress ?? { _ in })
        let r = result.report
        // The progress line gives way to the summary.
        if progress != nil { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        logger.info("nightly report", metadata: [
            "date": "\(date)", "region": "\(region ?? "*")", "replay": "\(result.replay)", "positions": "\(r.positions)",
            "orders": "\(r.orders.count)", "reorder_lines": "\(r.reorders.filter { $0.need > 0 }.count)",
            "called_off": "\(r.callOffTotal)", "activated": "\(r.activationTotal)", "procurement": "\(r.procurementTotal)",
            "contract_gaps": "\(r.contractGaps.count)", "expiring_lots": "\(r.expiringLots.count)", "stale": "\(r.stale.count)",
            "seconds": "\(String(format: "%.2f", (ContinuousClock.now - started).inSeconds))",
        ])
        return result
    }
}

/// serve's own nightly run at STOCKPILE_NIGHTLY_AT (local time): at start, the last due date's
/// report if it is missing (the service was down then; earlier missed nights are not run), then
/// every day at that time. Another run of the same date (the systemd timer) waits on the lock and
/// finds the report made.
struct NightlyScheduler: Service {
    let database: StockpileDatabase
    let schedule: NightlySchedule
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            let due = schedule.lastDue(at: Date())
            await runIfMissing(due, missed: true)
            while !Task.isCancelled {
                let next = schedule.next(after: Date())
                do { try await Task.sleep(for: .seconds(max(0, next.at.timeIntervalSinceNow))) } catch { return }
                await runIfMissing(next.date, missed: false)
            }
        }
    }

    func runIfMissing(_ date: LocalDate, missed: Bool) async {
        do {
            let nightly = PostgresNightly(database, scope: .system("nightly"), timeZone: schedule.timeZone)
            if missed {
                // Whether it exists, not its lines: a city's take over a minute and gigabytes to read.
                guard try await nightly.stored(asOf: date, region: nil, lines: []) == nil else { return }
                logger.info("the nightly report of \(date) is missing (the service was not running at its time); running it now")
            }
            _ = try await NightlyJob.run(database, date: date, region: nil, timeZone: schedule.timeZone, logger: logger)
        } catch is CancellationError {
            return
        } catch {
            logger.error("nightly report failed", metadata: ["date": "\(date)", "error": "\(error)"])
        }
    }
}

extension Bench {
    struct NightlyBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nightly",
            abstract: "The nightly reorder report on a generated city, phase by phase (removes that date's report and its orders first).",
            discussion: "Run `stockpile generate --data-dir D …` first, then `stockpile bench nightly --data-dir D` (build with -c release).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Runs; each one from scratch.") var rounds = 1
        @Option(help: "A region code (default everything).") var region: String?

        func run() async throws {
            var options = NightlyBenchmark.Options()
            options.rounds = rounds
            options.region = region
            try await database.withDatabase(poolSize: 4) { db in
                try await NightlyBenchmark(database: db, timeZone: Environment.timeZone, options: options).run { print($0) }
            }
        }
    }
}
