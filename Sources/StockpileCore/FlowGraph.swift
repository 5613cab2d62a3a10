/// A residual network in flat arrays: node v's arcs are `first[v]..<first[v + 1]`, each arc with
/// its head, room left, cost and partner (the opposite arc). The planner's searches touch an arc
/// and its partner for every step, and one array per node (the first version) cost a pointer
/// chase and reference counting on each.
struct FlowGraph {
    private(set) var first: [Int]
    private(set) var head: NodeColumn
    private(set) var room: [Int64]
    /// The room of each arc's partner, kept beside the arc: a search over the arcs into a node
    /// (the partners of its own) then reads its list in order instead of jumping to each partner.
    private(set) var back: [Int64]
    private(set) var cost: [Planner.Cost]
    private(set) var partner: NodeColumn
    var arcCount: Int { room.count }

    var nodeCount: Int { first.count - 1 }

    @inline(__always)
    func arcs(_ v: Int) -> Range<Int> { first[v]..<first[v + 1] }

    /// Moves `amount` along `arc`: less room on it, as much more on its partner.
    @inline(__always)
    mutating func push(_ arc: Int, _ amount: Int64) {
        let other = partner[arc]
        room[arc] -= amount; back[arc] += amount
        room[other] += amount; back[other] -= amount
    }

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
        var head = [Int32](repeating: 0, count: total), partner = [Int32](repeating: 0, count: total)
        room = [Int64](repeating: 0, count: total)
        back = [Int64](repeating: 0, count: total)
        cost = [Planner.Cost](repeating: .zero, count: total)
        for arc in arcs {
            let forward = cursor[arc.from], backward = cursor[arc.to]
            cursor[arc.from] += 1
            cursor[arc.to] += 1
            head[forward] = Int32(arc.to); room[forward] = arc.capacity; cost[forward] = arc.cost; partner[forward] = Int32(backward)
            back[backward] = arc.capacity
            head[backward] = Int32(arc.from); room[backward] = 0; cost[backward] = -arc.cost; partner[backward] = Int32(forward)
        }
        self.head = NodeColumn(values: head)
        self.partner = NodeColumn(values: partner)
    }

    /// This network, its flow as it is, with more arcs: each node's arcs as they were, then its new
    /// ones, the same layout as building it from all the arcs in that order.
    func adding(_ more: [FlowArc]) -> FlowGraph {
        let nodes = nodeCount
        // How many new arc ends go to the nodes before each: how far its old arcs move.
        var shift = [Int](repeating: 0, count: nodes + 1)
        for arc in more { shift[arc.from + 1] += 1; shift[arc.to + 1] += 1 }
        for v in 0..<nodes { shift[v + 1] += shift[v] }
        let total = arcCount + 2 * more.count
        var first = self.first, head = [Int32](repeating: 0, count: total), partner = [Int32](repeating: 0, count: total)
        var room = [Int64](repeating: 0, count: total), back = [Int64](repeating: 0, count: total)
        var cost = [Planner.Cost](repeating: .zero, count: total)
        var cursor = [Int](repeating: 0, count: nodes)
        for v in 0..<nodes {
            let moved = shift[v]
            for a in arcs(v) {
                // The partner is in the list of this arc's head, which moved by that node's shift.
                let to = self.head[a]
                head[a + moved] = Int32(to); partner[a + moved] = Int32(self.partner[a] + shift[to])
                room[a + moved] = self.room[a]; back[a + moved] = self.back[a]; cost[a + moved] = self.cost[a]
            }
            first[v] += moved
            cursor[v] = self.first[v + 1] + moved
        }
        first[nodes] = total
        for arc in more {
            let forward = cursor[arc.from], backward = cursor[arc.to]
            cursor[arc.from] += 1
            cursor[arc.to] += 1
            head[forward] = Int32(arc.to); room[forward] = arc.capacity; back[forward] = 0; cost[forward] = arc.cost
            partner[forward] = Int32(backward)
            head[backward] = Int32(arc.from); room[backward] = 0; back[backward] = arc.capacity; cost[backward] = -arc.cost
            partner[backward] = Int32(forward)
        }
        return FlowGraph(first: first, head: head, room: room, back: back, cost: cost, partner: partner)
    }

    private init(first: [Int], head: [Int32], room: [Int64], back: [Int64], cost: [Planner.Cost], partner: [Int32]) {
        self.first = first; self.head = NodeColumn(values: head); self.room = room; self.back = back; self.cost = cost
        self.partner = NodeColumn(values: partner)
    }
}

/// Node or arc numbers stored in 32 bits (an item's network has well under 2³¹ of either):
/// half the memory the searches read per arc.
struct NodeColumn {
    let values: [Int32]
    @inline(__always) subscript(_ n: Int) -> Int { Int(values[n]) }
}

/// An arc as the network is built: its ends in 32 bits (32 bytes an arc instead of 48; an item
/// lays out hundreds of thousands before they go into a `FlowGraph`).
struct FlowArc {
    private var ends: (Int32, Int32)
    var capacity: Int64
    var cost: Planner.Cost
    var from: Int { Int(ends.0) }
    var to: Int { Int(ends.1) }
    init(from: Int, to: Int, capacity: Int64, cost: Planner.Cost) {
        ends = (Int32(from), Int32(to))
        self.capacity = capacity
        self.cost = cost
    }
}
