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
        discussion: """
            Once per date and region: a rerun prints the stored report and creates nothing. Read it later with GET \
            /api/v1/reports/nightly/{date}. A database with no stock and no demand plans is refused (exit 2), nothing stored. \
            After a data correction, --replace supersedes the stored report: the superseded run's proposed orders are cancelled, \
            its approved, dispatched and received ones kept, and the old report stays readable as an earlier generation.
            """)
    @OptionGroup var database: DatabaseOptions
    @Option(help: "The date the report is for (default today).") var date: String?
    @Option(help: "A region code: the report for its subtree (default everything).") var region: String?
    @Option(help: "Also write a CSV per section and the printable HTML page into this folder.") var out: String?
    @Flag(help: "Supersede the stored report of the date and region with a new run (audited as nightly.replace).") var replace = false

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
            // A replace by hand is audited under the operating-system user who ran it.
            let scope: AccessScope = replace ? .system("cli:\(ProcessInfo.processInfo.environment["SUDO_USER"] ?? NSUserName())") : .system("nightly")
            result = try await database.withDatabase(poolSize: 3) { db in
                try await NightlyJob.run(db, date: day, region: region, replace: replace, scope: scope, timeZone: Environment.timeZone,
                                         logger: logger, progress: progress)
            }
        } catch let error as Refusal {
            if isatty(STDERR_FILENO) == 1 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            FileHandle.standardError.write(Data("nightly: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let report = result.report
        let note = !result.replay ? "" : replace ? " (another replace superseded it meanwhile; nothing run)" : " (stored earlier; nothing run)"
        print("夜间补货报告 nightly report \(report.asOf)\(report.region.map { ", region \($0)" } ?? ""), generation \(result.generation)\(note)")
        if let replaced = result.replaced {
            let kept = replaced.keptOrders.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("replaced generation \(replaced.supersededGeneration): \(replaced.cancelledOrders) of its proposed orders cancelled "
                  + "(\"\(replaced.reason)\"), \(replaced.keptTotal) kept\(kept.isEmpty ? "" : " (\(kept))")")
        }
        print("item        shortfall  reallocated  in transit  called off  activated  procurement")
        for s in report.items {
            print(s.item.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: "%11lld %12lld %11lld %11lld %10lld %12lld", s.shortfall, s.reallocated, s.inbound, s.calledOff, s.activated, s.procurement))
        }
        print("\(report.orders.count) reallocation orders in \(report.shipments ?? 0) shipments, \(report.contractGaps.count) contract gaps, \(report.expiringLots.count) expiring lots, \(report.stale.count) stale positions")
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
    static func run(_ db: StockpileDatabase, date: LocalDate, region: String?, replace: Bool = false, scope: AccessScope = .system("nightly"),
                    timeZone: TimeZone, logger: Logger, progress: (@Sendable (NightlyProgress) throws -> Void)? = nil) async throws -> NightlyRun {
        let started = ContinuousClock.now
        var nightly = PostgresNightly(db, scope: scope, timeZone: timeZone)
        nightly.transit = try Environment.transit()
        let result = replace ? try await nightly.replace(asOf: date, region: region, progress: progress ?? { _ in })
                             : try await nightly.run(asOf: date, region: region, progress: progress ?? { _ in })
        // The progress line gives way to the summary.
        if progress != nil { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        log(result, date: date, region: region, seconds: (ContinuousClock.now - started).inSeconds, logger: logger)
        return result
    }

    /// The one summary line of a run.
    static func log(_ result: NightlyRun, date: LocalDate, region: String?, seconds: Double, logger: Logger) {
        let r = result.report
        var metadata: Logger.Metadata = [
            "date": "\(date)", "region": "\(region ?? "*")", "replay": "\(result.replay)", "generation": "\(result.generation)",
            "positions": "\(r.positions)", "orders": "\(r.orders.count)", "shipments": "\(r.shipments ?? 0)", "reorder_lines": "\(r.reorders.filter { $0.need > 0 }.count)",
            "called_off": "\(r.callOffTotal)", "activated": "\(r.activationTotal)", "procurement": "\(r.procurementTotal)",
            "contract_gaps": "\(r.contractGaps.count)", "expiring_lots": "\(r.expiringLots.count)", "stale": "\(r.stale.count)",
            "seconds": "\(String(format: "%.2f", seconds))",
        ]
        if let replaced = result.replaced {
            metadata["replaced_generation"] = "\(replaced.supersededGeneration)"
            metadata["cancelled_orders"] = "\(replaced.cancelledOrders)"
            metadata["kept_orders"] = "\(replaced.keptTotal)"
        }
        logger.info("nightly report", metadata: metadata)
    }
}

/// serve's own nightly run at STOCKPILE_NIGHTLY_AT (local time): at start, the last due date's
/// report if it is missing (the service was down then; earlier missed nights are not run), then
/// every day at that time. Another run of the same date (the systemd timer) waits on the lock and
/// finds the report made. While the database has nothing to report on (a fresh one, before its
/// first import) a date is skipped, with a log line saying why, rather than stored empty for good.
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
            var nightly = PostgresNightly(database, scope: .system("nightly"), timeZone: schedule.timeZone)
            nightly.transit = try Environment.transit()
            if missed {
                // Whether it exists, not its lines: a city's take over a minute and gigabytes to read.
                guard try await !nightly.isStored(asOf: date, region: nil) else { return }
                logger.info("the nightly report of \(date) is missing (the service was not running at its time); running it now")
            }
            let started = ContinuousClock.now
            // A database with nothing in it yet (serve on a fresh one, before the first import) is
            // skipped, not reported on: a report of 0 positions would stand for that date for good.
            switch try await nightly.scheduled(asOf: date, onlyIfMissing: missed) {
            case .skipped(let reason):
                logger.notice("nightly report skipped", metadata: ["date": "\(date)", "reason": "\(reason)"])
            case .alreadyStored:
                return
            case .ran(let result):
                NightlyJob.log(result, date: date, region: nil, seconds: (ContinuousClock.now - started).inSeconds, logger: logger)
            }
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
        @OptionGroup var realData: RealDataFlag

        func run() async throws {
            var options = NightlyBenchmark.Options()
            options.rounds = rounds
            options.region = region
            options.allowRealData = realData.allowRealData
            try await refusingRealData {
                try await database.withDatabase(poolSize: 4) { db in
                    try await NightlyBenchmark(database: db, timeZone: Environment.timeZone, options: options).run { print($0) }
                }
            }
        }
    }
}
