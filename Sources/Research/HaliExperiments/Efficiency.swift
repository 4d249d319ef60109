// The paper's efficiency experiment with a simulated annotator and a keystroke-level model (KLM).
//
// Patches: square windows of ~200 cells (150–250; side from each image's cell density), the `patches` most
// class-balanced ones that share no cell
// (the paper's annotators looked for a patch of ~200 cells "equally distributed over the classes").
// Each patch is labelled completely twice, from scratch: without suggestions (every cell a manual label, in reading
// order) and with suggestions (a fresh model per patch, first fitted at `policy.minLabels` labels, refitted every
// `policy.retrainEvery` new labels; suggestions shown for every unlabelled cell of the view).
// Policies with suggestions:
//  * batch (default): the annotator labels manually in reading order until suggestions appear; then, while any
//    suggestion in the view is wrong, corrects the first wrong one in reading order (corrections are labels and
//    trigger refits); when all remaining suggestions are right, accepts them all in one accept-all.
//  * sequential: cell by cell in reading order: accept a right suggestion, correct a wrong one, label manually
//    where no suggestion is shown.
// Workflow `gallery` (the terminal client's review gallery, `g`): manual labels in reading order until suggestions
// appear; then pages of up to `galleryPage` crops of one suggested class, least confident first, in a grid of
// `galleryColumns`: the annotator looks at every crop, moves the selection with arrow keys to each wrong one and
// presses its class key (the selection then steps to the next crop, as the client does), and accepts the rest of the
// page with one key. Every crop of a page becomes a label (corrected or accepted); the model refits as labels arrive
// and the next page is ranked by the new model. The annotator stays on a class while it has suggestions, then Tabs
// to the next class that has some.
// Workflow `picks` (the terminal client's `p`, HALI's default since 0.3.0): instead of a patch's cells, as many cells
// as the patch holds, in pages of `galleryPage` picked anywhere in the pool by `pickStrategy` (margin: the cells the
// current model is least sure of; TypiClust before the first model). A crop with a suggestion that is right costs its
// look (V) and is accepted with the page (M + K once); a wrong one is flipped (M, arrow keys, class key). Before
// suggestions appear every crop is labelled by hand in the grid: V + M + arrow keys + class key, no pointing. The
// model refits as labels arrive (every `retrainEvery` from `minLabels`), and the next page is picked by the new one.
// The cells labelled are the learner's, not a patch's: hard cells by design, so a fair test of whether the picks
// cost more time than they save.

import Foundation
public import HaliLearning
import HaliMath

/// Operator times from Card, Moran & Newell, "The keystroke-level model for user performance time with interactive
/// systems", Commun. ACM 23(7):396–410, 1980 (K, P, M; a mouse-button press counts as a keystroke K there), and the
/// Model Human Processor's eye-movement time (Card, Moran & Newell, The Psychology of Human-Computer Interaction, 1983,
/// ch. 2: 230 ms, range 70–700) for checking one suggestion by eye (V).
public struct KeystrokeModel: Sendable, Codable {
    /// Keystroke or button press, average non-secretary typist (CMN 1980 table 2: 0.28 s).
    public var k = 0.28
    /// Point with the mouse to a target on the display (1.1 s).
    public var p = 1.1
    /// Mental preparation (1.35 s).
    public var m = 1.35
    /// Eye movement + fixation to check one suggestion (0.23 s).
    public var v = 0.23
    public init() {}

    /// Manual label: decide the class (M), point at the cell (P), click (K), press the class key (K).
    public var manual: Double { m + p + 2 * k }
    /// Accept one right suggestion: check it (V), point (P), click (K), press accept (K).
    public var acceptOne: Double { v + p + 2 * k }
    /// Correct a wrong suggestion: check it (V), decide (M), point (P), click (K), press the class key (K).
    public var correct: Double { v + m + p + 2 * k }
    /// Accept all n suggestions in view: check each (n·V), decide (M), press accept-all (K).
    public func acceptAll(_ n: Int) -> Double { Double(n) * v + m + k }

