// Text, Markdown and PNG output of the experiments, and the paper's use cases on the shared data.

import Foundation
import HaliImaging
public import HaliLearning
public import HaliMath
import HaliPNG

public enum LearningFeatureProviders {
    /// nil = the default cheap features. `cnn+colour` reads the CNN part through the cache (`cacheDirectory`, as
    /// `cacheDirectory(base:kind:weights:)` gives it), so it costs one cheap pass where the CNN features exist.
    public static func provider(kind: FeatureKind, weights: String, cacheDirectory: String? = nil) throws -> ((CellData) throws -> Matrix)? {
        switch kind {
        case .cheap: return nil
        case .cnn: return try CNNFeatureProvider.make(weights: weights)
        case .cnnColour:
            guard let cnn = try CNNFeatureProvider.make(weights: weights) else { return nil }
            return { data in
                let embedding = try FeatureCache.load(data, kind: .cnn, cacheDirectory: cacheDirectory) { try cnn(data) }
                let colour = try CheapFeatures.colour(data)
                var values: [Float] = []
                values.reserveCapacity(data.count * (embedding.columns + colour.columns))
                for c in 0..<data.count {
                    values += embedding.values[(c * embedding.columns)..<((c + 1) * embedding.columns)]
                    values += colour.values[(c * colour.columns)..<((c + 1) * colour.columns)]
                }
                return Matrix(rows: data.count, columns: embedding.columns + colour.columns, values: values)
            }
        }
    }

    /// Where features of this kind are cached under `base`: CNN features in a folder named after the weights' content
    /// (FNV-1a of the file), so that other weights never reuse them; no cache when the weights cannot be read.
    public static func cacheDirectory(base: String?, kind: FeatureKind, weights: String) -> String? {
        guard let base, kind != .cheap else { return base }
        guard let bytes = FileManager.default.contents(atPath: weights) else { return nil }
        return base + "/cnn-" + String(FNV1a.hash(bytes), radix: 16)
    }
}

public enum LearningReport {
    public static func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

    public static func gainText(_ s: Summary) -> String {
        "\(s.mean >= 0 ? "+" : "")\(fmt(s.mean))% [95% CI \(fmt(s.ciLow)), \(fmt(s.ciHigh))] (sd \(fmt(s.sd)))"
    }

    public struct UseCaseSpec: Sendable {
        public var id: String
        public var title: String
        public var dataset: String
        public var testDataset: String?
        public var positive: String
        public var patchMicrons: Double
        public var imageRange: ClosedRange<Int>?
        public var paperEfficiency: Double?
        /// A pooled use case: these sets, each prepared on its own, as one pool (`PreparedData.pooled`).
        public var parts: [UseCaseSpec] = []
    }

    public struct Row: Sendable {
        public var useCase: UseCaseSpec
        public var effectiveness: EffectivenessResult
        public var efficiency: EfficiencyResult
        /// The same patches labelled in the review gallery.
        public var gallery: EfficiencyResult
        /// As many cells as those patches hold, labelled in pages of the learner's picks.
        public var picks: EfficiencyResult
        public var plot: String
        public init(
            useCase: UseCaseSpec, effectiveness: EffectivenessResult, efficiency: EfficiencyResult, gallery: EfficiencyResult,
            picks: EfficiencyResult, plot: String
        ) {
            self.useCase = useCase; self.effectiveness = effectiveness; self.efficiency = efficiency; self.gallery = gallery
            self.picks = picks; self.plot = plot
        }
    }

