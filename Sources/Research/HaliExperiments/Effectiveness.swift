// The paper's effectiveness experiment with a simulated annotator (docs/learning.md, "Annotator model").
//
// The annotator (an oracle that always gives the true class) first labels `initialPerClass` cells of each class,
// drawn at random (seeded) from the pool and interleaved by class; every arm starts with these same cells. Then:
//  * active (HALI):      the active learner picks S (`subsetSize` cells, Coreset k-center greedy by default) among
//                        unlabelled cells of patches not yet done; the next patch is the one holding most of S.
//  * sequential control: models off; patches in a random (seeded) order.
//  In both, inside a visited patch the annotator labels the first `perPatch` unlabelled cells in reading order
//  (rows of 12 µm top to bottom, left to right within a row) and the patch is then done. This rule is fixed.
//  Exploratory variant (`withinPatch = .subsetFirst`, active arm only): the annotator labels the patch's cells of S
//  first (in reading order), then continues in reading order up to `perPatch` — as if the viewer marked S's cells.
//  If every patch is done before the budget is spent, patches with unlabelled cells are opened again.
//  * random-cells:       uniformly random unlabelled pool cells (no patches).
//  * balanced:           random cells, alternating classes (an oracle-balanced control).
//  * active-cells:       cell-level picks anywhere in the pool (`cellStrategy`, margin by default: it won the cell-picks experiment), `cellBatch` at a
//                        time (a gallery page); the model for margin/entropy is refitted before each batch.
// After each N the paper's head is trained on the first N labels and scored on the held-aside images.

import Foundation
public import HaliLearning
import HaliMath

public struct EffectivenessConfig: Sendable, Codable {
    public var budget = 200
    public var repeats = 10
    public var seed: UInt64 = 1
    public var initialPerClass = 5
    public var perPatch = 20
    public var subsetSize = 20
    public var strategy: StrategyKind = .coreset
    public var head: HeadKind = .paper
    /// Evaluate every `evalStep` labels (1 = every N); AUC by the trapezoid rule over the evaluated N.
    public var evalStep = 1
    /// The AUC covers N < aucLimit.
    public var aucLimit = 200
    public var threads = 1
    /// What the annotator labels inside a patch the active learner picked (the controls always use reading order).
    public var withinPatch: WithinPatch = .readingOrder
    /// The active-cells arm: its strategy and the cells it picks at a time.
    public var cellStrategy: CellStrategy = .margin
    public var cellBatch = 24
    public init() {}
}

public enum WithinPatch: String, Sendable, CaseIterable, Codable {
    /// The first `perPatch` unlabelled cells in reading order (the fixed rule of every reported table).
    case readingOrder = "reading-order"
    /// The patch's cells of the active learner's subset S first, then reading order.
    case subsetFirst = "subset-first"
}

public enum Arm: String, Sendable, CaseIterable, Codable {
    case active
    case sequential
    case randomCells = "random-cells"
    case balanced
    case activeCells = "active-cells"
}

public struct CurveStats: Sendable, Codable {
    public var mean: [Double]
    public var sd: [Double]
}

public struct ArmResult: Sendable, Codable {
    public var arm: String
    public var accuracy: CurveStats
    public var balancedAccuracy: CurveStats
    public var aucAccuracy: Summary
    public var aucBalancedAccuracy: Summary
    /// Mean fraction of positive (class 1) labels among the budget's labels (binary use cases).
    public var positiveFraction: Double
    public var patchesVisited: Double
}

public struct Gain: Sendable, Codable {
    public var arm: String
    public var control: String
    /// AUC ratio − 1 in %, per seed paired between arms: mean, sd, 95 % t-interval.
    public var accuracy: Summary
    public var balancedAccuracy: Summary
}

