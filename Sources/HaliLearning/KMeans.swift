// k-means (Lloyd 1982) with k-means++ seeding (Arthur & Vassilvitskii, SODA 2007), the clustering under TypiClust and
// the pseudo-labels ProbCover picks its radius from.
//
// Distances are squared Euclidean, computed as ‖x‖² + ‖c‖² − 2·x·c with one GEMM per block of rows read in place (no
// copy), so a pass over N rows × k centres × D features costs O(N·k·D) multiply-adds in BLAS and O(block·k) memory. The
// nearest centre needs only ‖c‖² − 2·x·c (‖x‖² is the same for every centre), so assignment skips it.
//
// Complexity: seeding O(N·k·D), one GEMV over all rows per new centre; each Lloyd iteration O(N·k·D); `maxIterations`
// bounds the total. Stopping: when no row changes cluster, or (with `tolerance` > 0) when the centres' total squared
// shift is at most `tolerance` × the mean per-feature variance of the rows — scikit-learn's `KMeans` rule (tol = 10⁻⁴
// there), which TypiClust's authors used; a final assignment then puts every row with its nearest centre.
// Deterministic for a seed: the generator draws the seeds; ties go to the lower centre index.

public import HaliMath

public struct KMeans: Sendable {
    /// k × D centres.
    public private(set) var centres: Matrix
    /// Centre of each row of the clustered matrix.
    public private(set) var assignment: [Int32]
    /// scikit-learn's default relative tolerance (`KMeans(tol=1e-4)`), used by the picks that follow papers whose
    /// code clustered with it.
    public static let scikitLearnTolerance = 1e-4
    /// Lloyd iterations run (≥ 1 unless there are no rows).
    public private(set) var iterations = 0

