// `hali eval effectiveness | efficiency | report`: the HALI paper's two experiments with a simulated annotator
// (docs/learning.md), on a cell-table directory or a slide + cells CSV.

public import ArgumentParser
import Foundation
import HaliDatasets
import HaliExperiments
import HaliImaging
import HaliIndex
import HaliLearning
import HaliSlide

struct LearningDataOptions: ParsableArguments {
    @Option(name: .long, help: "Dataset directory (images/ + cells.csv with classes + meta.json).")
    var dataset: String?

    @Option(name: .long, help: "Or a whole-slide image (with --cells): its labelled region is cut into blocks; every 4th is held aside.")
    var slide: String?

    @Option(name: .long, help: "With --slide: CSV of labelled centroids in level-0 pixels (image,x,y,class; image = the slide's file name).")
    var cells: String?

    @Option(name: .long, help: "With --slide: µm per level-0 pixel (default: the slide's own; required when it reports none).")
    var mpp: Double?

    @Option(name: .long, help: "With --slide: only cells inside X,Y,W,H (level-0 pixels).")
    var region: String?

    @Option(name: .customLong("block-um"), help: "With --slide: side of the blocks that stand in for images, in µm (default 500).")
    var blockMicrons: Double?

    @Option(name: .customLong("test-dataset"), help: "Held-aside dataset (default: every 4th image or block).")
    var testDataset: String?

    @Option(name: .long, help: "Binary use case: this class vs the rest (default: all classes).")
    var positive: String?

    @Option(name: .long, help: "Features: cheap, cnn, or cnn+colour (the CNN embedding and 12 colour statistics of nucleus and context).")
    var features: FeatureKind = .cheap

    @Option(name: .customLong("patch-um"), help: "Side of the square patches in µm (~200 cells at 30x ≈ 250 µm).")
    var patchMicrons: Double = 250

    @Option(name: .long, help: "Directory caching computed features (none by default).")
    var cache: String?

    @Option(name: .long, help: "Only these images of --dataset, 1-based positions in name order, e.g. 71-100.")
    var images: String?

    @Option(name: .long, help: "CNN weights (.safetensors) for --features cnn.")
    var weights: String = "Deploy/models/hali-nuclei-v2.safetensors"

    /// The dataset directory or slide, for reports.
    var source: String { dataset ?? slide ?? "" }

    func validate() throws {
        guard (dataset == nil) != (slide == nil) else { throw ValidationError("give either --dataset DIR or --slide FILE --cells CSV") }
        if slide != nil {
            guard cells != nil else { throw ValidationError("--slide needs --cells CSV (labelled centroids in level-0 pixels)") }
            guard images == nil else { throw ValidationError("--images selects images of a --dataset; use --region with --slide") }
            if let region, PixelRegion.parse(region) == nil {
                throw ValidationError("--region wants X,Y,W,H in level-0 pixels, e.g. 0,3500,5000,1500")
            }
            if let mpp, !(mpp > 0) { throw ValidationError("--mpp must be positive") }
            if let blockMicrons, !(blockMicrons > 0) { throw ValidationError("--block-um must be positive") }
        } else {
            guard cells == nil, mpp == nil, region == nil, blockMicrons == nil else {
                throw ValidationError("--cells, --mpp, --region and --block-um go with --slide")
            }
            if let images, ImageRange.parse(images[...]).map({ $0.lowerBound >= 1 }) != true {
                throw ValidationError("--images wants A-B, e.g. 71-100")
            }
        }
    }

    func prepare() throws -> PreparedData {
        let cacheDirectory = LearningFeatureProviders.cacheDirectory(base: cache, kind: features, weights: weights)
        let provider = try LearningFeatureProviders.provider(kind: features, weights: weights, cacheDirectory: cacheDirectory)
        let useCase = UseCase(positive: positive)
        if let slide, let cells {
            return try PreparedData.make(
                cells: try slideCells(path: slide, csv: cells), testDirectory: testDataset,
                useCase: useCase, features: features, patchMicrons: patchMicrons,
                cacheDirectory: cacheDirectory, featureProvider: provider)
        }
        return try PreparedData.make(
            directory: source, testDirectory: testDataset, useCase: useCase, features: features,
            patchMicrons: patchMicrons, cacheDirectory: cacheDirectory,
            imageRange: images.flatMap { ImageRange.parse($0[...]) }, featureProvider: provider)
    }

