import Foundation

// Reallocation planning (SPEC.md "Reallocation orders"): for one item, move surplus to need so
// that (1) covered need, designated hospitals weighted ×2, is as large as possible, and then
// (2) quantity × great-circle km is as small as possible. A transportation problem, solved
// exactly as a min-cost flow by successive shortest paths, with lexicographic costs so the
// second objective can never buy anything from the first.

/// Where a donor or receiver is.
public struct PlanSite: Sendable, Equatable, Codable {
    public var code: String
    public var latitude: Double
    public var longitude: Double
    public init(code: String, latitude: Double, longitude: Double) {
        self.code = code; self.latitude = latitude; self.longitude = longitude
    }
}

/// A lot a donor can ship from: its days to expiry from `as_of` (nil: does not expire).
public struct PlanLot: Sendable, Equatable, Codable {
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
        return min(.max / 4, Int64(saturating: Cover.roundQuantity(Double(days) * dailyDemand).rounded(.down)))
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
    /// and add the rest by pricing, at most `nearest` more per receiver a round (the result is the
    /// same optimum, found faster).
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
    ///
    /// The three parts are digits of one 128-bit integer, coverage × 2⁹⁰ + distance × 2⁴⁰ +
    /// expiry, so sums and comparisons are single integer operations: the searches do little
    /// else, and three separate fields made them about half as fast. Exact while |expiry| < 2³⁹
    /// (a path would need half a million arcs of lots that never expire) and |distance| < 2⁴⁹ mm
    /// (560 million km); every digit may be negative.
    struct Cost: Comparable {
        private(set) var packed: Int128
        private init(packed: Int128) { self.packed = packed }
        init(coverage: Int64, distance: Int64, expiry: Int64) {
            packed = Int128(coverage) << 90 + Int128(distance) << 40 + Int128(expiry)
        }
        var coverage: Int64 { Int64((packed + (1 << 89)) >> 90) }
        var distance: Int64 {
            let rest = packed - Int128(coverage) << 90
            return Int64((rest + (1 << 39)) >> 40)
        }
        var expiry: Int64 { Int64(packed - Int128(coverage) << 90 - Int128(distance) << 40) }
        static let zero = Cost(packed: 0)
        static let infinity = Cost(packed: .max / 4)
        @inline(__always) static func + (a: Cost, b: Cost) -> Cost { Cost(packed: a.packed + b.packed) }
        @inline(__always) static func - (a: Cost, b: Cost) -> Cost { Cost(packed: a.packed - b.packed) }
        @inline(__always) static prefix func - (a: Cost) -> Cost { Cost(packed: -a.packed) }
        @inline(__always) static func < (a: Cost, b: Cost) -> Bool { a.packed < b.packed }
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

    /// A site as a point on the unit sphere: nearness by dot product, chords by difference.
    static func unitVector(_ s: PlanSite) -> (Double, Double, Double) {
        let lat = s.latitude * .pi / 180, lon = s.longitude * .pi / 180
        return (cos(lat) * cos(lon), cos(lat) * sin(lon), sin(lat))
    }

    /// Candidate receivers per donor: everything for small items; for large ones each receiver's
    /// nearest donors and each donor's nearest receivers. Pricing (below) adds whatever else the
    /// optimum needs, so the answer is exact either way.
    static func candidates(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions, donorTree: SiteTree,
                           receiverPoints: [SiteTree.Point]) -> [[Int]] {
        let d = donors.count, r = receivers.count
        let receiverTree = SiteTree(points: receiverPoints, members: receivers.indices.filter { receivers[$0].need > 0 })
        var lists = [[Int]](repeating: [], count: d)
        let k = max(1, options.nearest)
        for j in 0..<r where receivers[j].need > 0 {
            donorTree.nearest(to: receiverTree.points[j], k: k) { i in lists[i].append(j) }
        }
        for i in 0..<d where donors[i].surplus > 0 {
            receiverTree.nearest(to: donorTree.points[i], k: k) { j in lists[i].append(j) }
            // Ascending, each receiver once (sorting the few beats hashing them into sets).
            lists[i].sort()
            var kept = 0
            for n in lists[i].indices where kept == 0 || lists[i][n] != lists[i][kept - 1] {
                lists[i][kept] = lists[i][n]
                kept += 1
            }
            lists[i].removeLast(lists[i].count - kept)
        }
        return lists
    }

