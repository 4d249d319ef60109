import Foundation
import HaliDatasets
import HaliLearning
import HaliMath
import Testing

@testable import HaliExperiments

/// A synthetic dataset: 8 images of 100×100 µm (mpp 1), 40 cells each, class 1 shifted in feature space.
func syntheticData(seed: UInt64 = 3) -> PreparedData {
    var rng = SeededRandom(seed: seed)
    func table(_ images: Int, _ name: String) -> (CellData, Matrix, [Int]) {
        var t = CellData(
            directory: name, imageNames: (0..<images).map { "\(name)\($0).png" }, imagePaths: [],
            imageSizes: Array(repeating: (100, 100), count: images), micronsPerPixel: 1)
        var v: [Float] = []
        var y: [Int] = []
        for im in 0..<images {
            for _ in 0..<40 {
                let x = Double(rng.uniform(0, 100)), yy = Double(rng.uniform(0, 100))
                // Class depends on position a little (so patches differ in composition) and on the features.
                let c = rng.unit() < (x < 50 ? 0.2 : 0.6) ? 1 : 0
                t.image.append(im); t.x.append(x); t.y.append(yy); t.className.append(c == 1 ? "pos" : "neg")
                y.append(c)
                for j in 0..<6 { v.append(rng.gaussian() + (j < 2 && c == 1 ? 1.5 : 0)) }
            }
        }
        return (t, Matrix(rows: y.count, columns: 6, values: v), y)
    }
    let (pool, px, py) = table(6, "pool")
    let (test, tx, ty) = table(2, "test")
    let grid = PatchGrid(image: pool.image, x: pool.x, y: pool.y, extents: Array(repeating: (100.0, 100.0), count: 6), side: 50)
    return PreparedData(
        pool: pool, poolX: px, poolLabels: py, test: test, testX: tx, testLabels: ty,
        classNames: ["neg", "pos"], grid: grid, features: .cheap, patchMicrons: 50, testDescription: "synthetic")
}

@Test func effectivenessIsDeterministic() throws {
    let data = syntheticData()
    var cfg = EffectivenessConfig()
    cfg.budget = 40; cfg.repeats = 2; cfg.evalStep = 20; cfg.perPatch = 10; cfg.subsetSize = 8; cfg.seed = 42
    cfg.head = .paper
    let a = Effectiveness.run(data: data, config: cfg, datasetName: "synthetic", positive: "pos")
    let b = Effectiveness.run(data: data, config: cfg, datasetName: "synthetic", positive: "pos")
    #expect(a.evaluatedN == [0, 20, 40])
    for (x, y) in zip(a.arms, b.arms) {
        #expect(x.accuracy.mean == y.accuracy.mean && x.balancedAccuracy.mean == y.balancedAccuracy.mean)
    }
    #expect(a.gain == b.gain)
    // Threads do not change results.
    cfg.threads = 2
    let c = Effectiveness.run(data: data, config: cfg, datasetName: "synthetic", positive: "pos")
    #expect(zip(a.arms, c.arms).allSatisfy { $0.accuracy.mean == $1.accuracy.mean })
    // A different seed gives different curves.
    cfg.seed = 43
    let d = Effectiveness.run(data: data, config: cfg, datasetName: "synthetic", positive: "pos")
    #expect(d.arms[0].accuracy.mean != a.arms[0].accuracy.mean)
}

@Test func annotatorSequencesFollowTheRules() {
    let data = syntheticData()
    var cfg = EffectivenessConfig()
    cfg.budget = 50; cfg.perPatch = 10; cfg.subsetSize = 8
    for arm in Arm.allCases {
        var visited = 0
        let s = Effectiveness.sequence(arm: arm, data: data, config: cfg, repeat: 0, patchesVisited: &visited)
        #expect(s.count == 50 && Set(s).count == 50, "\(arm)")
        // Every arm starts with the same 5 cells per class, interleaved.
        #expect(s.prefix(10).map { data.poolLabels[$0] } == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
        if arm == .active || arm == .sequential {
            // After the initial cells, whole runs of ≤ perPatch cells from one patch, in reading order.
            let rest = Array(s.dropFirst(10))
            var i = 0
            while i < rest.count {
                let p = data.grid.patchOfCell[rest[i]]
                let run = rest[i...].prefix { data.grid.patchOfCell[$0] == p }
                let order = data.grid.cellsOfPatch[p].filter { run.contains($0) }
                #expect(Array(run) == order)
                i += run.count
            }
        }
    }
}

