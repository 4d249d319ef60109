// The online learning loop of one labelling session: labels arrive one at a time; the head is refitted every
// `policy.retrainEvery` new labels once `policy.minLabels` exist; the active learner keeps its distances current.

public import HaliMath

public struct ModelVersion: Sendable, Equatable {
    public var version: Int
    public var labelCount: Int
    public var report: FitReport
}

public struct LearningSession: Sendable {
    public let features: Matrix
    public let classCount: Int
    public var policy: OnlinePolicy
    public private(set) var head: any Head
    public private(set) var kcenter: IncrementalKCenter?
    public private(set) var labelledCells: [Int] = []
    public private(set) var labels: [Int] = []
    public private(set) var versions: [ModelVersion] = []
    var lastFitAt: Int?
    var rng: SeededRandom

    /// - Parameter activeLearner: keep k-center distances (costs one O(N·D) pass per label).
    public init(
        features: Matrix, classCount: Int, head: HeadKind = .logistic, policy: OnlinePolicy = OnlinePolicy(),
        activeLearner: Bool = true, seed: UInt64 = 0
    ) {
        self.features = features
        self.classCount = classCount
        self.policy = policy
        self.head = head.make(classCount: classCount, featureCount: features.columns)
        self.kcenter = activeLearner ? IncrementalKCenter(features: features) : nil
        rng = SeededRandom(seed: seed)
    }

    /// Records a label; returns the new model version when this label triggered a refit.
    @discardableResult
    public mutating func addLabel(cell: Int, label: Int) -> ModelVersion? {
        labelledCells.append(cell)
        labels.append(label)
        kcenter?.addLabelled([cell])
        guard policy.shouldRetrain(labelCount: labels.count, lastFitAt: lastFitAt) else { return nil }
        return refit()
    }

    @discardableResult
    public mutating func refit() -> ModelVersion {
        var h = head
        let report = h.fit(features: features, rows: labelledCells, labels: labels, rng: &rng)
        head = h
        lastFitAt = labels.count
        let v = ModelVersion(version: versions.count + 1, labelCount: labels.count, report: report)
        versions.append(v)
        return v
    }

    public var showsSuggestions: Bool { head.isFitted && policy.showsSuggestions(labelCount: labels.count) }

    /// Suggestions (class + confidence) for `cells`, or nil before the policy shows any.
    public func suggestions(for cells: [Int]) -> [Prediction]? {
        showsSuggestions ? head.predict(features: features, rows: cells) : nil
    }

    /// Next patch by Coreset: k-center subset S over cells not in done patches, then the patch holding most of S.
    public func nextPatch(grid: PatchGrid, done: [Bool], subsetSize: Int) -> (patch: Int?, subset: [Int]) {
        guard let kc = kcenter else { return (nil, []) }
        let cand = grid.patchOfCell.map { !done[$0] }
        let s = kc.select(count: subsetSize, candidate: cand)
        return (grid.bestPatch(holding: s, done: done), s)
    }
}