    /// Solves on the candidate arcs, then prices every other arc with the final potentials; while
    /// any has a negative reduced cost, adds those and solves again. With no negative reduced cost
    /// anywhere (and no improving path, which the source→sink bypass guarantees), the flow is
    /// optimal for the whole network.
    static func solvePriced(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions, ruledOut: Set<Int>) -> ItemPlan {
        guard donors.count * receivers.count > options.sparseAbove else {
            return solve(donors: donors, receivers: receivers, options: options, ruledOut: ruledOut, candidates: nil).plan()
        }
        // Every site's point once per item, not once per round (a round needs them all).
        let points = Points(donors: donors.map { unitVector($0.site) }, receivers: receivers.map { unitVector($0.site) })
        let donorTree = SiteTree(points: points.donors, members: donors.indices.filter { donors[$0].surplus > 0 })
        var lists = candidates(donors: donors, receivers: receivers, options: options, donorTree: donorTree, receiverPoints: points.receivers)
        var warm: WarmStart?, added: [(Int, Int)] = []
        while true {
            let (plan, priced, next) = solve(donors: donors, receivers: receivers, options: options, ruledOut: ruledOut,
                                             candidates: lists, donorTree: donorTree, points: points, warm: warm, added: added)
            let missing = priced(lists)
            // The next round starts from this one where stock is plentiful: there the pairs
            // pricing adds are few and short, and repairing the flow costs a fraction of solving
            // again. Where stock is short they can be tens of thousands of long ones; saturating
            // those displaced so much flow that repairing took up to 30× as long as solving
            // afresh, so there only a round that adds few (under 2% of the arcs) starts warm
            // (measured at 10,000 × 300).
            warm = next.byDonor && missing.count * 100 > next.graph.arcCount ? nil : next
            added = missing
            guard !missing.isEmpty else { return plan() }
            // Pricing never names a pair twice, nor one already listed.
            var changed = Set<Int>()
            for (i, j) in missing { lists[i].append(j); changed.insert(i) }
            for i in changed { lists[i].sort() }
        }
    }

    /// The donors' and receivers' sites as points on the unit sphere, by index.
    struct Points {
        var donors: [SiteTree.Point], receivers: [SiteTree.Point]
    }

    /// A solved round, to start the next from: its residual network as it ended (the flow) and
    /// the potentials pricing used.
    struct WarmStart {
        var graph: FlowGraph
        var potential: [Cost]
        /// Solved donor by donor (stock short).
        var byDonor: Bool
    }

    /// The network of one item. Nodes: 0 the source, then donors, then their lots, then receivers,
    /// then (for the reference formulation) the sink.
    struct Network {
        /// The arcs so far; `graph` lays them out for the searches.
        var arcs: [FlowArc] = []
        let nodeCount: Int
        let source = 0
        let lotBase: Int, receiverBase: Int, sink: Int
        let firstLot: [Int], lotDonor: [Int], lotIndex: [Int]
        let lotsOf: [[PlanLot]]
        let points: Points
        /// The km from donor to receiver, if they may have an arc at all.
        let pairKm: (Int, Int) -> Double?
        /// The arc a lot would have to a receiver this many km away, if it may have one: capacity and cost.
        let lotArc: (Double, PlanLot, Int) -> (Int64, Cost)?
        /// Built with every arc turned around (for solving donor by donor, see `solve`).
        let reversed: Bool

        /// An arc of the planning problem, turned around when the network is.
        mutating func link(_ from: Int, _ to: Int, _ capacity: Int64, _ cost: Cost) {
            if reversed { addArc(to, from, capacity, cost) } else { addArc(from, to, capacity, cost) }
        }

        mutating func addArc(_ from: Int, _ to: Int, _ capacity: Int64, _ cost: Cost) {
            arcs.append(FlowArc(from: from, to: to, capacity: capacity, cost: cost))
        }

        var graph: FlowGraph { FlowGraph(nodes: nodeCount, arcs: arcs) }

        /// The lot → receiver arcs of these donor × receiver pairs.
        mutating func addPairs(_ pairs: [(Int, Int)]) {
            for (i, j) in pairs {
                guard let km = pairKm(i, j) else { continue }
                for (k, lot) in lotsOf[i].enumerated() where lot.quantity > 0 {
                    guard let (usable, cost) = lotArc(km, lot, j) else { continue }
                    link(firstLot[i] + k, receiverBase + j, usable, cost)
                }
            }
        }
    }

    /// source → donor (its surplus) → each of its lots (the lot's quantity) → receiver (what the
    /// receiver can use before the lot expires), on the candidate pairs (nil: every pair).
    static func network(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions, ruledOut: Set<Int>,
                        candidates: [[Int]]?, points given: Points? = nil, reversed: Bool = false, arcs: Bool = true) -> Network {
        let lotsOf = donors.map { $0.lots ?? [PlanLot(lot: "", quantity: $0.surplus, expiryDays: nil)] }
        let d = donors.count, r = receivers.count
        var firstLot = [Int](), lotDonor = [Int](), lotIndex = [Int]()
        var next = 1 + d
        for (i, lots) in lotsOf.enumerated() {
            firstLot.append(next)
            for k in lots.indices { lotDonor.append(i); lotIndex.append(k) }
            next += lots.count
        }
        let points = given ?? Points(donors: donors.map { unitVector($0.site) }, receivers: receivers.map { unitVector($0.site) })
        let donorPoints = points.donors, receiverPoints = points.receivers
        // The great circle from the chord between unit vectors: the same distance as the
        // haversine's (to far below a millimetre) with no trigonometry per pair but one asin.
        let pairKm = { (i: Int, j: Int) -> Double? in
            guard receivers[j].need > 0, receivers[j].site.code != donors[i].site.code, ruledOut.isEmpty || !ruledOut.contains(i * r + j) else { return nil }
            let chord = SiteTree.squaredChord(donorPoints[i], receiverPoints[j]).squareRoot()
            let km = 2 * GreatCircle.earthRadiusKm * asin(min(1, chord / 2))
            if let limit = options.maxDistanceKm, km > limit { return nil }
            return km
        }
        let lotArc = { (km: Double, lot: PlanLot, j: Int) -> (Int64, Cost)? in
            let usable = min(lot.quantity, receivers[j].usable(expiryDays: lot.expiryDays))
            guard usable > 0 else { return nil }
            return (usable, Cost(coverage: 0, distance: Int64((km * 1_000_000).rounded()), expiry: Int64(lot.expiryDays ?? Int(neverExpires))))
        }
        var network = Network(nodeCount: next + r + 1, lotBase: 1 + d, receiverBase: next, sink: next + r,
                              firstLot: firstLot, lotDonor: lotDonor, lotIndex: lotIndex, lotsOf: lotsOf, points: points, pairKm: pairKm, lotArc: lotArc,
                              reversed: reversed)
        let everyone = Array(0..<r)
        if arcs {
            // Room for every arc at once: a city's items have a few hundred thousand each, and
            // growing the array by doubling copied them over and over.
            var estimate = 0
            for (i, donor) in donors.enumerated() where donor.surplus > 0 {
                estimate += 1 + lotsOf[i].count * (1 + (candidates?[i].count ?? r))
            }
            network.arcs.reserveCapacity(estimate + 2 * (d + r))
        }
        for (i, donor) in donors.enumerated() where arcs {
            guard donor.surplus > 0 else { continue }
            // Solving donor by donor, each donor brings its surplus itself.
            if !reversed { network.addArc(network.source, 1 + i, donor.surplus, .zero) }
            let partners = candidates?[i] ?? everyone
            let kms = partners.map { pairKm(i, $0) }
            for (k, lot) in lotsOf[i].enumerated() where lot.quantity > 0 {
                let node = firstLot[i] + k
                network.link(1 + i, node, lot.quantity, .zero)
                for (n, j) in partners.enumerated() {
                    guard let km = kms[n], let (usable, cost) = lotArc(km, lot, j) else { continue }
                    network.link(node, network.receiverBase + j, usable, cost)
                }
            }
        }
        return network
    }

