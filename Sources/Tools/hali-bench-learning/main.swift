// Latency benchmark of the learning loop (docs/learning.md, "Latency"). Prints medians and p95.
//
//   hali-bench-learning [--features FILE.f32 --dim D] [--sizes 100000,1000000] [--dims 128] [--runs 20]
//                       [--strategies typiclust,margin] [--cell-picks-only]
//
// Features: real per-cell features from FILE (raw Float32, rows of D, e.g. the experiments' feature cache),
// replicated with small Gaussian jitter (σ = 0.05 per standardised dimension) to reach each size; otherwise
// i.i.d. Gaussian features. Cell positions: a square slide at CRC density (224 cells per 275 × 275 µm) with
// 250 µm patches. Measured after a label: the head refit on L labels + predictions for the visible ~200-cell patch;
// the k-center update for the new label (one pass over N); predictions for all N cells; the next-patch pick; the
// next 24 cells by every cell strategy (after the same 200 labels).

import Foundation
import HaliLearning
import HaliMath

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func stats(_ xs: [Double]) -> (median: Double, p95: Double) {
    let s = xs.sorted()
    let p95 = s[min(s.count - 1, Int((0.95 * Double(s.count)).rounded(.up)) - 1)]
    return (s[s.count / 2], p95)
}

func time(_ runs: Int, _ body: (Int) -> Void) -> (median: Double, p95: Double) {
    var t: [Double] = []
    for r in 0..<runs { let a = now(); body(r); t.append((now() - a) * 1000) }
    return stats(t)
}

func report(_ name: String, _ s: (median: Double, p95: Double)) {
    print(name.padding(toLength: 72, withPad: " ", startingAt: 0) + String(format: "median %9.2f ms   p95 %9.2f ms", s.median, s.p95))
}

let args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let runs = Int(option("--runs") ?? "20") ?? 20
let sizes = (option("--sizes") ?? "100000,1000000").split(separator: ",").compactMap { Int($0) }
let featureFile = option("--features")
let strategies = option("--strategies").map { $0.split(separator: ",").compactMap { CellStrategy(rawValue: String($0)) } } ?? CellStrategy.allCases
let cellPicksOnly = args.contains("--cell-picks-only")
var dims = (option("--dims") ?? "128").split(separator: ",").compactMap { Int($0) }
var base: Matrix?
if let f = featureFile, let d = Int(option("--dim") ?? ""), let data = FileManager.default.contents(atPath: f) {
    var v = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    let n = v.count / d
    // z-score columns (as the experiments do).
    for c in 0..<d {
        var m = 0.0, q = 0.0
        for r in 0..<n { let x = Double(v[r * d + c]); m += x; q += x * x }
        m /= Double(n); let sd = max((q / Double(n) - m * m).squareRoot(), 1e-6)
        for r in 0..<n { v[r * d + c] = Float((Double(v[r * d + c]) - m) / sd) }
    }
    base = Matrix(rows: n, columns: d, values: v)
    dims = [d]
    print("features: \(n) real cells × \(d) from \(f), replicated with jitter σ=0.05")
} else {
    print("features: i.i.d. Gaussian")
}
print("BLAS threads: \(BLAS.threadCount); runs per figure: \(runs)")