    /// Gallery: flip a wrong crop: decide its class (M), `moves` arrow keys to select it (K each), its class key (K).
    /// The crop was already looked at in the page's scan (`galleryPage`).
    public func galleryFlip(moves: Int) -> Double { m + Double(moves + 1) * k }
    /// Gallery: one page of n crops: look at each (n·V), decide the rest are right (M), press Enter (K).
    public func galleryPage(_ n: Int) -> Double { Double(n) * v + m + k }
}

/// The per-cell annotator's policy with suggestions (`--annotator`).
public enum EfficiencyPolicy: String, Sendable, CaseIterable, Codable {
    case batch
    case sequential
}

/// Where the annotator meets the suggestions: in the patch, cell by cell (with an `EfficiencyPolicy`), or in the
/// review gallery's pages of one class.
public enum LabellingWorkflow: String, Sendable, CaseIterable, Codable {
    case perCell = "per-cell"
    case gallery
    /// The learner's cell picks (the terminal client's `p`): as many cells as a patch holds, in pages picked anywhere.
    case picks
}

public struct ActionCounts: Sendable, Codable, Equatable {
    public var manual = 0
    public var acceptOne = 0
    public var acceptAll = 0
    public var acceptedInAll = 0
    public var correct = 0
    /// Gallery: pages accepted, the crops they accepted unchanged, arrow keys to reach wrong crops, and key presses to
    /// open the gallery or change its class (g, Tab).
    public var pageAccepts = 0
    public var acceptedInPages = 0
    public var arrowKeys = 0
    public var galleryKeys = 0
    public var seconds = 0.0
    /// Decisions: labels, corrections and accepts (arrow keys and g/Tab are not counted as actions).
    public var actions: Int { manual + acceptOne + acceptAll + correct + pageAccepts }
    /// Cells each decision covered, summed: equals the cells labelled.
    public var cellsLabelled: Int { manual + acceptOne + acceptedInAll + correct + acceptedInPages }
}

public struct PatchEfficiency: Sendable, Codable {
    public var patch: Int
    public var image: String
    public var cells: Int
    public var positives: Int
    public var without: ActionCounts
    public var with: ActionCounts
    public var cellsPerActionWithout: Double
    public var cellsPerActionWith: Double
    public var cellsPerSecondWithout: Double
    public var cellsPerSecondWith: Double
    /// (cells/s with) / (cells/s without).
    public var ratio: Double
    public var modelVersions: Int
    public var lastValidationAccuracy: Double?
}

public struct EfficiencyConfig: Sendable, Codable {
    public var patches = 5
    public var policy = OnlinePolicy()
    public var head: HeadKind = .logistic
    public var annotator: EfficiencyPolicy = .batch
    public var workflow: LabellingWorkflow = .perCell
    /// Gallery: crops per page and grid columns (the client's default page is 24; 6 × 4 fits a 1,920 × 1,080 window).
    public var galleryPage = 24
    public var galleryColumns = 6
    /// Picks workflow: the learner's strategy (the daemon's default, margin).
    public var pickStrategy: CellStrategy = .margin
    public var klm = KeystrokeModel()
    public var seed: UInt64 = 1
    /// Cells per patch the annotator looks for (the paper: ~200).
    public var targetCells = 200
    public init() {}
}

public struct EfficiencyResult: Sendable, Codable {
    public var dataset: String
    public var positive: String?
    public var features: String
    public var config: EfficiencyConfig
    public var patches: [PatchEfficiency]
    public var cellsPerActionWithout: Double
    public var cellsPerActionWith: Double
    public var cellsPerSecondWithout: Double
    public var cellsPerSecondWith: Double
    /// Overall (total cells / total modelled time) with ÷ without.
    public var ratio: Double
    public var actionRatio: Double
    public var meanPatchRatio: Double
}

