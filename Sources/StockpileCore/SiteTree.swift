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

    /// The `k` members nearest to `p`, nearest first, each handed to `body`. Nodes still to look
    /// at wait on a stack with their squared chords, the nearer child on top, so the far one is
    /// more often ruled out by the time it comes up. Everything lives on the call stack: a city
    /// asks this millions of times, and the recursive version, with its results in a captured
    /// array, spent a tenth of a plan's time here.
    func nearest(to p: Point, k: Int, _ body: (Int) -> Void) {
        guard !nodes.isEmpty, k > 0 else { return }
        // Median splits keep the tree balanced: its depth is under 64 for any count of sites.
        let stackSize = 2 * 64
        withUnsafeTemporaryAllocation(of: (node: Int, chord: Double).self, capacity: stackSize) { stack in
            withUnsafeTemporaryAllocation(of: (chord: Double, member: Int).self, capacity: k) { best in
                var top = 1, count = 0  // `best` ascending by chord
                stack[0] = (0, squaredChord(p, toNode: 0))
                while top > 0 {
                    top -= 1
                    let (n, chord) = stack[top]
                    if count == k, chord > best[k - 1].chord { continue }
                    let node = nodes[n]
                    if node.left >= 0 {
                        precondition(top + 2 <= stackSize, "k-d tree deeper than it can be")
                        let l = squaredChord(p, toNode: node.left), r = squaredChord(p, toNode: node.right)
                        if l <= r {
                            stack[top] = (node.right, r); stack[top + 1] = (node.left, l)
                        } else {
                            stack[top] = (node.left, l); stack[top + 1] = (node.right, r)
                        }
                        top += 2
                        continue
                    }
                    for m in node.start..<node.end {
                        let i = order[m]
                        let d = Self.squaredChord(p, points[i])
                        if count == k {
                            guard d < best[k - 1].chord else { continue }
                            count -= 1
                        }
                        var at = count
                        while at > 0 && best[at - 1].chord > d { best[at] = best[at - 1]; at -= 1 }
                        best[at] = (d, i)
                        count += 1
                    }
                }
                for m in 0..<count { body(best[m].member) }
            }
        }
    }
}