@Test func subsetFirstLabelsWithinThePickedPatchesOnly() {
    // The exploratory rule changes which cells of a picked patch are labelled, not the patch rules: runs of at most
    // perPatch cells from one patch after the shared initial cells, and a different order from reading order.
    let data = syntheticData()
    var cfg = EffectivenessConfig()
    cfg.budget = 50; cfg.perPatch = 10; cfg.subsetSize = 8
    var visited = 0
    let reading = Effectiveness.sequence(arm: .active, data: data, config: cfg, repeat: 0, patchesVisited: &visited)
    cfg.withinPatch = .subsetFirst
    let first = Effectiveness.sequence(arm: .active, data: data, config: cfg, repeat: 0, patchesVisited: &visited)
    #expect(first.count == 50 && Set(first).count == 50)
    #expect(Array(first.prefix(10)) == Array(reading.prefix(10)))
    #expect(first != reading)
    // The first pick: S from the initial labels; the first patch's run starts with its cells of S in reading order.
    var kc = IncrementalKCenter(features: data.poolX)
    kc.addLabelled(Array(first.prefix(10)))
    let initial = Set(first.prefix(10))
    let s = Set(kc.select(count: cfg.subsetSize, candidate: (0..<data.pool.count).map { !initial.contains($0) }))
    let patch = data.grid.patchOfCell[first[10]]
    let expectedHead = data.grid.cellsOfPatch[patch].filter { s.contains($0) }
    #expect(!expectedHead.isEmpty)
    #expect(Array(first[10..<(10 + min(expectedHead.count, cfg.perPatch))]) == Array(expectedHead.prefix(cfg.perPatch)))
    let rest = Array(first.dropFirst(10))
    var i = 0
    while i < rest.count {
        let p = data.grid.patchOfCell[rest[i]]
        let run = rest[i...].prefix { data.grid.patchOfCell[$0] == p }
        #expect(run.count <= cfg.perPatch)
        i += run.count
    }
}

@Test func efficiencyCountsAddUp() {
    let data = syntheticData()
    var cfg = EfficiencyConfig()
    cfg.patches = 2; cfg.targetCells = 40
    cfg.policy = OnlinePolicy(retrainEvery: 5, minLabels: 10)
    cfg.galleryPage = 8
    for (workflow, policy) in [(LabellingWorkflow.perCell, EfficiencyPolicy.batch), (.perCell, .sequential), (.gallery, .batch)] {
        cfg.workflow = workflow; cfg.annotator = policy
        let r = Efficiency.run(data: data, config: cfg, datasetName: "synthetic", positive: "pos")
        #expect(r.patches.count == 2)
        for p in r.patches {
            #expect(p.cells >= 30 && p.cells <= 50)
            #expect(p.with.cellsLabelled == p.cells)
            #expect(p.with.manual == min(10, p.cells))
            #expect(p.without.actions == p.cells)
            if workflow == .gallery {
                // Every page but the last of each class is full.
                #expect(p.with.pageAccepts >= (p.cells - 10 + 7) / 8)
                #expect(p.with.acceptAll == 0 && p.with.acceptOne == 0)
            }
        }
    }
}

/// Arrow keys between crops, with the client's clamped keys, on literal cases of a 6-column page of 24 and 5.
@Test func galleryArrowKeysFollowTheClientsSelection() {
    #expect(Efficiency.gridMoves(from: 0, to: 0, columns: 6, count: 24) == 0)
    #expect(Efficiency.gridMoves(from: 0, to: 7, columns: 6, count: 24) == 2)  // down, right
    #expect(Efficiency.gridMoves(from: 0, to: 5, columns: 6, count: 24) == 2)  // down, left (wraps to the row above)
    #expect(Efficiency.gridMoves(from: 3, to: 0, columns: 6, count: 24) == 1)  // up clamps to the first crop
    #expect(Efficiency.gridMoves(from: 20, to: 23, columns: 6, count: 24) == 1)  // down clamps to the last crop
    #expect(Efficiency.gridMoves(from: 1, to: 22, columns: 6, count: 24) == 5)  // down ×4 (the last clamps to 23), left
    #expect(Efficiency.gridMoves(from: 0, to: 4, columns: 6, count: 5) == 1)  // down clamps to the last of 5
}

/// A model that is right about every cell: the gallery's modelled time is the manual start, the g key, one
/// n·V + M + K per page and one Tab, to the operator.
@Test func galleryTimeOfAModelThatIsAlwaysRight() {
    // 40 cells on a line, 20 of each class, far apart in feature space; the first 10 (reading order) hold both.
    let truth = (0..<40).map { $0 % 2 }
    let features = Matrix(rows: 40, columns: 2, values: truth.flatMap { c in [Float(c == 1 ? 10 : -10), 1] })
    var cfg = EfficiencyConfig()
    cfg.workflow = .gallery; cfg.galleryPage = 8; cfg.galleryColumns = 4
    cfg.policy = OnlinePolicy(retrainEvery: 5, minLabels: 10)
    var session = LearningSession(features: features, classCount: 2, head: .logistic, policy: cfg.policy, activeLearner: false, seed: 1)
    let counts = Efficiency.inGallery(cells: Array(0..<40), truth: truth, classCount: 2, config: cfg, session: &session)
    let klm = cfg.klm
    // 30 cells left after 10 manual: 15 of each class, pages of 8 + 7 for class 0, Tab, 8 + 7 for class 1.
    #expect(counts.manual == 10 && counts.correct == 0 && counts.arrowKeys == 0)
    #expect(counts.pageAccepts == 4 && counts.acceptedInPages == 30 && counts.galleryKeys == 2)
    let expected = 10 * klm.manual + 2 * klm.k + 2 * klm.galleryPage(8) + 2 * klm.galleryPage(7)
    #expect(abs(counts.seconds - expected) < 1e-9)
}