    /// Clusters the rows of `x` into `k` clusters (fewer when x has fewer distinct rows than k). `tolerance` 0 runs
    /// Lloyd to a fixed point (or `maxIterations`); see the file's notes for the relative tolerance.
    ///
    /// `initialCentres` (a warm start): Lloyd starts from these (at most k of them, in order) and k-means++ adds the
    /// rest, each with probability ∝ D² to the nearest centre so far.
    public init(
        _ x: Matrix, k requested: Int, maxIterations: Int = 20, tolerance: Double = 0, initialCentres: Matrix? = nil,
        rng: inout SeededRandom
    ) {
        let n = x.rows
        let k = max(0, min(requested, n))
        let norms = x.rowSquaredNorms()
        // k-means++: the first centre uniformly, each next with probability ∝ D² to the nearest chosen centre.
        var chosen: [Int] = []
        var nearest = [Float](repeating: .infinity, count: n)
        var kept = Matrix(rows: 0, columns: x.columns)
        if let initial = initialCentres, initial.columns == x.columns, initial.rows > 0, k > 0 {
            let count = min(initial.rows, k)
            kept = Matrix(rows: count, columns: x.columns, values: Array(initial.values[0..<(count * x.columns)]))
            Self.forEachDistanceBlock(x, norms, kept, kept.rowSquaredNorms()) { row, distances in
                nearest[row] = distances.min() ?? .infinity
            }
        } else if k > 0 {
            chosen.append(rng.below(n))
        }
        while kept.rows + chosen.count < k {
            if let last = chosen.last { Self.lower(x, norms, toRow: last, nearest: &nearest) }
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
        if kept.rows > 0 { centres = Matrix(rows: kept.rows + chosen.count, columns: x.columns, values: kept.values + centres.values) }
        assignment = [Int32](repeating: 0, count: n)
        guard centres.rows > 0 else { return }
        let shiftLimit = tolerance > 0 ? tolerance * Self.meanFeatureVariance(x) : -1
        for _ in 0..<max(1, maxIterations) {
            iterations += 1
            let next = Self.nearestCentres(x, centres: centres)
            let changed = next != assignment || iterations == 1
            assignment = next
            let previous = centres
            centres = Self.means(x, assignment: assignment, previous: centres)
            if !changed { break }
            if Self.squaredShift(previous, centres) <= shiftLimit { break }
        }
        assignment = Self.nearestCentres(x, centres: centres)
    }

    /// For each row of `x`, the index of the nearest row of `centres` (ties → lower index): the least ‖c‖² − 2·x·c,
    /// in GEMM blocks of 1,024 rows.
    public static func nearestCentres(_ x: Matrix, centres: Matrix) -> [Int32] {
        let k = centres.rows
        var out = [Int32](repeating: 0, count: x.rows)
        guard k > 0 else { return out }
        let cn = centres.rowSquaredNorms()
        forEachProductBlock(x, centres, blockRows: 1024) { start, m, g in
            for r in 0..<m {
                var best = 0
                var bestScore = cn[0] - 2 * g[r * k]
                for j in 1..<k {
                    let score = cn[j] - 2 * g[r * k + j]
                    if score < bestScore {
                        bestScore = score
                        best = j
                    }
                }
                out[start + r] = Int32(best)
            }
        }
        return out
    }

    /// nearest[i] = min(nearest[i], ‖x_i − x_c‖²) for row c of x: one GEMV over every row.
    static func lower(_ x: Matrix, _ norms: [Float], toRow c: Int, nearest: inout [Float]) {
        let n = x.rows, d = x.columns
        guard n > 0, d > 0 else { return }
        var dots = [Float](repeating: 0, count: n)
        x.values.withUnsafeBufferPointer { px in
            dots.withUnsafeMutableBufferPointer { pd in
                BLAS.sgemv(m: n, n: d, a: px.baseAddress!, lda: d, x: px.baseAddress! + c * d, y: pd.baseAddress!)
            }
        }
        let cn = norms[c]
        for i in 0..<n {
            let v = max(norms[i] + cn - 2 * dots[i], 0)
            if v < nearest[i] { nearest[i] = v }
        }
    }

    /// Calls `body(row, squared distances to every centre)` for each row of x, computing 256 rows at a time.
    static func forEachDistanceBlock(
        _ x: Matrix, _ norms: [Float], _ centres: Matrix, _ centreNorms: [Float], _ body: (Int, [Float]) -> Void
    ) {
        let k = centres.rows
        var distances = [Float](repeating: 0, count: k)
        forEachProductBlock(x, centres, blockRows: 256) { start, m, g in
            for r in 0..<m {
                for j in 0..<k { distances[j] = max(norms[start + r] + centreNorms[j] - 2 * g[r * k + j], 0) }
                body(start + r, distances)
            }
        }
    }

    /// Calls `body(first row, rows, x·cᵀ)` for consecutive blocks of at most `blockRows` rows of x, where x·cᵀ holds
    /// the block's dot products with every centre (rows × k, row-major): one GEMM per block on the rows in place, no
    /// copy. Nothing is called when there are no centres.
    static func forEachProductBlock(
        _ x: Matrix, _ centres: Matrix, blockRows: Int, _ body: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        let k = centres.rows, d = x.columns
        guard k > 0, x.rows > 0 else { return }
        var g = [Float](repeating: 0, count: min(blockRows, x.rows) * k)
        x.values.withUnsafeBufferPointer { px in
            centres.values.withUnsafeBufferPointer { pc in
                g.withUnsafeMutableBufferPointer { pg in
                    var start = 0
                    while start < x.rows {
                        let m = min(blockRows, x.rows - start)
                        BLAS.sgemm(
                            transposeB: true, m: m, n: k, k: d, a: px.baseAddress! + start * d, lda: d, b: pc.baseAddress!, ldb: d,
                            c: pg.baseAddress!, ldc: k)
                        body(start, m, pg)
                        start += m
                    }
                }
            }
        }
    }

    /// Mean over features of each feature's variance (population), the scale `tolerance` is relative to.
    static func meanFeatureVariance(_ x: Matrix) -> Double {
        let n = x.rows, d = x.columns
        guard n > 0, d > 0 else { return 0 }
        var sum = [Double](repeating: 0, count: d), squares = [Double](repeating: 0, count: d)
        for r in 0..<n {
            for j in 0..<d {
                let v = Double(x.values[r * d + j])
                sum[j] += v
                squares[j] += v * v
            }
        }
        var total = 0.0
        for j in 0..<d { total += max(squares[j] / Double(n) - (sum[j] / Double(n)) * (sum[j] / Double(n)), 0) }
        return total / Double(d)
    }

    /// Σ over centres of ‖a_c − b_c‖².
    static func squaredShift(_ a: Matrix, _ b: Matrix) -> Double {
        var total = 0.0
        for i in a.values.indices {
            let v = Double(a.values[i]) - Double(b.values[i])
            total += v * v
        }
        return total
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
