import ArgumentParser
import Foundation
import HaliDatasets
import HaliImaging
import HaliInference
import HaliNet
import HaliPNG
import HaliTraining

/// `hali train-detector`: trains the learned nucleus detector (U-Net maps) on instance-labelled images.
struct TrainDetectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-detector",
        abstract: "Train the learned nucleus detector on outlined nuclei (DIR/images with DIR/instances or DIR/annotations).",
        discussion: """
            Each --data and --val is DIR or DIR:FIRST-LAST (1-based range over the sorted image names). Every \
            nucleus of a training image must be outlined (instance maps, or Aperio XML polygons). The seed \
            threshold is chosen on the --val images (best mean over the --val sets of each set's F1 at 3 µm) and \
            stored in the weights. Evaluate on other data with `hali eval detection --detector-weights FILE`.
            """)

    @Option(name: .customLong("data"), help: "Training set DIR or DIR:FIRST-LAST (repeatable).") var data: [String]
    @Option(name: .customLong("val"), help: "Validation set DIR or DIR:FIRST-LAST (repeatable), for the seed threshold.") var val: [String]
    @Option(help: "Output .safetensors file.") var out: String
    @Option(help: "Optimiser steps.") var steps = 3000
    @Option(help: "Mini-batch size.") var batchSize = 8
    @Option(help: "Crop side at the working resolution (multiple of 4).") var crop = 128
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Channel widths of the three levels, e.g. 16,32,64.") var widths = "16,32,64"
    @Option(help: "Colour jitter strength (0 = none).") var colourJitter: Float = 1
    @Option(help: "Scale jitter a: crops resampled by exp(U(−a, a)); 0 = none.") var scaleJitter: Float = 0.25
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "OpenBLAS threads.") var threads = 1
    @Option(help: "Working pixel size in µm.") var workingMpp = 0.5

    func validate() throws {
        guard crop % 4 == 0, crop >= 32 else { throw ValidationError("--crop must be a multiple of 4, at least 32") }
        guard parsedWidths().count == 3 else { throw ValidationError("--widths needs three positive integers") }
        guard steps > 0, batchSize > 0 else { throw ValidationError("--steps and --batch-size must be positive") }
        guard !data.isEmpty, !val.isEmpty else { throw ValidationError("give at least one --data and one --val set") }
    }

    func parsedWidths() -> [Int] { widths.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    /// The set's directory, its images in the range (sorted names), and its pixel size.
    static func select(_ spec: String) throws -> (directory: String, images: [LabelledImage], mpp: Double) {
        let (directory, range) = try TrainBackboneCommand.parse(spec)
        let set = try DatasetReader.load(directory: directory)
        guard let mpp = set.micronsPerPixel else { throw ValidationError("\(directory): no approx_mpp in meta.json") }
        let images = set.images.sorted { $0.name < $1.name }
        guard let r = range else { return (directory, images, mpp) }
        guard let selected = ImageRange.select(images, r) else { throw ValidationError("\(spec): range outside 1…\(images.count)") }
        return (directory, selected, mpp)
    }

    func run() throws {
        HaliTrainingSetup.blasThreads(threads)
        HaliTrainingSetup.keepLargeAllocations()
        let t0 = Date()
        var parameters = NucleusDetectionParameters()
        parameters.workingPixelSizeMicrons = workingMpp
        // Before training: a validation set without nuclei would score F1 = 1 at every threshold and pull the mean.
        let valSets = try val.map { try Self.select($0) }
        for (spec, set) in zip(val, valSets) where !set.images.contains(where: { !$0.centroids.isEmpty }) {
            throw ValidationError("--val \(spec): no labelled nuclei to choose the threshold on")
        }
        var samples: [DetectorSample] = []
        for spec in data {
            let (directory, images, mpp) = try Self.select(spec)
            let loaded = try DetectorData.load(directory: directory, names: images.map(\.name), micronsPerPixel: mpp, parameters: parameters)
            print("\(spec): \(loaded.count) training images, \(loaded.map { $0.centroids.count }.reduce(0, +)) nuclei")
            samples += loaded
        }
        var options = DetectorTrainingOptions()
        options.steps = steps; options.batchSize = batchSize; options.crop = crop; options.learningRate = lr
        options.widths = parsedWidths(); options.seed = seed; options.colourJitter = colourJitter
        options.scaleJitter = scaleJitter
        let net = DetectorTraining.train(samples, options: options) { step, loss in
            // Progress on stderr (unbuffered), results on stdout.
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "step %5d/%d  loss %.4f  %.0f s\n", step, steps, loss,
                        Date().timeIntervalSince(t0)
                    ).utf8))
        }
        // Seed threshold on the validation images: the best mean over the --val sets of each set's pooled F1, so that a
        // small set from another source (another lab, organ, scanner) weighs as much as a large one.
        let learned = LearnedNucleusDetector(net: net, workingPixelSizeMicrons: workingMpp)
        var cached: [(set: Int, truth: [Point], radius: Double, working: WorkingImage, fg: FloatImage, centre: FloatImage)] = []
        for (setIndex, (spec, (_, images, mpp))) in zip(val, valSets).enumerated() {
            for img in images {
                let working = learned.detector.workingImage(try PNGReader.readRGB(path: img.path), micronsPerPixel: mpp)
                let (fg, centre) = learned.probabilityMaps(working)
                cached.append((setIndex, img.centroids, 3 / mpp, working, fg, centre))
            }
            print("validation set \(setIndex + 1): \(spec), \(images.count) images")
        }
        var best = (f1: -1.0, maps: NucleusMapParameters())
        for t in stride(from: 0.04, through: 0.6, by: 0.02) {
            var maps = NucleusMapParameters()
            maps.seedThreshold = (t * 100).rounded() / 100
            var perSet = [MatchCounts](repeating: MatchCounts(truePositives: 0, falsePositives: 0, falseNegatives: 0), count: val.count)
            for c in cached {
                let found = NucleusDetector.detect(c.working, foreground: c.fg, centre: c.centre, parameters: maps)
                perSet[c.set] = perSet[c.set] + CentroidMatching.match(predicted: found.map(\.centroid), truth: c.truth, radius: c.radius).counts
            }
            let meanF1 = perSet.map(\.f1).reduce(0, +) / Double(perSet.count)
            let sets = perSet.enumerated().map {
                String(
                    format: "set %d P %.3f R %.3f F1 %.3f", $0.offset + 1, $0.element.precision,
                    $0.element.recall, $0.element.f1)
            }
            print(
                String(format: "validation: seed threshold %.2f  ", maps.seedThreshold) + sets.joined(separator: " | ")
                    + String(format: "  mean F1 %.3f", meanF1))
            if meanF1 > best.f1 + 1e-9 { best = (meanF1, maps) }
        }
        let seconds = Date().timeIntervalSince(t0)
        let command =
            "hali train-detector " + (data.map { "--data \($0)" } + val.map { "--val \($0)" }).joined(separator: " ")
            + " --steps \(steps) --batch-size \(batchSize) --crop \(crop) --lr \(lr) --widths \(widths) --colour-jitter \(colourJitter)"
            + " --scale-jitter \(scaleJitter) --seed \(seed) --working-mpp \(workingMpp)"
        try LearnedNucleusDetector.save(
            net, workingPixelSizeMicrons: workingMpp, maps: best.maps,
            extra: [
                "hali.training": command, "hali.validation_f1": String(format: "%.4f", best.f1),
                "hali.training_seconds": String(format: "%.0f", seconds),
            ],
            path: out)
        print(
            String(
                format: "train-detector: seed threshold %.2f (mean validation F1 %.3f); wrote %@ in %.1f min", best.maps.seedThreshold,
                best.f1, out, seconds / 60))
    }
}
