// Coreset active learning (Sener & Savarese, ICLR 2018) by k-center greedy (Gonzalez 1985; farthest-first traversal),
// made incremental for frozen features (research notes §C.3).
//
// State kept between rounds: `minDistance[i]` = squared Euclidean distance of cell i to its nearest labelled cell
// (+∞ while nothing is labelled), and ‖x_i‖² for every cell.
//
// Complexity (N cells, D features, b = |S| picks per round, L = heap entries re-examined):
//  * `addLabelled`: one pass over the features per new label, O(N·D) time (a GEMM against a block of ≤ 32 new
//    centres), O(N) memory in total. No pass ever revisits old labels.
//  * `select` (lazy greedy, exact): O(N) to build a max-heap of the upper bounds minDistance, then per pick the heap
//    top is refreshed against the picks made since it was last scored (O(D) each) until a fresh top is found;
//    O(N + b·L·(log N + D)) in total, with L ≪ N in practice because bounds only shrink. Picks are identical to the
//    plain greedy (`selectByFullPasses`, O(N·D·b)), which costs one full pass per pick.
//  * When the embedding changes (fine-tuned backbone), call `reset(labelled:)` to rebuild: O(N·D·|L|/32) GEMMs.

public import HaliMath

public struct IncrementalKCenter: Sendable {
    public let features: Matrix
    public private(set) var minDistance: [Float]
    public private(set) var isLabelled: [Bool]
    public private(set) var labelledCount = 0
    let norms: [Float]

    public init(features: Matrix) {
        self.features = features
        norms = features.rowSquaredNorms()
        minDistance = [Float](repeating: .infinity, count: features.rows)
        isLabelled = [Bool](repeating: false, count: features.rows)
    }

    public var count: Int { features.rows }

    /// Squared distance between cells i and j by the same expansion the passes use.
    @inline(__always) public func distance(_ i: Int, _ j: Int) -> Float {
        let d = features.columns
        var dot: Float = 0
        features.values.withUnsafeBufferPointer { x in
            for c in 0..<d { dot += x[i * d + c] * x[j * d + c] }
        }
        return max(norms[i] + norms[j] - 2 * dot, 0)
    }

    /// Adds labelled cells and updates every cell's distance to the labelled set: one pass per new label.
    public mutating func addLabelled(_ cells: [Int]) {
        let fresh = cells.filter { !isLabelled[$0] }
        for c in fresh { isLabelled[c] = true }
        labelledCount += fresh.count
        Self.updateMinDistances(features: features, norms: norms, centres: fresh, minDistance: &minDistance)
        for c in fresh { minDistance[c] = 0 }
    }

    /// Rebuilds the state for a new embedding or a new labelled set.
    public mutating func reset(labelled: [Int]) {
        minDistance = [Float](repeating: .infinity, count: count)
        isLabelled = [Bool](repeating: false, count: count)
        labelledCount = 0
        addLabelled(labelled)
    }

    /// minDistance[i] = min(minDistance[i], ‖x_i − x_c‖²) for each centre c, in GEMM blocks of 32 centres.
    static func updateMinDistances(features: Matrix, norms: [Float], centres: [Int], minDistance: inout [Float]) {
        guard !centres.isEmpty else { return }
        let n = features.rows
        var start = 0
        while start < centres.count {
            let block = Array(centres[start..<min(start + 32, centres.count)])
            let c = features.gathering(rows: block)
            var g = Matrix(rows: n, columns: block.count)
            BLAS.gemm(features, c, transposeB: true, into: &g)
            let b = block.count
            g.values.withUnsafeBufferPointer { gp in
                minDistance.withUnsafeMutableBufferPointer { md in
                    for i in 0..<n {
                        var m = md[i]
                        let ni = norms[i]
                        for j in 0..<b {
                            let dd = max(ni + norms[block[j]] - 2 * gp[i * b + j], 0)
                            if dd < m { m = dd }
                        }
                        md[i] = m
                    }
                }
            }
            start += 32
        }
    }

