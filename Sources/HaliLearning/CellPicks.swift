// The next cells to label, anywhere on the slide: the active learner's pick at cell level (a screenful for the review
// gallery), beside the patch-level pick of the paper.

public import HaliMath

/// How the next cells are chosen.
public enum CellStrategy: String, Sendable, CaseIterable, Codable {
    /// Farthest-first from the labelled cells in the embedding (Sener & Savarese 2018; `IncrementalKCenter`).
    case coreset
    /// The most typical cell of each of the largest clusters without labels (`TypiClust`).
    case typiclust
    /// The cells whose δ-balls cover most of what no label covers yet (`ProbCover`).
    case probcover
    /// The smallest gap between the model's two most probable classes (Scheffer et al. 2001).
    case margin
    /// The highest entropy of the model's class probabilities.
    case entropy
    /// Uniformly random unlabelled cells (a control).
    case random
    /// TypiClust while the model has few labels, margin from `CellPicker.switchAtLabels` on (Hacohen et al. 2022:
    /// typical examples suit low budgets, uncertain ones high budgets).
    case typiclustThenMargin = "typiclust-margin"
}

/// One annotator's cell picker over a slide's (or a pool's) frozen features. Labels arrive with `addLabelled`; each
/// `pick` returns the next cells in order. What a strategy needs is built on first use and kept: the k-center
/// distances (one O(N·D) pass per label), one uniform sample of at most `sampleLimit` cells (drawn once; TypiClust
/// clusters it, ProbCover's graph holds it), the ProbCover graph (O(m²·D) once), TypiClust's last centres.
///
/// Strategies that need a model (margin, entropy) fall back to TypiClust until `probabilities` is given: before the
/// first fit there is nothing to be uncertain about.
public struct CellPicker: Sendable {
    public let features: Matrix
    public let strategy: CellStrategy
    /// Labels at which `typiclust-margin` turns to margin.
    public var switchAtLabels = 100
    /// Most cells TypiClust clusters, and the ProbCover graph's sample (uniform, seeded).
    public var sampleLimit = 10_000
    /// k-means clusters for ProbCover's pseudo-labels (the paper: the number of classes).
    public var classCount: Int
    public private(set) var labelled: [Int] = []
    private var isLabelled: [Bool]
    private var kcenter: IncrementalKCenter?
    private var cover: ProbCover?
    private var coverRefused = false
    /// The cells TypiClust clusters and the ProbCover graph holds: at most `sampleLimit`, drawn once.
    private var sample: [Int]?
    /// TypiClust's centres at the last pick (the next pick's warm start).
    private var typiclustCentres: Matrix?
    private var rng: SeededRandom

    public init(features: Matrix, strategy: CellStrategy, classCount: Int, seed: UInt64) {
        self.features = features
        self.strategy = strategy
        self.classCount = max(2, classCount)
        isLabelled = [Bool](repeating: false, count: features.rows)
        rng = SeededRandom.derived(seed, 0xCE11)
    }

    /// TypiClust's centres at the last pick, where the next pick starts (nil before one).
    public var warmCentres: Matrix? { typiclustCentres }

    /// Takes over what does not depend on the labels from `old`, a picker over the same features: the drawn sample
    /// and TypiClust's last centres (a starting point for k-means, nothing more). For a picker rebuilt after labels
    /// were taken back (an undo), so that its first TypiClust pick is warm.
    public mutating func adoptLabelIndependentState(of old: CellPicker) {
        guard old.features.rows == features.rows, old.features.columns == features.columns else { return }
        sample = old.sample
        typiclustCentres = old.typiclustCentres
    }

    public mutating func addLabelled(_ cells: [Int]) {
        let fresh = cells.filter { $0 >= 0 && $0 < features.rows && !isLabelled[$0] }
        for c in fresh { isLabelled[c] = true }
        labelled += fresh
        kcenter?.addLabelled(fresh)
        cover?.addLabelled(fresh, features: features)
    }

    /// The strategy this pick uses, after the fallbacks (see the type's notes).
    public func effectiveStrategy(hasModel: Bool) -> CellStrategy {
        switch strategy {
        case .margin, .entropy: return hasModel ? strategy : .typiclust
        case .typiclustThenMargin: return hasModel && labelled.count >= switchAtLabels ? .margin : .typiclust
        default: return strategy
        }
    }

