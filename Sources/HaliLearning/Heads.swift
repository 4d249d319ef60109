// Classifier heads on frozen features (a feature matrix N × D, row-major Float; see docs/learning.md).
//
//  * `PaperMLPHead`  — the HALI paper's recipe: D → 32 → 32 → K fully connected (ReLU), softmax cross-entropy,
//    SGD lr 1e-5 momentum 0.9, ≤ 100 epochs, early stop after 10 epochs without validation improvement,
//    75/25 stratified train/validation split of the labels, minority classes oversampled to balance the training set.
//  * `LogisticHead`  — the fast default: L2-regularised multinomial logistic regression (balanced class weights)
//    fitted by L-BFGS, warm-started from the previous fit (research notes §D.1: the linear-probe protocol).
//
// Both give softmax probabilities; the confidence of a suggestion is its largest class probability.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import HaliMath

/// One suggestion: the predicted class and its softmax probability.
public struct Prediction: Sendable, Equatable {
    public var label: Int
    public var confidence: Float
    public init(label: Int, confidence: Float) { self.label = label; self.confidence = confidence }
}

/// What a fit reports (shown with each model version).
public struct FitReport: Sendable, Equatable {
    /// Accuracy on the held-out 25 % of the labels (nil when too few labels to hold any out).
    public var validationAccuracy: Double?
    public var validationCount: Int
    public var trainCount: Int
    /// Epochs (MLP) or L-BFGS iterations (logistic).
    public var iterations: Int
    public init(validationAccuracy: Double?, validationCount: Int, trainCount: Int, iterations: Int) {
        self.validationAccuracy = validationAccuracy
        self.validationCount = validationCount
        self.trainCount = trainCount
        self.iterations = iterations
    }
}

/// A classifier over frozen features.
public protocol Head: Sendable {
    var classCount: Int { get }
    var isFitted: Bool { get }
    /// Fits on `rows` of `features` with `labels` (0..<classCount). Deterministic given `rng`.
    mutating func fit(features: Matrix, rows: [Int], labels: [Int], rng: inout SeededRandom) -> FitReport
    /// Softmax probabilities for `rows` of `features`: a rows.count × classCount matrix.
    func probabilities(features: Matrix, rows: [Int]) -> Matrix
}

extension Head {
    /// Arg-max class and its probability for each row (an unfitted head predicts class 0 with confidence 0).
    public func predict(features: Matrix, rows: [Int]) -> [Prediction] {
        let p = probabilities(features: features, rows: rows)
        return (0..<rows.count).map { r in
            var best = 0
            for k in 1..<max(classCount, 1) where p[r, k] > p[r, best] { best = k }
            return Prediction(label: best, confidence: isFitted ? p[r, best] : 0)
        }
    }
}

/// Which head to use (command-line and experiment configuration).
public enum HeadKind: String, Sendable, CaseIterable, Codable {
    case paper
    case logistic

    public func make(classCount: Int, featureCount: Int) -> any Head {
        switch self {
        case .paper: return PaperMLPHead(classCount: classCount, featureCount: featureCount)
        case .logistic: return LogisticHead(classCount: classCount, featureCount: featureCount)
        }
    }
}

// MARK: - Shared helpers

extension Matrix {
    /// The given rows, copied into a new matrix.
    public func gathering(rows idx: [Int]) -> Matrix {
        var out = [Float](repeating: 0, count: idx.count * columns)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (r, i) in idx.enumerated() {
                    precondition(i >= 0 && i < rows, "row \(i) out of 0..<\(rows)")
                    for c in 0..<columns { dst[r * columns + c] = src[i * columns + c] }
                }
            }
        }
        return Matrix(rows: idx.count, columns: columns, values: out)
    }
}

/// In-place row softmax of a row-major n × k buffer.
@inline(__always) func softmaxRows(_ z: inout [Float], rows n: Int, columns k: Int) {
    for r in 0..<n {
        var m = -Float.infinity
        for c in 0..<k { m = max(m, z[r * k + c]) }
        var s: Float = 0
        for c in 0..<k { let e = expf(z[r * k + c] - m); z[r * k + c] = e; s += e }
        for c in 0..<k { z[r * k + c] /= s }
    }
}

