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

/// A lot a donor can ship from: its days to expiry from `as_of` (nil: does not expire).
public struct PlanLot: Sendable, Equatable {
    public var lot: String
    public var quantity: Int64
    public var expiryDays: Int?
    public init(lot: String, quantity: Int64, expiryDays: Int?) { self.lot = lot; self.quantity = quantity; self.expiryDays = expiryDays }
}

public struct PlanDonor: Sendable, Equatable {
    public var site: PlanSite
    public var surplus: Int64
    /// The usable lots the surplus may be shipped from; nil: one lot of the whole surplus that does not expire.
    public var lots: [PlanLot]?
    public init(site: PlanSite, surplus: Int64, lots: [PlanLot]? = nil) { self.site = site; self.surplus = surplus; self.lots = lots }
}

public struct PlanReceiver: Sendable, Equatable {
    public var site: PlanSite
    public var need: Int64
    /// 2 for designated hospitals (定点救治医院), else 1.
    public var weight: Int64
    /// Its daily demand: how fast it can use a lot before the lot expires.
    public var dailyDemand: Double
    public init(site: PlanSite, need: Int64, weight: Int64, dailyDemand: Double = 0) {
        self.site = site; self.need = need; self.weight = weight; self.dailyDemand = dailyDemand
    }

    /// How much of a lot expiring in `days` this receiver can use before it expires: floor(days × d)
    /// (its own stock aside). A lot that does not expire is limited only by what there is.
    public func usable(expiryDays days: Int?) -> Int64 {
        guard let days else { return .max / 4 }
        guard days > 0, dailyDemand > 0 else { return 0 }
        return Int64(Cover.roundQuantity(Double(days) * dailyDemand).rounded(.down))
    }
}

public struct PlanFlow: Sendable, Equatable {
    /// Indexes into the problem's donors and receivers.
    public var donor: Int
    public var receiver: Int
    public var quantity: Int64
    public var distanceKm: Double
    /// What goes from which of the donor's lots (indexes into its `lots`), earliest expiry first.
    public var lots: [(lot: Int, quantity: Int64)]

    public static func == (a: PlanFlow, b: PlanFlow) -> Bool {
        a.donor == b.donor && a.receiver == b.receiver && a.quantity == b.quantity && a.distanceKm == b.distanceKm
            && a.lots.map(\.lot) == b.lots.map(\.lot) && a.lots.map(\.quantity) == b.lots.map(\.quantity)
    }
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
    /// No order below this quantity (0: any). Orders that come out smaller are ruled out for their
    /// donor × receiver pair and the plan is solved again, until none is left. With 0 the plan is
    /// optimal; with a minimum it is the optimum without those pairs, which can fall short of the
    /// true optimum (a minimum order size makes the problem a fixed-charge one, NP-hard in general).
    public var minimumOrder: Int64
    /// Items with more donor × receiver pairs than this start from each site's `nearest` pairs
    /// and add the rest by pricing (the result is the same optimum, found faster).
    public var sparseAbove: Int
    public var nearest: Int
    public init(maxDistanceKm: Double? = nil, minimumOrder: Int64 = 0, sparseAbove: Int = 40_000, nearest: Int = 12) {
        self.maxDistanceKm = maxDistanceKm
        self.minimumOrder = minimumOrder
        self.sparseAbove = sparseAbove
        self.nearest = nearest
    }
}

public enum Planner {
    /// A cost compared lexicographically: first the (negated, weighted) coverage, then the
    /// distance in millimetres, then the days to expiry of the lot shipped (earlier first).
    /// Integers, so potentials stay exact and reduced costs are never negative by rounding.
    struct Cost: Comparable {
        var coverage: Int64
        var distance: Int64
        var expiry: Int64
        static let zero = Cost(coverage: 0, distance: 0, expiry: 0)
        static let infinity = Cost(coverage: .max / 4, distance: .max / 4, expiry: .max / 4)
        static func + (a: Cost, b: Cost) -> Cost {
            Cost(coverage: a.coverage + b.coverage, distance: a.distance + b.distance, expiry: a.expiry + b.expiry)
        }
        static func - (a: Cost, b: Cost) -> Cost {
            Cost(coverage: a.coverage - b.coverage, distance: a.distance - b.distance, expiry: a.expiry - b.expiry)
        }
        static prefix func - (a: Cost) -> Cost { Cost(coverage: -a.coverage, distance: -a.distance, expiry: -a.expiry) }
        static func < (a: Cost, b: Cost) -> Bool { (a.coverage, a.distance, a.expiry) < (b.coverage, b.distance, b.expiry) }
    }

