// Linear probes on frozen features: multinomial logistic regression (L2, full-batch, sgemm), metrics
// (accuracy, balanced accuracy, one-vs-rest AUROC).

import Foundation
public import HaliMath
import HaliNet

public struct ClassificationMetrics: Sendable {
    public var accuracy: Double
    public var balancedAccuracy: Double
    public var perClassRecall: [Double?]

    public init(truth: [Int], predicted: [Int], classes: Int) {
        var hit = [Int](repeating: 0, count: classes), tot = hit
        for (t, p) in zip(truth, predicted) { tot[t] += 1; if t == p { hit[t] += 1 } }
        accuracy = Double(zip(truth, predicted).filter { $0 == $1 }.count) / Double(max(truth.count, 1))
        perClassRecall = (0..<classes).map { tot[$0] > 0 ? Double(hit[$0]) / Double(tot[$0]) : nil }
        let r = perClassRecall.compactMap { $0 }
        balancedAccuracy = r.isEmpty ? 0 : r.reduce(0, +) / Double(r.count)
    }
}

/// Area under the ROC curve of `scores` for `positive` labels (Mann–Whitney, ties counted half).
public func auroc(scores: [Double], positive: [Bool]) -> Double? {
    let np = positive.filter { $0 }.count, nn = positive.count - np
    guard np > 0, nn > 0 else { return nil }
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var rankSum = 0.0
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
        let avgRank = Double(i + j) / 2 + 1
        for k in i...j where positive[order[k]] { rankSum += avgRank }
        i = j + 1
    }
    return (rankSum - Double(np) * Double(np + 1) / 2) / (Double(np) * Double(nn))
}

/// Multinomial logistic regression on standardised features: minimises mean cross-entropy + λ/2·|W|²
/// by full-batch gradient descent with Nesterov momentum (convex; converges from zero).
public struct LogisticRegression: Sendable {
    public var mean: [Float], scale: [Float]
    public var weights: Matrix  // D×K
    public var bias: [Float]

    public static func fit(
        features x: [Float], count n: Int, dimension d: Int, labels: [Int], classes k: Int,
        lambda: Float = 1e-3, iterations: Int = 400
    ) -> LogisticRegression {
        var mean = [Float](repeating: 0, count: d), scale = mean
        for i in 0..<n { for j in 0..<d { mean[j] += x[i * d + j] } }
        for j in 0..<d { mean[j] /= Float(n) }
        for i in 0..<n { for j in 0..<d { let v = x[i * d + j] - mean[j]; scale[j] += v * v } }
        for j in 0..<d { scale[j] = 1 / max((scale[j] / Float(n)).squareRoot(), 1e-6) }
        var z = Matrix(rows: n, columns: d)
        for i in 0..<n { for j in 0..<d { z.values[i * d + j] = (x[i * d + j] - mean[j]) * scale[j] } }
        var w = Matrix(rows: d, columns: k), b = [Float](repeating: 0, count: k)
        var vw = w, vb = b
        // Step 1/L, L = ½·λmax(ZᵀZ/n) + λ bounds the Hessian; λmax by power iteration.
        var v = Matrix(rows: d, columns: 1, values: (0..<d).map { Float(($0 * 7919) % 101) / 101 + 0.5 })
        var eig: Float = 1
        for _ in 0..<30 {
            var zv = Matrix(rows: n, columns: 1)
            BLAS.gemm(z, v, into: &zv)
            var ztzv = Matrix(rows: d, columns: 1)
            BLAS.gemm(z, transposeA: true, zv, alpha: 1 / Float(n), into: &ztzv)
            eig = max(ztzv.values.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-6)
            v = Matrix(rows: d, columns: 1, values: ztzv.values.map { $0 / eig })
        }
        let lr: Float = 1 / (0.5 * eig * 1.05 + lambda)
        var logits = Matrix(rows: n, columns: k)
        for it in 0..<iterations {
            let mom = Float(it) / Float(it + 3)
            // look-ahead point
            var yw = w, yb = b
            for i in 0..<yw.values.count { yw.values[i] += mom * vw.values[i] }
            for i in 0..<k { yb[i] += mom * vb[i] }
            BLAS.gemm(z, yw, into: &logits)
            var g = logits
            for i in 0..<n {
                var mx = -Float.infinity
                for c in 0..<k { g.values[i * k + c] += yb[c]; mx = max(mx, g.values[i * k + c]) }
                var s: Float = 0
                for c in 0..<k { let e = expf(g.values[i * k + c] - mx); g.values[i * k + c] = e; s += e }
                for c in 0..<k { g.values[i * k + c] /= s }
                g.values[i * k + labels[i]] -= 1
            }
            var gw = Matrix(rows: d, columns: k)
            BLAS.gemm(z, transposeA: true, g, alpha: 1 / Float(n), into: &gw)
            var gb = [Float](repeating: 0, count: k)
            for i in 0..<n { for c in 0..<k { gb[c] += g.values[i * k + c] / Float(n) } }
            for i in 0..<gw.values.count { gw.values[i] += lambda * yw.values[i] }
            let step = lr
            for i in 0..<w.values.count {
                let nw = yw.values[i] - step * gw.values[i]
                vw.values[i] = nw - w.values[i]; w.values[i] = nw
            }
            for c in 0..<k { let nb = yb[c] - step * gb[c]; vb[c] = nb - b[c]; b[c] = nb }
        }
        return LogisticRegression(mean: mean, scale: scale, weights: w, bias: b)
    }