    /// Solves one item on the candidate pairs by successive shortest paths, one end at a time.
    ///
    /// Where stock is plentiful (surplus at least the need), receiver by receiver: paths from the
    /// receiver back to the source, in a network where the source also reaches every receiver
    /// directly at the cost of leaving it unmet (its weight, before any distance). Each search
    /// is local while there is surplus near the receiver: it ends at the first donor that still
    /// has some. Once there is not, the cheapest path may take stock from another receiver and
    /// leave that one unmet instead (a designated hospital is worth two): that is how receivers
    /// compete.
    ///
    /// Where stock is short, the mirror image, donor by donor: paths from the donor to a sink that
    /// every receiver reaches at its need (costing less the more it weighs) and every donor
    /// reaches directly at the cost of keeping its stock. Each search ends at the first receiver
    /// that still needs something, close by while need is everywhere. The network is built turned
    /// around, so the same search serves both.
    ///
    /// Either way every path is a shortest one and reduced costs never go negative, so the final
    /// flow is optimal, and the potentials are the certificate pricing uses.
    ///
    /// `warm`: the last pricing round's flow and potentials (only where stock is plentiful). The
    /// arcs pricing added that have a negative reduced cost are saturated, and the imbalance left
    /// at their ends is repaired by the same shortest paths, from nodes short of flow and then
    /// from nodes with flow to spare, each to the hub or to the nearest node of the other kind.
    static func solve(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions, ruledOut: Set<Int>,
                      candidates: [[Int]]?, donorTree: SiteTree? = nil, points: Points? = nil, warm: WarmStart? = nil, added: [(Int, Int)] = [])
        -> (plan: () -> ItemPlan, priced: ([[Int]]) -> [(Int, Int)], warm: WarmStart) {
        let surplus = donors.saturatingSum { max(0, $0.surplus) }, need = receivers.saturatingSum { max(0, $0.need) }
        let byDonor = surplus < need
        var network = network(donors: donors, receivers: receivers, options: options, ruledOut: ruledOut, candidates: candidates,
                              points: points, reversed: byDonor, arcs: warm == nil)
        let receiverBase = network.receiverBase
        let hub: Int, terminals: [(node: Int, amount: Int64)]
        if warm != nil {
            // The pairs pricing added, to go into the last round's network below.
            network.addPairs(added)
            hub = byDonor ? network.sink : network.source
            terminals = []
        } else if byDonor {
            // Every path to the sink ends in one arc into it; all of them cost the heaviest weight
            // more than the plain model (receiver: −weight, keeping stock: 0), so costs stay ≥ 0.
            hub = network.sink
            let heaviest = receivers.map(\.weight).max() ?? 1
            for (j, receiver) in receivers.enumerated() where receiver.need > 0 {
                network.link(receiverBase + j, hub, receiver.need, Cost(coverage: heaviest - receiver.weight, distance: 0, expiry: 0))
            }
            for (i, donor) in donors.enumerated() where donor.surplus > 0 {
                network.link(1 + i, hub, donor.surplus, Cost(coverage: heaviest, distance: 0, expiry: 0))
            }
            terminals = donors.indices.filter { donors[$0].surplus > 0 }.map { (1 + $0, donors[$0].surplus) }
        } else {
            hub = network.source
            for (j, receiver) in receivers.enumerated() where receiver.need > 0 {
                network.addArc(hub, receiverBase + j, receiver.need, Cost(coverage: receiver.weight, distance: 0, expiry: 0))
            }
            // Designated hospitals first: they would take stock from others anyway, and fewer detours follow.
            terminals = receivers.indices.filter { receivers[$0].need > 0 }
                .sorted { (receivers[$0].weight, $1) > (receivers[$1].weight, $0) }
                .map { (receiverBase + $0, receivers[$0].need) }
        }
        // A warm round's network is the last one as it ended, its flow on it, with the new arcs
        // merged in: copying it in order took a fifth of the time of laying all the arcs out again
        // and putting the flow back pair by pair.
        var search = PathSearch(graph: warm.map { $0.graph.adding(network.arcs) } ?? network.graph, hub: hub)
        network.arcs = []
        let count = search.graph.nodeCount
        var order: [Int] = terminals.map(\.node)
        for (node, amount) in terminals { search.deficit[node] = amount }
        if let warm {
            // The last round's flow, still optimal on its arcs, and its potentials, still valid
            // there. The arcs pricing added have negative reduced costs: saturated, and the
            // imbalance that leaves is repaired below by shortest paths like any other.
            search.stored = warm.potential
            order = search.saturateNegative()
        }
        for node in order {
            while search.deficit[node] > 0 { search.augment(from: node, backward: true) }
        }
        for node in 0..<count {
            while search.excess[node] > 0 { search.augment(from: node, backward: false) }
        }
        let graph = search.graph, stored = search.stored
        // Read off only for the round that ends the pricing.
        let frozen = graph
        let plan = { flows(of: network, graph: frozen, donors: donors, receivers: receivers) }
        // Tightened at the end the priced arcs leave from: donors and lots, or receivers in the
        // turned-around network. A warm round started from tightened potentials and its repairs
        // moved only the nodes they reached, so they are still tight: tightening them again (a
        // search over the whole network, every round) changed nothing pricing found for a whole
        // city (804 rounds, 51,122 pairs added in warm rounds, either way). Any potentials the
        // searches keep are a valid certificate; tighter ones only add fewer pairs.
        let potential = warm != nil ? stored : tightened(stored, graph: graph, hub: hub,
                                  lowered: byDonor ? [receiverBase..<network.sink] : [1..<network.lotBase, network.lotBase..<receiverBase]),

            priceable = network, perReceiver = max(1, options.nearest)
        // In the turned-around network a lot → receiver arc runs receiver → lot: its reduced cost
        // is c + p(lot) − p(receiver) instead of c + p(receiver) − p(lot).
        func term(_ node: Int) -> Cost { byDonor ? -potential[node] : potential[node] }
        // Pricing: the pairs outside the candidates with an arc of negative reduced cost, at most
        // `nearest` per receiver (the most negative), since where a whole district ran short every idle
        // lot in the city prices in and most of them would never carry anything. Each receiver
        // walks the donors' k-d tree, nearer boxes first: the straight chord through the Earth is
        // never longer than the great circle, so a box whose donors could not beat 0 (or the worst
        // of the pairs kept) even at the chord's distance is ruled out whole. Looking at every
        // pair instead cost 0.1–0.2 s a round on an item of 17 million pairs; the tree, 5–10 ms.
        let priced = { (lists: [[Int]]) -> [(Int, Int)] in
            guard let tree = donorTree, !tree.nodes.isEmpty else { return [] }
            let receiverTerm = receivers.indices.map { term(receiverBase + $0) }
            let chordMillimetres = GreatCircle.earthRadiusKm * 1_000_000
            // Per donor, and then per node of the tree, the most any of its lots could take off a
            // reduced cost: the highest coverage term, and the highest distance term among the
            // lots that have it. rc ≥ (p(j) − that) with the chord added to the distance part.
            typealias Reach = (coverage: Int64, distance: Int64)
            func higher(_ a: Reach, _ b: Reach) -> Reach {
                a.coverage != b.coverage ? (a.coverage > b.coverage ? a : b) : (a.coverage, max(a.distance, b.distance))
            }
            let nothing: Reach = (.min, .min)
            var donorReach = [Reach](repeating: nothing, count: donors.count)
            for i in tree.order {
                for (k, lot) in priceable.lotsOf[i].enumerated() where lot.quantity > 0 {
                    let own = term(priceable.firstLot[i] + k)
                    donorReach[i] = higher(donorReach[i], (own.coverage, own.distance))
                }
            }
            var nodeReach = [Reach](repeating: nothing, count: tree.nodes.count)
            for n in tree.nodes.indices.reversed() {
                let node = tree.nodes[n]
                if node.left < 0 {
                    for m in node.start..<node.end { nodeReach[n] = higher(nodeReach[n], donorReach[tree.order[m]]) }
                } else {
                    nodeReach[n] = higher(nodeReach[node.left], nodeReach[node.right])
                }
            }
            // Each lot's own term, split into its digits once (not once per receiver that looks at it).
            let lotTerm = (priceable.lotBase..<receiverBase).map { term($0) }
            let lotReach = lotTerm.map { (coverage: $0.coverage, distance: $0.distance) }
            /// Whether nothing with this reach, at least this squared chord away, can beat `bar` for
            /// a receiver of term `mine`: 0, or once `perReceiver` are kept, the worst of them.
            func ruledOut(_ reach: Reach, _ squaredChord: Double, mine: Reach, bar: (coverage: Int64, distance: Double)) -> Bool {
                if reach.coverage == .min { return true }
                let coverage = mine.coverage - reach.coverage
                if coverage != bar.coverage { return coverage > bar.coverage }
                // Less one millimetre for the rounding of the exact cost.
                return squaredChord.squareRoot() * chordMillimetres - 1 + Double(mine.distance - reach.distance) > bar.distance
            }
            var found: [(Int, Int)] = []
            var best: [(reduced: Cost, donor: Int)] = []
            // Tree nodes still to look at, with their squared chords, the nearer child on top (a
            // loop, not a recursive local function: that kept `best` and the bar in boxes).
            var stack: [(node: Int, chord: Double)] = []
            for j in receivers.indices where receivers[j].need > 0 {
                let at = priceable.points.receivers[j]
                let mineCost = receiverTerm[j], mine: Reach = (mineCost.coverage, mineCost.distance)
                best.removeAll(keepingCapacity: true)
                var bar: (coverage: Int64, distance: Double) = (0, 0)
                stack.removeAll(keepingCapacity: true)
                stack.append((0, tree.squaredChord(at, toNode: 0)))
                while let (n, chord) = stack.popLast() {
                    guard !ruledOut(nodeReach[n], chord, mine: mine, bar: bar) else { continue }
                    let node = tree.nodes[n]
                    if node.left >= 0 {
                        let l = tree.squaredChord(at, toNode: node.left), r = tree.squaredChord(at, toNode: node.right)
                        if l <= r {
                            stack.append((node.right, r)); stack.append((node.left, l))
                        } else {
                            stack.append((node.left, l)); stack.append((node.right, r))
                        }
                        continue
                    }
                    for m in node.start..<node.end {
                        let i = tree.order[m]
                        let chord = SiteTree.squaredChord(at, tree.points[i])
                        guard !ruledOut(donorReach[i], chord, mine: mine, bar: bar) else { continue }
                        var km: Double??  // the pair's, once one of its lots needs it
                        for (k, lot) in priceable.lotsOf[i].enumerated() where lot.quantity > 0 {
                            let lotNode = priceable.firstLot[i] + k - priceable.lotBase
                            guard !ruledOut(lotReach[lotNode], chord, mine: mine, bar: bar),
                                  let pairKm = km ?? { km = priceable.pairKm(i, j); return km! }(),
                                  let (_, cost) = priceable.lotArc(pairKm, lot, j) else { continue }
                            let reduced = cost + mineCost - lotTerm[lotNode]
                            guard reduced < .zero else { continue }
                            // A pair in the network may show a negative reduced cost on an arc that is full.
                            guard !sortedContains(lists[i], j) else { continue }
                            if let at = best.firstIndex(where: { $0.donor == i }) {
                                best[at].reduced = min(best[at].reduced, reduced)
                            } else if best.count < perReceiver {
                                best.append((reduced, i))
                            } else if let worst = best.indices.max(by: { best[$0].reduced < best[$1].reduced }),
                                      reduced < best[worst].reduced {
                                best[worst] = (reduced, i)
                            }
                            if best.count == perReceiver, let worst = best.map(\.reduced).max() {
                                bar = (worst.coverage, Double(worst.distance))
                            }
                        }
                    }
                }
                found += best.map { ($0.donor, j) }
            }
            return found
        }
        return (plan, priced, WarmStart(graph: graph, potential: potential, byDonor: byDonor))
    }