    struct Arc {
        var to: Int
        var capacity: Int64
        var cost: Cost
        var reverse: Int
    }

    /// A lot that does not expire ranks after every lot that does.
    static let neverExpires: Int64 = 1_000_000

    /// The optimal plan for one item. The network: source → donor (its surplus) → each of its
    /// lots (the lot's quantity) → receiver (what the receiver can use before the lot expires)
    /// → sink (the receiver's need). So a lot a receiver could not use in time is never counted
    /// as available to it, and the lines of each order fall out of the flow.
    public static func solve(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions = PlanOptions()) -> ItemPlan {
        var ruledOut = Set<Int>()
        while true {
            let plan = solvePriced(donors: donors, receivers: receivers, options: options, ruledOut: ruledOut)
            let small = plan.flows.filter { $0.quantity < options.minimumOrder }
            guard !small.isEmpty else { return plan }
            for flow in small { ruledOut.insert(flow.donor * receivers.count + flow.receiver) }
        }
    }

    /// Candidate receivers per donor: everything for small items; for large ones each receiver's
    /// nearest donors and each donor's nearest receivers. Pricing (below) adds whatever else the
    /// optimum needs, so the answer is exact either way.
    static func candidates(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions) -> [[Int]]? {
        let d = donors.count, r = receivers.count
        guard d * r > options.sparseAbove else { return nil }
        func unit(_ s: PlanSite) -> (Double, Double, Double) {
            let lat = s.latitude * .pi / 180, lon = s.longitude * .pi / 180
            return (cos(lat) * cos(lon), cos(lat) * sin(lon), sin(lat))
        }
        let du = donors.map { unit($0.site) }, ru = receivers.map { unit($0.site) }
        var lists = [Set<Int>](repeating: [], count: d)
        let k = max(1, options.nearest)
        func nearest(_ from: (Double, Double, Double), among points: [(Double, Double, Double)], skip: (Int) -> Bool) -> [Int] {
            // The k largest dot products (nearest by great circle), by partial selection.
            var best: [(Double, Int)] = []
            best.reserveCapacity(k + 1)
            for (n, p) in points.enumerated() where !skip(n) {
                let dot = from.0 * p.0 + from.1 * p.1 + from.2 * p.2
                if best.count < k { best.append((dot, n)); if best.count == k { best.sort { $0.0 > $1.0 } } }
                else if dot > best[k - 1].0 {
                    var at = k - 1
                    while at > 0 && best[at - 1].0 < dot { at -= 1 }
                    best.insert((dot, n), at: at)
                    best.removeLast()
                }
            }
            return best.map(\.1)
        }
        for j in 0..<r where receivers[j].need > 0 {
            for i in nearest(ru[j], among: du, skip: { donors[$0].surplus <= 0 }) { lists[i].insert(j) }
        }
        for i in 0..<d where donors[i].surplus > 0 {
            for j in nearest(du[i], among: ru, skip: { receivers[$0].need <= 0 }) { lists[i].insert(j) }
        }
        return lists.map { $0.sorted() }
    }

    /// Solves on the candidate arcs, then prices every other arc with the final potentials; while
    /// any has a negative reduced cost, adds those and solves again. With no negative reduced cost
    /// anywhere (and no improving path, which the source→sink bypass guarantees), the flow is
    /// optimal for the whole network.
    static func solvePriced(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions, ruledOut: Set<Int>) -> ItemPlan {
        guard var lists = candidates(donors: donors, receivers: receivers, options: options) else {
            return solve(donors: donors, receivers: receivers, options: options, ruledOut: ruledOut, candidates: nil).plan
        }
        while true {
            let (plan, priced) = solve(donors: donors, receivers: receivers, options: options, ruledOut: ruledOut, candidates: lists)
            let missing = priced(lists)
            guard !missing.isEmpty else { return plan }
            for (i, j) in missing { lists[i].append(j) }
            for i in lists.indices { lists[i] = Array(Set(lists[i])).sorted() }
        }
    }