    /// The paper's use cases on the shared data. `clean` (default) keeps every labelled cell the CNN backbone was
    /// trained on (CRC images 1–70, CoNSeP train) out of both pool and test: CRC uses images 71–100 and CoNSeP its
    /// test folder, each split by image (every 4th held aside). `full` uses all of CRC and CoNSeP train → test.
    public static func useCases(root: String, clean: Bool = true) -> [UseCaseSpec] {
        func crc(_ id: String, _ title: String, _ pos: String, _ paper: Double) -> UseCaseSpec {
            UseCaseSpec(
                id: id, title: title, dataset: root + "/crc", testDataset: nil, positive: pos, patchMicrons: 250,
                imageRange: clean ? 71...100 : nil, paperEfficiency: paper)
        }
        func consep(_ id: String, _ title: String, _ pos: String, _ paper: Double) -> UseCaseSpec {
            clean
                // 11 pool images of 192 µm: 96 µm patches (~105 cells) leave the active learner a choice.
                ? UseCaseSpec(
                    id: id, title: title, dataset: root + "/consep/test", testDataset: nil, positive: pos,
                    patchMicrons: 96, imageRange: nil, paperEfficiency: paper)
                : UseCaseSpec(
                    id: id, title: title, dataset: root + "/consep/train", testDataset: root + "/consep/test",
                    positive: pos, patchMicrons: 250, imageRange: nil, paperEfficiency: paper)
        }
        // Ki-67 images are 128 µm wide with ~125 cells each: 64 µm patches (4 per image) for the active learner. The
        // sets the backbone never saw (issue 17) have patch sides as in Deploy/bench/cell_picks_sweep.sh: ~100–200
        // cells a patch, several patches an image.
        let ki67 = [
            UseCaseSpec(
                id: "ki67", title: "KI-67 DEEPLIIF", dataset: root + "/ki67", testDataset: nil, positive: "positive",
                patchMicrons: 64, imageRange: nil, paperEfficiency: 8.03),
            UseCaseSpec(
                id: "ki67-bcdata", title: "KI-67 BCDATA", dataset: root + "/ki67_bcdata", testDataset: nil, positive: "positive",
                patchMicrons: 80, imageRange: nil, paperEfficiency: 8.03),
            UseCaseSpec(
                id: "ki67-glioma", title: "KI-67 GLIOMA", dataset: root + "/ki67_glioma", testDataset: nil, positive: "positive",
                patchMicrons: 112, imageRange: nil, paperEfficiency: 8.03),
        ]
        return [
            crc("tils-crc", "TILS CRC", "inflammatory", 4.46),
            consep("tils-consep", "TILS CONSEP", "inflammatory", 4.46),
            crc("tumour-crc", "TUMOUR CRC", "epithelial", 6.16),
            consep("tumour-consep", "TUMOUR CONSEP", "epithelial", 6.16),
            ki67[0],
            // A second H&E organ the backbone never saw, split by image.
            UseCaseSpec(
                id: "tils-brca", title: "TILS BRCA-M2C", dataset: root + "/brca_m2c", testDataset: nil, positive: "lymphocyte",
                patchMicrons: 125, imageRange: nil, paperEfficiency: 4.46),
            UseCaseSpec(
                id: "tumour-brca", title: "TUMOUR BRCA-M2C", dataset: root + "/brca_m2c", testDataset: nil, positive: "tumour",
                patchMicrons: 125, imageRange: nil, paperEfficiency: 6.16),
            ki67[1],
            ki67[2],
            // The three Ki-67 sets as one pool (3,250 cells over three scanners, stains and µm/px), each split as above.
            UseCaseSpec(
                id: "ki67-pooled", title: "KI-67 POOLED", dataset: ki67.map(\.dataset).joined(separator: " + "), testDataset: nil,
                positive: "positive", patchMicrons: 80, imageRange: nil, paperEfficiency: 8.03, parts: ki67),
        ]
    }

