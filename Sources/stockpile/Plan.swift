import ArgumentParser
import Foundation
import StockpileCore
import StockpilePostgres

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the optimal reallocation plan (调拨方案) as a table; stores nothing (same as POST /api/v1/reallocations/plan).")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "The date cover is computed for (default today).") var asOf: String?
    @Option(help: "A region code: plan within its subtree.") var region: String?
    @Option(help: "One item code.") var item: String?
    @Option(help: "Longest transfer, in km.") var maxDistanceKm: Double?
    @Option(help: "Smallest order, in units.") var minOrder: Int64 = 0
    @Flag(help: "Print the plan as JSON instead of a table.") var json = false

    /// The same ranges as the API's (StockpileCore/Ranges.swift).
    func validate() throws {
        if let km = maxDistanceKm, !(km > 0 && Ranges.maxDistanceKm.contains(km)) {
            throw ValidationError("--max-distance-km: a distance in km above 0, at most \(Ranges.maxDistanceKm.upperBound)")
        }
        guard Ranges.minOrder.contains(minOrder) else {
            throw ValidationError("--min-order: whole units from \(Ranges.minOrder.lowerBound) to \(Ranges.minOrder.upperBound)")
        }
    }

    func run() async throws {
        guard let date = asOf.map({ LocalDate($0) }) ?? Environment.today else { throw ValidationError("--as-of: a date YYYY-MM-DD") }
        let started = ContinuousClock.now
        let plan: ReallocationPlan
        do {
            plan = try await database.withDatabase { db in
                try await PostgresPlanner(db, scope: .system("cli"), timeZone: Environment.timeZone)
                    .plan(PlanRequest(asOf: date, region: region, item: item, maxDistanceKm: maxDistanceKm, minOrder: minOrder))
            }
        } catch let error as Refusal {
            FileHandle.standardError.write(Data("plan: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(plan), as: UTF8.self))
            return
        }
        func pad(_ text: String, _ width: Int) -> String {
            // Chinese characters take two columns on a terminal.
            let columns = text.unicodeScalars.reduce(0) { $0 + ($1.value > 0x2E80 ? 2 : 1) }
            return columns >= width ? text : text + String(repeating: " ", count: width - columns)
        }
        print("调拨方案 reallocation plan, as of \(date)\(region.map { ", region \($0)" } ?? "")")
        print(pad("item", 10) + pad("from", 14) + pad("to", 14) + String(repeating: " ", count: 2) + "quantity        km  lots (expiry)")
        for order in plan.orders {
            let lots = order.lines.map { "\($0.lot)×\($0.quantity)\($0.expiry.map { " (\($0))" } ?? "")" }.joined(separator: ", ")
            print(pad(order.item, 10) + pad(order.from, 14) + pad(order.to, 14) + String(format: "%10lld %9.1f  ", order.quantity, order.distanceKm) + lots)
        }
        print("")
        print(pad("item", 10) + "  donors receivers  need before     covered   weighted      unmet       qty×km")
        for s in plan.items + [plan.summary] {
            print(pad(s.item.isEmpty ? "合计 total" : s.item, 10) + String(format: "%8d %9d %12lld %11lld %10lld %10lld %12.1f",
                                                                    s.donors, s.receivers, s.needBefore, s.covered, s.weightedCovered, s.unmet, s.quantityKm))
        }
        print(String(format: "%d orders; planned in %.2f s", plan.orders.count, (ContinuousClock.now - started).inSeconds))
    }
}