    /// Potentials for pricing. Any that keep the reduced cost of every arc with room left at 0 or
    /// more prove a flow optimal, but the ones the searches leave behind are loose wherever no
    /// search went, and pricing with loose ones adds arcs by the hundred thousand that change
    /// nothing. So, in the searches' sense (distance to): first each node's shortest distance to
    /// the source over arcs with room left, the largest valid value, which is what a receiver
    /// should have (what giving back its dearest supply would save); then donors, and then their
    /// lots, lowered as far as the arcs into them allow, which for a donor with stock to spare is
    /// the source's own value: an idle lot costs nothing to use. Each step keeps every reduced
    /// cost at 0 or more, so the certificate stands. Nodes that cannot reach the source keep
    /// their old potentials, raised far enough that no arc into them breaks.
    static func tightened(_ stored: [Cost], graph: FlowGraph, hub source: Int, lowered: [Range<Int>]) -> [Cost] {
        var distance = [Cost](repeating: .infinity, count: graph.nodeCount)
        var heap = CostHeap()
        distance[source] = .zero
        heap.push(.zero, source)
        while let (dist, v) = heap.pop() {
            guard dist == distance[v] else { continue }
            for arc in graph.arcs(v) {
                // The arc u → v is the partner: its room is `back`, its cost the negative.
                guard graph.back[arc] > 0 else { continue }
                let u = graph.head[arc]
                let candidate = dist + (stored[v] - graph.cost[arc] - stored[u])
                if candidate < distance[u] { distance[u] = candidate; heap.push(candidate, u) }
            }
        }
        let apart = Cost(coverage: 1 << 30, distance: 0, expiry: 0)
        var potential = (0..<graph.nodeCount).map { v in
            distance[v] < .infinity ? distance[v] - stored[source] + stored[v] : stored[v] + apart
        }
        for range in lowered {
            for v in range where distance[v] < .infinity {
                // c(u,v) + p(v) − p(u) ≥ 0 on every arc u → v with room left.
                var lowest = -Cost.infinity
                for arc in graph.arcs(v) where graph.back[arc] > 0 {
                    lowest = max(lowest, potential[graph.head[arc]] + graph.cost[arc])
                }
                if lowest > -Cost.infinity { potential[v] = lowest }
            }
        }
        return potential
    }