/// A stratified split: about `fraction` of each class to validation, at least one of each class kept for training.
/// Returns positions into `labels`. When nothing can be held out, validation is empty.
public func stratifiedSplit(labels: [Int], classCount: Int, fraction: Double, rng: inout SeededRandom)
    -> (train: [Int], validation: [Int])
{
    var train: [Int] = []
    var val: [Int] = []
    for c in 0..<classCount {
        var members = labels.indices.filter { labels[$0] == c }
        rng.shuffle(&members)
        let nv = members.count >= 2 ? min(members.count - 1, Int((Double(members.count) * fraction).rounded())) : 0
        val += members[0..<nv]
        train += members[nv...]
    }
    return (train.sorted(), val.sorted())
}

// MARK: - The paper's MLP head

/// D → h → h → K multilayer perceptron (ReLU), trained by the HALI paper's recipe. All parameters live in one
/// flat vector `theta` (W1 h×D, b1 h, W2 h×h, b2 h, W3 K×h, b3 K) so momentum, copies and gradient checks are simple.
public struct PaperMLPHead: Head {
    public struct Config: Sendable, Equatable {
        public var hidden = 32
        public var learningRate: Float = 1e-5
        public var momentum: Float = 0.9
        public var maxEpochs = 100
        public var patience = 10
        public var validationFraction = 0.25
        /// Samples per SGD step. The paper says only "SGD"; we take plain per-sample SGD (batch 1).
        public var batchSize = 1
        public var oversample = true
        public init() {}
    }

    public let classCount: Int
    public let featureCount: Int
    public var config: Config
    public private(set) var theta: [Float] = []
    public var isFitted: Bool { !theta.isEmpty }

    public init(classCount: Int, featureCount: Int, config: Config = Config()) {
        self.classCount = classCount
        self.featureCount = featureCount
        self.config = config
    }

    var h: Int { config.hidden }
    var o1: Int { 0 }
    var ob1: Int { h * featureCount }
    var o2: Int { ob1 + h }
    var ob2: Int { o2 + h * h }
    var o3: Int { ob2 + h }
    var ob3: Int { o3 + classCount * h }
    public var parameterCount: Int { ob3 + classCount }

    /// PyTorch's nn.Linear default initialisation: weights and biases U(−1/√fan_in, 1/√fan_in).
    public func initialParameters(rng: inout SeededRandom) -> [Float] {
        var t = [Float](repeating: 0, count: parameterCount)
        func fill(_ from: Int, _ count: Int, fanIn: Int) {
            let b = 1 / Float(fanIn).squareRoot()
            for i in from..<(from + count) { t[i] = rng.uniform(-b, b) }
        }
        fill(o1, h * featureCount, fanIn: featureCount); fill(ob1, h, fanIn: featureCount)
        fill(o2, h * h, fanIn: h); fill(ob2, h, fanIn: h)
        fill(o3, classCount * h, fanIn: h); fill(ob3, classCount, fanIn: h)
        return t
    }

    /// Forward pass for one sample `x` (D floats); writes the hidden activations and returns logits in `z`.
    @inline(__always)
    func forward(
        _ t: UnsafeBufferPointer<Float>, _ x: UnsafeBufferPointer<Float>, _ a1: inout [Float],
        _ a2: inout [Float], _ z: inout [Float]
    ) {
        let d = featureCount, h = self.h, k = classCount
        for j in 0..<h {
            var s = t[ob1 + j]
            let w = o1 + j * d
            for i in 0..<d { s += t[w + i] * x[i] }
            a1[j] = max(s, 0)
        }
        for j in 0..<h {
            var s = t[ob2 + j]
            let w = o2 + j * h
            for i in 0..<h { s += t[w + i] * a1[i] }
            a2[j] = max(s, 0)
        }
        for c in 0..<k {
            var s = t[ob3 + c]
            let w = o3 + c * h
            for i in 0..<h { s += t[w + i] * a2[i] }
            z[c] = s
        }
    }