    static func solve(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions, ruledOut: Set<Int>,
                      candidates: [[Int]]?) -> (plan: ItemPlan, priced: ([[Int]]) -> [(Int, Int)]) {
        let needBefore = receivers.reduce(Int64(0)) { $0 + max(0, $1.need) }
        let lotsOf = donors.map { $0.lots ?? [PlanLot(lot: "", quantity: $0.surplus, expiryDays: nil)] }
        let d = donors.count, r = receivers.count
        // Nodes: 0 source, then donors, then their lots, then receivers, then the sink.
        var firstLot = [Int](), lotDonor = [Int](), lotIndex = [Int]()
        var next = 1 + d
        for (i, lots) in lotsOf.enumerated() {
            firstLot.append(next)
            for k in lots.indices { lotDonor.append(i); lotIndex.append(k) }
            next += lots.count
        }
        let lotBase = 1 + d, receiverBase = next, sink = next + r, source = 0
        var graph = [[Arc]](repeating: [], count: sink + 1)
        func addArc(_ from: Int, _ to: Int, _ capacity: Int64, _ cost: Cost) {
            graph[from].append(Arc(to: to, capacity: capacity, cost: cost, reverse: graph[to].count))
            graph[to].append(Arc(to: from, capacity: 0, cost: -cost, reverse: graph[from].count - 1))
        }
        /// The arc a lot would have to a receiver, if it may have one: capacity and cost.
        func lotArc(_ i: Int, _ lot: PlanLot, _ j: Int) -> (Int64, Cost, Double)? {
            guard receivers[j].need > 0, receivers[j].site.code != donors[i].site.code, !ruledOut.contains(i * r + j) else { return nil }
            let km = GreatCircle.km(donors[i].site, receivers[j].site)
            if let limit = options.maxDistanceKm, km > limit { return nil }
            let usable = min(lot.quantity, receivers[j].usable(expiryDays: lot.expiryDays))
            guard usable > 0 else { return nil }
            return (usable, Cost(coverage: 0, distance: Int64((km * 1_000_000).rounded()), expiry: Int64(lot.expiryDays ?? Int(neverExpires))), km)
        }
        for (i, donor) in donors.enumerated() {
            guard donor.surplus > 0 else { continue }
            addArc(source, 1 + i, donor.surplus, .zero)
            for (k, lot) in lotsOf[i].enumerated() where lot.quantity > 0 {
                let node = firstLot[i] + k
                addArc(1 + i, node, lot.quantity, .zero)
                for j in candidates?[i] ?? Array(0..<r) {
                    guard let (usable, cost, _) = lotArc(i, lot, j) else { continue }
                    addArc(node, receiverBase + j, usable, cost)
                }
            }
        }
        for (j, receiver) in receivers.enumerated() where receiver.need > 0 {
            addArc(receiverBase + j, sink, receiver.need, Cost(coverage: -receiver.weight, distance: 0, expiry: 0))
        }
        // A bypass of cost 0: the sink is always reachable, so the search ends on "no path costs
        // less than nothing", the condition the pricing's certificate needs. Nothing flows on it.
        addArc(source, sink, .max / 4, .zero)

        // Successive shortest paths with Dijkstra on reduced costs. Only receiver→sink arcs cost
        // less than 0, and the graph is layered, so the first potentials are exact shortest
        // distances computed layer by layer.
        var potential = [Cost](repeating: .infinity, count: graph.count)
        potential[source] = .zero
        for node in 1..<sink where potential[node] < .infinity || node <= d {
            if node <= d { potential[node] = .zero }
            for arc in graph[node] where arc.capacity > 0 && arc.to > node {
                let candidate = potential[node] + arc.cost
                if candidate < potential[arc.to] { potential[arc.to] = candidate }
            }
        }
        if .zero < potential[sink] { potential[sink] = .zero }  // the bypass
        // Nodes nothing reaches are never reached later either; any potential will do.
        for node in potential.indices where !(potential[node] < .infinity) { potential[node] = .zero }

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
                // Stop at the sink: what lies farther does not matter for this path, and the
                // potentials below stay valid (every node not settled moves by the sink's distance).
                if node == sink { break }
                for k in graph[node].indices {
                    let arc = graph[node][k]
                    guard arc.capacity > 0, !done[arc.to] else { continue }
                    let candidate = dist + (arc.cost + potential[node] - potential[arc.to])
                    if candidate < distance[arc.to] {
                        distance[arc.to] = candidate
                        previous[arc.to] = (node, k)
                        heap.push(candidate, arc.to)
                    }
                }
            }
            guard distance[sink] < .infinity else { break }
            let reach = distance[sink]
            for n in graph.indices { potential[n] = potential[n] + (done[n] ? distance[n] : reach) }
            // Augment only while it lowers the total: covers more, or the same for less distance.
            guard potential[sink] - potential[source] < .zero else { break }
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
                graph[node][graph[from][k].reverse].capacity += bottleneck
                node = from
            }
        }

        // The flows, per donor × receiver, with their lots earliest expiry first.
        var byPair: [Int: PlanFlow] = [:]
        for lotNode in firstLot.first.map({ $0..<receiverBase }) ?? 0..<0 {
            let i = lotDonor[lotNode - lotBase], k = lotIndex[lotNode - lotBase]
            for arc in graph[lotNode] where arc.to >= receiverBase && arc.to < sink {
                let moved = graph[arc.to][arc.reverse].capacity
                guard moved > 0 else { continue }
                let j = arc.to - receiverBase
                byPair[i * r + j, default: PlanFlow(donor: i, receiver: j, quantity: 0,
                                                    distanceKm: GreatCircle.km(donors[i].site, receivers[j].site), lots: [])]
                    .quantity += moved
                byPair[i * r + j]!.lots.append((k, moved))
            }
        }
        var flows = byPair.values.sorted { ($0.donor, $0.receiver) < ($1.donor, $1.receiver) }
        for n in flows.indices {
            let lots = lotsOf[flows[n].donor]
            flows[n].lots.sort { (lots[$0.lot].expiryDays ?? .max, $0.lot) < (lots[$1.lot].expiryDays ?? .max, $1.lot) }
        }
        let covered = flows.reduce(Int64(0)) { $0 + $1.quantity }
        let weighted = flows.reduce(Int64(0)) { $0 + $1.quantity * receivers[$1.receiver].weight }
        let quantityKm = flows.reduce(0.0) { $0 + Double($1.quantity) * $1.distanceKm }
        let plan = ItemPlan(flows: flows, needBefore: needBefore, covered: covered, weightedCovered: weighted, quantityKm: quantityKm)
        let finalPotential = potential
        // Pricing: the (donor, receiver) pairs outside the candidates with an arc of negative reduced cost.
        let priced = { (lists: [[Int]]) -> [(Int, Int)] in
            var missing: [(Int, Int)] = []
            for i in 0..<d where donors[i].surplus > 0 {
                let listed = Set(lists[i])
                for j in 0..<r where !listed.contains(j) {
                    for (k, lot) in lotsOf[i].enumerated() where lot.quantity > 0 {
                        let node = firstLot[i] + k, to = receiverBase + j
                        // Coverage and distance potentials first: most pairs fail without a distance.
                        let gap = finalPotential[to] - finalPotential[node]
                        if gap.coverage < 0 { continue }
                        if gap.coverage == 0 && gap.distance < 0 { continue }
                        guard let (_, cost, _) = lotArc(i, lot, j) else { continue }
                        if cost + finalPotential[node] - finalPotential[to] < .zero { missing.append((i, j)); break }
                    }
                }
            }
            return missing
        }
        return (plan, priced)
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
    /// Its usable lots, to ship from when it gives (nil: lots not considered).
    public var lots: [PlanLot]?
    public init(site: PlanSite, designated: Bool, usable: Int64, dailyDemand: Double, targetDays: Int, shortfall: Int64,
                lots: [PlanLot]? = nil) {
        self.site = site; self.designated = designated; self.usable = usable; self.dailyDemand = dailyDemand
        self.targetDays = targetDays; self.shortfall = shortfall; self.lots = lots
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
        let plan = Planner.solve(donors: donors.map { PlanDonor(site: $0.site, surplus: $0.surplus, lots: $0.lots) },
                                 receivers: receivers.map {
                                     PlanReceiver(site: $0.site, need: $0.shortfall, weight: $0.designated ? 2 : 1, dailyDemand: $0.dailyDemand)
                                 },
                                 options: options)
        return (plan, donors, receivers)
    }
}
