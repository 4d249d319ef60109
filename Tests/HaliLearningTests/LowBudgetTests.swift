import HaliMath
import Testing

@testable import HaliLearning

/// k-means, TypiClust and ProbCover against their definitions, computed by brute force in Double on small seeded
/// cases, and on blobs whose right answer is plain.
@Suite struct LowBudgetTests {
    static func squared(_ x: Matrix, _ i: Int, _ j: Int) -> Double { KCenterReference.squaredDistance(x, i, j) }

    /// Three tight, well separated blobs of `perBlob` points in 4-d: blob b is centred at 10·b on every axis.
    static func blobs(perBlob: Int, seed: UInt64) -> (Matrix, [Int]) {
        var rng = SeededRandom(seed: seed)
        var values: [Float] = []
        var blob: [Int] = []
        for b in 0..<3 {
            for _ in 0..<perBlob {
                for _ in 0..<4 { values.append(Float(10 * b) + 0.5 * rng.gaussian()) }
                blob.append(b)
            }
        }
        return (Matrix(rows: 3 * perBlob, columns: 4, values: values), blob)
    }

    @Test func kMeansEndsAtALloydFixedPoint() {
        for seed in UInt64(1)...6 {
            let x = randomPoints(60, 3, seed: seed)
            var rng = SeededRandom(seed: seed)
            let km = KMeans(x, k: 4, maxIterations: 100, rng: &rng)
            #expect(km.centres.rows == 4 && km.iterations < 100, "seed \(seed)")
            // Every row sits with its nearest centre (brute force), and every centre is its cluster's mean.
            for i in 0..<x.rows {
                let d = (0..<4).map { c in (0..<3).map { j in pow2(Double(x[i, j]) - Double(km.centres[c, j])) }.reduce(0, +) }
                #expect(d[Int(km.assignment[i])] <= d.min()! + 1e-4, "seed \(seed) row \(i)")
            }
            for c in 0..<4 {
                let rows = (0..<x.rows).filter { km.assignment[$0] == c }
                guard !rows.isEmpty else { continue }
                for j in 0..<3 {
                    let mean = rows.map { Double(x[$0, j]) }.reduce(0, +) / Double(rows.count)
                    #expect(abs(mean - Double(km.centres[c, j])) < 1e-4)
                }
            }
            // The same seed, the same clustering.
            var again = SeededRandom(seed: seed)
            #expect(KMeans(x, k: 4, maxIterations: 100, rng: &again).assignment == km.assignment)
        }
        let (b, truth) = Self.blobs(perBlob: 20, seed: 3)
        var rng = SeededRandom(seed: 1)
        let km = KMeans(b, k: 3, rng: &rng)
        // Blobs this far apart: the clusters are the blobs.
        for i in 0..<b.rows { #expect(km.assignment[i] == km.assignment[truth[i] * 20]) }
        #expect(Set(km.assignment).count == 3)
    }

    @Test func kMeansAssignsEveryRowToItsNearestCentreByBruteForce() {
        // More rows than one GEMM block (1,024), centres with exact ties (a repeated centre): ties go to the lower index.
        let x = randomPoints(2_500, 6, seed: 11)
        var centres = randomPoints(7, 6, seed: 12)
        for j in 0..<6 { centres[6, j] = centres[2, j] }
        let got = KMeans.nearestCentres(x, centres: centres)
        for i in 0..<x.rows {
            let d = (0..<7).map { c in (0..<6).map { j in pow2(Double(x[i, j]) - Double(centres[c, j])) }.reduce(0, +) }
            let best = d.indices.min { d[$0] < d[$1] || (d[$0] == d[$1] && $0 < $1) }!
            #expect(got[i] != 6, "row \(i) went to the repeated centre, not the lower index")
            #expect(d[Int(got[i])] <= d[best] + 1e-4, "row \(i)")
        }
        // The seeding pass: nearest[i] = min(previous, ‖x_i − x_c‖²), against the direct sum.
        var nearest = [Float](repeating: 5, count: x.rows)
        KMeans.lower(x, x.rowSquaredNorms(), toRow: 17, nearest: &nearest)
        for i in 0..<x.rows {
            let direct = min(5, Self.squared(x, i, 17))
            #expect(abs(Double(nearest[i]) - direct) < 1e-3 * max(1, direct), "row \(i)")
        }
        #expect(nearest[17] == 0)
    }

    @Test func kMeansWithAToleranceStopsAtItsRuleAndAssignsToNearest() {
        for seed in UInt64(1)...5 {
            let x = randomPoints(400, 4, seed: seed)
            var strictRng = SeededRandom(seed: seed), looseRng = SeededRandom(seed: seed)
            let strict = KMeans(x, k: 12, maxIterations: 300, rng: &strictRng)
            let loose = KMeans(x, k: 12, maxIterations: 300, tolerance: 1e-2, rng: &looseRng)
            // The same seeding, so the tolerance can only stop Lloyd earlier.
            #expect(loose.iterations <= strict.iterations, "seed \(seed)")
            for i in 0..<x.rows {
                let d = (0..<12).map { c in (0..<4).map { j in pow2(Double(x[i, j]) - Double(loose.centres[c, j])) }.reduce(0, +) }
                #expect(d[Int(loose.assignment[i])] <= d.min()! + 1e-4, "seed \(seed) row \(i)")
            }
        }
        // A huge tolerance stops after the first update.
        let x = randomPoints(300, 3, seed: 9)
        var rng = SeededRandom(seed: 9)
        #expect(KMeans(x, k: 5, tolerance: 1e9, rng: &rng).iterations <= 2)
    }

    @Test func kMeansStartedAtAFixedPointStaysThere() {
        for seed in UInt64(1)...4 {
            let x = randomPoints(200, 3, seed: seed)
            var rng = SeededRandom(seed: seed)
            let fixed = KMeans(x, k: 6, maxIterations: 300, rng: &rng)
            var other = SeededRandom(seed: seed &+ 100)
            let again = KMeans(x, k: 6, maxIterations: 300, initialCentres: fixed.centres, rng: &other)
            #expect(again.iterations <= 2, "seed \(seed)")  // the first update, and the pass that sees nothing move
            #expect(again.assignment == fixed.assignment && again.centres == fixed.centres, "seed \(seed)")
            // Fewer centres than k: they come first, k-means++ adds the rest, and Lloyd runs to a fixed point.
            let grown = KMeans(x, k: 9, maxIterations: 300, initialCentres: fixed.centres, rng: &other)
            #expect(grown.centres.rows == 9)
            for c in 0..<9 {
                let rows = (0..<x.rows).filter { grown.assignment[$0] == c }
                guard !rows.isEmpty else { continue }
                for j in 0..<3 {
                    let mean = rows.map { Double(x[$0, j]) }.reduce(0, +) / Double(rows.count)
                    #expect(abs(mean - Double(grown.centres[c, j])) < 1e-4, "seed \(seed) centre \(c)")
                }
            }
        }
    }

    /// TypiClust's rule, written out: clusters of more than 5 cells by (labelled count, −size); round robin; in each the
    /// unlabelled cell with the least mean squared distance to its K = min(20, n/2) nearest unlabelled mates.
    static func typiclustReference(_ x: Matrix, rows: [Int], labelledCount: Int, clusters: [Int32], count: Int) -> [Int] {
        let ids = Array(Set(clusters)).sorted()
        func size(_ c: Int32) -> Int { clusters.filter { $0 == c }.count }
        func labelled(_ c: Int32) -> Int { clusters.prefix(labelledCount).filter { $0 == c }.count }
        let order = ids.filter { size($0) > 5 }.sorted { (labelled($0), -size($0), $0) < (labelled($1), -size($1), $1) }
        var taken = Set<Int>()
        var picks: [Int] = []
        var i = 0
        while picks.count < count && i < 10 * count + 10 {
            let c = order[i % order.count]
            i += 1
            let cells = rows.indices.filter { $0 >= labelledCount && clusters[$0] == c && !taken.contains(rows[$0]) }.map { rows[$0] }
            guard !cells.isEmpty else { continue }
            let k = min(20, cells.count / 2)
            var best = cells[0]
            var bestMean = Double.infinity
            if k > 0 {
                for a in cells {
                    let d = cells.filter { $0 != a }.map { squared(x, a, $0) }.sorted().prefix(k)
                    let mean = d.reduce(0, +) / Double(k)
                    if mean < bestMean { bestMean = mean; best = a }
                }
            }
            picks.append(best)
            taken.insert(best)
        }
        return picks
    }

    @Test func typiclustPicksFollowTheRule() {
        for seed in UInt64(1)...8 {
            let n = 70
            let x = randomPoints(n, 5, seed: seed)
            var rng = SeededRandom(seed: seed &* 31)
            let labelled = rng.sample(n, 4)
            let rest = (0..<n).filter { !labelled.contains($0) }
            let rows = labelled + rest
            // Arbitrary cluster labels exercise the rule itself: some clusters too small, some labelled, some large.
            let clusters = rows.map { _ in Int32(rng.below(6)) }
            let picks = TypiClust.pick(features: x, rows: rows, labelledCount: 4, clusters: clusters, count: 9)
            let expected = Self.typiclustReference(x, rows: rows, labelledCount: 4, clusters: clusters, count: 9)
            #expect(picks == expected, "seed \(seed)")
            #expect(Set(picks).isDisjoint(with: labelled) && Set(picks).count == picks.count)
        }
        // Three blobs, nothing labelled: one pick per blob, each near its blob's centre.
        let (b, truth) = Self.blobs(perBlob: 30, seed: 5)
        var rng = SeededRandom(seed: 2)
        let picks = TypiClust.select(features: b, labelled: [], candidates: Array(0..<b.rows), count: 3, rng: &rng)
        #expect(Set(picks.map { truth[$0] }) == [0, 1, 2])
        // With a blob labelled, the next pick goes to a blob without labels.
        let next = TypiClust.select(features: b, labelled: [0, 1], candidates: Array(0..<b.rows), count: 2, rng: &rng)
        #expect(next.allSatisfy { truth[$0] != 0 } && Set(next.map { truth[$0] }).count == 2)
        // Warm-started from the last pick's centres, page after page: distinct unlabelled picks (the first page one per
        // blob), and the centres carried over grow with k = |L| + b.
        var centres: Matrix?
        var labelled: [Int] = []
        for page in 0..<3 {
            let picks = TypiClust.select(
                features: b, labelled: labelled, candidates: Array(0..<b.rows), count: 3, rng: &rng, warmStart: &centres)
            #expect(picks.count == 3 && Set(picks).count == 3 && Set(picks).isDisjoint(with: labelled), "page \(page)")
            if page == 0 { #expect(Set(picks.map { truth[$0] }) == [0, 1, 2]) }
            #expect(centres?.rows == labelled.count + 3, "page \(page)")
            labelled += picks
        }
    }

    @Test func probCoverRadiusIsThePurityQuantile() {
        for seed in UInt64(1)...5 {
            let x = randomPoints(80, 3, seed: seed)
            var rng = SeededRandom(seed: seed)
            let clusters = KMeans(x, k: 3, rng: &rng).assignment
            let delta = ProbCover.radius(features: x, clusters: clusters, purity: 0.9)
            // Brute force: a ball is pure while δ ≤ the distance to the nearest point of another cluster.
            let other = (0..<x.rows).map { i in
                (0..<x.rows).filter { clusters[$0] != clusters[i] }.map { Self.squared(x, i, $0).squareRoot() }.min()!
            }
            let expected = other.sorted(by: >)[Int((0.9 * 80).rounded(.up)) - 1]
            #expect(abs(Double(delta) - expected) <= 1e-3 * expected, "seed \(seed)")
            func purity(_ r: Double) -> Double { Double(other.filter { $0 >= r }.count) / 80 }
            #expect(purity(expected) >= 0.9 && purity(expected * 1.01) < 0.9 + 1e-9 || other.filter { $0 > expected }.isEmpty)
        }
    }

    /// Greedy coverage written out over an explicit adjacency in Double: the most uncovered cells in a ball, ties → lower
    /// index, until nothing uncovered is in reach.
    static func probCoverReference(_ x: Matrix, delta: Double, labelled: [Int], count: Int) -> [Int] {
        let n = x.rows
        let near = (0..<n).map { i in (0..<n).filter { Self.squared(x, i, $0).squareRoot() < delta } }
        var covered = [Bool](repeating: false, count: n)
        for l in labelled { for j in near[l] { covered[j] = true } }
        var picks: [Int] = []
        while picks.count < count {
            let degrees = (0..<n).map { i in labelled.contains(i) ? 0 : near[i].filter { !covered[$0] }.count }
            guard let best = degrees.indices.max(by: { degrees[$0] != degrees[$1] ? degrees[$0] < degrees[$1] : $0 > $1 }),
                degrees[best] > 0
            else { break }
            picks.append(best)
            for j in near[best] { covered[j] = true }
        }
        return picks
    }

    @Test func probCoverPicksAreTheGreedyCover() throws {
        for seed in UInt64(1)...8 {
            let n = 60
            let x = randomPoints(n, 3, seed: seed)
            // δ halfway between two neighbouring pairwise distances near the 15th percentile: no pair sits on the edge.
            var all: [Double] = []
            for i in 0..<n { for j in (i + 1)..<n { all.append(Self.squared(x, i, j).squareRoot()) } }
            all.sort()
            let q = all.count * 15 / 100
            let delta = (all[q] + all[q + 1]) / 2
            var rng = SeededRandom(seed: seed)
            let labelled = rng.sample(n, 3)
            var cover = try #require(ProbCover(features: x, sample: Array(0..<n), delta: Float(delta)))
            cover.addLabelled(labelled, features: x)
            let picks = cover.select(count: 12)
            #expect(picks == Self.probCoverReference(x, delta: delta, labelled: labelled, count: 12), "seed \(seed)")
            // Labels cover what their balls hold; asking twice gives the same picks (select does not consume).
            #expect(cover.select(count: 12) == picks)
            let coveredBefore = cover.coverage
            cover.addLabelled(Array(picks.prefix(2)), features: x)
            #expect(cover.coverage > coveredBefore)
        }
        // A graph over the edge limit is refused rather than built.
        #expect(ProbCover(features: randomPoints(50, 2, seed: 1), sample: Array(0..<50), delta: 100, maxEdges: 1000) == nil)
    }

    @Test func probCoverOnBlobsPicksOnePerBlobAndThenStops() throws {
        let (b, truth) = Self.blobs(perBlob: 25, seed: 9)
        var rng = SeededRandom(seed: 4)
        let delta = ProbCover.radius(features: b, clusters: KMeans(b, k: 3, rng: &rng).assignment)
        let cover = try #require(ProbCover(features: b, sample: Array(0..<b.rows), delta: delta))
        // Pure balls as wide as the data allows hold a blob each: three picks cover everything.
        let picks = cover.select(count: 10)
        #expect(picks.count == 3)
        #expect(Set(picks.map { truth[$0] }) == [0, 1, 2])
    }
}

@inline(__always) private func pow2(_ v: Double) -> Double { v * v }

/// The cell picker over every strategy: distinct, unlabelled, allowed cells; the fallbacks before a model; the switch
/// from typicality to margin; margin against its definition.
@Suite struct CellPickerTests {
    @Test func aRebuiltPickerStartsFromTheOldCentres() {
        let x = randomPoints(300, 4, seed: 21)
        var old = CellPicker(features: x, strategy: .typiclust, classCount: 2, seed: 1)
        old.addLabelled(Array(0..<30))
        let first = old.pick(count: 8)
        #expect(first.count == 8 && old.warmCentres?.rows == 38)
        // An undo took labels back: a new picker over the same features, the labels that remain, the old centres.
        var rebuilt = CellPicker(features: x, strategy: .typiclust, classCount: 2, seed: 1)
        #expect(rebuilt.warmCentres == nil)
        rebuilt.adoptLabelIndependentState(of: old)
        #expect(rebuilt.warmCentres == old.warmCentres)
        rebuilt.addLabelled(Array(0..<20))
        let next = rebuilt.pick(count: 8)
        #expect(next.count == 8 && Set(next).isDisjoint(with: 0..<20) && rebuilt.warmCentres?.rows == 28)
        // Features of another shape are not adopted from.
        var other = CellPicker(features: randomPoints(50, 4, seed: 2), strategy: .typiclust, classCount: 2, seed: 1)
        other.adoptLabelIndependentState(of: old)
        #expect(other.warmCentres == nil)
    }

    @Test func everyStrategyPicksDistinctAllowedUnlabelledCells() {
        let x = randomPoints(300, 6, seed: 11)
        let allowed = (0..<300).map { $0 % 3 != 0 }
        let probabilities: ([Int]) -> Matrix = { rows in
            Matrix(
                rows: rows.count, columns: 2,
                values: rows.flatMap { r -> [Float] in
                    let p = Float(r % 50) / 50
                    return [p, 1 - p]
                })
        }
        for strategy in CellStrategy.allCases {
            var picker = CellPicker(features: x, strategy: strategy, classCount: 2, seed: 3)
            picker.addLabelled([1, 2, 4, 5])
            let picks = picker.pick(count: 24, candidate: allowed, probabilities: probabilities)
            #expect(picks.count == 24, "\(strategy)")
            #expect(Set(picks).count == 24 && picks.allSatisfy { allowed[$0] && ![1, 2, 4, 5].contains($0) }, "\(strategy)")
            var again = CellPicker(features: x, strategy: strategy, classCount: 2, seed: 3)
            again.addLabelled([1, 2, 4, 5])
            #expect(again.pick(count: 24, candidate: allowed, probabilities: probabilities) == picks, "\(strategy) is not deterministic")
        }
    }

    @Test func modelStrategiesWaitForAModelAndTheSwitchWaitsForLabels() {
        let x = randomPoints(200, 4, seed: 5)
        var margin = CellPicker(features: x, strategy: .margin, classCount: 2, seed: 1)
        var typical = CellPicker(features: x, strategy: .typiclust, classCount: 2, seed: 1)
        #expect(margin.effectiveStrategy(hasModel: false) == .typiclust)
        #expect(margin.pick(count: 10) == typical.pick(count: 10))
        // Margin: the cells whose two probabilities are closest, by brute force on the given probabilities.
        let p: ([Int]) -> Matrix = { rows in
            Matrix(rows: rows.count, columns: 2, values: rows.flatMap { r -> [Float] in [Float(r) / 200, 1 - Float(r) / 200] })
        }
        func gap(_ r: Int) -> Float { abs(Float(r) / 100 - 1) }  // |p₀ − p₁| for p₀ = r / 200
        let expected = (0..<200).sorted { a, b in gap(a) != gap(b) ? gap(a) < gap(b) : a < b }
        #expect(margin.pick(count: 5, probabilities: p) == Array(expected.prefix(5)))
        var switching = CellPicker(features: x, strategy: .typiclustThenMargin, classCount: 2, seed: 1)
        switching.switchAtLabels = 20
        switching.addLabelled(Array(0..<19))
        #expect(switching.effectiveStrategy(hasModel: true) == .typiclust)
        switching.addLabelled([150])
        #expect(switching.effectiveStrategy(hasModel: true) == .margin)
        #expect(switching.effectiveStrategy(hasModel: false) == .typiclust)
    }

    @Test func probCoverFillsUpWithCoresetOnceEverythingIsCovered() {
        let (b, _) = LowBudgetTests.blobs(perBlob: 20, seed: 2)
        var picker = CellPicker(features: b, strategy: .probcover, classCount: 3, seed: 1)
        // Three blobs are covered by three picks; the other five come from k-center, all distinct.
        let picks = picker.pick(count: 8)
        #expect(picks.count == 8 && Set(picks).count == 8)
    }
}

extension CellPickerTests {
    /// Scoring in blocks with a short sorted list picks what sorting every candidate does, across block edges and ties.
    @Test func blockwiseUncertaintyEqualsTheFullSort() {
        let n = 40_000
        let x = Matrix(rows: n, columns: 1, repeating: 0)
        let picker = CellPicker(features: x, strategy: .margin, classCount: 3, seed: 1)
        // Three classes; many ties (probabilities on a coarse grid), the most uncertain spread over several blocks.
        let probabilities: ([Int]) -> Matrix = { rows in
            Matrix(
                rows: rows.count, columns: 3,
                values: rows.flatMap { r -> [Float] in
                    let a = Float((r * 7919) % 97) / 97
                    return [a * 0.5, 0.5 - a * 0.25, 0.5 - a * 0.25]
                })
        }
        // Most cells candidates (every row scored at once) and few (candidates scored in blocks).
        for candidates in [(0..<n).filter { $0 % 5 != 0 }, (0..<n).filter { $0 % 5 == 0 }] {
            for entropy in [false, true] {
                let all = probabilities(candidates)
                let scores = entropy ? Uncertainty.entropy(all) : Uncertainty.negativeMargin(all)
                let expected = Uncertainty.top(37, scores: scores, candidates: candidates)
                #expect(picker.mostUncertain(37, candidates: candidates, entropy: entropy, probabilities: probabilities) == expected)
            }
        }
    }
}
