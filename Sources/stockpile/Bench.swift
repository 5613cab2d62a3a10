import ArgumentParser
import Foundation
import PQ
import StockpileBench
import StockpilePostgres

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks, each against a baseline measured in the same run.",
                                                    subcommands: [Ingest.self, Cover.self, PlanBench.self, NightlyBench.self])

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Movements/s through the HTTP API vs pgbench running the same SQL (build with -c release first).")
        @Option(help: "Folder of the benchmark's own embedded cluster (never your real data).") var dataDir = "./.stockpile-bench"
        @Option(help: "Concurrent clients, for both the API and pgbench.") var clients = 16
        @Option(help: "Seconds per measurement.") var seconds = 8.0
        @Option(help: "Rounds; medians are reported.") var rounds = 3
        @Option(help: "Movements per batch request.") var batchSize = 100
        @Option(help: "The service's database connections (default: as many as clients, like pgbench).") var poolSize: Int?

        func run() async throws {
            let logger = makeLogger()
            let directory = URL(fileURLWithPath: dataDir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            let embedded = EmbeddedPostgres(dataDirectory: directory.absoluteURL, logger: logger)
            let started = try embedded.start()
            defer { if started { try? embedded.stop() } }
            var options = IngestBenchmark.Options()
            options.clients = clients
            options.seconds = seconds
            options.rounds = rounds
            options.batchSize = batchSize
            options.poolSize = poolSize ?? clients
            _ = try await IngestBenchmark(embedded: embedded, options: options, logger: logger).run { print($0) }
        }
    }

    struct Cover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The command centre's cover queries (worst 100, one facility, roll-ups) vs SELECT count(*) FROM balances.",
            discussion: "Run `stockpile generate --data-dir D …` first, then `stockpile bench cover --data-dir D` (build with -c release).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Repeats of each query; median and p95 are reported.") var repeats = 30
        @Option(help: "Movements recorded before each repeat of the after-changes query.") var changes = 100
        @Flag(help: "Rebuild the cover snapshot first, and time it (minutes at 10,000 × 300).") var rebuild = false
        @Flag(help: "Last, the next day's first request: computed, then with tomorrow's snapshot built ahead and switched in (moves the snapshot a day on).")
        var afterMidnight = false
        @OptionGroup var realData: RealDataFlag

        func run() async throws {
            var options = CoverBenchmark.Options()
            options.repeats = repeats
            options.changes = changes
            options.rebuild = rebuild
            options.afterMidnight = afterMidnight
            options.allowRealData = realData.allowRealData
            let logger = makeLogger()
            try await refusingRealData {
                try await database.withDatabase(poolSize: 4) { db in
                    _ = try await CoverBenchmark(database: db, timeZone: Environment.timeZone, options: options, logger: logger).run { print($0) }
                }
            }
        }
    }

    struct PlanBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "The reallocation planner per item (sizes, time) next to the textbook solve over every pair (the same objective).",
            discussion: "Run `stockpile generate --data-dir D …` first, then `stockpile bench plan --data-dir D` (build with -c release).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Items to time.") var items = 3
        @Option(help: "Skip the reference solve above this many donor × receiver pairs.") var referenceUpTo = 2_000_000
        @Option(help: "Read the planner's inputs from this JSON file if it exists, else from the database and save them there.")
        var inputs: String?
        @Option(name: .customLong("item"), help: "Time only this item (repeatable); the whole city is then skipped.")
        var only: [String] = []
        @Option(help: "Check each item timed against an outside solver: ortools (Google OR-Tools' min-cost flow; pip install ortools numpy).")
        var oracle: String?
        @OptionGroup var realData: RealDataFlag

        func validate() throws {
            guard oracle == nil || oracle == "ortools" else { throw ValidationError("--oracle: the one oracle is ortools") }
        }

        func run() async throws {
            var options = PlanBenchmark.Options()
            options.oracle = oracle
            options.items = items
            options.referenceUpTo = referenceUpTo
            options.inputsFile = inputs
            options.only = only
            options.allowRealData = realData.allowRealData
            try await refusingRealData {
                try await database.withDatabase(poolSize: 2) { db in
                    try await PlanBenchmark(database: db, timeZone: Environment.timeZone, options: options).run { print($0) }
                }
            }
        }
    }
}

/// The benchmarks that run on the database they are pointed at (cover, plan, nightly) refuse one
/// `stockpile generate` did not make, unless told this flag.
struct RealDataFlag: ParsableArguments {
    @Flag(name: .customLong("allow-real-data"),
          help: "Run even on a database `stockpile generate` did not make: the benchmark writes into it.")
    var allowRealData = false
}

/// Runs a benchmark; its refusal of real data is a message and exit status 2, not a stack of errors.
func refusingRealData(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as SyntheticDistrict.NotGenerated {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(2)
    }
}