@Test func picksTimeOfAModelThatIsAlwaysRight() {
    // Two classes far apart in feature space; pages of 8 picks. The first page comes before any model: every crop a
    // hand label in the grid (V + M + K; the selection steps on, so no arrow key). Then the model is always right:
    // each page is looked at and accepted with one key.
    let truth = (0..<40).map { $0 % 2 }
    let features = Matrix(rows: 40, columns: 2, values: truth.flatMap { c in [Float(c == 1 ? 10 : -10), 1] })
    let pool = CellData(directory: "line", imageNames: ["a"], imagePaths: [], imageSizes: [(40, 1)], micronsPerPixel: 1)
    let data = PreparedData(
        pool: pool, poolX: features, poolLabels: truth, test: pool, testX: features, testLabels: truth, classNames: ["a", "b"],
        grid: PatchGrid(image: [], x: [], y: [], extents: [(40, 1)], side: 40), features: .cheap, patchMicrons: 40, testDescription: "")
    var cfg = EfficiencyConfig()
    cfg.workflow = .picks; cfg.galleryPage = 8; cfg.galleryColumns = 4
    cfg.policy = OnlinePolicy(retrainEvery: 5, minLabels: 8)
    var session = LearningSession(features: features, classCount: 2, head: .logistic, policy: cfg.policy, activeLearner: false, seed: 1)
    let counts = Efficiency.inPickPages(count: 24, data: data, config: cfg, seed: 1, session: &session)
    let klm = cfg.klm
    #expect(counts.manual == 8 && counts.correct == 0 && counts.arrowKeys == 0)
    #expect(counts.pageAccepts == 2 && counts.acceptedInPages == 16 && counts.cellsLabelled == 24)
    #expect(Set(session.labelledCells).count == 24)
    let expected = 8 * (klm.v + klm.m + klm.k) + 2 * klm.galleryPage(8)
    #expect(abs(counts.seconds - expected) < 1e-9)
}

@Test func pooledSetsKeepTheirCellsInMicrons() throws {
    let a = syntheticData(seed: 3)
    var b = syntheticData(seed: 4)
    // b as if scanned at 0.5 µm per pixel: the same tissue, twice the pixel coordinates.
    b.pool.micronsPerPixel = 0.5
    b.pool.x = b.pool.x.map { $0 * 2 }
    b.pool.y = b.pool.y.map { $0 * 2 }
    b.pool.imageSizes = b.pool.imageSizes.map { ($0.width * 2, $0.height * 2) }
    b.pool.directory = "/data/second"
    let pooled = try PreparedData.pooled([a, b], patchMicrons: 50, describedAs: "a + b")
    #expect(pooled.pool.count == a.pool.count + b.pool.count && pooled.test.count == a.test.count + b.test.count)
    #expect(pooled.poolLabels == a.poolLabels + b.poolLabels && pooled.testLabels == a.testLabels + b.testLabels)
    #expect(pooled.poolX.values == a.poolX.values + b.poolX.values && pooled.poolX.rows == pooled.pool.count)
    #expect(pooled.pool.micronsPerPixel == 1)
    let n = a.pool.count
    #expect(pooled.pool.x[n] == b.pool.x[0] * 0.5 && pooled.pool.y[n + 7] == b.pool.y[7] * 0.5)
    #expect(pooled.pool.image[n] == b.pool.image[0] + a.pool.imageNames.count)
    #expect(pooled.pool.imageSizes[a.pool.imageNames.count].width == 100)
    #expect(pooled.pool.imageNames[a.pool.imageNames.count] == "second/pool0.png")
    // The same 50 µm patches in both halves: a's 6 images and b's 6, 4 patches each.
    #expect(pooled.grid.patches.count == 2 * a.grid.patches.count)
    // Parts that disagree on classes are refused.
    var other = syntheticData(seed: 5)
    other.classNames = ["neg", "pos", "third"]
    #expect(throws: ExperimentError.self) { try PreparedData.pooled([a, other], patchMicrons: 50, describedAs: "x") }
}
