// Picks for budgets of tens to hundreds of labels, where uncertainty and Coreset are known to falter (a model trained
// on few labels is unsure everywhere, and the farthest points are outliers): TypiClust and ProbCover. Both pick cells,
// not patches; both work on the frozen embedding, so what they precompute survives every refit.

public import HaliMath

/// TypiClust (Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High and Low
/// Budgets", ICML 2022, TPC-RP).
///
/// What it optimises: picks that are *typical* (in dense regions of the embedding) and *diverse* (one per cluster).
/// The labelled and candidate cells are clustered by k-means into k = min(|L| + b, `maxClusters`) clusters; clusters of
/// more than `minClusterSize` cells are ordered by how few labelled cells they hold, then by size (largest first); the
/// i-th pick comes from the (i mod #clusters)-th cluster in that order: its most typical unlabelled cell, where
/// typicality(x) = 1 / (mean squared distance from x to its K nearest unlabelled cluster-mates + 10⁻⁵),
/// K = min(`neighbours`, ⌊n_c / 2⌋) for a cluster of n_c unlabelled cells. Constants follow the authors' code
/// (K = 20, clusters of ≤ 5 cells dropped, at most 500 clusters).
///
/// Scale: the clustering runs on the labelled cells plus at most `sampleLimit` candidates drawn uniformly (all of them
/// when fewer), so a slide of 10⁶ cells costs what 10⁴ do. k-means stops at scikit-learn's tolerance, as the authors'
/// code did, and may start from the previous pick's centres (`warmStart`; `CellPicker` does). Complexity: k-means
/// O(m·k·D·iterations) for m = |L| + min(candidates, sampleLimit); each pick O(n_c²·D) for its cluster's n_c sampled
/// cells (one GEMM).
public enum TypiClust {
    public static let neighbours = 20
    public static let minClusterSize = 5
    public static let maxClusters = 500
    /// Lloyd iterations after a warm start. The centres carried over have settled; a few iterations place the ones
    /// k-means++ added. Measured on 10,248 CRC CNN embeddings, k 224 → 248 (`hali-bench-learning`, docs/learning.md):
    /// within-cluster sum of squares +1.0 % over a cold start run to convergence (seeds differ by ±0.2 %), in a third
    /// of the time. The authors' code used mini-batch k-means (batches of 5,000) above 50 clusters, which stops after
    /// a similar handful of passes.
    public static let warmIterations = 4

    /// Up to `count` cells of `candidates` (never labelled ones), in pick order.
    public static func select(
        features x: Matrix, labelled: [Int], candidates: [Int], count b: Int, sampleLimit: Int = 10_000,
        maxClusters: Int = TypiClust.maxClusters, rng: inout SeededRandom
    ) -> [Int] {
        var cold: Matrix?
        return select(
            features: x, labelled: labelled, candidates: candidates, count: b, sampleLimit: sampleLimit, maxClusters: maxClusters,
            rng: &rng, warmStart: &cold)
    }

    /// `select`, with k-means started from `warmStart` (the previous pick's centres; nil: k-means++ alone, up to 20
    /// Lloyd iterations) and the clustering's centres left there for the next pick. Between two picks a page of labels
    /// moves few cells: k-means++ adds the centres that the larger k asks for, and `warmIterations` of Lloyd follow.
    public static func select(
        features x: Matrix, labelled: [Int], candidates: [Int], count b: Int, sampleLimit: Int = 10_000,
        maxClusters: Int = TypiClust.maxClusters, rng: inout SeededRandom, warmStart centres: inout Matrix?
    ) -> [Int] {
        let labelledSet = Set(labelled)
        var pool = candidates
        if pool.count > sampleLimit { pool = rng.sample(pool.count, sampleLimit).sorted().map { pool[$0] } }
        pool.removeAll { labelledSet.contains($0) }
        guard b > 0, !pool.isEmpty else { return [] }
        let rows = labelled + pool
        let k = min(labelled.count + b, maxClusters, rows.count)
        let clustering = KMeans(
            x.gathering(rows: rows), k: k, maxIterations: centres == nil ? 20 : warmIterations, tolerance: KMeans.scikitLearnTolerance,
            initialCentres: centres, rng: &rng)
        centres = clustering.centres
        return pick(features: x, rows: rows, labelledCount: labelled.count, clusters: clustering.assignment, count: b)
    }

