import Foundation

// Reallocation planning (SPEC.md "Reallocation orders"): for one item, move surplus to need so
// that (1) covered need, designated hospitals weighted ×2, is as large as possible, and then
// (2) quantity × great-circle km is as small as possible. A transportation problem, solved
// exactly as a min-cost flow by successive shortest paths, with lexicographic costs so the
// second objective can never buy anything from the first.

/// Where a donor or receiver is.
public struct PlanSite: Sendable, Equatable {
    public var code: String
    public var latitude: Double
    public var longitude: Double
    public init(code: String, latitude: Double, longitude: Double) {
        self.code = code; self.latitude = latitude; self.longitude = longitude
    }
}

public struct PlanDonor: Sendable, Equatable {
    public var site: PlanSite
    public var surplus: Int64
    public init(site: PlanSite, surplus: Int64) { self.site = site; self.surplus = surplus }
}

public struct PlanReceiver: Sendable, Equatable {
    public var site: PlanSite
    public var need: Int64
    /// 2 for designated hospitals (定点救治医院), else 1.
    public var weight: Int64
    public init(site: PlanSite, need: Int64, weight: Int64) { self.site = site; self.need = need; self.weight = weight }
}

public struct PlanFlow: Sendable, Equatable {
    /// Indexes into the problem's donors and receivers.
    public var donor: Int
    public var receiver: Int
    public var quantity: Int64
    public var distanceKm: Double
}

public struct ItemPlan: Sendable, Equatable {
    public var flows: [PlanFlow]
    public var needBefore: Int64
    public var covered: Int64
    public var weightedCovered: Int64
    public var quantityKm: Double
    public var unmet: Int64 { needBefore - covered }
}

public enum GreatCircle {
    /// The mean Earth radius SPEC.md fixes.
    public static let earthRadiusKm = 6371.0088

    /// Haversine distance in km.
    public static func km(_ a: PlanSite, _ b: PlanSite) -> Double {
        let rad = Double.pi / 180
        let dLat = (b.latitude - a.latitude) * rad, dLon = (b.longitude - a.longitude) * rad
        let h = sin(dLat / 2) * sin(dLat / 2) + cos(a.latitude * rad) * cos(b.latitude * rad) * sin(dLon / 2) * sin(dLon / 2)
        return 2 * earthRadiusKm * asin(min(1, sqrt(h)))
    }
}

public struct PlanOptions: Sendable {
    /// Arcs longer than this are not used (nil: any distance).
    public var maxDistanceKm: Double?
    public init(maxDistanceKm: Double? = nil) { self.maxDistanceKm = maxDistanceKm }
}

public enum Planner {
    /// A cost compared lexicographically: first the (negated, weighted) coverage, then the
    /// distance in millimetres. Integers, so potentials stay exact and reduced costs are never
    /// negative by rounding.
    struct Cost: Comparable {
        var coverage: Int64
        var distance: Int64
        static let zero = Cost(coverage: 0, distance: 0)
        static let infinity = Cost(coverage: .max / 4, distance: .max / 4)
        static func + (a: Cost, b: Cost) -> Cost { Cost(coverage: a.coverage + b.coverage, distance: a.distance + b.distance) }
        static func - (a: Cost, b: Cost) -> Cost { Cost(coverage: a.coverage - b.coverage, distance: a.distance - b.distance) }
        static prefix func - (a: Cost) -> Cost { Cost(coverage: -a.coverage, distance: -a.distance) }
        static func < (a: Cost, b: Cost) -> Bool { (a.coverage, a.distance) < (b.coverage, b.distance) }
    }

    struct Arc {
        var to: Int
        var capacity: Int64
        var cost: Cost
        var reverse: Int
    }