    /// The flows, per donor × receiver, with their lots earliest expiry first.
    static func flows(of network: Network, graph: FlowGraph, donors: [PlanDonor], receivers: [PlanReceiver]) -> ItemPlan {
        let r = receivers.count, receiverBase = network.receiverBase
        var byPair: [Int: PlanFlow] = [:]
        for lotNode in network.firstLot.first.map({ $0..<receiverBase }) ?? 0..<0 {
            let i = network.lotDonor[lotNode - network.lotBase], k = network.lotIndex[lotNode - network.lotBase]
            for arc in graph.arcs(lotNode) where graph.head[arc] >= receiverBase && graph.head[arc] < receiverBase + r {
                // Turned around, the lot's list holds the partner of receiver → lot, whose room is the flow.
                let moved = network.reversed ? graph.room[arc] : graph.back[arc]
                guard moved > 0 else { continue }
                let j = graph.head[arc] - receiverBase
                byPair[i * r + j, default: PlanFlow(donor: i, receiver: j, quantity: 0,
                                                    distanceKm: GreatCircle.km(donors[i].site, receivers[j].site), lots: [])]
                    .quantity += moved
                byPair[i * r + j]!.lots.append((k, moved))
            }
        }
        var flows = byPair.values.sorted { ($0.donor, $0.receiver) < ($1.donor, $1.receiver) }
        for n in flows.indices {
            let lots = network.lotsOf[flows[n].donor]
            flows[n].lots.sort { (lots[$0.lot].expiryDays ?? .max, $0.lot) < (lots[$1.lot].expiryDays ?? .max, $1.lot) }
        }
        let needBefore = receivers.reduce(Int64(0)) { $0 + max(0, $1.need) }
        let covered = flows.reduce(Int64(0)) { $0 + $1.quantity }
        let weighted = flows.reduce(Int64(0)) { $0 + $1.quantity * receivers[$1.receiver].weight }
        let quantityKm = flows.reduce(0.0) { $0 + Double($1.quantity) * $1.distanceKm }
        return ItemPlan(flows: flows, needBefore: needBefore, covered: covered, weightedCovered: weighted, quantityKm: quantityKm)
    }