    /// Mean cross-entropy over `samples` (row indices into `x`) and its gradient, accumulated into `grad`
    /// (which is overwritten). Used by training and by the finite-difference test.
    public func lossAndGradient(theta t: [Float], x: Matrix, samples: [Int], labels: [Int], grad: inout [Float]) -> Double {
        let d = featureCount, h = self.h, k = classCount
        precondition(x.columns == d && t.count == parameterCount)
        if grad.count != parameterCount { grad = [Float](repeating: 0, count: parameterCount) }
        for i in grad.indices { grad[i] = 0 }
        var a1 = [Float](repeating: 0, count: h), a2 = a1, z = [Float](repeating: 0, count: k)
        var d2 = a1, d1 = a1
        var loss = 0.0
        let scale = 1 / Float(max(samples.count, 1))
        t.withUnsafeBufferPointer { tp in
            x.values.withUnsafeBufferPointer { xp in
                grad.withUnsafeMutableBufferPointer { g in
                    for (n, s) in samples.enumerated() {
                        let xs = UnsafeBufferPointer(rebasing: xp[(s * d)..<(s * d + d)])
                        forward(tp, xs, &a1, &a2, &z)
                        softmaxRows(&z, rows: 1, columns: k)
                        let y = labels[n]
                        loss -= Double(logf(max(z[y], 1e-30)))
                        // dL/dz = p − onehot
                        for c in 0..<k { z[c] = (z[c] - (c == y ? 1 : 0)) * scale }
                        for j in 0..<h { d2[j] = 0 }
                        for c in 0..<k {
                            let gz = z[c]
                            g[ob3 + c] += gz
                            let w = o3 + c * h
                            for j in 0..<h { g[w + j] += gz * a2[j]; d2[j] += gz * tp[w + j] }
                        }
                        for j in 0..<h { d2[j] = a2[j] > 0 ? d2[j] : 0; d1[j] = 0 }
                        for j in 0..<h {
                            let gj = d2[j]
                            if gj == 0 { continue }
                            g[ob2 + j] += gj
                            let w = o2 + j * h
                            for i in 0..<h { g[w + i] += gj * a1[i]; d1[i] += gj * tp[w + i] }
                        }
                        for j in 0..<h {
                            let gj = a1[j] > 0 ? d1[j] : 0
                            if gj == 0 { continue }
                            g[ob1 + j] += gj
                            let w = o1 + j * d
                            for i in 0..<d { g[w + i] += gj * xs[i] }
                        }
                    }
                }
            }
        }
        return loss / Double(max(samples.count, 1))
    }

    func evaluate(theta t: [Float], x: Matrix, samples: [Int], labels: [Int]) -> (accuracy: Double, loss: Double) {
        let d = featureCount, k = classCount
        var a1 = [Float](repeating: 0, count: h), a2 = a1, z = [Float](repeating: 0, count: k)
        var correct = 0
        var loss = 0.0
        t.withUnsafeBufferPointer { tp in
            x.values.withUnsafeBufferPointer { xp in
                for (n, s) in samples.enumerated() {
                    forward(tp, UnsafeBufferPointer(rebasing: xp[(s * d)..<(s * d + d)]), &a1, &a2, &z)
                    softmaxRows(&z, rows: 1, columns: k)
                    var best = 0
                    for c in 1..<k where z[c] > z[best] { best = c }
                    if best == labels[n] { correct += 1 }
                    loss -= Double(logf(max(z[labels[n]], 1e-30)))
                }
            }
        }
        let n = Double(max(samples.count, 1))
        return (Double(correct) / n, loss / n)
    }