public enum Efficiency {
    /// ~`targetCells`-cell square windows of the pool (the paper: "a patch … that contains roughly 200 objects that are
    /// equally distributed over the classes"). Per image, the side is chosen from its cell density so that a window
    /// holds ~targetCells cells (at most the image); windows slide by a quarter side; those with 75–125 % of the target
    /// (else the closest) are ranked by class balance (minority fraction, desc; then closeness to the target) and the
    /// best `count` that share no cell are taken. Returns (image, cells in reading order) per patch.
    public static func choosePatches(_ data: PreparedData, count: Int, targetCells: Int = 200, rowHeight: Double = 12)
        -> [(image: Int, cells: [Int])]
    {
        let mpp = data.pool.micronsPerPixel
        var windows: [(image: Int, cells: [Int], balance: Double, off: Int)] = []
        let byImage = Dictionary(grouping: 0..<data.pool.count, by: { data.pool.image[$0] })
        for (im, cells) in byImage.sorted(by: { $0.key < $1.key }) {
            let w = Double(data.pool.imageSizes[im].width) * mpp, h = Double(data.pool.imageSizes[im].height) * mpp
            let density = Double(cells.count) / max(w * h, 1)
            let side = min(max(w, h), (Double(targetCells) / max(density, 1e-9)).squareRoot())
            let sx = min(side, w), sy = min(side, h)
            func starts(_ extent: Double, _ s: Double) -> [Double] {
                var v = Array(stride(from: 0.0, through: max(extent - s, 0), by: max(s / 4, 1)))
                if let last = v.last, last < extent - s { v.append(extent - s) }
                return v
            }
            for y0 in starts(h, sy) {
                for x0 in starts(w, sx) {
                    let inside = cells.filter {
                        let x = data.pool.x[$0] * mpp, y = data.pool.y[$0] * mpp
                        return x >= x0 && x < x0 + sx && y >= y0 && y < y0 + sy
                    }
                    guard !inside.isEmpty else { continue }
                    var counts = [Int](repeating: 0, count: data.classCount)
                    for c in inside { counts[data.poolLabels[c]] += 1 }
                    windows.append((im, inside, Double(counts.min() ?? 0) / Double(inside.count), abs(inside.count - targetCells)))
                }
            }
        }
        let tolerance = targetCells / 4
        var pool = windows.filter { $0.off <= tolerance }
        if pool.count < count { pool = windows }
        pool.sort { $0.balance != $1.balance ? $0.balance > $1.balance : $0.off < $1.off }
        var used = Set<Int>()
        var chosen: [(image: Int, cells: [Int])] = []
        for w in pool where chosen.count < count && w.cells.allSatisfy({ !used.contains($0) }) {
            used.formUnion(w.cells)
            let ordered = w.cells.sorted { a, b in
                let ya = data.pool.y[a] * mpp, yb = data.pool.y[b] * mpp
                let ra = Int(ya / rowHeight), rb = Int(yb / rowHeight)
                return ra != rb ? ra < rb : (data.pool.x[a] != data.pool.x[b] ? data.pool.x[a] < data.pool.x[b] : a < b)
            }
            chosen.append((w.image, ordered))
        }
        return chosen
    }

    /// Simulates labelling every cell of `cells` (reading order) with suggestions; returns the counts.
    public static func withSuggestions(data: PreparedData, cells: [Int], config: EfficiencyConfig, seed: UInt64)
        -> (ActionCounts, LearningSession)
    {
        var session = LearningSession(
            features: data.poolX, classCount: data.classCount, head: config.head,
            policy: config.policy, activeLearner: false, seed: seed)
        if config.workflow == .gallery {
            let counts = inGallery(cells: cells, truth: data.poolLabels, classCount: data.classCount, config: config, session: &session)
            return (counts, session)
        }
        if config.workflow == .picks {
            let counts = inPickPages(count: cells.count, data: data, config: config, seed: seed, session: &session)
            return (counts, session)
        }
        var counts = ActionCounts()
        let klm = config.klm
        var remaining = cells
        let truth = { (c: Int) in data.poolLabels[c] }
        switch config.annotator {
        case .batch:
            while !remaining.isEmpty {
                if let sugg = session.suggestions(for: remaining) {
                    if let wrong = remaining.indices.first(where: { sugg[$0].label != truth(remaining[$0]) }) {
                        let c = remaining.remove(at: wrong)
                        counts.correct += 1; counts.seconds += klm.correct
                        session.addLabel(cell: c, label: truth(c))
                    } else {
                        counts.acceptAll += 1; counts.acceptedInAll += remaining.count
                        counts.seconds += klm.acceptAll(remaining.count)
                        remaining = []
                    }
                } else {
                    let c = remaining.removeFirst()
                    counts.manual += 1; counts.seconds += klm.manual
                    session.addLabel(cell: c, label: truth(c))
                }
            }
        case .sequential:
            for c in cells {
                if let s = session.suggestions(for: [c]) {
                    if s[0].label == truth(c) {
                        counts.acceptOne += 1; counts.seconds += klm.acceptOne
                    } else {
                        counts.correct += 1; counts.seconds += klm.correct
                    }
                } else {
                    counts.manual += 1; counts.seconds += klm.manual
                }
                session.addLabel(cell: c, label: truth(c))
            }
        }
        return (counts, session)
    }