    public static func plotEffectiveness(_ r: EffectivenessResult, path: String, title: String) throws {
        let names = [
            "HALI (\(r.config.strategy.rawValue))", "SEQUENTIAL PATCHES", "RANDOM CELLS", "CLASS-BALANCED",
            "CELL PICKS (\(r.config.cellStrategy.rawValue))",
        ]
        var series: [(name: String, mean: [Double], sd: [Double])] = []
        for (i, a) in r.arms.enumerated() { series.append((names[i], a.accuracy.mean, a.accuracy.sd)) }
        let lo = max(0, ((r.arms.flatMap(\.accuracy.mean).min() ?? 0.5) * 10).rounded(.down) / 10 - 0.1)
        let acc = CurvePlot.draw(title: title + " ACCURACY", xs: r.evaluatedN, series: series, yMin: lo)
        var bseries: [(name: String, mean: [Double], sd: [Double])] = []
        for (i, a) in r.arms.enumerated() { bseries.append((names[i], a.balancedAccuracy.mean, a.balancedAccuracy.sd)) }
        let blo = max(0, ((r.arms.flatMap(\.balancedAccuracy.mean).min() ?? 0.5) * 10).rounded(.down) / 10 - 0.1)
        let bacc = CurvePlot.draw(title: title + " BALANCED ACC", xs: r.evaluatedN, series: bseries, yMin: blo)
        // Stack the two plots vertically.
        var both = Canvas(width: acc.width, height: acc.height + bacc.height)
        both.rgb = acc.rgb + bacc.rgb
        try Data(both.png()).write(to: URL(fileURLWithPath: path))  // an unwritable --plot path is an error
    }

    public static func effectivenessText(_ r: EffectivenessResult) -> String {
        var s =
            "effectiveness: \(r.dataset) positive=\(r.positive ?? "all") features=\(r.features) head=\(r.config.head.rawValue) strategy=\(r.config.strategy.rawValue)\n"
        s +=
            "pool \(r.poolCells) cells in \(r.patches) patches (\(r.config.perPatch) cells labelled per visited patch), test \(r.testCells) cells (\(r.testSet))\n"
        s +=
            "budget \(r.config.budget), \(r.config.repeats) paired seeds from \(r.config.seed), evaluated every \(r.config.evalStep) labels; AUC over N < \(r.config.aucLimit)\n"
        for a in r.arms {
            s +=
                "  \(a.arm.padding(toLength: 13, withPad: " ", startingAt: 0)) AUC acc \(fmt(a.aucAccuracy.mean, 4)) ± \(fmt(a.aucAccuracy.sd, 4))  bal \(fmt(a.aucBalancedAccuracy.mean, 4)) ± \(fmt(a.aucBalancedAccuracy.sd, 4))  final acc \(fmt(a.accuracy.mean.last ?? 0, 3))  positives \(fmt(100 * a.positiveFraction))%  patches \(fmt(a.patchesVisited))\n"
        }
        for g in r.gains {
            s += "  gain \(g.arm) vs \(g.control): accuracy \(gainText(g.accuracy)); balanced \(gainText(g.balancedAccuracy))\n"
        }
        s += "gain = \(fmt(r.gain, 2))% (accuracy), \(fmt(r.gainBalanced, 2))% (balanced accuracy); \(fmt(r.seconds, 1)) s"
        return s
    }

