/// A residual network in flat arrays: node v's arcs are `first[v]..<first[v + 1]`, each arc with
/// its head, room left, cost and partner (the opposite arc). The planner's searches touch an arc
/// and its partner for every step, and one array per node (the first version) cost a pointer
/// chase and reference counting on each; this layout about halved the time of a search.
struct FlowGraph {
    private(set) var first: [Int]
    private(set) var head: [Int]
    var room: [Int64]
    private(set) var cost: [Planner.Cost]
    private(set) var partner: [Int]

    var nodeCount: Int { first.count - 1 }

    @inline(__always)
    func arcs(_ v: Int) -> Range<Int> { first[v]..<first[v + 1] }

    /// Arcs as `(from, to, capacity, cost)`; each gets a partner of room 0 and the opposite cost.
    /// Every node lists its arcs in the order they were given (the partners in their place), so
    /// the searches break ties the same way however the network was built.
    init(nodes: Int, arcs: [FlowArc]) {
        var degree = [Int](repeating: 0, count: nodes + 1)
        for arc in arcs { degree[arc.from + 1] += 1; degree[arc.to + 1] += 1 }
        for v in 0..<nodes { degree[v + 1] += degree[v] }
        first = degree
        var cursor = degree
        let total = 2 * arcs.count
        head = [Int](repeating: 0, count: total)
        room = [Int64](repeating: 0, count: total)
        cost = [Planner.Cost](repeating: .zero, count: total)
        partner = [Int](repeating: 0, count: total)
        for arc in arcs {
            let forward = cursor[arc.from], backward = cursor[arc.to]
            cursor[arc.from] += 1
            cursor[arc.to] += 1
            head[forward] = arc.to; room[forward] = arc.capacity; cost[forward] = arc.cost; partner[forward] = backward
            head[backward] = arc.from; room[backward] = 0; cost[backward] = -arc.cost; partner[backward] = forward
        }
    }
}

struct FlowArc {
    var from: Int, to: Int
    var capacity: Int64
    var cost: Planner.Cost
}