    /// The pick given the clustering: `rows` are cells (the first `labelledCount` labelled), `clusters[i]` the cluster
    /// of rows[i]. Split out so that tests can check it against the rule on a given clustering.
    public static func pick(features x: Matrix, rows: [Int], labelledCount: Int, clusters: [Int32], count b: Int) -> [Int] {
        var size: [Int32: Int] = [:]
        var labelledIn: [Int32: Int] = [:]
        var members: [Int32: [Int]] = [:]  // unlabelled cells of each cluster
        for (i, c) in clusters.enumerated() {
            size[c, default: 0] += 1
            if i < labelledCount { labelledIn[c, default: 0] += 1 } else { members[c, default: []].append(rows[i]) }
        }
        let order = size.keys.filter { size[$0]! > minClusterSize }.sorted { a, b in
            let (la, lb) = (labelledIn[a] ?? 0, labelledIn[b] ?? 0)
            return la != lb ? la < lb : (size[a]! != size[b]! ? size[a]! > size[b]! : a < b)
        }
        var picks: [Int] = []
        var emptied = Set<Int32>()
        var i = 0
        while picks.count < b && emptied.count < order.count {
            let cluster = order[i % order.count]
            i += 1
            guard let cells = members[cluster], !cells.isEmpty else {
                emptied.insert(cluster)
                continue
            }
            let best = mostTypical(x, cells)
            picks.append(cells[best])
            members[cluster]!.remove(at: best)
        }
        return picks
    }

    /// Index in `cells` of the most typical cell (ties → the earlier one).
    static func mostTypical(_ x: Matrix, _ cells: [Int]) -> Int {
        let n = cells.count
        let k = min(neighbours, n / 2)
        guard k > 0 else { return 0 }
        let sub = x.gathering(rows: cells)
        let norms = sub.rowSquaredNorms()
        var best = 0
        var bestTypicality = -Float.infinity
        KMeans.forEachDistanceBlock(sub, norms, sub, norms) { row, distances in
            var others = distances
            others.remove(at: row)
            others.sort()
            var mean: Float = 0
            for v in others.prefix(k) { mean += v }
            mean /= Float(k)
            let typicality = 1 / (mean + 1e-5)
            if typicality > bestTypicality {
                bestTypicality = typicality
                best = row
            }
        }
        return best
    }
}

/// ProbCover (Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering Lens", NeurIPS 2022).
///
/// What it optimises: probability coverage — the share of cells within distance δ of a labelled cell — greedily:
/// each pick is the cell whose δ-ball holds the most cells not yet covered (ties → lower index), and the cells of its
/// ball count as covered. δ is the largest radius whose balls stay "pure" for a share α of the cells, purity measured
/// against k-means pseudo-labels (k = the number of classes): a ball around x is pure when no cell of another cluster
/// lies within δ, i.e. δ ≤ d_other(x), the distance from x to the nearest cell of another cluster; so δ is the
/// (1 − α) quantile of d_other (`radius`). Edges are x → y for ‖x − y‖ < δ, as in the authors' code (α = 0.95).
///
/// Scale: the δ-graph is built once over at most a sample of m cells (O(m²·D) in GEMM blocks, O(edges) memory; `init`
/// refuses a graph over `maxEdges`); labels update coverage with one O(m·D) pass each (`addLabelled`, also for cells
/// outside the sample); a pick of b cells is a lazy greedy over the degrees, O(edges + b·deg·log m).
public struct ProbCover: Sendable {
    /// Cells in the graph.
    public let sample: [Int]
    /// The radius δ (feature units; not squared).
    public let delta: Float
    let features: Matrix  // the sample's rows
    let norms: [Float]
    /// CSR adjacency: the δ-ball of sample point i is targets[offsets[i]..<offsets[i + 1]] (sample positions, itself
    /// included).
    let offsets: [Int]
    let targets: [Int32]
    /// Sample position of each sampled cell.
    let position: [Int: Int]
    /// Sample points within δ of a labelled cell.
    public private(set) var covered: [Bool]
    var isLabelled: [Bool]