    public static func efficiencyText(_ r: EfficiencyResult) -> String {
        var s =
            "efficiency: \(r.dataset) positive=\(r.positive ?? "all") features=\(r.features) head=\(r.config.head.rawValue) \(r.config.workflow == .perCell ? "annotator=\(r.config.annotator.rawValue)" : "workflow=\(r.config.workflow.rawValue)\(r.config.workflow == .picks ? " (\(r.config.pickStrategy.rawValue))" : "") (pages of \(r.config.galleryPage), \(r.config.galleryColumns) columns)") (suggestions from \(r.config.policy.minLabels) labels, refit every \(r.config.policy.retrainEvery))\n"
        s +=
            "KLM: manual \(fmt(r.config.klm.manual, 2)) s, accept one \(fmt(r.config.klm.acceptOne, 2)) s, correct \(fmt(r.config.klm.correct, 2)) s, accept all n: \(fmt(r.config.klm.v, 2))·n + \(fmt(r.config.klm.m + r.config.klm.k, 2)) s"
        s +=
            r.config.workflow != .perCell
            ? "; gallery page of n: \(fmt(r.config.klm.v, 2))·n + \(fmt(r.config.klm.m + r.config.klm.k, 2)) s, flip: \(fmt(r.config.klm.m + r.config.klm.k, 2)) s + \(fmt(r.config.klm.k, 2)) s per arrow key\n"
            : "\n"
        for p in r.patches {
            s +=
                "  patch \(p.patch) (\(p.image)): \(p.cells) cells, \(p.positives) positive | without: \(p.without.actions) actions \(fmt(p.without.seconds, 0)) s | with: manual \(p.with.manual), correct \(p.with.correct), accept-one \(p.with.acceptOne), accept-all \(p.with.acceptAll) (\(p.with.acceptedInAll) cells)\(p.with.pageAccepts > 0 ? ", pages \(p.with.pageAccepts) (\(p.with.acceptedInPages) accepted), arrow keys \(p.with.arrowKeys), g/Tab \(p.with.galleryKeys)" : "") \(fmt(p.with.seconds, 0)) s | cells/action \(fmt(p.cellsPerActionWithout, 2)) → \(fmt(p.cellsPerActionWith, 2)), cells/s \(fmt(p.cellsPerSecondWithout, 3)) → \(fmt(p.cellsPerSecondWith, 3)), ratio \(fmt(p.ratio, 2))x\n"
        }
        s +=
            "overall: cells/action \(fmt(r.cellsPerActionWithout, 2)) → \(fmt(r.cellsPerActionWith, 2)); cells/s \(fmt(r.cellsPerSecondWithout, 3)) → \(fmt(r.cellsPerSecondWith, 3)); ratio \(fmt(r.ratio, 2))x (mean of patches \(fmt(r.meanPatchRatio, 2))x)"
        return s
    }

    static func ci(_ s: Summary) -> String { "\(s.mean >= 0 ? "+" : "")\(fmt(s.mean))% [\(fmt(s.ciLow)), \(fmt(s.ciHigh))]" }