    /// The labelled cells of `--slide`, with pixels read through OpenSlide block by block.
    private func slideCells(path: String, csv: String) throws -> CellData {
        let opened = try Slide(path: path)
        guard let micronsPerPixel = mpp ?? opened.micronsPerPixel?.x else {
            throw ExperimentError.invalid("\(path) reports no µm/px; pass --mpp (e.g. 0.55 for the 20x crc-mosaic.tif)")
        }
        let pixels = SlidePixels(width: Int(opened.width), height: Int(opened.height), maxReadPixels: Slide.maxRegionPixels) { x, y, w, h in
            RGBImage(width: w, height: h, pixels: try opened.readRegion(x: Int64(x), y: Int64(y), level: 0, width: w, height: h))
        }
        return try CellData.load(
            slidePath: path, slide: pixels, cellsCSV: csv, micronsPerPixel: micronsPerPixel,
            region: region.flatMap(PixelRegion.parse), blockMicrons: blockMicrons ?? 500)
    }
}

extension FeatureKind: ExpressibleByArgument {}
extension HeadKind: ExpressibleByArgument {}
extension StrategyKind: ExpressibleByArgument {}
extension WithinPatch: ExpressibleByArgument {}
extension EfficiencyPolicy: ExpressibleByArgument {}
extension LabellingWorkflow: ExpressibleByArgument {}
extension CellStrategy: ExpressibleByArgument {}

func learningJSON<T: Encodable>(_ value: T) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try enc.encode(value), as: UTF8.self)
}

struct EvalEffectivenessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "effectiveness",
        abstract: "Effectiveness of HALI-labelled data: AUC of test accuracy vs N labels, active learner vs controls.")

    @OptionGroup var data: LearningDataOptions
    @Option(help: "Labels per run.") var budget = 200
    @Option(help: "Seeds (repeats), paired between arms.") var repeats = 10
    @Option(help: "Base seed.") var seed: UInt64 = 1
    @Option(help: "Head trained for the curves: paper (the paper's MLP recipe) or logistic.") var head: HeadKind = .paper
    @Option(help: "Active learner: coreset, entropy, margin or random.") var strategy: StrategyKind = .coreset
    @Option(name: .customLong("per-patch"), help: "Cells the annotator labels in each visited patch (reading order).") var perPatch = 20
    @Option(name: .customLong("subset-size"), help: "Size of the active learner's subset S.") var subsetSize = 20
    @Option(name: .customLong("initial-per-class"), help: "Cells per class labelled before the active learner starts.") var initialPerClass = 5
    @Option(name: .customLong("eval-step"), help: "Train and score every this many labels (1 = every N).") var evalStep = 1
    @Option(help: "Worker threads (repeats run in parallel; results do not depend on it).") var threads = 1
    @Option(
        name: .customLong("within-patch"),
        help: "Active arm inside a picked patch: reading-order (the fixed rule) or subset-first (S's cells first; exploratory).")
    var withinPatch: WithinPatch = .readingOrder
    @Option(
        name: .customLong("cell-strategy"),
        help: "Cell-picks arm: coreset, typiclust, probcover, margin, entropy, random or typiclust-margin.")
    var cellStrategy: CellStrategy = .margin
    @Option(name: .customLong("cell-batch"), help: "Cell-picks arm: cells picked at a time (a gallery page).") var cellBatch = 24
    @Flag(help: "Print the result as JSON.") var json = false
    @Option(help: "Write the curves as a PNG.") var plot: String?

    func validate() throws {
        guard cellBatch >= 1 else { throw ValidationError("--cell-batch must be at least 1") }
    }

    func run() async throws {
        let prepared = try data.prepare()
        var cfg = EffectivenessConfig()
        cfg.budget = budget; cfg.repeats = repeats; cfg.seed = seed; cfg.head = head; cfg.strategy = strategy
        cfg.perPatch = perPatch; cfg.subsetSize = subsetSize; cfg.initialPerClass = initialPerClass
        cfg.evalStep = evalStep; cfg.threads = threads; cfg.withinPatch = withinPatch
        cfg.cellStrategy = cellStrategy; cfg.cellBatch = cellBatch
        let result = Effectiveness.run(data: prepared, config: cfg, datasetName: data.source, positive: data.positive)
        if let plot {
            try LearningReport.plotEffectiveness(result, path: plot, title: "\(data.positive ?? "all classes") - \(prepared.features.rawValue)")
        }
        if json { print(try learningJSON(result)); return }
        print(LearningReport.effectivenessText(result))
    }
}