    /// Up to `count` unlabelled cells allowed by `candidate` (nil: all), best first. `probabilities(rows)` gives the
    /// current model's class probabilities (rows × classes) where there is a model. ProbCover fills up with k-center
    /// picks once everything in reach is covered.
    public mutating func pick(count: Int, candidate: [Bool]? = nil, probabilities: (([Int]) -> Matrix)? = nil) -> [Int] {
        guard count > 0 else { return [] }
        let candidates = (0..<features.rows).filter { !isLabelled[$0] && (candidate?[$0] ?? true) }
        guard !candidates.isEmpty else { return [] }
        switch effectiveStrategy(hasModel: probabilities != nil) {
        case .coreset:
            return coresetPick(count, candidate: candidate)
        case .typiclust, .typiclustThenMargin:
            // The drawn sample, unless the candidates allowed lie outside it (a region): then theirs.
            let inSample = drawnSample().filter { !isLabelled[$0] && (candidate?[$0] ?? true) }
            return TypiClust.select(
                features: features, labelled: labelled, candidates: inSample.isEmpty ? candidates : inSample, count: count, sampleLimit: sampleLimit,
                rng: &rng,
                warmStart: &typiclustCentres)
        case .probcover:
            if cover == nil && !coverRefused { buildCover() }
            guard let cover else { return coresetPick(count, candidate: candidate) }
            var picks = cover.select(count: count, candidate: candidate)
            if picks.count < count {
                var mask = candidate ?? [Bool](repeating: true, count: features.rows)
                for p in picks { mask[p] = false }
                picks += coresetPick(count - picks.count, candidate: mask, extraCentres: picks)
            }
            return picks
        case .margin, .entropy:
            return mostUncertain(count, candidates: candidates, entropy: strategy == .entropy, probabilities: probabilities!)
        case .random:
            return rng.sample(candidates.count, count).map { candidates[$0] }
        }
    }

    /// The `count` candidates with the highest uncertainty (ties → lower index), kept in a sorted list of `count`
    /// (O(N·log count) besides the model's O(N·D·C)); equal to `Uncertainty.top` over all candidates at once. Where
    /// most cells are candidates (the usual case) every row is scored in one call, which a head can do without
    /// gathering rows (the fast head does); otherwise the candidates are scored in blocks of 16,384.
    func mostUncertain(_ count: Int, candidates: [Int], entropy: Bool, probabilities: ([Int]) -> Matrix) -> [Int] {
        var best: [(score: Float, cell: Int)] = []
        func better(_ a: (score: Float, cell: Int), _ b: (score: Float, cell: Int)) -> Bool {
            a.score != b.score ? a.score > b.score : a.cell < b.cell
        }
        let scoreEveryRow = 2 * candidates.count >= features.rows
        var isCandidate: [Bool] = []
        if scoreEveryRow {
            isCandidate = [Bool](repeating: false, count: features.rows)
            for c in candidates { isCandidate[c] = true }
        }
        var start = 0
        let total = scoreEveryRow ? features.rows : candidates.count
        while start < total {
            let block = scoreEveryRow ? Array(0..<total) : Array(candidates[start..<min(total, start + 16_384)])
            let p = probabilities(block)
            let scores = entropy ? Uncertainty.entropy(p) : Uncertainty.negativeMargin(p)
            for (i, score) in scores.enumerated() where !scoreEveryRow || isCandidate[block[i]] {
                let entry = (score: score, cell: block[i])
                if best.count == count, let last = best.last, !better(entry, last) { continue }
                let at = best.firstIndex { better(entry, $0) } ?? best.count
                best.insert(entry, at: at)
                if best.count > count { best.removeLast() }
            }
            start += block.count
        }
        return best.map(\.cell)
    }

    private mutating func coresetPick(_ count: Int, candidate: [Bool]?, extraCentres: [Int] = []) -> [Int] {
        if kcenter == nil {
            var kc = IncrementalKCenter(features: features)
            kc.addLabelled(labelled)
            kcenter = kc
        }
        guard !extraCentres.isEmpty else { return kcenter!.select(count: count, candidate: candidate) }
        var kc = kcenter!
        kc.addLabelled(extraCentres)  // picks already made count as centres, without being kept as labels
        return kc.select(count: count, candidate: candidate)
    }

    private mutating func drawnSample() -> [Int] {
        if let sample { return sample }
        let drawn = features.rows <= sampleLimit ? Array(0..<features.rows) : rng.sample(features.rows, sampleLimit).sorted()
        sample = drawn
        return drawn
    }

    private mutating func buildCover() {
        let sample = drawnSample()
        let x = features.gathering(rows: sample)
        let pseudo = KMeans(x, k: classCount, tolerance: KMeans.scikitLearnTolerance, rng: &rng).assignment
        let delta = ProbCover.radius(features: x, clusters: pseudo)
        guard delta.isFinite, var built = ProbCover(features: features, sample: sample, delta: delta) else {
            coverRefused = true
            return
        }
        built.addLabelled(labelled, features: features)
        cover = built
    }
}