public struct EffectivenessResult: Sendable, Codable {
    public var dataset: String
    public var positive: String?
    public var classes: [String]
    public var features: String
    public var config: EffectivenessConfig
    public var poolCells: Int
    public var testCells: Int
    public var testSet: String
    public var patches: Int
    public var evaluatedN: [Int]
    public var arms: [ArmResult]
    public var gains: [Gain]
    /// Active vs sequential control, accuracy AUC gain in % (mean over paired seeds).
    public var gain: Double
    public var gainBalanced: Double
    public var seconds: Double
}

public enum Effectiveness {
    /// The labelling order of one arm for one repeat (pool cell indices, length ≤ budget).
    public static func sequence(
        arm: Arm, data: PreparedData, config: EffectivenessConfig, repeat r: Int,
        patchesVisited: inout Int
    ) -> [Int] {
        let n = data.pool.count
        let budget = min(config.budget, n)
        var initRng = SeededRandom.derived(config.seed, UInt64(r), 1)
        // Initial cells: k per class, interleaved.
        var perClass: [[Int]] = []
        for c in 0..<data.classCount {
            let members = (0..<n).filter { data.poolLabels[$0] == c }
            perClass.append(initRng.sample(members.count, config.initialPerClass).map { members[$0] })
        }
        var seq: [Int] = []
        for i in 0..<config.initialPerClass { for c in 0..<data.classCount where i < perClass[c].count { seq.append(perClass[c][i]) } }
        var labelled = [Bool](repeating: false, count: n)
        for c in seq { labelled[c] = true }
        var rng = SeededRandom.derived(config.seed, UInt64(r), 2, UInt64(Arm.allCases.firstIndex(of: arm)!))
        let grid = data.grid
        var done = [Bool](repeating: false, count: grid.patches.count)
        func visit(_ p: Int, first: Set<Int> = []) {
            done[p] = true
            patchesVisited += 1
            var taken = 0
            let inPatch = grid.cellsOfPatch[p]
            for c in inPatch.filter({ first.contains($0) }) + inPatch
            where !labelled[c] && taken < config.perPatch && seq.count < budget {
                seq.append(c); labelled[c] = true; taken += 1
            }
        }
        // When every patch is done before the budget is spent (small datasets), patches with unlabelled cells are
        // opened again and the annotator continues with their next `perPatch` cells in reading order.
        func reopen() {
            for p in grid.patches.indices where grid.cellsOfPatch[p].contains(where: { !labelled[$0] }) { done[p] = false }
        }
        switch arm {
        case .active:
            var kc = config.strategy == .coreset ? IncrementalKCenter(features: data.poolX) : nil
            kc?.addLabelled(seq)
            var head = LogisticHead(classCount: data.classCount, featureCount: data.poolX.columns)
            head.config.reportValidation = false
            while seq.count < budget {
                var cand = (0..<n).map { !labelled[$0] && !done[grid.patchOfCell[$0]] }
                var candList = (0..<n).filter { cand[$0] }
                if candList.isEmpty {
                    reopen()
                    cand = (0..<n).map { !labelled[$0] && !done[grid.patchOfCell[$0]] }
                    candList = (0..<n).filter { cand[$0] }
                    if candList.isEmpty { break }
                }
                var s: [Int]
                switch config.strategy {
                case .coreset:
                    s = kc!.select(count: config.subsetSize, candidate: cand)
                case .entropy, .margin:
                    var fitRng = SeededRandom.derived(config.seed, UInt64(r), 3, UInt64(seq.count))
                    _ = head.fit(features: data.poolX, rows: seq, labels: seq.map { data.poolLabels[$0] }, rng: &fitRng)
                    let p = head.probabilities(features: data.poolX, rows: candList)
                    let scores = config.strategy == .entropy ? Uncertainty.entropy(p) : Uncertainty.negativeMargin(p)
                    s = Uncertainty.top(config.subsetSize, scores: scores, candidates: candList)
                case .random:
                    s = rng.sample(candList.count, config.subsetSize).map { candList[$0] }
                }
                guard let p = grid.bestPatch(holding: s, done: done) else { break }
                let before = seq.count
                visit(p, first: config.withinPatch == .subsetFirst ? Set(s) : [])
                kc?.addLabelled(Array(seq[before...]))
            }
        case .sequential:
            let order = rng.shuffled(Array(grid.patches.indices))
            while seq.count < budget {
                let before = seq.count
                for p in order where seq.count < budget && !done[p] { visit(p) }
                if seq.count == before { break }
                reopen()
            }
        case .randomCells:
            let rest = rng.shuffled((0..<n).filter { !labelled[$0] })
            seq += rest.prefix(budget - seq.count)
        case .activeCells:
            var picker = CellPicker(features: data.poolX, strategy: config.cellStrategy, classCount: data.classCount, seed: config.seed &+ UInt64(r))
            picker.addLabelled(seq)
            var head = LogisticHead(classCount: data.classCount, featureCount: data.poolX.columns)
            head.config.reportValidation = false
            while seq.count < budget {
                var probabilities: (([Int]) -> Matrix)?
                let needsModel = picker.effectiveStrategy(hasModel: true) != picker.effectiveStrategy(hasModel: false)
                if needsModel && Set(seq.map { data.poolLabels[$0] }).count > 1 {
                    var fitRng = SeededRandom.derived(config.seed, UInt64(r), 5, UInt64(seq.count))
                    _ = head.fit(features: data.poolX, rows: seq, labels: seq.map { data.poolLabels[$0] }, rng: &fitRng)
                    let fitted = head
                    probabilities = { rows in fitted.probabilities(features: data.poolX, rows: rows) }
                }
                let picks = picker.pick(count: min(config.cellBatch, budget - seq.count), probabilities: probabilities)
                if picks.isEmpty { break }
                seq += picks
                picker.addLabelled(picks)
            }
        case .balanced:
            var queues = (0..<data.classCount).map { c in rng.shuffled((0..<n).filter { !labelled[$0] && data.poolLabels[$0] == c }) }
            var c = 0
            while seq.count < budget, queues.contains(where: { !$0.isEmpty }) {
                if !queues[c].isEmpty { seq.append(queues[c].removeFirst()) }
                c = (c + 1) % data.classCount
            }
        }
        return Array(seq.prefix(budget))
    }

