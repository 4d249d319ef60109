// k-means (Lloyd 1982) with k-means++ seeding (Arthur & Vassilvitskii, SODA 2007), the clustering under TypiClust and
// the pseudo-labels ProbCover picks its radius from.
//
// Distances are squared Euclidean, computed as ‖x‖² + ‖c‖² − 2·x·c with one GEMM per block of rows, so a pass over
// N rows × k centres × D features costs O(N·k·D) multiply-adds in BLAS and O(block·k) memory.
//
// Complexity: seeding O(N·k·D) (one GEMV-like pass per new centre); each Lloyd iteration O(N·k·D); `maxIterations`
// bounds the total. Deterministic for a seed: the generator draws the seeds; ties go to the lower centre index.

public import HaliMath

public struct KMeans: Sendable {
    /// k × D centres.
    public private(set) var centres: Matrix
    /// Centre of each row of the clustered matrix.
    public private(set) var assignment: [Int32]
    /// Lloyd iterations run (≥ 1 unless there are no rows).
    public private(set) var iterations = 0

    /// Clusters the rows of `x` into `k` clusters (fewer when x has fewer distinct rows than k).
    public init(_ x: Matrix, k requested: Int, maxIterations: Int = 20, rng: inout SeededRandom) {
        let n = x.rows, d = x.columns
        let k = max(0, min(requested, n))
        let norms = x.rowSquaredNorms()
        // k-means++: the first centre uniformly, each next with probability ∝ D² to the nearest chosen centre.
        var chosen: [Int] = []
        var nearest = [Float](repeating: .infinity, count: n)
        if k > 0 { chosen.append(rng.below(n)) }
        while chosen.count < k {
            Self.lowerToCentres(x, norms, centres: [chosen.last!], nearest: &nearest)
            var total = 0.0
            for v in nearest { total += Double(v) }
            guard total > 0 else { break }  // every row sits on a centre: no more distinct rows
            var target = Double(rng.unit()) * total
            var pick = -1
            for i in 0..<n where nearest[i] > 0 {
                pick = i  // rounding may leave target ≥ 0 at the end: then the last row still off every centre
                target -= Double(nearest[i])
                if target < 0 { break }
            }
            chosen.append(pick)
        }
        centres = x.gathering(rows: chosen)
        assignment = [Int32](repeating: 0, count: n)
        guard !chosen.isEmpty else { return }
        for _ in 0..<max(1, maxIterations) {
            iterations += 1
            let next = Self.nearestCentres(x, norms, centres: centres)
            let changed = next != assignment || iterations == 1
            assignment = next
            centres = Self.means(x, assignment: assignment, previous: centres)
            if !changed { break }
        }
        assignment = Self.nearestCentres(x, norms, centres: centres)
    }

    /// For each row of `x`, the index of the nearest row of `centres` (ties → lower index), in GEMM blocks.
    public static func nearestCentres(_ x: Matrix, _ norms: [Float], centres: Matrix) -> [Int32] {
        var out = [Int32](repeating: 0, count: x.rows)
        let cn = centres.rowSquaredNorms()
        forEachDistanceBlock(x, norms, centres, cn) { row, distances in
            var best = 0
            for j in 1..<max(1, distances.count) where distances[j] < distances[best] { best = j }
            out[row] = Int32(best)
        }
        return out
    }

    /// nearest[i] = min(nearest[i], ‖x_i − x_c‖²) for the rows `centres` of x.
    static func lowerToCentres(_ x: Matrix, _ norms: [Float], centres: [Int], nearest: inout [Float]) {
        let c = x.gathering(rows: centres)
        let cn = centres.map { norms[$0] }
        var lowered = nearest
        forEachDistanceBlock(x, norms, c, cn) { row, distances in
            for v in distances where v < lowered[row] { lowered[row] = v }
        }
        nearest = lowered
    }

    /// Calls `body(row, squared distances to every centre)` for each row of x, computing 256 rows at a time.
    static func forEachDistanceBlock(
        _ x: Matrix, _ norms: [Float], _ centres: Matrix, _ centreNorms: [Float], _ body: (Int, [Float]) -> Void
    ) {
        let k = centres.rows
        guard k > 0 else { return }
        var start = 0
        while start < x.rows {
            let end = min(x.rows, start + 256)
            let block = Matrix(rows: end - start, columns: x.columns, values: Array(x.values[(start * x.columns)..<(end * x.columns)]))
            var g = Matrix(rows: end - start, columns: k)
            BLAS.gemm(block, centres, transposeB: true, into: &g)
            var distances = [Float](repeating: 0, count: k)
            for r in 0..<(end - start) {
                for j in 0..<k { distances[j] = max(norms[start + r] + centreNorms[j] - 2 * g.values[r * k + j], 0) }
                body(start + r, distances)
            }
            start = end
        }
    }

    /// The mean of each cluster; a cluster left empty keeps its previous centre.
    static func means(_ x: Matrix, assignment: [Int32], previous: Matrix) -> Matrix {
        let k = previous.rows, d = x.columns
        var sums = [Double](repeating: 0, count: k * d)
        var counts = [Int](repeating: 0, count: k)
        for r in 0..<x.rows {
            let c = Int(assignment[r])
            counts[c] += 1
            for j in 0..<d { sums[c * d + j] += Double(x.values[r * d + j]) }
        }
        var out = previous
        for c in 0..<k where counts[c] > 0 {
            for j in 0..<d { out.values[c * d + j] = Float(sums[c * d + j] / Double(counts[c])) }
        }
        return out
    }
}