    public mutating func fit(features: Matrix, rows: [Int], labels: [Int], rng: inout SeededRandom) -> FitReport {
        precondition(rows.count == labels.count)
        let x = features.gathering(rows: rows)
        var t = initialParameters(rng: &rng)
        guard !rows.isEmpty else { theta = t; return FitReport(validationAccuracy: nil, validationCount: 0, trainCount: 0, iterations: 0) }
        let (trainPos, valPos0) = stratifiedSplit(
            labels: labels, classCount: classCount,
            fraction: config.validationFraction, rng: &rng)
        // With nothing held out, early stopping watches the training set.
        let valPos = valPos0.isEmpty ? trainPos : valPos0
        // Oversample minority classes (with replacement) up to the majority count.
        var train = trainPos
        if config.oversample {
            var byClass = [[Int]](repeating: [], count: classCount)
            for p in trainPos { byClass[labels[p]].append(p) }
            let target = byClass.map(\.count).max() ?? 0
            for members in byClass where !members.isEmpty && members.count < target {
                for _ in 0..<(target - members.count) { train.append(members[rng.below(members.count)]) }
            }
        }
        let valLabels = valPos.map { labels[$0] }
        var velocity = [Float](repeating: 0, count: t.count)
        var grad = [Float](repeating: 0, count: t.count)
        var best = t
        var bestAcc = evaluate(theta: t, x: x, samples: valPos, labels: valLabels).accuracy
        var sinceBest = 0
        var epochs = 0
        let lr = config.learningRate, mu = config.momentum
        let bs = max(1, config.batchSize)
        for _ in 0..<config.maxEpochs {
            epochs += 1
            rng.shuffle(&train)
            var start = 0
            while start < train.count {
                let batch = Array(train[start..<min(start + bs, train.count)])
                _ = lossAndGradient(theta: t, x: x, samples: batch, labels: batch.map { labels[$0] }, grad: &grad)
                for i in t.indices {  // PyTorch SGD: v = μv + g; θ −= lr·v
                    velocity[i] = mu * velocity[i] + grad[i]
                    t[i] -= lr * velocity[i]
                }
                start += bs
            }
            let acc = evaluate(theta: t, x: x, samples: valPos, labels: valLabels).accuracy
            if acc > bestAcc {
                bestAcc = acc; best = t; sinceBest = 0
            } else {
                sinceBest += 1
                if sinceBest >= config.patience { break }
            }
        }
        theta = best
        return FitReport(
            validationAccuracy: valPos0.isEmpty ? nil : bestAcc, validationCount: valPos0.count,
            trainCount: trainPos.count, iterations: epochs)
    }

    public func probabilities(features: Matrix, rows: [Int]) -> Matrix {
        let k = classCount, d = featureCount
        var out = [Float](repeating: 1 / Float(k), count: rows.count * k)
        guard isFitted else { return Matrix(rows: rows.count, columns: k, values: out) }
        var a1 = [Float](repeating: 0, count: h), a2 = a1, z = [Float](repeating: 0, count: k)
        theta.withUnsafeBufferPointer { tp in
            features.values.withUnsafeBufferPointer { xp in
                for (r, s) in rows.enumerated() {
                    forward(tp, UnsafeBufferPointer(rebasing: xp[(s * d)..<(s * d + d)]), &a1, &a2, &z)
                    softmaxRows(&z, rows: 1, columns: k)
                    for c in 0..<k { out[r * k + c] = z[c] }
                }
            }
        }
        return Matrix(rows: rows.count, columns: k, values: out)
    }
}

// MARK: - The fast default: L2 multinomial logistic regression by L-BFGS

/// Softmax regression `p = softmax(W x + b)` minimising the class-balanced mean cross-entropy + (λ/2)‖W‖².
/// λ defaults to 1/(C·n) with C = D·K/100 (the UNI linear-probe rule, research notes §D.1).
/// Each fit starts from the previous solution (warm start), so refits after 5 more labels take few iterations.
public struct LogisticHead: Head {
    public struct Config: Sendable, Equatable {
        /// Fixed λ; nil = the UNI rule.
        public var lambda: Double? = nil
        public var maxIterations = 200
        public var gradientTolerance = 1e-5
        public var history = 10
        public var balanced = true
        /// Also fit on 75 % and score the other 25 % to report a validation accuracy (one extra fit).
        public var reportValidation = true
        public var warmStart = true
        public init() {}
    }