    /// The textbook formulation, kept as the reference the tests and `stockpile bench plan` compare
    /// with: every pair, receivers → a sink at minus their weight, and successive shortest paths from
    /// the source to the sink with Dijkstra over the whole network each time. Slow, simple, exact.
    public static func referenceSolve(donors: [PlanDonor], receivers: [PlanReceiver], options: PlanOptions = PlanOptions()) -> ItemPlan {
        var network = network(donors: donors, receivers: receivers, options: options, ruledOut: [], candidates: nil)
        let source = network.source, sink = network.sink
        for (j, receiver) in receivers.enumerated() where receiver.need > 0 {
            network.addArc(network.receiverBase + j, sink, receiver.need, Cost(coverage: -receiver.weight, distance: 0, expiry: 0))
        }
        var graph = network.graph
        let count = graph.nodeCount
        // Only receiver→sink arcs cost less than 0 and the graph is layered (arcs go to higher
        // nodes), so the first potentials are shortest distances computed in node order.
        var potential = [Cost](repeating: .infinity, count: count)
        potential[source] = .zero
        for node in 0..<sink where potential[node] < .infinity {
            for arc in graph.arcs(node) where graph.room[arc] > 0 && graph.head[arc] > node {
                potential[graph.head[arc]] = min(potential[graph.head[arc]], potential[node] + graph.cost[arc])
            }
        }
        for node in potential.indices where !(potential[node] < .infinity) { potential[node] = .zero }
        while true {
            var distance = [Cost](repeating: .infinity, count: count)
            var previous = [Int](repeating: -1, count: count)  // the arc into the node
            distance[source] = .zero
            var heap = CostHeap()
            heap.push(.zero, source)
            while let (dist, node) = heap.pop() {
                guard dist == distance[node] else { continue }
                for arc in graph.arcs(node) where graph.room[arc] > 0 {
                    let to = graph.head[arc]
                    let candidate = dist + (graph.cost[arc] + potential[node] - potential[to])
                    if candidate < distance[to] { distance[to] = candidate; previous[to] = arc; heap.push(candidate, to) }
                }
            }
            guard distance[sink] < .infinity else { break }
            for n in 0..<count where distance[n] < .infinity { potential[n] = potential[n] + distance[n] }
            // Augment while it lowers the total: covers more, or the same for less distance.
            guard potential[sink] - potential[source] < .zero else { break }
            var bottleneck = Int64.max
            var node = sink
            // The partner of the arc into a node leads back to where the arc came from.
            while node != source { bottleneck = min(bottleneck, graph.room[previous[node]]); node = graph.head[graph.partner[previous[node]]] }
            node = sink
            while node != source {
                let arc = previous[node]
                graph.push(arc, bottleneck)
                node = graph.head[graph.partner[arc]]
            }
        }
        return flows(of: network, graph: graph, donors: donors, receivers: receivers)
    }
}

/// The searches of one solve (see `Planner.solve`): the residual network, potentials as
/// `stored + offset` (a search moves every node it did not reach by the same amount, kept once
/// in `offset`), what each node still has to receive or send on, and the search's own arrays,
/// reset only where the last search went. A struct with mutating methods rather than local
/// functions over local variables: those were captured in boxes, and every access in the
/// innermost loop paid for it.
struct PathSearch {
    typealias Cost = Planner.Cost
    var graph: FlowGraph
    let hub: Int
    /// Reduced cost c(u,v) + p(v) − p(u), never negative on an arc with room left.
    var stored: [Cost]
    var offset = Cost.zero
    /// What each node still has to receive (terminals, and tails of arcs saturated) or to send on (their heads).
    var deficit: [Int64], excess: [Int64]
    var distance: [Cost]
    /// The arc on the path found, toward where the search started.
    var next: [Int]
    var touched: [Int] = []
    var heap = CostHeap()