for d in dims {
    for n in sizes {
        guard n >= 10_000 else {
            print("\nskipping N = \(n): the set-up (200 labels from whole patches) needs at least 10,000 cells")
            continue
        }
        var rng = SeededRandom(seed: 7)
        var v = [Float](repeating: 0, count: n * d)
        if let b = base {
            for r in 0..<n {
                let s = r % b.rows
                for c in 0..<d { v[r * d + c] = b.values[s * d + c] + 0.05 * rng.gaussian() }
            }
        } else {
            for i in v.indices { v[i] = rng.gaussian() }
        }
        let x = Matrix(rows: n, columns: d, values: v)
        v = []
        // Slide geometry at CRC density.
        let side = (Double(n) / (224.0 / (275.0 * 275.0))).squareRoot()
        let px = (0..<n).map { _ in Double(rng.unit()) * side }, py = (0..<n).map { _ in Double(rng.unit()) * side }
        let grid = PatchGrid(image: [Int](repeating: 0, count: n), x: px, y: py, extents: [(side, side)], side: 250)
        print("\n== N = \(n) cells, D = \(d), \(grid.patches.count) patches of ~\(Int(side / Double(max(1, Int((side / 250).rounded())))) ) µm")
        // A labelled set of 200 cells from 10 patches, 2 classes by a random hyperplane.
        let w = (0..<d).map { _ in rng.gaussian() }
        func truth(_ i: Int) -> Int {
            var s: Float = 0
            for c in 0..<d { s += x.values[i * d + c] * w[c] }
            return s > 0 ? 1 : 0
        }
        var labelled: [Int] = []
        var p = 0
        while labelled.count < 200 { labelled += grid.cellsOfPatch[p].prefix(20); p += 1 }
        labelled = Array(labelled.prefix(200))
        let labels = labelled.map(truth)
        let visible = grid.cellsOfPatch[p]
        // Head refit after one more label (warm start) + suggestions for the visible patch.
        var head = LogisticHead(classCount: 2, featureCount: d)
        var frng = SeededRandom(seed: 1)
        _ = head.fit(features: x, rows: Array(labelled.dropLast()), labels: Array(labels.dropLast()), rng: &frng)
        let warm = head
        if !cellPicksOnly {
            report(
                "refit logistic (L=200, warm, with 25% validation fit) + visible \(visible.count)",
                time(runs) { _ in
                    var h = warm
                    var r = SeededRandom(seed: 2)
                    _ = h.fit(features: x, rows: labelled, labels: labels, rng: &r)
                    _ = h.predict(features: x, rows: visible)
                })
            report(
                "refit logistic (L=200, warm, no validation fit) + visible",
                time(runs) { _ in
                    var h = warm
                    h.config.reportValidation = false
                    var r = SeededRandom(seed: 2)
                    _ = h.fit(features: x, rows: labelled, labels: labels, rng: &r)
                    _ = h.predict(features: x, rows: visible)
                })
            report(
                "fit logistic from scratch (L=200, cold, with validation fit) + visible",
                time(runs) { _ in
                    var h = LogisticHead(classCount: 2, featureCount: d)
                    var r = SeededRandom(seed: 2)
                    _ = h.fit(features: x, rows: labelled, labels: labels, rng: &r)
                    _ = h.predict(features: x, rows: visible)
                })
            report(
                "refit paper MLP (L=200, SGD lr 1e-5, early stop) + visible",
                time(max(3, runs / 4)) { i in
                    var h = PaperMLPHead(classCount: 2, featureCount: d)
                    var r = SeededRandom(seed: UInt64(i))
                    _ = h.fit(features: x, rows: labelled, labels: labels, rng: &r)
                    _ = h.predict(features: x, rows: visible)
                })
            head = warm
            report(
                "predictions for all \(n) cells (logistic)",
                time(max(3, runs / 2)) { _ in
                    _ = head.predict(features: x, rows: Array(0..<n))
                })
            // k-center: state after 200 labels; a new label = one pass.
            var kc = IncrementalKCenter(features: x)
            kc.addLabelled(labelled)
            var extra = 0
            report(
                "k-center update for one new label (one pass over N)",
                time(runs) { _ in
                    while kc.isLabelled[extra] { extra += 1 }
                    kc.addLabelled([extra])
                })
            var done = [Bool](repeating: false, count: grid.patches.count)
            for q in 0..<p { done[q] = true }
            report(
                "next-patch pick: candidates + k-center S=20 (lazy) + patch",
                time(runs) { _ in
                    let cand = grid.patchOfCell.map { !done[$0] }
                    let s = kc.select(count: 20, candidate: cand)
                    _ = grid.bestPatch(holding: s, done: done)
                })
            report(
                "  (reference: plain greedy S=20, one pass per pick)",
                time(max(2, runs / 10)) { _ in
                    let cand = grid.patchOfCell.map { !done[$0] }
                    _ = kc.selectByFullPasses(count: 20, candidate: cand)
                })
        }
        // Cell-level picks: 24 cells (a gallery page) after 200 labels, per strategy. The first pick builds what the
        // strategy keeps (k-center distances, the sample, the ProbCover graph, TypiClust's centres) and is timed apart.
        // Then that page is labelled, and each timed pick is the next page's, from a copy of the picker at that point.
        let fitted = warm
        let probabilities: ([Int]) -> Matrix = { rows in fitted.probabilities(features: x, rows: rows) }
        for strategy in strategies {
            var base = CellPicker(features: x, strategy: strategy, classCount: 2, seed: 1)
            base.switchAtLabels = 100
            let build = now()
            base.addLabelled(labelled)
            let page = base.pick(count: 24, probabilities: probabilities)
            let firstMs = (now() - build) * 1000
            base.addLabelled(page)
            var t: [Double] = []
            for _ in 0..<runs {
                var picker = base
                let start = now()
                _ = picker.pick(count: 24, probabilities: probabilities)
                t.append((now() - start) * 1000)
            }
            report("cell pick, 24 cells: \(strategy.rawValue) (first pick incl. set-up \(String(format: "%.0f", firstMs)) ms)", stats(t))
            if strategy == .typiclust {
                // After an undo the session rebuilds its picker over the labels that remain; it keeps the old one's
                // sample and centres. Timed: rebuild, labels added, pick.
                var undone: [Double] = []
                for _ in 0..<runs {
                    let start = now()
                    var rebuilt = CellPicker(features: x, strategy: strategy, classCount: 2, seed: 1)
                    rebuilt.adoptLabelIndependentState(of: base)
                    rebuilt.addLabelled(Array(labelled.dropLast()) + page)
                    _ = rebuilt.pick(count: 24, probabilities: probabilities)
                    undone.append((now() - start) * 1000)
                }
                report("cell pick, 24 cells: typiclust after an undo (picker rebuilt, warm)", stats(undone))
            }
        }
    }
}