struct EvalEfficiencyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "efficiency",
        abstract: "Efficiency of labelling with suggestions: cells per action and per modelled second (KLM), with/without.")

    @OptionGroup var data: LearningDataOptions
    @Option(help: "Patches to label (the most class-balanced ~200-cell windows).") var patches = 5
    @Option(name: .customLong("patch-cells"), help: "Cells per patch the annotator looks for.") var patchCells = 200
    @Option(name: .customLong("min-labels"), help: "Labels before the first model and suggestions.") var minLabels = 20
    @Option(name: .customLong("retrain-every"), help: "Refit after this many new labels.") var retrainEvery = 5
    @Option(help: "Head: logistic (fast default) or paper.") var head: HeadKind = .logistic
    @Option(help: "Annotator policy with suggestions: batch (fix wrong ones, then accept all) or sequential.") var annotator: EfficiencyPolicy =
        .batch
    @Option(
        help:
            "Where suggestions are met: per-cell (in the patch, with --annotator), gallery (pages of one class) or picks (pages of the learner's cell picks, --cell-strategy)."
    )
    var workflow: LabellingWorkflow = .perCell
    @Option(name: .customLong("gallery-page"), help: "Gallery: crops per page.") var galleryPage = 24
    @Option(name: .customLong("gallery-columns"), help: "Gallery: columns of the page's grid (arrow keys move in it).") var galleryColumns = 6
    @Option(name: .customLong("cell-strategy"), help: "Picks: the learner's strategy (see eval effectiveness).")
    var cellStrategy: CellStrategy = .margin
    @Option(help: "KLM: seconds to look at one suggestion or crop and judge it (V; default 0.23, an eye movement and fixation).")
    var fixation: Double?
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard galleryPage >= 1, galleryColumns >= 1 else {
            throw ValidationError("--gallery-page and --gallery-columns must be at least 1")
        }
        if let fixation, !(fixation.isFinite && fixation >= 0) {
            throw ValidationError("--fixation must be a number of seconds ≥ 0")
        }
    }

    func run() async throws {
        let prepared = try data.prepare()
        var cfg = EfficiencyConfig()
        if let fixation { cfg.klm.v = fixation }
        cfg.workflow = workflow; cfg.galleryPage = galleryPage; cfg.galleryColumns = galleryColumns; cfg.pickStrategy = cellStrategy
        cfg.patches = patches; cfg.policy = OnlinePolicy(retrainEvery: retrainEvery, minLabels: minLabels)
        cfg.head = head; cfg.annotator = annotator; cfg.seed = seed; cfg.targetCells = patchCells
        let result = Efficiency.run(data: prepared, config: cfg, datasetName: data.source, positive: data.positive)
        if json { print(try learningJSON(result)); return }
        print(LearningReport.efficiencyText(result))
    }
}