    init(graph: FlowGraph, hub: Int) {
        let count = graph.nodeCount
        self.graph = graph
        self.hub = hub
        stored = [Cost](repeating: .zero, count: count)
        deficit = [Int64](repeating: 0, count: count)
        excess = [Int64](repeating: 0, count: count)
        distance = [Cost](repeating: .infinity, count: count)
        next = [Int](repeating: -1, count: count)
    }

    @inline(__always)
    private mutating func reached(_ u: Int, _ candidate: Cost, by arc: Int) {
        if distance[u] == .infinity { touched.append(u) }
        distance[u] = candidate
        next[u] = arc
        heap.push(candidate, u)
    }

    /// Saturates every arc with room and a negative reduced cost; returns the nodes left short.
    mutating func saturateNegative() -> [Int] {
        var short: [Int] = []
        for u in 0..<graph.nodeCount {
            for arc in graph.arcs(u) where graph.room[arc] > 0 {
                let v = graph.head[arc]
                guard graph.cost[arc] + stored[v] - stored[u] < .zero else { continue }
                let amount = graph.room[arc]
                graph.push(arc, amount)
                deficit[u] += amount
                excess[v] += amount
                short.append(u)
            }
        }
        // A node can be both: only the difference counts.
        for v in 0..<graph.nodeCount where deficit[v] > 0 && excess[v] > 0 {
            let both = min(deficit[v], excess[v])
            deficit[v] -= both
            excess[v] -= both
        }
        return short
    }

    /// One shortest path from `start` and the flow along it. Backward (a node short of flow):
    /// over arcs into each node, to the hub or a node with flow to spare. Forward (a node with
    /// flow to spare): over arcs out of each node, to the hub or a node short of flow. There is
    /// always one: the hub reaches every terminal directly (the unmet and keep arcs), and what a
    /// node has to spare came to it along arcs whose partners lead back to the hub or to the node
    /// that gave it, so a failure here is a defect, not bad input.
    mutating func augment(from start: Int, backward: Bool) {
        for n in touched { distance[n] = .infinity; next[n] = -1 }
        touched.removeAll(keepingCapacity: true)
        heap.removeAll()
        distance[start] = .zero
        touched.append(start)
        heap.push(.zero, start)
        var reach = Cost.infinity, end = -1
        while let (dist, v) = heap.pop() {
            // Settled when it comes off at its distance; other entries for it are stale. (A settled
            // node is never improved again: reduced costs are ≥ 0.)
            guard dist == distance[v] else { continue }
            if v == hub || (backward ? excess[v] > 0 : deficit[v] > 0) { reach = dist; end = v; break }
            let here = stored[v]
            if backward {
                // Over u → v, the partner of v's entry: its room is `back`, its cost the negative.
                for arc in graph.arcs(v) where graph.back[arc] > 0 {
                    let u = graph.head[arc]
                    let candidate = dist + (here - graph.cost[arc] - stored[u])
                    if candidate < distance[u] { reached(u, candidate, by: graph.partner[arc]) }
                }
            } else {
                for arc in graph.arcs(v) where graph.room[arc] > 0 {
                    let u = graph.head[arc]
                    let candidate = dist + (graph.cost[arc] + stored[u] - here)
                    if candidate < distance[u] { reached(u, candidate, by: arc) }
                }
            }
        }
        precondition(end >= 0, "no path from node \(start): the network is not built as the planner assumes")
        // p' = p + min(d, reach) searching backward, p − min(d, reach) forward: every reduced
        // cost stays ≥ 0, and those on the path become 0. (Nodes at `reach` or beyond keep theirs.)
        if backward {
            for n in touched where distance[n] < reach { stored[n] = stored[n] + distance[n] - reach }
            offset = offset + reach
        } else {
            for n in touched where distance[n] < reach { stored[n] = stored[n] - distance[n] + reach }
            offset = offset - reach
        }
        var amount = backward ? deficit[start] : excess[start]
        if end != hub { amount = min(amount, backward ? excess[end] : deficit[end]) }
        // next[] leads from `end` back to `start`: backward it holds the arcs in flow order
        // (u → v, the node after u toward start is its head), forward their heads are behind.
        var node = end
        while node != start {
            let arc = next[node]
            amount = min(amount, graph.room[arc])
            node = backward ? graph.head[arc] : graph.head[graph.partner[arc]]
        }
        node = end
        while node != start {
            let arc = next[node]
            graph.push(arc, amount)
            node = backward ? graph.head[arc] : graph.head[graph.partner[arc]]
        }
        if backward { deficit[start] -= amount } else { excess[start] -= amount }
        if end != hub { if backward { excess[end] -= amount } else { deficit[end] -= amount } }
    }
}

/// Whether an ascending array holds `value`.
func sortedContains(_ sorted: [Int], _ value: Int) -> Bool {
    var low = 0, high = sorted.count
    while low < high {
        let middle = (low + high) / 2
        if sorted[middle] < value { low = middle + 1 } else { high = middle }
    }
    return low < sorted.count && sorted[low] == value
}

/// A min-heap of (cost, node) for Dijkstra: four children a node (half the levels of a binary
/// heap, and a node's children side by side in memory), costs and nodes in separate arrays, and
/// entries moved into a hole instead of swapped. The searches push and pop millions of entries
/// per item; with this layout the items where stock is short, whose searches are longest, took
/// 10–30% less time than with a binary heap of (cost, node) pairs (best of two runs each).
struct CostHeap {
    private var costs: [Planner.Cost] = []
    private var nodes: [Int32] = []
    /// Entries at the cost last popped. Dijkstra never pushes below it, and an entry at it (an
    /// arc of reduced cost 0, as every arc of an earlier path is) comes next whatever the order:
    /// such entries skip the heap. Large items short of stock searched 30% faster.
    private var level: [Int32] = []
    private var current = Planner.Cost.zero

