import HaliMath
import Testing

@testable import HaliLearning

func randomPoints(_ n: Int, _ d: Int, seed: UInt64) -> Matrix {
    var rng = SeededRandom(seed: seed)
    return Matrix(rows: n, columns: d, values: (0..<(n * d)).map { _ in rng.gaussian() })
}

@Test func kCenterGreedyMatchesBruteForce() {
    for seed in UInt64(1)...12 {
        let n = 8 + Int(seed % 5)  // 8...12 points
        let x = randomPoints(n, 3, seed: seed)
        var rng = SeededRandom(seed: seed * 7)
        let labelled = rng.sample(n, 1 + Int(seed % 3))
        var kc = IncrementalKCenter(features: x)
        kc.addLabelled(labelled)
        let k = 3
        let lazy = kc.select(count: k)
        let passes = kc.selectByFullPasses(count: k)
        let reference = KCenterReference.greedy(x, labelled: labelled, count: k)
        #expect(lazy == reference, "seed \(seed)")
        #expect(passes == reference, "seed \(seed)")
        // Gonzalez's guarantee: greedy radius ≤ 2 × optimal radius (squared: ≤ 4×).
        let r = KCenterReference.radius(x, centres: labelled + lazy)
        let opt = KCenterReference.optimalRadius(x, labelled: labelled, count: k)
        #expect(r <= 4 * opt + 1e-6)
    }
}

@Test func incrementalEqualsRebuiltFromScratch() {
    let x = randomPoints(400, 16, seed: 99)
    var rng = SeededRandom(seed: 5)
    var inc = IncrementalKCenter(features: x)
    var all: [Int] = []
    for round in 0..<6 {
        let newLabels = rng.sample(400, 7).filter { !all.contains($0) }
        for c in newLabels { inc.addLabelled([c]) }  // one pass per label
        all += newLabels
        var scratch = IncrementalKCenter(features: x)
        scratch.reset(labelled: all)
        // GEMM blocking differs (1 vs 32 centres per call): equal up to rounding.
        #expect(zip(inc.minDistance, scratch.minDistance).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, $1) }, "round \(round)")
        let a = inc.select(count: 10)
        #expect(a == scratch.select(count: 10))
        #expect(a == scratch.selectByFullPasses(count: 10))
    }
    // Candidate masks are honoured.
    let mask = (0..<400).map { $0 % 2 == 0 }
    #expect(inc.select(count: 10, candidate: mask).allSatisfy { $0 % 2 == 0 })
}

/// Two Gaussian blobs, linearly separable.
func toyProblem(_ n: Int, seed: UInt64, classes: Int = 2) -> (Matrix, [Int]) {
    var rng = SeededRandom(seed: seed)
    var v: [Float] = []
    var y: [Int] = []
    for i in 0..<n {
        let c = i % classes
        y.append(c)
        for j in 0..<4 { v.append(rng.gaussian() * 0.5 + (j == c ? 3 : 0)) }
    }
    return (Matrix(rows: n, columns: 4, values: v), y)
}

@Test func headsLearnSeparableToy() {
    for classes in [2, 3] {
        let (x, y) = toyProblem(120, seed: 3, classes: classes)
        let rows = Array(0..<120)
        var lr = LogisticHead(classCount: classes, featureCount: 4)
        var rng = SeededRandom(seed: 1)
        let rep = lr.fit(features: x, rows: rows, labels: y, rng: &rng)
        let p = lr.predict(features: x, rows: rows).map(\.label)
        #expect(Metrics.accuracy(predicted: p, truth: y) > 0.97)
        #expect((rep.validationAccuracy ?? 0) > 0.9)
        // The paper's MLP, with a learning rate this test can afford (1e-5 needs far more steps than 30 epochs).
        var cfg = PaperMLPHead.Config()
        cfg.learningRate = 1e-2
        cfg.maxEpochs = 30
        var mlp = PaperMLPHead(classCount: classes, featureCount: 4, config: cfg)
        _ = mlp.fit(features: x, rows: rows, labels: y, rng: &rng)
        let q = mlp.predict(features: x, rows: rows)
        #expect(Metrics.accuracy(predicted: q.map(\.label), truth: y) > 0.95)
        #expect(q.allSatisfy { $0.confidence >= 1 / Float(classes) && $0.confidence <= 1 })
    }
}