    public let classCount: Int
    public let featureCount: Int
    public var config: Config
    /// K × (D + 1): row c = (w_c, b_c).
    public private(set) var weights: [Double] = []
    public var isFitted: Bool { !weights.isEmpty }

    public init(classCount: Int, featureCount: Int, config: Config = Config()) {
        self.classCount = classCount
        self.featureCount = featureCount
        self.config = config
    }

    /// Objective and gradient for `theta` (K × (D+1), Double) on the gathered samples `x` (n × D).
    public func objective(
        theta: [Double], x: Matrix, labels: [Int], sampleWeights: [Double], lambda: Double,
        grad: inout [Double]
    ) -> Double {
        let n = x.rows, d = featureCount, k = classCount, dp = d + 1
        var w = Matrix(rows: k, columns: d)
        for c in 0..<k { for i in 0..<d { w[c, i] = Float(theta[c * dp + i]) } }
        var z = Matrix(rows: n, columns: k)
        BLAS.gemm(x, w, transposeB: true, into: &z)
        var loss = 0.0
        var totalW = 0.0
        for s in sampleWeights { totalW += s }
        totalW = max(totalW, 1e-12)
        var g = Matrix(rows: n, columns: k)
        var gb = [Double](repeating: 0, count: k)
        var row = [Double](repeating: 0, count: k)
        for r in 0..<n {
            var m = -Double.infinity
            for c in 0..<k { row[c] = Double(z[r, c]) + theta[c * dp + d]; m = max(m, row[c]) }
            var s = 0.0
            for c in 0..<k { row[c] = exp(row[c] - m); s += row[c] }
            let sw = sampleWeights[r] / totalW
            loss -= sw * log(max(row[labels[r]] / s, 1e-300))
            for c in 0..<k {
                let gc = sw * (row[c] / s - (c == labels[r] ? 1 : 0))
                g[r, c] = Float(gc)
                gb[c] += gc
            }
        }
        var gw = Matrix(rows: k, columns: d)
        BLAS.gemm(g, transposeA: true, x, into: &gw)
        if grad.count != theta.count { grad = [Double](repeating: 0, count: theta.count) }
        for c in 0..<k {
            for i in 0..<d {
                let wv = theta[c * dp + i]
                grad[c * dp + i] = Double(gw[c, i]) + lambda * wv
                loss += 0.5 * lambda * wv * wv
            }
            grad[c * dp + d] = gb[c]
        }
        return loss
    }

    func solve(x: Matrix, labels: [Int], start: [Double]) -> (theta: [Double], iterations: Int) {
        let n = x.rows, k = classCount
        var counts = [Double](repeating: 0, count: k)
        for y in labels { counts[y] += 1 }
        let present = Double(counts.filter { $0 > 0 }.count)
        let sw: [Double] = labels.map { config.balanced ? Double(n) / (present * counts[$0]) : 1 }
        let lambda = config.lambda ?? 1 / (max(Double(featureCount * k) / 100, 1e-6) * Double(max(n, 1)))
        return LBFGS.minimize(
            start: start, history: config.history, maxIterations: config.maxIterations,
            tolerance: config.gradientTolerance
        ) { th, g in
            objective(theta: th, x: x, labels: labels, sampleWeights: sw, lambda: lambda, grad: &g)
        }
    }

    public mutating func fit(features: Matrix, rows: [Int], labels: [Int], rng: inout SeededRandom) -> FitReport {
        precondition(rows.count == labels.count)
        let size = classCount * (featureCount + 1)
        let start = (config.warmStart && weights.count == size) ? weights : [Double](repeating: 0, count: size)
        var valAcc: Double?
        var nVal = 0
        if config.reportValidation {
            let (tr, va) = stratifiedSplit(labels: labels, classCount: classCount, fraction: 0.25, rng: &rng)
            if !va.isEmpty {
                let (th, _) = solve(x: features.gathering(rows: tr.map { rows[$0] }), labels: tr.map { labels[$0] }, start: start)
                var probe = self
                probe.weights = th
                let pred = probe.predict(features: features, rows: va.map { rows[$0] })
                valAcc = Double(zip(pred, va).filter { $0.0.label == labels[$0.1] }.count) / Double(va.count)
                nVal = va.count
            }
        }
        let (th, it) = solve(x: features.gathering(rows: rows), labels: labels, start: start)
        weights = th
        return FitReport(validationAccuracy: valAcc, validationCount: nVal, trainCount: rows.count, iterations: it)
    }