    /// Accuracy and balanced accuracy on the test cells of the head trained on `labels` (pool indices).
    public static func score(data: PreparedData, cells: [Int], config: EffectivenessConfig, repeat r: Int) -> (Double, Double) {
        let y = cells.map { data.poolLabels[$0] }
        let present = Set(y)
        let pred: [Int]
        if present.count < 2 {
            pred = [Int](repeating: y.first ?? 0, count: data.testLabels.count)
        } else {
            var head = config.head.make(classCount: data.classCount, featureCount: data.poolX.columns)
            var rng = SeededRandom.derived(config.seed, UInt64(r), 4, UInt64(cells.count))
            _ = head.fit(features: data.poolX, rows: cells, labels: y, rng: &rng)
            pred = head.predict(features: data.testX, rows: Array(0..<data.testX.rows)).map(\.label)
        }
        return (
            Metrics.accuracy(predicted: pred, truth: data.testLabels),
            Metrics.balancedAccuracy(predicted: pred, truth: data.testLabels, classCount: data.classCount)
        )
    }

    public static func run(
        data: PreparedData, config: EffectivenessConfig, datasetName: String, positive: String?,
        progress: (@Sendable (String) -> Void)? = nil
    ) -> EffectivenessResult {
        let start = Date()
        let budget = min(config.budget, data.pool.count)
        var nsVar = Array(stride(from: 0, through: budget, by: max(1, config.evalStep)))
        if nsVar.last != budget { nsVar.append(budget) }
        let ns = nsVar
        let arms = Arm.allCases
        // curves[arm][repeat] = [(acc, bacc)] per N
        struct RepeatOut: Sendable { var acc: [[Double]]; var bacc: [[Double]]; var pos: [Double]; var patches: [Double] }
        let results = ResultBox<RepeatOut>(count: config.repeats)
        let work: @Sendable (Int) -> Void = { r in
            var out = RepeatOut(acc: [], bacc: [], pos: [], patches: [])
            var cache: [[Int]: (Double, Double)] = [:]
            for arm in arms {
                var visited = 0
                let seq = sequence(arm: arm, data: data, config: config, repeat: r, patchesVisited: &visited)
                var a: [Double] = [], b: [Double] = []
                for n in ns {
                    let prefix = Array(seq.prefix(n))
                    let s: (Double, Double)
                    if let c = cache[prefix] { s = c } else { s = score(data: data, cells: prefix, config: config, repeat: r); cache[prefix] = s }
                    a.append(s.0); b.append(s.1)
                }
                out.acc.append(a); out.bacc.append(b)
                out.pos.append(Double(seq.filter { data.poolLabels[$0] == 1 }.count) / Double(max(seq.count, 1)))
                out.patches.append(Double(visited))
            }
            results.set(r, out)
            progress?("repeat \(r + 1)/\(config.repeats) done")
        }
        if config.threads > 1 {
            let next = Counter()
            BLAS.withOneThreadPerCaller {
                DispatchQueue.concurrentPerform(iterations: config.threads) { _ in
                    while true { let r = next.next(); if r >= config.repeats { break }; work(r) }
                }
            }
        } else {
            for r in 0..<config.repeats { work(r) }
        }
        let outs = results.values.map { $0! }
        func stats(_ curves: [[Double]]) -> CurveStats {
            let m = ns.indices.map { i in Summary(curves.map { $0[i] }) }
            return CurveStats(mean: m.map(\.mean), sd: m.map(\.sd))
        }
        var armResults: [ArmResult] = []
        var aucA: [[Double]] = [], aucB: [[Double]] = []
        for (ai, arm) in arms.enumerated() {
            let accs = outs.map { $0.acc[ai] }, baccs = outs.map { $0.bacc[ai] }
            let ua = accs.map { Metrics.auc(xs: ns, ys: $0, below: config.aucLimit) }
            let ub = baccs.map { Metrics.auc(xs: ns, ys: $0, below: config.aucLimit) }
            aucA.append(ua); aucB.append(ub)
            armResults.append(
                ArmResult(
                    arm: arm.rawValue, accuracy: stats(accs), balancedAccuracy: stats(baccs),
                    aucAccuracy: Summary(ua), aucBalancedAccuracy: Summary(ub),
                    positiveFraction: Summary(outs.map { $0.pos[ai] }).mean,
                    patchesVisited: Summary(outs.map { $0.patches[ai] }).mean))
        }
        var gains: [Gain] = []
        let pairs: [(Arm, Arm)] = [
            (.active, .sequential), (.active, .randomCells), (.active, .balanced), (.randomCells, .sequential),
            (.activeCells, .sequential), (.activeCells, .randomCells),
        ]
        for (a, c) in pairs {
            let ia = arms.firstIndex(of: a)!, ic = arms.firstIndex(of: c)!
            let ga = (0..<config.repeats).map { 100 * (aucA[ia][$0] / aucA[ic][$0] - 1) }
            let gb = (0..<config.repeats).map { 100 * (aucB[ia][$0] / aucB[ic][$0] - 1) }
            gains.append(Gain(arm: a.rawValue, control: c.rawValue, accuracy: Summary(ga), balancedAccuracy: Summary(gb)))
        }
        return EffectivenessResult(
            dataset: datasetName, positive: positive, classes: data.classNames, features: data.features.rawValue,
            config: config, poolCells: data.pool.count, testCells: data.test.count, testSet: data.testDescription,
            patches: data.grid.patches.count, evaluatedN: ns, arms: armResults, gains: gains,
            gain: gains[0].accuracy.mean, gainBalanced: gains[0].balancedAccuracy.mean,
            seconds: Date().timeIntervalSince(start))
    }
}

/// Results written from several threads, one slot each.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [T?]
    init(count: Int) { values = [T?](repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.lock(); values[i] = v; lock.unlock() }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; let v = value; value += 1; return v }
}