    public static func markdown(
        _ rows: [Row], features: FeatureKind, repeats: Int, budget: Int, evalStep: Int, head: HeadKind,
        fullSplits: Bool = false, withinPatch: WithinPatch = .readingOrder, cellStrategy: CellStrategy = .margin, cellBatch: Int = 24
    ) -> String {
        var s = "# HALI learning loop: Fig 4a-style results (\(features.rawValue) features, \(head.rawValue) head)\n\n"
        let variant =
            (fullSplits ? " --full-splits" : "") + (withinPatch == .readingOrder ? "" : " --within-patch \(withinPatch.rawValue)")
            + (cellStrategy == .margin ? "" : " --cell-strategy \(cellStrategy.rawValue)")
        s +=
            "Generated by `hali eval report --features \(features.rawValue) --repeats \(repeats) --budget \(budget) --eval-step \(evalStep) --head \(head.rawValue)\(variant)`.\n"
        s +=
            "Simulated annotator (an oracle), \(repeats) paired seeds; effectiveness gain = AUC(N < \(budget)) ratio − 1 of test accuracy, mean [95% t-CI over seeds], for HALI's default (the learner's cell picks, `\(cellStrategy)`, pages of \(cellBatch)) and for the paper's arm (Coreset patches), each against the sequential-patch control and the cell picks also against random cells; efficiency = cells per modelled second (KLM) with ÷ without suggestions, fast head, per cell (batch annotator), in the review gallery (pages of 24) and in pages of the learner's cell picks (`\(cellStrategy)`, as many cells as the patches hold).\n\n"
        s +=
            "| use case | cell picks vs sequential | cell picks vs random cells | Coreset patches vs sequential | efficiency, per cell | efficiency, gallery | efficiency, cell picks | paper efficiency |\n|---|---|---|---|---|---|---|---|\n"
        func gain(_ r: Row, _ arm: String, _ control: String) -> Gain? {
            r.effectiveness.gains.first { $0.arm == arm && $0.control == control }
        }
        // The headline rows: every use case once, a pooled one in place of the sets it pools.
        let pooledIds = Set(rows.flatMap { $0.useCase.parts.map(\.id) })
        let headline = rows.filter { !pooledIds.contains($0.useCase.id) }
        for r in rows {
            let cells = [gain(r, "active-cells", "sequential"), gain(r, "active-cells", "random-cells"), gain(r, "active", "sequential")]
                .map { $0.map { ci($0.accuracy) } ?? "–" }
            s +=
                "| \(r.useCase.title.lowercased()) | \(cells.joined(separator: " | ")) | \(fmt(r.efficiency.ratio, 2))× | \(fmt(r.gallery.ratio, 2))× | \(fmt(r.picks.ratio, 2))× | \(r.useCase.paperEfficiency.map { fmt($0, 2) + "×" } ?? "–") |\n"
        }
        func mean(_ gains: [Gain]) -> String {
            guard !gains.isEmpty else { return "–" }
            let above = gains.filter { $0.accuracy.ciLow > 0 }.count
            return "\(fmt(gains.map(\.accuracy.mean).reduce(0, +) / Double(gains.count)))% (\(above)/\(gains.count) above 0)"
        }
        func meanRow(_ title: String, _ rows: [Row]) -> String {
            let ratios = rows.map(\.efficiency.ratio), galleryRatios = rows.map(\.gallery.ratio), pickRatios = rows.map(\.picks.ratio)
            let g = { (arm: String, control: String) in mean(rows.compactMap { gain($0, arm, control) }) }
            return
                "| \(title) | \(g("active-cells", "sequential")) | \(g("active-cells", "random-cells")) | \(g("active", "sequential")) | \(fmt(ratios.reduce(0, +) / Double(ratios.count), 2))× | \(fmt(galleryRatios.reduce(0, +) / Double(galleryRatios.count), 2))× | \(fmt(pickRatios.reduce(0, +) / Double(pickRatios.count), 2))× | paper: +4.34% effectiveness, 5.15× efficiency |\n"
        }
        if !headline.isEmpty {
            s += meanRow(pooledIds.isEmpty ? "**mean**" : "**mean, \(headline.count) use cases (pooled sets once)**", headline)
            if !pooledIds.isEmpty {
                let sets = rows.filter { $0.useCase.parts.isEmpty }
                s += meanRow("mean, \(sets.count) sets (pooled ones apart)", sets)
            }
            s += "\n"
        }
        s +=
            "## Against every control (accuracy; balanced accuracy)\n\n| use case | vs sequential | vs random cells | vs class-balanced | random cells vs sequential | cell picks vs sequential | cell picks vs random cells |\n|---|---|---|---|---|---|---|\n"
        for r in rows {
            s +=
                "| \(r.useCase.title.lowercased()) | "
                + r.effectiveness.gains.map { "\(ci($0.accuracy)); \(ci($0.balancedAccuracy))" }.joined(separator: " | ") + " |\n"
        }
        s +=
            "\n## Details\n\n| use case | pool / test cells | patches (µm) | AUC acc: HALI / seq / random / balanced / cell picks | positives labelled: HALI / seq | cells per action without → with | time (s) without → with |\n|---|---|---|---|---|---|---|\n"
        for r in rows {
            let e = r.effectiveness, f = r.efficiency
            let aucs = e.arms.map { fmt($0.aucAccuracy.mean, 3) }.joined(separator: " / ")
            let tw = f.patches.map(\.without.seconds).reduce(0, +), tv = f.patches.map(\.with.seconds).reduce(0, +)
            s +=
                "| \(r.useCase.title.lowercased()) | \(e.poolCells) / \(e.testCells) (\(e.testSet)) | \(e.patches) (\(fmt(r.useCase.patchMicrons, 0))) | \(aucs) | \(fmt(100 * e.arms[0].positiveFraction))% / \(fmt(100 * e.arms[1].positiveFraction))% | \(fmt(f.cellsPerActionWithout, 2)) → \(fmt(f.cellsPerActionWith, 2)) | \(fmt(tw, 0)) → \(fmt(tv, 0)) |\n"
        }
        s += "\n"
        for r in rows { s += "![\(r.useCase.title)](\(r.plot))\n\n" }
        return s
    }
}
