import Foundation
import Logging
import StockpileCore
import StockpilePostgres

/// `stockpile bench plan`: the planner on a database `stockpile generate` filled. Per item: the
/// instance size (donors, receivers, lots, pairs), the time of the production planner (nearest
/// pairs plus pricing) and, as the reference, the textbook solve over every pair; their
/// objectives must be equal. Then the whole city's plan time, estimated from the items timed.
public struct PlanBenchmark: Sendable {
    public struct Options: Sendable {
        public var items = 3
        /// Skip the reference solve for items with more pairs than this (it grows as pairs × paths).
        public var referenceUpTo = 2_000_000
        /// Read the inputs from this file when it exists, else from the database and save them there.
        public var inputsFile: String?
        /// Time only these items (and skip the whole city).
        public var only: [String] = []
        /// Run even on a database `stockpile generate` did not make.
        public var allowRealData = false
        public init() {}
    }

    let database: StockpileDatabase
    let timeZone: TimeZone
    let options: Options

    public init(database: StockpileDatabase, timeZone: TimeZone, options: Options) {
        self.database = database
        self.timeZone = timeZone
        self.options = options
    }

    public func run(print say: @escaping @Sendable (String) -> Void) async throws {
        // It only reads, but as of the generated city's date and over every item of it.
        let snapshot = try await CoverBenchmark.generatedSnapshot(database, timeZone: timeZone, allowRealData: options.allowRealData,
                                                                  benchmark: "bench plan", writes: "plan every item of it as of its cover snapshot's date")
        let loadStarted = ContinuousClock.now
        let inputs: PostgresPlanner.Inputs
        if let file = options.inputsFile, FileManager.default.fileExists(atPath: file) {
            inputs = try JSONDecoder().decode(PostgresPlanner.Inputs.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } else {
            inputs = try await PostgresPlanner(database, scope: .system("bench"), timeZone: timeZone).inputs(PlanRequest(asOf: snapshot.asOf))
            if let file = options.inputsFile { try JSONEncoder().encode(inputs).write(to: URL(fileURLWithPath: file)) }
        }
        let loadSeconds = (ContinuousClock.now - loadStarted).inSeconds
        let items = inputs.positions.keys.sorted()
        say("plan: \(items.count) items with need or surplus, as of \(snapshot.asOf); inputs read in \(String(format: "%.1f", loadSeconds)) s")
        say("item          donors receivers   lots      pairs      covered   weighted        qty×km   planner s  reference s  equal")
        var timed: [Double] = []
        for item in options.only.isEmpty ? Array(items.prefix(options.items)) : options.only {
            let positions = inputs.positions[item]!
            let donors = positions.filter { $0.surplus > 0 }, receivers = positions.filter { $0.shortfall > 0 }
            let lots = donors.reduce(0) { $0 + ($1.lots?.count ?? 0) }
            let pairs = donors.count * receivers.count
            let (plan, seconds) = try await onOwnThread { () -> (ItemPlan, Double) in
                let started = ContinuousClock.now
                let plan = Reallocation.plan(positions).plan
                return (plan, (ContinuousClock.now - started).inSeconds)
            }
            timed.append(seconds)
            var reference = "skipped", equal = "-"
            if pairs <= options.referenceUpTo {
                let (whole, referenceSeconds) = try await onOwnThread { () -> (ItemPlan, Double) in
                    let started = ContinuousClock.now
                    let donors = positions.filter { $0.surplus > 0 }, receivers = positions.filter { $0.shortfall > 0 }
                    let plan = Planner.referenceSolve(donors: donors.map(\.donor), receivers: receivers.map(\.receiver))
                    return (plan, (ContinuousClock.now - started).inSeconds)
                }
                reference = String(format: "%.2f", referenceSeconds)
                equal = whole.weightedCovered == plan.weightedCovered && abs(whole.quantityKm - plan.quantityKm) <= 1e-6 * max(1, whole.quantityKm)
                    ? "yes" : "NO (\(whole.weightedCovered), \(String(format: "%.1f", whole.quantityKm)))"
            }
            say(item.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: "%8d %9d %6d %10d %12lld %10lld %13.1f %11.3f ",
                                                                                  donors.count, receivers.count, lots, pairs, plan.covered,
                                                                                  plan.weightedCovered, plan.quantityKm, seconds)
                + reference.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + equal)
        }
        if !timed.isEmpty {
            say(String(format: "median %.3f s per item timed alone, %.3f s for all %d", timed.sorted()[timed.count / 2],
                       timed.reduce(0, +), timed.count))
        }
        guard options.only.isEmpty else { return }
        // The whole city, as `POST /api/v1/reallocations/plan` does it: every item, on every core.
        let allDonors = inputs.positions.values.reduce(0) { $0 + $1.filter { $0.surplus > 0 }.count }
        let allReceivers = inputs.positions.values.reduce(0) { $0 + $1.filter { $0.shortfall > 0 }.count }
        let allLots = inputs.positions.values.reduce(0) { $0 + $1.filter { $0.surplus > 0 }.reduce(0) { $0 + ($1.lots?.count ?? 0) } }
        let allPairs = inputs.positions.values.reduce(0) { total, positions in
            total + positions.filter { $0.surplus > 0 }.count * positions.filter { $0.shortfall > 0 }.count
        }
        let started = ContinuousClock.now
        let plan = try await PostgresPlanner.solve(inputs, request: PlanRequest(asOf: snapshot.asOf))
        let solveSeconds = (ContinuousClock.now - started).inSeconds
        say("whole city: \(items.count) items, \(allDonors) donor and \(allReceivers) receiver positions, \(allLots) lots, \(allPairs) donor × receiver pairs")
        say("  need \(plan.summary.needBefore), covered \(plan.summary.covered), \(plan.orders.count) orders, "
            + String(format: "%.1f qty×km", plan.summary.quantityKm))
        say(String(format: "  inputs read %.1f s + solved %.1f s on %d cores = %.1f s (target ≤ 30 s)",
                   loadSeconds, solveSeconds, ProcessInfo.processInfo.activeProcessorCount, loadSeconds + solveSeconds))
    }
}