struct EvalReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Runs both experiments on the paper's use cases and writes a Fig 4a-style Markdown table and PNG curves.")

    @Option(name: .customLong("data-root"), help: "The shared data directory.") var dataRoot = "../shared/data"
    @Option(help: "Output directory.") var out = "docs/eval"
    @Option(help: "Seeds per use case.") var repeats = 10
    @Option(help: "Labels per run.") var budget = 200
    @Option(name: .customLong("eval-step"), help: "Train and score every this many labels.") var evalStep = 5
    @Option(help: "Features: cheap, cnn or cnn+colour.") var features: FeatureKind = .cheap
    @Option(help: "Head for the effectiveness curves.") var head: HeadKind = .paper
    @Option(help: "Worker threads.") var threads = 1
    @Option(help: "Only these use cases (comma-separated ids; default all).") var only: String?
    @Option(help: "Directory caching computed features.") var cache: String?
    @Option(help: "CNN weights for --features cnn.") var weights = "Deploy/models/hali-nuclei-v2.safetensors"
    @Flag(help: "Use all of CRC and CoNSeP train → test (the CNN backbone was trained on CRC 1–70 and CoNSeP train).") var fullSplits = false
    @Option(name: .customLong("within-patch"), help: "Active arm inside a picked patch: reading-order or subset-first (exploratory).")
    var withinPatch: WithinPatch = .readingOrder
    @Option(name: .customLong("cell-strategy"), help: "Cell-picks arm's strategy (see eval effectiveness).")
    var cellStrategy: CellStrategy = .margin

    func run() async throws {
        let cases = LearningReport.useCases(root: dataRoot, clean: !fullSplits).filter { uc in
            only.map { $0.split(separator: ",").map(String.init).contains(uc.id) } ?? true
        }
        try Directories.ensure(out, purpose: "--out")
        var rows: [LearningReport.Row] = []
        let cacheDirectory = LearningFeatureProviders.cacheDirectory(base: cache, kind: features, weights: weights)
        let provider = try LearningFeatureProviders.provider(kind: features, weights: weights, cacheDirectory: cacheDirectory)
        for uc in cases {
            FileHandle.standardError.write(Data("report: \(uc.id) …\n".utf8))
            func prepare(_ spec: LearningReport.UseCaseSpec) throws -> PreparedData {
                try PreparedData.make(
                    directory: spec.dataset, testDirectory: spec.testDataset,
                    useCase: UseCase(positive: spec.positive), features: features,
                    patchMicrons: spec.patchMicrons, cacheDirectory: cacheDirectory, imageRange: spec.imageRange,
                    featureProvider: provider)
            }
            let prepared =
                uc.parts.isEmpty
                ? try prepare(uc)
                : try PreparedData.pooled(uc.parts.map(prepare), patchMicrons: uc.patchMicrons, describedAs: uc.dataset)
            var ecfg = EffectivenessConfig()
            ecfg.repeats = repeats; ecfg.budget = budget; ecfg.evalStep = evalStep; ecfg.head = head; ecfg.threads = threads
            ecfg.withinPatch = withinPatch
            ecfg.cellStrategy = cellStrategy
            let eff = Effectiveness.run(data: prepared, config: ecfg, datasetName: uc.dataset, positive: uc.positive)
            let fcfg = EfficiencyConfig()
            let effi = Efficiency.run(data: prepared, config: fcfg, datasetName: uc.dataset, positive: uc.positive)
            var gcfg = EfficiencyConfig()
            gcfg.workflow = .gallery
            let gallery = Efficiency.run(data: prepared, config: gcfg, datasetName: uc.dataset, positive: uc.positive)
            var pcfg = EfficiencyConfig()
            pcfg.workflow = .picks
            pcfg.pickStrategy = cellStrategy
            let picks = Efficiency.run(data: prepared, config: pcfg, datasetName: uc.dataset, positive: uc.positive)
            let variant = (fullSplits ? "-full" : "") + (withinPatch == .readingOrder ? "" : "-\(withinPatch.rawValue)")
            let tag = "\(uc.id)-\(features.rawValue)-\(head.rawValue)\(variant)"
            let png = "\(out)/learning-\(tag).png"
            try LearningReport.plotEffectiveness(eff, path: png, title: "\(uc.title) - \(features.rawValue)")
            try learningJSON(eff).write(toFile: "\(out)/learning-\(tag)-effectiveness.json", atomically: true, encoding: .utf8)
            try learningJSON(effi).write(toFile: "\(out)/learning-\(tag)-efficiency.json", atomically: true, encoding: .utf8)
            try learningJSON(gallery).write(toFile: "\(out)/learning-\(tag)-efficiency-gallery.json", atomically: true, encoding: .utf8)
            try learningJSON(picks).write(toFile: "\(out)/learning-\(tag)-efficiency-picks.json", atomically: true, encoding: .utf8)
            rows.append(
                LearningReport.Row(
                    useCase: uc, effectiveness: eff, efficiency: effi, gallery: gallery, picks: picks, plot: (png as NSString).lastPathComponent))
            FileHandle.standardError.write(
                Data(
                    "report: \(uc.id): gain \(LearningReport.fmt(eff.gain))% ratio \(LearningReport.fmt(effi.ratio, 2))x, gallery \(LearningReport.fmt(gallery.ratio, 2))x, picks \(LearningReport.fmt(picks.ratio, 2))x (\(LearningReport.fmt(eff.seconds, 0)) s)\n"
                        .utf8))
        }
        let md = LearningReport.markdown(
            rows, features: features, repeats: repeats, budget: budget, evalStep: evalStep, head: head,
            fullSplits: fullSplits, withinPatch: withinPatch, cellStrategy: cellStrategy, cellBatch: EffectivenessConfig().cellBatch)
        let variant = (fullSplits ? "-full" : "") + (withinPatch == .readingOrder ? "" : "-\(withinPatch.rawValue)")
        let path = "\(out)/learning-report-\(features.rawValue)-\(head.rawValue)\(variant).md"
        try md.write(toFile: path, atomically: true, encoding: .utf8)
        print(md)
        FileHandle.standardError.write(Data("report: wrote \(path)\n".utf8))
    }
}