    /// k-center greedy subset S of size `count` among unlabelled cells allowed by `candidate` (nil = all):
    /// repeatedly the candidate farthest from labelled ∪ S (ties → lowest index). Lazy evaluation, exact.
    public func select(count k: Int, candidate: [Bool]? = nil) -> [Int] {
        var entries: [BoundEntry] = []
        entries.reserveCapacity(count)
        for i in 0..<count where !isLabelled[i] && (candidate?[i] ?? true) {
            entries.append(BoundEntry(bound: minDistance[i], index: Int32(i), scoredAgainst: 0))
        }
        var heap = MaxHeap(entries)
        var picks: [Int] = []
        while picks.count < k, var top = heap.pop() {
            if Int(top.scoredAgainst) == picks.count {
                picks.append(Int(top.index))
                continue
            }
            // Refresh against picks made since this entry was scored.
            for p in Int(top.scoredAgainst)..<picks.count { top.bound = min(top.bound, distance(Int(top.index), picks[p])) }
            top.scoredAgainst = Int32(picks.count)
            heap.push(top)
        }
        return picks
    }

    /// A heap entry: an upper bound on the cell's distance to labelled ∪ S, valid against the first `scoredAgainst`
    /// picks. Ordered by bound desc, then index asc.
    struct BoundEntry: HeapOrdered {
        var bound: Float
        var index: Int32
        var scoredAgainst: Int32

        @inline(__always) static func above(_ a: BoundEntry, _ b: BoundEntry) -> Bool {
            a.bound > b.bound || (a.bound == b.bound && a.index < b.index)
        }
    }

    /// The plain greedy: one full pass per pick (reference for `select`).
    public func selectByFullPasses(count k: Int, candidate: [Bool]? = nil) -> [Int] {
        var md = minDistance
        var picks: [Int] = []
        var taken = isLabelled
        while picks.count < k {
            var best = -1
            var bestV = -Float.infinity
            for i in 0..<count where !taken[i] && (candidate?[i] ?? true) && md[i] > bestV { best = i; bestV = md[i] }
            if best < 0 { break }
            picks.append(best); taken[best] = true
            Self.updateMinDistances(features: features, norms: norms, centres: [best], minDistance: &md)
        }
        return picks
    }
}

/// Brute-force references on tiny inputs (tests): greedy with direct Double distances, and the optimal k-center radius.
public enum KCenterReference {
    public static func squaredDistance(_ x: Matrix, _ i: Int, _ j: Int) -> Double {
        var s = 0.0
        for c in 0..<x.columns { let d = Double(x[i, c]) - Double(x[j, c]); s += d * d }
        return s
    }

    /// Farthest-first from `labelled`, recomputing every distance from scratch at each step.
    public static func greedy(_ x: Matrix, labelled: [Int], count k: Int) -> [Int] {
        var centres = labelled
        var picks: [Int] = []
        for _ in 0..<k {
            var best = -1
            var bestV = -Double.infinity
            for i in 0..<x.rows where !centres.contains(i) {
                let v = centres.map { squaredDistance(x, i, $0) }.min() ?? .infinity
                if v > bestV { best = i; bestV = v }
            }
            if best < 0 { break }
            picks.append(best); centres.append(best)
        }
        return picks
    }

    /// Covering radius² of `centres` over all points.
    public static func radius(_ x: Matrix, centres: [Int]) -> Double {
        (0..<x.rows).map { i in centres.map { squaredDistance(x, i, $0) }.min() ?? .infinity }.max() ?? 0
    }

    /// Optimal k-center radius² given fixed `labelled` centres plus k more, by exhaustive search.
    public static func optimalRadius(_ x: Matrix, labelled: [Int], count k: Int) -> Double {
        let pool = (0..<x.rows).filter { !labelled.contains($0) }
        var best = Double.infinity
        func rec(_ from: Int, _ chosen: [Int]) {
            if chosen.count == k { best = min(best, radius(x, centres: labelled + chosen)); return }
            if from >= pool.count { return }
            for p in from..<pool.count { rec(p + 1, chosen + [pool[p]]) }
        }
        rec(0, [])
        return best
    }
}