    /// The optimal plan for one item.
    public static func solve(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions = PlanOptions()) -> ItemPlan {
        let needBefore = receivers.reduce(Int64(0)) { $0 + max(0, $1.need) }
        let d = donors.count, r = receivers.count
        // Nodes: 0 source, 1…d donors, d+1…d+r receivers, d+r+1 sink.
        let source = 0, sink = d + r + 1
        var graph = [[Arc]](repeating: [], count: d + r + 2)
        func addArc(_ from: Int, _ to: Int, _ capacity: Int64, _ cost: Cost) {
            graph[from].append(Arc(to: to, capacity: capacity, cost: cost, reverse: graph[to].count))
            graph[to].append(Arc(to: from, capacity: 0, cost: -cost, reverse: graph[from].count - 1))
        }
        var distances = [[Double]](repeating: [], count: d)
        var totalSurplus = Int64(0)
        for (i, donor) in donors.enumerated() where donor.surplus > 0 {
            addArc(source, 1 + i, donor.surplus, .zero)
            totalSurplus += donor.surplus
        }
        for (j, receiver) in receivers.enumerated() where receiver.need > 0 {
            addArc(1 + d + j, sink, receiver.need, Cost(coverage: -receiver.weight, distance: 0))
        }
        for i in 0..<d {
            distances[i] = receivers.map { GreatCircle.km(donors[i].site, $0.site) }
            guard donors[i].surplus > 0 else { continue }
            for j in 0..<r where receivers[j].need > 0 && receivers[j].site.code != donors[i].site.code {
                let km = distances[i][j]
                if let limit = options.maxDistanceKm, km > limit { continue }
                addArc(1 + i, 1 + d + j, totalSurplus, Cost(coverage: 0, distance: Int64((km * 1_000_000).rounded())))
            }
        }

        // Successive shortest paths with Dijkstra on reduced costs. Every arc cost but the
        // receiver→sink ones is ≥ 0 and those point at the sink, so potentials start as the
        // exact shortest distances of the acyclic graph: 0 for source and donors, the donor
        // distance for receivers, the best total for the sink.
        var potential = [Cost](repeating: .zero, count: graph.count)
        var reachedReceiver = [Bool](repeating: false, count: r)
        for j in 0..<r { potential[1 + d + j] = .infinity }
        for i in 0..<d {
            for arc in graph[1 + i] where arc.to > d && arc.to <= d + r && arc.capacity > 0 {
                reachedReceiver[arc.to - 1 - d] = true
                if arc.cost < potential[arc.to] { potential[arc.to] = arc.cost }
            }
        }
        var sinkBest = Cost.infinity
        for j in 0..<r where reachedReceiver[j] {
            for arc in graph[1 + d + j] where arc.to == sink && arc.capacity > 0 {
                let candidate = potential[1 + d + j] + arc.cost
                if candidate < sinkBest { sinkBest = candidate }
            }
        }
        potential[sink] = sinkBest < Cost.infinity ? sinkBest : .zero
        // Receivers no donor can reach are never reached; any potential will do.
        for j in 0..<r where !reachedReceiver[j] { potential[1 + d + j] = .zero }

        var distance = [Cost](repeating: .infinity, count: graph.count)
        var previous = [(node: Int, arc: Int)](repeating: (-1, -1), count: graph.count)
        var done = [Bool](repeating: false, count: graph.count)
        while true {
            for n in distance.indices { distance[n] = .infinity; previous[n] = (-1, -1); done[n] = false }
            distance[source] = .zero
            var heap = CostHeap()
            heap.push(.zero, source)
            while let (dist, node) = heap.pop() {
                if done[node] { continue }
                done[node] = true
                for (k, arc) in graph[node].enumerated() where arc.capacity > 0 {
                    let reduced = arc.cost + potential[node] - potential[arc.to]
                    let candidate = dist + reduced
                    if candidate < distance[arc.to] {
                        distance[arc.to] = candidate
                        previous[arc.to] = (node, k)
                        heap.push(candidate, arc.to)
                    }
                }
            }
            guard distance[sink] < .infinity else { break }
            for n in graph.indices where distance[n] < .infinity { potential[n] = potential[n] + distance[n] }
            // The path's true cost: augment only while it lowers the total (covers more, or the same for less distance).
            let pathCost = potential[sink] - potential[source]
            guard pathCost < .zero else { break }
            var bottleneck = Int64.max
            var node = sink
            while node != source {
                let (from, k) = previous[node]
                bottleneck = min(bottleneck, graph[from][k].capacity)
                node = from
            }
            node = sink
            while node != source {
                let (from, k) = previous[node]
                graph[from][k].capacity -= bottleneck
                let back = graph[from][k].reverse
                graph[node][back].capacity += bottleneck
                node = from
            }
        }

        var flows: [PlanFlow] = []
        var covered = Int64(0), weighted = Int64(0), quantityKm = 0.0
        for i in 0..<d {
            for arc in graph[1 + i] where arc.to > d && arc.to <= d + r {
                let j = arc.to - 1 - d
                let moved = graph[arc.to][arc.reverse].capacity
                guard moved > 0 else { continue }
                flows.append(PlanFlow(donor: i, receiver: j, quantity: moved, distanceKm: distances[i][j]))
                covered += moved
                weighted += moved * receivers[j].weight
                quantityKm += Double(moved) * distances[i][j]
            }
        }
        return ItemPlan(flows: flows, needBefore: needBefore, covered: covered, weightedCovered: weighted, quantityKm: quantityKm)
    }
}

/// A binary min-heap of (cost, node) for Dijkstra.
struct CostHeap {
    private var items: [(Planner.Cost, Int)] = []
    mutating func push(_ cost: Planner.Cost, _ node: Int) {
        items.append((cost, node))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].0 < items[parent].0 else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }
    mutating func pop() -> (Planner.Cost, Int)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && items[left].0 < items[smallest].0 { smallest = left }
                if right < items.count && items[right].0 < items[smallest].0 { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}

/// One facility × item as the planner sees it.
public struct PlanPosition: Sendable, Equatable {
    public var site: PlanSite
    public var designated: Bool
    /// Usable on-hand (not expired, not held).
    public var usable: Int64
    public var dailyDemand: Double
    public var targetDays: Int
    /// The physical shortfall: the need.
    public var shortfall: Int64
    public init(site: PlanSite, designated: Bool, usable: Int64, dailyDemand: Double, targetDays: Int, shortfall: Int64) {
        self.site = site; self.designated = designated; self.usable = usable; self.dailyDemand = dailyDemand
        self.targetDays = targetDays; self.shortfall = shortfall
    }

    /// What it can give without dropping below its own target: usable − ceil(N × d), at least 0.
    /// With no demand (a warehouse) that is everything usable.
    public var surplus: Int64 {
        max(0, usable - Int64(Cover.roundQuantity(Double(targetDays) * dailyDemand).rounded(.up)))
    }
}

public enum Reallocation {
    /// The item's donors (surplus > 0) and receivers (need > 0), and the optimal plan between them.
    public static func plan(_ positions: [PlanPosition], options: PlanOptions = PlanOptions())
        -> (plan: ItemPlan, donors: [PlanPosition], receivers: [PlanPosition]) {
        let donors = positions.filter { $0.surplus > 0 }
        let receivers = positions.filter { $0.shortfall > 0 }
        let plan = Planner.solve(donors: donors.map { PlanDonor(site: $0.site, surplus: $0.surplus) },
                                 receivers: receivers.map { PlanReceiver(site: $0.site, need: $0.shortfall, weight: $0.designated ? 2 : 1) },
                                 options: options)
        return (plan, donors, receivers)
    }
}
