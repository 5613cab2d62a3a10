import Foundation

/// A k-d tree over sites as points on the unit sphere, for the planner's geometric questions
/// (each site's nearest partners, and which pairs pricing must look at). The straight chord
/// between two unit vectors is the Euclidean distance, and the distance from a point to a box of
/// the tree is never more than the chord to anything inside it, so whole boxes can be ruled out
/// exactly, without trigonometry. Built once per item; the planner keeps its own numbers per
/// node (by `nodes` index) and the tree says which points each node holds.
struct SiteTree {
    typealias Point = (Double, Double, Double)

    struct Node {
        /// `order[start..<end]` are the node's points.
        var start: Int, end: Int
        var low: Point, high: Point
        /// Children (nodes index), -1 for a leaf. Children always come after their parent.
        var left: Int, right: Int
    }

    let points: [Point]
    /// Point indexes, grouped so that every node's points are one run.
    private(set) var order: [Int]
    private(set) var nodes: [Node] = []
    static let leafSize = 8

    /// A tree over `points[i]` for the indexes in `members`.
    init(points: [Point], members: [Int]) {
        self.points = points
        self.order = members
        if !members.isEmpty { _ = build(0, members.count) }
    }

    private mutating func build(_ start: Int, _ end: Int) -> Int {
        var low = points[order[start]], high = low
        for n in start..<end {
            let p = points[order[n]]
            low = (min(low.0, p.0), min(low.1, p.1), min(low.2, p.2))
            high = (max(high.0, p.0), max(high.1, p.1), max(high.2, p.2))
        }
        let at = nodes.count
        nodes.append(Node(start: start, end: end, low: low, high: high, left: -1, right: -1))
        guard end - start > Self.leafSize else { return at }
        // Split the widest side at its median.
        let widths = (high.0 - low.0, high.1 - low.1, high.2 - low.2)
        let axis = widths.0 >= widths.1 && widths.0 >= widths.2 ? 0 : (widths.1 >= widths.2 ? 1 : 2)
        let points = self.points
        func coordinate(_ i: Int) -> Double { axis == 0 ? points[i].0 : (axis == 1 ? points[i].1 : points[i].2) }
        order[start..<end].sort { coordinate($0) < coordinate($1) }
        let middle = (start + end) / 2
        let left = build(start, middle), right = build(middle, end)
        nodes[at].left = left
        nodes[at].right = right
        return at
    }

    /// The squared chord from `p` to the nearest point of node `n`'s box (0 inside it).
    @inline(__always)
    func squaredChord(_ p: Point, toNode n: Int) -> Double {
        let node = nodes[n]
        let dx = max(node.low.0 - p.0, 0, p.0 - node.high.0)
        let dy = max(node.low.1 - p.1, 0, p.1 - node.high.1)
        let dz = max(node.low.2 - p.2, 0, p.2 - node.high.2)
        return dx * dx + dy * dy + dz * dz
    }

    @inline(__always)
    static func squaredChord(_ a: Point, _ b: Point) -> Double {
        let dx = a.0 - b.0, dy = a.1 - b.1, dz = a.2 - b.2
        return dx * dx + dy * dy + dz * dz
    }

    /// The `k` members nearest to `p` (nearest first), skipping those `accept` refuses.
    func nearest(to p: Point, k: Int, accept: (Int) -> Bool = { _ in true }) -> [Int] {
        guard !nodes.isEmpty, k > 0 else { return [] }
        var best: [(Double, Int)] = []  // ascending squared chord, at most k
        best.reserveCapacity(k + 1)
        func visit(_ n: Int) {
            if best.count == k, squaredChord(p, toNode: n) > best[k - 1].0 { return }
            let node = nodes[n]
            if node.left < 0 {
                for m in node.start..<node.end {
                    let i = order[m]
                    guard accept(i) else { continue }
                    let d = Self.squaredChord(p, points[i])
                    if best.count == k { guard d < best[k - 1].0 else { continue }; best.removeLast() }
                    var at = best.count
                    while at > 0 && best[at - 1].0 > d { at -= 1 }
                    best.insert((d, i), at: at)
                }
                return
            }
            // The nearer box first, so the far one is more often ruled out.
            let l = squaredChord(p, toNode: node.left), r = squaredChord(p, toNode: node.right)
            if l <= r { visit(node.left); visit(node.right) } else { visit(node.right); visit(node.left) }
        }
        visit(0)
        return best.map(\.1)
    }
}