    public func probabilities(features: Matrix, rows: [Int]) -> Matrix {
        let k = classCount, d = featureCount, dp = d + 1
        guard isFitted, !rows.isEmpty else {
            return Matrix(rows: rows.count, columns: k, values: [Float](repeating: 1 / Float(k), count: rows.count * k))
        }
        var w = Matrix(rows: k, columns: d)
        for c in 0..<k { for i in 0..<d { w[c, i] = Float(weights[c * dp + i]) } }
        // Contiguous row ranges need no gather.
        let x: Matrix
        if rows.count == features.rows, rows.first == 0, rows.last == features.rows - 1 { x = features } else { x = features.gathering(rows: rows) }
        var z = Matrix(rows: rows.count, columns: k)
        BLAS.gemm(x, w, transposeB: true, into: &z)
        for r in 0..<rows.count { for c in 0..<k { z[r, c] += Float(weights[c * dp + d]) } }
        softmaxRows(&z.values, rows: rows.count, columns: k)
        return z
    }
}

/// Limited-memory BFGS (Nocedal & Wright, Alg. 7.4/7.5) with a backtracking Armijo line search.
public enum LBFGS {
    public static func minimize(
        start: [Double], history m: Int = 10, maxIterations: Int = 200,
        tolerance: Double = 1e-5,
        _ f: ([Double], inout [Double]) -> Double
    ) -> (theta: [Double], iterations: Int) {
        var x = start
        var g = [Double](repeating: 0, count: x.count)
        var fx = f(x, &g)
        var sList: [[Double]] = [], yList: [[Double]] = [], rhoList: [Double] = []
        func dot(_ a: [Double], _ b: [Double]) -> Double { var s = 0.0; for i in a.indices { s += a[i] * b[i] }; return s }
        var it = 0
        while it < maxIterations {
            let gnorm = dot(g, g).squareRoot()
            if gnorm <= tolerance * max(1, dot(x, x).squareRoot()) { break }
            it += 1
            // Two-loop recursion: d = −H g.
            var q = g
            var alphas = [Double](repeating: 0, count: sList.count)
            for j in stride(from: sList.count - 1, through: 0, by: -1) {
                alphas[j] = rhoList[j] * dot(sList[j], q)
                for i in q.indices { q[i] -= alphas[j] * yList[j][i] }
            }
            let gamma = sList.isEmpty ? 1 / max(gnorm, 1e-12) : dot(sList.last!, yList.last!) / dot(yList.last!, yList.last!)
            for i in q.indices { q[i] *= gamma }
            for j in 0..<sList.count {
                let beta = rhoList[j] * dot(yList[j], q)
                for i in q.indices { q[i] += sList[j][i] * (alphas[j] - beta) }
            }
            var dir = q.map { -$0 }
            var slope = dot(g, dir)
            if slope >= 0 { dir = g.map { -$0 }; slope = -dot(g, g); sList = []; yList = []; rhoList = [] }
            var step = 1.0
            var xn = x, gn = g, fn = fx
            var accepted = false
            for _ in 0..<40 {
                for i in x.indices { xn[i] = x[i] + step * dir[i] }
                fn = f(xn, &gn)
                if fn <= fx + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { break }
            let s = zip(xn, x).map { $0 - $1 }
            let y = zip(gn, g).map { $0 - $1 }
            let sy = dot(s, y)
            if sy > 1e-12 {
                sList.append(s); yList.append(y); rhoList.append(1 / sy)
                if sList.count > m { sList.removeFirst(); yList.removeFirst(); rhoList.removeFirst() }
            }
            let decrease = fx - fn
            x = xn; g = gn; fx = fn
            if decrease <= 1e-10 * max(1, abs(fx)) { break }
        }
        return (x, it)
    }
}