    /// The gallery workflow (see the top of this file) over `cells`; `truth[c]` is cell c's class.
    static func inGallery(cells: [Int], truth: [Int], classCount: Int, config: EfficiencyConfig, session: inout LearningSession)
        -> ActionCounts
    {
        let klm = config.klm
        let pageSize = max(1, config.galleryPage), columns = max(1, config.galleryColumns)
        var counts = ActionCounts()
        var remaining = cells
        var shownClass: Int?  // nil until the gallery is opened
        while !remaining.isEmpty {
            guard let suggestions = session.suggestions(for: remaining) else {
                let c = remaining.removeFirst()
                counts.manual += 1; counts.seconds += klm.manual
                session.addLabel(cell: c, label: truth[c])
                continue
            }
            var byClass = [[(cell: Int, confidence: Float)]](repeating: [], count: classCount)
            for (i, p) in suggestions.enumerated() { byClass[p.label].append((remaining[i], p.confidence)) }
            // g opens the gallery on the first class; Tab steps through the classes in order.
            let from = shownClass ?? 0
            var keys = shownClass == nil ? 1 : 0
            var cls = from
            while byClass[cls].isEmpty {
                cls = (cls + 1) % classCount
                keys += 1
            }
            shownClass = cls
            counts.galleryKeys += keys; counts.seconds += Double(keys) * klm.k
            let page = byClass[cls].sorted { $0.confidence != $1.confidence ? $0.confidence < $1.confidence : $0.cell < $1.cell }
                .prefix(pageSize).map(\.cell)
            counts.seconds += klm.galleryPage(page.count)
            var selected = 0
            for (i, c) in page.enumerated() where truth[c] != cls {
                let moves = gridMoves(from: selected, to: i, columns: columns, count: page.count)
                counts.correct += 1; counts.arrowKeys += moves
                counts.seconds += klm.galleryFlip(moves: moves)
                selected = min(i + 1, page.count - 1)
            }
            counts.pageAccepts += 1
            counts.acceptedInPages += page.filter { truth[$0] == cls }.count
            let onPage = Set(page)
            remaining.removeAll { onPage.contains($0) }
            for c in page { session.addLabel(cell: c, label: truth[c]) }
        }
        return counts
    }

    /// The picks workflow (see the top of this file): `count` cells in pages of the learner's picks.
    static func inPickPages(count: Int, data: PreparedData, config: EfficiencyConfig, seed: UInt64, session: inout LearningSession)
        -> ActionCounts
    {
        let klm = config.klm
        let pageSize = max(1, config.galleryPage), columns = max(1, config.galleryColumns)
        var counts = ActionCounts()
        var picker = CellPicker(features: data.poolX, strategy: config.pickStrategy, classCount: data.classCount, seed: seed)
        var labelled = 0
        while labelled < count {
            let head = session.head
            let probabilities: (([Int]) -> Matrix)? =
                session.showsSuggestions ? { rows in head.probabilities(features: data.poolX, rows: rows) } : nil
            let page = picker.pick(count: min(pageSize, count - labelled), probabilities: probabilities)
            if page.isEmpty { break }
            let suggestions = session.suggestions(for: page)
            var selected = 0
            for (i, c) in page.enumerated() {
                let truth = data.poolLabels[c]
                let moves = gridMoves(from: selected, to: i, columns: columns, count: page.count)
                if let suggestions, suggestions[i].label == truth {
                    counts.seconds += klm.v
                    counts.acceptedInPages += 1
                    continue
                }
                // A wrong suggestion, or none: look, decide, move to it, press its class key; the selection steps on.
                counts.seconds += klm.v + klm.galleryFlip(moves: moves)
                counts.arrowKeys += moves
                if suggestions == nil { counts.manual += 1 } else { counts.correct += 1 }
                selected = min(i + 1, page.count - 1)
            }
            if suggestions != nil {
                counts.pageAccepts += 1
                counts.seconds += klm.m + klm.k
            }
            picker.addLabelled(page)
            for c in page { session.addLabel(cell: c, label: data.poolLabels[c]) }
            labelled += page.count
        }
        return counts
    }