@Test func mlpGradientMatchesFiniteDifferences() {
    let (x, y) = toyProblem(10, seed: 8, classes: 3)
    var cfg = PaperMLPHead.Config()
    cfg.hidden = 5
    let head = PaperMLPHead(classCount: 3, featureCount: 4, config: cfg)
    var rng = SeededRandom(seed: 2)
    let theta = head.initialParameters(rng: &rng)
    let samples = Array(0..<10)
    var grad: [Float] = []
    _ = head.lossAndGradient(theta: theta, x: x, samples: samples, labels: y, grad: &grad)
    var scratch: [Float] = []
    var checked = 0
    // ReLU kinks make a central difference wrong when a pre-activation crosses 0 within ±eps; a parameter
    // passes when any of three step sizes agrees (a wrong gradient disagrees at all of them).
    for i in stride(from: 0, to: theta.count, by: 2) {
        var ok = false
        var seen: [Double] = []
        for eps: Float in [1e-2, 1e-3, 3e-4] where !ok {
            var tp = theta, tm = theta
            tp[i] += eps; tm[i] -= eps
            let fp = head.lossAndGradient(theta: tp, x: x, samples: samples, labels: y, grad: &scratch)
            let fm = head.lossAndGradient(theta: tm, x: x, samples: samples, labels: y, grad: &scratch)
            let numeric = (fp - fm) / Double(2 * eps)
            seen.append(numeric)
            ok = abs(numeric - Double(grad[i])) < 1e-3 + 0.02 * abs(numeric)
        }
        #expect(ok, "parameter \(i): analytic \(grad[i]) numeric \(seen)")
        checked += 1
    }
    #expect(checked > 20)
}

@Test func logisticGradientMatchesFiniteDifferences() {
    let (x, y) = toyProblem(12, seed: 4, classes: 3)
    let head = LogisticHead(classCount: 3, featureCount: 4)
    var rng = SeededRandom(seed: 9)
    let theta = (0..<15).map { _ in Double(rng.gaussian()) * 0.3 }
    let w = (0..<12).map { Double($0 % 3 + 1) }
    var g: [Double] = []
    _ = head.objective(theta: theta, x: x, labels: y, sampleWeights: w, lambda: 0.1, grad: &g)
    var s: [Double] = []
    for i in theta.indices {
        var tp = theta, tm = theta
        tp[i] += 1e-3; tm[i] -= 1e-3
        let num =
            (head.objective(theta: tp, x: x, labels: y, sampleWeights: w, lambda: 0.1, grad: &s)
                - head.objective(theta: tm, x: x, labels: y, sampleWeights: w, lambda: 0.1, grad: &s)) / 2e-3
        #expect(abs(num - g[i]) < 1e-3 + 0.02 * abs(num))
    }
}

@Test func metricsAndSummary() {
    #expect(Metrics.accuracy(predicted: [0, 1, 1, 0], truth: [0, 1, 0, 0]) == 0.75)
    #expect(Metrics.balancedAccuracy(predicted: [0, 0, 0, 0], truth: [0, 0, 0, 1], classCount: 2) == 0.5)
    #expect(abs(Metrics.auc(xs: [0, 1, 2, 3], ys: [0, 1, 1, 1], below: 4) - (2.5 / 3)) < 1e-12)
    let s = Summary([1, 2, 3])
    #expect(s.mean == 2 && abs(s.sd - 1) < 1e-12 && abs(s.ciHigh - (2 + 4.303 / 3.0.squareRoot())) < 1e-9)
}

@Test func patchGridAndPolicy() {
    // Two 100×100 µm images cut into 2×2 windows of 50 µm.
    let xs: [Double] = [10, 60, 10, 60, 70, 71]
    let ys: [Double] = [10, 10, 60, 60, 70, 72]
    let img = [0, 0, 0, 0, 1, 1]
    let grid = PatchGrid(image: img, x: xs, y: ys, extents: [(100, 100), (100, 100)], side: 50)
    #expect(grid.patches.count == 8)
    #expect(grid.patchOfCell == [0, 1, 2, 3, 7, 7])
    var done = [Bool](repeating: false, count: 8)
    #expect(grid.bestPatch(holding: [0, 4, 5], done: done) == 7)
    done[7] = true
    #expect(grid.bestPatch(holding: [0, 4, 5], done: done) == 0)
    let p = OnlinePolicy(retrainEvery: 5, minLabels: 20)
    #expect(!p.shouldRetrain(labelCount: 19, lastFitAt: nil))
    #expect(p.shouldRetrain(labelCount: 20, lastFitAt: nil))
    #expect(!p.shouldRetrain(labelCount: 24, lastFitAt: 20))
    #expect(p.shouldRetrain(labelCount: 25, lastFitAt: 20))
}

@Test func sessionIsDeterministic() {
    func run() -> ([Int], [Prediction]?) {
        let (x, y) = toyProblem(200, seed: 11)
        var s = LearningSession(features: x, classCount: 2, policy: OnlinePolicy(retrainEvery: 5, minLabels: 10), seed: 4)
        for c in 0..<30 { s.addLabel(cell: c, label: y[c]) }
        let grid = PatchGrid(
            image: Array(repeating: 0, count: 200), x: (0..<200).map { Double($0 % 20) * 10 },
            y: (0..<200).map { Double($0 / 20) * 10 }, extents: [(200, 100)], side: 50)
        let (_, subset) = s.nextPatch(grid: grid, done: [Bool](repeating: false, count: grid.patches.count), subsetSize: 8)
        return (subset, s.suggestions(for: Array(100..<120)))
    }
    let a = run(), b = run()
    #expect(a.0 == b.0 && a.1 == b.1 && a.1 != nil)
}