    /// Class probabilities, count × K.
    public func probabilities(features x: [Float], count n: Int) -> [[Double]] {
        let d = mean.count, k = bias.count
        var z = Matrix(rows: n, columns: d)
        for i in 0..<n { for j in 0..<d { z.values[i * d + j] = (x[i * d + j] - mean[j]) * scale[j] } }
        let l = BLAS.multiply(z, weights)
        return (0..<n).map { i in
            let v = (0..<k).map { Double(l.values[i * k + $0] + bias[$0]) }
            let m = v.max()!
            let e = v.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
    }
}

/// Probe result on one split.
public struct ProbeResult: Sendable, Codable {
    public var features: String
    public var dimension: Int
    public var accuracy: Double
    public var balancedAccuracy: Double
    /// One-vs-rest AUROC per class name (absent when the test split lacks positives or negatives).
    public var auroc: [String: Double]

    public init(features: String, dimension: Int, accuracy: Double, balancedAccuracy: Double, auroc: [String: Double]) {
        self.features = features; self.dimension = dimension; self.accuracy = accuracy
        self.balancedAccuracy = balancedAccuracy; self.auroc = auroc
    }
}

public enum LinearProbe {
    public static func evaluate(
        name: String, train: [Float], trainLabels: [Int], test: [Float], testLabels: [Int],
        dimension d: Int, classNames: [String], lambda: Float = 1e-3
    ) -> ProbeResult {
        let k = classNames.count
        let model = LogisticRegression.fit(
            features: train, count: trainLabels.count, dimension: d, labels: trainLabels,
            classes: k, lambda: lambda)
        let p = model.probabilities(features: test, count: testLabels.count)
        let pred = p.map { row in row.indices.max { row[$0] < row[$1] }! }
        let m = ClassificationMetrics(truth: testLabels, predicted: pred, classes: k)
        var au: [String: Double] = [:]
        for c in 0..<k {
            if let a = auroc(scores: p.map { $0[c] }, positive: testLabels.map { $0 == c }) { au[classNames[c]] = a }
        }
        return ProbeResult(features: name, dimension: d, accuracy: m.accuracy, balancedAccuracy: m.balancedAccuracy, auroc: au)
    }

    /// Raw-pixel baseline features: the patch average-pooled by `pool` (e.g. 40×40 → 20×20×3 = 1200 values).
    public static func rawPixels(_ set: PatchSet, pool: Int = 2) -> (values: [Float], dimension: Int) {
        let s = set.side / pool, d = s * s * 3
        var out = [Float](repeating: 0, count: set.count * d)
        for i in 0..<set.count {
            for y in 0..<s {
                for x in 0..<s {
                    for c in 0..<3 {
                        var acc: Float = 0
                        for dy in 0..<pool {
                            for dx in 0..<pool {
                                acc += Float(set.pixels[((i * set.side + y * pool + dy) * set.side + x * pool + dx) * 3 + c])
                            }
                        }
                        out[i * d + (y * s + x) * 3 + c] = acc / Float(pool * pool * 255)
                    }
                }
            }
        }
        return (out, d)
    }
}