    /// Fewest arrow keys from crop `a` to crop `b` of a page of `count` crops in `columns` columns, with the terminal
    /// client's keys: left and right step one crop (across row ends), up and down one row, each clamped to the page
    /// (so up from the first row goes to crop 0). Breadth-first search over the page: O(count).
    static func gridMoves(from a: Int, to b: Int, columns: Int, count: Int) -> Int {
        guard a != b, count > 0 else { return 0 }
        var distance = [Int](repeating: -1, count: count)
        distance[a] = 0
        var queue = [a]
        var head = 0
        while head < queue.count {
            let s = queue[head]
            head += 1
            for next in [max(0, s - 1), min(count - 1, s + 1), max(0, s - columns), min(count - 1, s + columns)] where distance[next] < 0 {
                distance[next] = distance[s] + 1
                if next == b { return distance[next] }
                queue.append(next)
            }
        }
        return distance[b]
    }

    public static func run(data: PreparedData, config: EfficiencyConfig, datasetName: String, positive: String?) -> EfficiencyResult {
        let chosen = choosePatches(data, count: config.patches, targetCells: config.targetCells)
        var rows: [PatchEfficiency] = []
        for (i, patch) in chosen.enumerated() {
            let cells = patch.cells
            var without = ActionCounts()
            without.manual = cells.count
            without.seconds = Double(cells.count) * config.klm.manual
            let (with, session) = withSuggestions(
                data: data, cells: cells, config: config,
                seed: config.seed &+ UInt64(i) &* 7919)
            let n = Double(cells.count)
            rows.append(
                PatchEfficiency(
                    // Picks: the cells labelled are the learner's, from anywhere in the pool, not the patch's.
                    patch: i, image: config.workflow == .picks ? "(picks)" : data.pool.imageNames[patch.image], cells: cells.count,
                    positives: config.workflow == .picks
                        ? session.labels.filter { $0 == 1 }.count : cells.filter { data.poolLabels[$0] == 1 }.count,
                    without: without, with: with,
                    cellsPerActionWithout: n / Double(without.actions), cellsPerActionWith: n / Double(with.actions),
                    cellsPerSecondWithout: n / without.seconds, cellsPerSecondWith: n / with.seconds,
                    ratio: without.seconds / with.seconds, modelVersions: session.versions.count,
                    lastValidationAccuracy: session.versions.last?.report.validationAccuracy))
        }
        let cells = Double(rows.map(\.cells).reduce(0, +))
        let aw = Double(rows.map(\.without.actions).reduce(0, +)), a = Double(rows.map(\.with.actions).reduce(0, +))
        let sw = rows.map(\.without.seconds).reduce(0, +), s = rows.map(\.with.seconds).reduce(0, +)
        return EfficiencyResult(
            dataset: datasetName, positive: positive, features: data.features.rawValue, config: config, patches: rows,
            cellsPerActionWithout: cells / aw, cellsPerActionWith: cells / a,
            cellsPerSecondWithout: cells / sw, cellsPerSecondWith: cells / s, ratio: sw / s, actionRatio: aw / a,
            meanPatchRatio: rows.isEmpty ? 0 : rows.map(\.ratio).reduce(0, +) / Double(rows.count))
    }
}