    /// Builds the δ-graph over `sample` (cells of `features`); nil when it would hold more than `maxEdges` edges.
    public init?(features x: Matrix, sample: [Int], delta: Float, maxEdges: Int = 30_000_000) {
        self.sample = sample
        self.delta = delta
        position = Dictionary(sample.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        features = x.gathering(rows: sample)
        norms = features.rowSquaredNorms()
        let limit = delta * delta
        var offsets = [0]
        var targets: [Int32] = []
        var tooMany = false
        KMeans.forEachDistanceBlock(features, norms, features, norms) { _, distances in
            guard !tooMany else { return }
            for (j, d2) in distances.enumerated() where d2 < limit { targets.append(Int32(j)) }
            if targets.count > maxEdges { tooMany = true }
            offsets.append(targets.count)
        }
        if tooMany { return nil }
        self.offsets = offsets
        self.targets = targets
        covered = [Bool](repeating: false, count: sample.count)
        isLabelled = [Bool](repeating: false, count: sample.count)
    }

    public var edgeCount: Int { targets.count }
    /// Share of the sample covered by the labelled cells.
    public var coverage: Double { sample.isEmpty ? 0 : Double(covered.filter { $0 }.count) / Double(sample.count) }

    /// The largest δ whose balls are pure for a share `purity` of the rows of `x`, given pseudo-labels `clusters`
    /// (see the type's notes). Infinite when there is only one cluster.
    public static func radius(features x: Matrix, clusters: [Int32], purity alpha: Double = 0.95) -> Float {
        let norms = x.rowSquaredNorms()
        var other = [Float](repeating: .infinity, count: x.rows)
        KMeans.forEachDistanceBlock(x, norms, x, norms) { row, distances in
            var m = Float.infinity
            for (j, d2) in distances.enumerated() where clusters[j] != clusters[row] && d2 < m { m = d2 }
            other[row] = m
        }
        let sorted = other.sorted(by: >)
        guard !sorted.isEmpty else { return .infinity }
        let needed = min(sorted.count, max(1, Int((alpha * Double(sorted.count)).rounded(.up))))
        return sorted[needed - 1].squareRoot()
    }

    /// Marks the sample points within δ of each cell as covered (one pass over the sample per cell).
    public mutating func addLabelled(_ cells: [Int], features x: Matrix) {
        guard !cells.isEmpty else { return }
        for c in cells { if let p = position[c] { isLabelled[p] = true } }
        let labelled = x.gathering(rows: cells)
        let limit = delta * delta
        var newlyCovered = covered
        KMeans.forEachDistanceBlock(labelled, labelled.rowSquaredNorms(), features, norms) { _, distances in
            for (j, d2) in distances.enumerated() where d2 < limit { newlyCovered[j] = true }
        }
        covered = newlyCovered
    }

    /// Up to `count` cells, greedily covering the most uncovered sample points each; fewer when everything in reach is
    /// covered (the caller fills up with another strategy). `candidate[cell]` false: never picked (it may still be
    /// covered by a pick).
    public func select(count b: Int, candidate: [Bool]? = nil) -> [Int] {
        var covered = self.covered
        func degree(_ i: Int) -> Int {
            var n = 0
            for t in offsets[i]..<offsets[i + 1] where !covered[Int(targets[t])] { n += 1 }
            return n
        }
        var entries: [DegreeEntry] = []
        for i in sample.indices where !isLabelled[i] && (candidate?[sample[i]] ?? true) {
            let d = degree(i)
            if d > 0 { entries.append(DegreeEntry(degree: d, index: i)) }
        }
        var heap = MaxHeap(entries)
        var picks: [Int] = []
        while picks.count < b, let top = heap.pop() {
            let fresh = degree(top.index)
            if fresh < top.degree {
                if fresh > 0 { heap.push(DegreeEntry(degree: fresh, index: top.index)) }
                continue
            }
            picks.append(sample[top.index])
            for t in offsets[top.index]..<offsets[top.index + 1] { covered[Int(targets[t])] = true }
        }
        return picks
    }

    /// A heap entry: a cell's uncovered-neighbour count when last counted. Larger degree first, then lower index.
    struct DegreeEntry: HeapOrdered {
        var degree: Int
        var index: Int

        @inline(__always) static func above(_ a: DegreeEntry, _ b: DegreeEntry) -> Bool {
            a.degree > b.degree || (a.degree == b.degree && a.index < b.index)
        }
    }
}
