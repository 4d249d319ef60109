import ArgumentParser
import Foundation
import HaliDatasets
import HaliInference
import HaliNet
import HaliTraining

/// `hali train-backbone`: trains the nucleus CNN on labelled nuclei of the shared data layouts.
struct TrainBackboneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-backbone",
        abstract: "Train the nucleus CNN backbone on labelled nuclei (DIR/images, DIR/cells.csv, DIR/meta.json).",
        discussion: """
            Each --data is DIR or DIR:FIRST-LAST (1-based range over the sorted image names, e.g. crc:1-70 keeps \
            images 71–100 out for testing). The last --val-fraction of each set's images is held out for validation \
            per epoch. Classes: epithelial, stromal (spindle/fibroblast), inflammatory, other.
            """)

    @Option(name: .customLong("data"), help: "Labelled set DIR or DIR:FIRST-LAST (repeatable).")
    var data: [String]

    @Option(help: "Output .safetensors file.")
    var out: String

    @Option(help: "Architecture: compact (default) or resnet18.") var arch = "compact"
    @Option(help: "Epochs.") var epochs = 12
    @Option(help: "Mini-batch size.") var batchSize = 64
    @Option(help: "Peak learning rate (cosine schedule, warm-up).") var lr: Float = 2e-3
    @Option(help: "Weight decay.") var weightDecay: Float = 1e-4
    @Option(help: "adamw or sgd.") var optimizer = "adamw"
    @Option(help: "Random seed (weights, shuffling, augmentation).") var seed: UInt64 = 1
    @Option(help: "Network input side in pixels.") var patchPixels = 40
    @Option(help: "Microns covered by one patch side.") var patchMicrons = 20.0
    @Option(help: "Fraction of each set's images held out for validation.") var valFraction = 0.1
    @Option(help: "Colour jitter strength: 1 = per-channel gain ±6 %, offset ±0.04, brightness ±6 %; 0 = none.")
    var colourJitter: Float = 1
    @Option(help: "Stop after this many minutes (finishing the epoch).") var maxMinutes = 55.0
    @Option(help: "OpenBLAS threads.") var threads = 2
    @Flag(help: "No progress bar.") var quiet = false

    func validate() throws {
        guard colourJitter >= 0, colourJitter <= 5 else { throw ValidationError("--colour-jitter must be in 0…5") }
    }

    func run() throws {
        HaliTrainingSetup.blasThreads(threads)
        HaliTrainingSetup.keepLargeAllocations()
        let t0 = Date()
        let margin = 3  // stored patches are larger by 2·margin for shift augmentation
        let side = patchPixels + 2 * margin
        let mpp = patchMicrons / Double(patchPixels)
        var train = PatchSet(side: side, classNames: NucleusClass.names)
        var vals: [(String, PatchSet)] = []
        for spec in data {
            let (dir, range) = try Self.parse(spec)
            let set = try LabelledCells.load(dir)
            var names = set.imageNames
            if let r = range {
                guard let selected = ImageRange.select(names, r) else {
                    throw ValidationError("\(spec): range outside 1…\(names.count)")
                }
                names = selected
            }
            let nVal = Int((Double(names.count) * valFraction).rounded())
            let trNames = Array(names.dropLast(nVal)), vaNames = Array(names.suffix(nVal))
            let tr = try set.patches(
                images: trNames, side: side, micronsPerPixel: mpp, classNames: NucleusClass.names,
                label: NucleusClass.index(of:))
            train.append(tr)
            if !vaNames.isEmpty {
                let va = try set.patches(
                    images: vaNames, side: side, micronsPerPixel: mpp, classNames: NucleusClass.names,
                    label: NucleusClass.index(of:))
                vals.append((URL(fileURLWithPath: dir).lastPathComponent, va))
            }
            say(
                "\(spec): \(trNames.count) training images (\(tr.count) nuclei), \(vaNames.count) validation images, \(set.micronsPerPixel) µm/px → \(mpp) µm/px"
            )
        }
        var meta = BackboneMetadata()
        meta.patchPixels = patchPixels
        meta.patchMicrons = patchMicrons
        meta.classes = NucleusClass.names
        (meta.mean, meta.std) = BatchBuilder.channelStatistics(train)
        var o = TrainingOptions()
        o.epochs = epochs; o.batchSize = batchSize; o.learningRate = lr; o.weightDecay = weightDecay
        o.optimizer = optimizer; o.seed = seed; o.side = patchPixels
        o.progress = !quiet && isatty(STDOUT_FILENO) != 0  // a bar for people; per-epoch lines for logs
        o.timeLimit = maxMinutes * 60
        o.augmentation.channelGain *= colourJitter
        o.augmentation.channelOffset *= colourJitter
        o.augmentation.brightness *= colourJitter
        let config: ResNetConfig =
            arch == "resnet18" ? .resnet18(numClasses: NucleusClass.names.count) : .compact(numClasses: NucleusClass.names.count)
        let trainer = Trainer(config: config, metadata: meta, options: o)
        say(String(format: "patches extracted in %.1f s; %@", Date().timeIntervalSince(t0), config.description))
        trainer.train(train, validation: vals) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let last = trainer.history.last!
        meta.extra["hali.training"] = "hali train-backbone " + CommandLine.arguments.dropFirst(2).joined(separator: " ")
        meta.extra["hali.seed"] = "\(seed)"
        meta.extra["hali.epochs_run"] = "\(trainer.history.count)"
        meta.extra["hali.validation"] = last.validation.map { String(format: "%@ acc %.4f bal %.4f", $0.name, $0.accuracy, $0.balancedAccuracy) }
            .joined(separator: "; ")
        try WeightsFile.save(trainer.net, metadata: meta, path: out)
        say(String(format: "wrote %@ (%.1f min total)", out, Date().timeIntervalSince(t0) / 60))
    }

    func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    static func parse(_ spec: String) throws -> (String, ClosedRange<Int>?) {
        guard let colon = spec.lastIndex(of: ":"), !spec[spec.index(after: colon)...].contains("/") else { return (spec, nil) }
        guard let range = ImageRange.parse(spec[spec.index(after: colon)...]) else {
            throw ValidationError("\(spec): expected DIR:FIRST-LAST")
        }
        return (String(spec[..<colon]), range)
    }
}
