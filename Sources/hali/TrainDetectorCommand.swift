import ArgumentParser
import Foundation
import HaliDatasets
import HaliImaging
import HaliNet
import HaliTraining

/// `hali train-detector`: trains the learned nucleus detector (U-Net maps) on instance-labelled images.
struct TrainDetectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-detector",
        abstract: "Train the learned nucleus detector on instance maps (DIR/images, DIR/instances, DIR/meta.json).",
        discussion: """
            The last --val-count images (sorted by name) of the set are held out: the seed threshold is chosen on \
            them (best F1 at 3 µm), and their F1 is printed. Evaluate on other data with \
            `hali eval detection --detector-weights FILE`.
            """)

    @Option(help: "Instance-labelled set (CoNSeP layout).") var data: String
    @Option(help: "Output .safetensors file.") var out: String
    @Option(help: "Images held out for validation (the last N by name).") var valCount = 4
    @Option(help: "Optimiser steps.") var steps = 1500
    @Option(help: "Mini-batch size.") var batchSize = 8
    @Option(help: "Crop side at the working resolution (multiple of 4).") var crop = 128
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Channel widths of the three levels, e.g. 16,32,64.") var widths = "16,32,64"
    @Option(help: "Colour jitter strength (0 = none).") var colourJitter: Float = 1
    @Option(help: "Scale jitter a: crops resampled by exp(U(−a, a)); 0 = none.") var scaleJitter: Float = 0.25
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "OpenBLAS threads.") var threads = 2
    @Option(help: "Working pixel size in µm.") var workingMpp = 0.5

    func validate() throws {
        guard crop % 4 == 0, crop >= 32 else { throw ValidationError("--crop must be a multiple of 4, at least 32") }
        guard parsedWidths().count == 3 else { throw ValidationError("--widths needs three positive integers") }
        guard steps > 0, batchSize > 0, valCount >= 1 else { throw ValidationError("--steps, --batch-size, --val-count must be positive") }
    }

    func parsedWidths() -> [Int] { widths.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    func run() throws {
        HaliTrainingSetup.blasThreads(threads)
        HaliTrainingSetup.keepLargeAllocations()
        let t0 = Date()
        let dataset = try DatasetReader.load(directory: data)
        let names = dataset.images.map(\.name).sorted()
        guard names.count > valCount else { throw ValidationError("\(data): \(names.count) images, cannot hold out \(valCount)") }
        let trainNames = Array(names.dropLast(valCount)), valNames = Array(names.suffix(valCount))
        var parameters = NucleusDetectionParameters()
        parameters.workingPixelSizeMicrons = workingMpp
        let samples = try DetectorData.load(directory: data, names: trainNames, parameters: parameters)
        print("train-detector: \(samples.count) training images (\(samples.map { $0.centroids.count }.reduce(0, +)) nuclei), "
              + "validation \(valNames.joined(separator: " "))")
        var options = DetectorTrainingOptions()
        options.steps = steps; options.batchSize = batchSize; options.crop = crop; options.learningRate = lr
        options.widths = parsedWidths(); options.seed = seed; options.colourJitter = colourJitter
        options.scaleJitter = scaleJitter
        let net = DetectorTraining.train(samples, options: options) { step, loss in
            // Progress on stderr (unbuffered), results on stdout.
            FileHandle.standardError.write(Data(String(format: "step %5d/%d  loss %.4f  %.0f s\n", step, steps, loss,
                                                       Date().timeIntervalSince(t0)).utf8))
        }
        // Seed threshold on the held-out images.
        guard let mpp = dataset.micronsPerPixel else { throw ValidationError("\(data): no approx_mpp in meta.json") }
        let learned = LearnedNucleusDetector(net: net, workingPixelSizeMicrons: workingMpp)
        var cached: [(truth: [Point], working: WorkingImage, fg: FloatImage, centre: FloatImage)] = []
        for img in dataset.images where valNames.contains(img.name) {
            let working = learned.detector.workingImage(try PNGReader.readRGB(path: img.path), micronsPerPixel: mpp)
            let (fg, centre) = learned.probabilityMaps(working)
            cached.append((img.centroids, working, fg, centre))
        }
        var best = (f1: -1.0, maps: NucleusMapParameters())
        for t in stride(from: 0.04, through: 0.6, by: 0.02) {
            var maps = NucleusMapParameters()
            maps.seedThreshold = (t * 100).rounded() / 100
            var total = MatchCounts(truePositives: 0, falsePositives: 0, falseNegatives: 0)
            for c in cached {
                let found = NucleusDetector.detect(c.working, foreground: c.fg, centre: c.centre, parameters: maps)
                total = total + CentroidMatching.match(predicted: found.map(\.centroid), truth: c.truth, radius: 3 / mpp).counts
            }
            print(String(format: "validation: seed threshold %.2f  P %.3f  R %.3f  F1 %.3f", maps.seedThreshold, total.precision,
                         total.recall, total.f1))
            if total.f1 > best.f1 { best = (total.f1, maps) }
        }
        let seconds = Date().timeIntervalSince(t0)
        try LearnedNucleusDetector.save(
            net, workingPixelSizeMicrons: workingMpp, maps: best.maps,
            extra: ["hali.training": "hali train-detector --data \(data) --val-count \(valCount) --steps \(steps) --batch-size \(batchSize) "
                        + "--crop \(crop) --lr \(lr) --widths \(widths) --colour-jitter \(colourJitter) --scale-jitter \(scaleJitter) --seed \(seed)",
                    "hali.validation_f1": String(format: "%.4f", best.f1), "hali.training_seconds": String(format: "%.0f", seconds)],
            path: out)
        print(String(format: "train-detector: seed threshold %.2f (validation F1 %.3f); wrote %@ in %.1f min", best.maps.seedThreshold,
                     best.f1, out, seconds / 60))
    }
}