    mutating func push(_ cost: Planner.Cost, _ node: Int) {
        if cost == current { level.append(Int32(node)); return }
        costs.append(cost)
        nodes.append(Int32(node))
        // Through raw buffers: each element write to the arrays themselves would check again that
        // they are not shared, and the heap moves several entries per push and pop.
        costs.withUnsafeMutableBufferPointer { costs in
            nodes.withUnsafeMutableBufferPointer { nodes in
                var hole = costs.count - 1
                while hole > 0 {
                    let parent = (hole - 1) / 4
                    guard cost < costs[parent] else { break }
                    costs[hole] = costs[parent]
                    nodes[hole] = nodes[parent]
                    hole = parent
                }
                costs[hole] = cost
                nodes[hole] = Int32(node)
            }
        }
    }

    mutating func removeAll() {
        costs.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
        level.removeAll(keepingCapacity: true)
        current = .zero
    }

    mutating func pop() -> (Planner.Cost, Int)? {
        if let node = level.popLast() { return (current, Int(node)) }
        guard let top = popHeap() else { return nil }
        current = top.0
        return top
    }

    private mutating func popHeap() -> (Planner.Cost, Int)? {
        guard let lastCost = costs.popLast(), let lastNode = nodes.popLast() else { return nil }
        let count = costs.count
        guard count > 0 else { return (lastCost, Int(lastNode)) }
        return costs.withUnsafeMutableBufferPointer { costs in
            nodes.withUnsafeMutableBufferPointer { nodes in
                let top = (costs[0], Int(nodes[0]))
                // Sift the last entry down from the root.
                var hole = 0
                while true {
                    let first = 4 * hole + 1
                    guard first < count else { break }
                    var smallest = first
                    for child in first + 1..<min(first + 4, count) where costs[child] < costs[smallest] { smallest = child }
                    guard costs[smallest] < lastCost else { break }
                    costs[hole] = costs[smallest]
                    nodes[hole] = nodes[smallest]
                    hole = smallest
                }
                costs[hole] = lastCost
                nodes[hole] = lastNode
                return top
            }
        }
    }
}

/// One facility × item as the planner sees it.
public struct PlanPosition: Sendable, Equatable, Codable {
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

    /// As the planner's donor and receiver.
    public var donor: PlanDonor { PlanDonor(site: site, surplus: surplus, lots: lots) }
    public var receiver: PlanReceiver { PlanReceiver(site: site, need: shortfall, weight: designated ? 2 : 1, dailyDemand: dailyDemand) }

    /// What it can give without dropping below its own target: usable − ceil(N × d), at least 0.
    /// With no demand (a warehouse) that is everything usable.
    public var surplus: Int64 {
        max(0, usable.saturatingAdd(-Int64(saturating: Cover.roundQuantity(Double(targetDays) * dailyDemand).rounded(.up))))
    }
}

public enum Reallocation {
    /// How hard an item is to plan, for ordering work: short of stock but more than half covered
    /// (the searches go furthest), and its donor × receiver pairs.
    public static func effort(_ positions: [PlanPosition]) -> (balanced: Bool, pairs: Int) {
        let surplus = positions.reduce(Int64(0)) { $0.saturatingAdd($1.surplus) }
        let need = positions.reduce(Int64(0)) { $0.saturatingAdd(max(0, $1.shortfall)) }
        return (surplus < need && surplus > need - surplus, positions.filter { $0.surplus > 0 }.count * positions.filter { $0.shortfall > 0 }.count)
    }

    /// The item's donors (surplus > 0) and receivers (need > 0), and the optimal plan between them.
    public static func plan(_ positions: [PlanPosition], options: PlanOptions = PlanOptions())
        -> (plan: ItemPlan, donors: [PlanPosition], receivers: [PlanPosition]) {
        let donors = positions.filter { $0.surplus > 0 }
        let receivers = positions.filter { $0.shortfall > 0 }
        let plan = Planner.solve(donors: donors.map(\.donor), receivers: receivers.map(\.receiver), options: options)
        return (plan, donors, receivers)
    }
}
