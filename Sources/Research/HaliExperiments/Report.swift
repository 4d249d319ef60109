// Text, Markdown and PNG output of the experiments, and the paper's use cases on the shared data.

import Foundation
import HaliImaging
import HaliLearning
import HaliMath
import HaliPNG

public enum LearningFeatureProviders {
    /// nil = the default cheap features.
    public static func provider(kind: FeatureKind, weights: String) throws -> ((CellData) throws -> Matrix)? {
        switch kind {
        case .cheap: return nil
        case .cnn: return try CNNFeatureProvider.make(weights: weights)
        }
    }

    /// Where features of this kind are cached under `base`: CNN features in a folder named after the weights' content
    /// (FNV-1a of the file), so that other weights never reuse them; no cache when the weights cannot be read.
    public static func cacheDirectory(base: String?, kind: FeatureKind, weights: String) -> String? {
        guard let base, kind == .cnn else { return base }
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
    }

    public struct Row: Sendable {
        public var useCase: UseCaseSpec
        public var effectiveness: EffectivenessResult
        public var efficiency: EfficiencyResult
        /// The same patches labelled in the review gallery.
        public var gallery: EfficiencyResult
        public var plot: String
        public init(
            useCase: UseCaseSpec, effectiveness: EffectivenessResult, efficiency: EfficiencyResult, gallery: EfficiencyResult, plot: String
        ) {
            self.useCase = useCase; self.effectiveness = effectiveness; self.efficiency = efficiency; self.gallery = gallery
            self.plot = plot
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
        return [
            crc("tils-crc", "TILS CRC", "inflammatory", 4.46),
            consep("tils-consep", "TILS CONSEP", "inflammatory", 4.46),
            crc("tumour-crc", "TUMOUR CRC", "epithelial", 6.16),
            consep("tumour-consep", "TUMOUR CONSEP", "epithelial", 6.16),
            // Ki-67 images are 128 µm wide with ~125 cells each: 64 µm patches (4 per image) for the active learner.
            UseCaseSpec(
                id: "ki67", title: "KI-67", dataset: root + "/ki67", testDataset: nil, positive: "positive",
                patchMicrons: 64, imageRange: nil, paperEfficiency: 8.03),
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
            "efficiency: \(r.dataset) positive=\(r.positive ?? "all") features=\(r.features) head=\(r.config.head.rawValue) \(r.config.workflow == .gallery ? "workflow=gallery (pages of \(r.config.galleryPage), \(r.config.galleryColumns) columns)" : "annotator=\(r.config.annotator.rawValue)") (suggestions from \(r.config.policy.minLabels) labels, refit every \(r.config.policy.retrainEvery))\n"
        s +=
            "KLM: manual \(fmt(r.config.klm.manual, 2)) s, accept one \(fmt(r.config.klm.acceptOne, 2)) s, correct \(fmt(r.config.klm.correct, 2)) s, accept all n: \(fmt(r.config.klm.v, 2))·n + \(fmt(r.config.klm.m + r.config.klm.k, 2)) s"
        s +=
            r.config.workflow == .gallery
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
        fullSplits: Bool = false, withinPatch: WithinPatch = .readingOrder
    ) -> String {
        var s = "# HALI learning loop: Fig 4a-style results (\(features.rawValue) features, \(head.rawValue) head)\n\n"
        let variant = (fullSplits ? " --full-splits" : "") + (withinPatch == .readingOrder ? "" : " --within-patch \(withinPatch.rawValue)")
        s +=
            "Generated by `hali eval report --features \(features.rawValue) --repeats \(repeats) --budget \(budget) --eval-step \(evalStep) --head \(head.rawValue)\(variant)`.\n"
        s +=
            "Simulated annotator (an oracle), \(repeats) paired seeds; effectiveness gain = AUC(N < 200) ratio − 1 of test accuracy, HALI (Coreset) vs the sequential-patch control, mean [95% t-CI over seeds]; efficiency = cells per modelled second (KLM) with ÷ without suggestions, fast head, per cell (batch annotator) and in the review gallery (pages of 24).\n\n"
        s +=
            "| use case | effectiveness gain, accuracy | gain, balanced accuracy | efficiency, per cell | efficiency, gallery | paper efficiency |\n|---|---|---|---|---|---|\n"
        for r in rows {
            let g = r.effectiveness.gains[0]
            s +=
                "| \(r.useCase.title.lowercased()) | \(ci(g.accuracy)) | \(ci(g.balancedAccuracy)) | \(fmt(r.efficiency.ratio, 2))× | \(fmt(r.gallery.ratio, 2))× | \(r.useCase.paperEfficiency.map { fmt($0, 2) + "×" } ?? "–") |\n"
        }
        let gains = rows.map { $0.effectiveness.gains[0].accuracy.mean }
        let ratios = rows.map(\.efficiency.ratio), galleryRatios = rows.map(\.gallery.ratio)
        if !rows.isEmpty {
            s +=
                "| **mean** | \(fmt(gains.reduce(0, +) / Double(gains.count)))% | \(fmt(rows.map { $0.effectiveness.gains[0].balancedAccuracy.mean }.reduce(0, +) / Double(rows.count)))% | \(fmt(ratios.reduce(0, +) / Double(ratios.count), 2))× | \(fmt(galleryRatios.reduce(0, +) / Double(galleryRatios.count), 2))× | paper: +4.34% effectiveness, 5.15× efficiency |\n\n"
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
