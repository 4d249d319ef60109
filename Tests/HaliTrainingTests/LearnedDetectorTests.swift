import Foundation
import HaliDatasets
import HaliImaging
import HaliNet
import HaliPNG
import HaliTestFixtures
import Testing

@testable import HaliTraining
import HaliInference

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let sharedData = SharedData.root
let committedDetectorWeights = repositoryRoot.appendingPathComponent("Deploy/models/hali-detector-v1.safetensors").path

@Suite struct LearnedDetectorTests {
    /// The committed weights on a CoNSeP test image (never seen in training: they were trained on CoNSeP train).
    @Test func committedWeightsFindTheNucleiOfAnUnseenImage() throws {
        let detector = try LearnedNucleusDetector.load(path: committedDetectorWeights)
        let set = try DatasetReader.load(directory: sharedData + "/consep/test")
        let image = try #require(set.images.first { $0.name == "test_1.png" })
        let found = detector.detect(try PNGReader.readRGB(path: image.path), micronsPerPixel: 0.25)
        let counts = CentroidMatching.match(predicted: found.map(\.centroid), truth: image.centroids, radius: 12).counts
        #expect(counts.f1 > 0.75, "F1 \(counts.f1): \(counts)")
        // Every nucleus carries the watershed detector's measurements.
        let first = try #require(found.first)
        #expect(first.contour.count >= 4 && first.areaMicrons2 >= 4 && first.stains.map(\.name) == ["Hematoxylin", "Eosin"])
    }

    @Test func wrongFilesAreRefusedWithTheirReason() throws {
        let backbone = repositoryRoot.appendingPathComponent("Deploy/models/hali-nuclei-v2.safetensors").path
        #expect(throws: SafeTensorsError.self) { _ = try LearnedNucleusDetector.load(path: backbone) }
        #expect(throws: FileFormatError.self) { _ = try LearnedNucleusDetector.load(path: "/nonexistent/detector.safetensors") }
    }

    /// A few steps on one real image lower the loss on a fixed crop; the same seed gives the same weights.
    @Test func trainingLowersTheLossAndIsDeterministic() throws {
        let samples = try DetectorData.load(directory: sharedData + "/consep/train", names: ["train_1.png"])
        #expect(samples.count == 1 && samples[0].width == 384 && samples[0].centroids.count > 100)
        var options = DetectorTrainingOptions()
        options.steps = 40; options.batchSize = 4; options.crop = 32; options.widths = [4, 8, 8]; options.learningRate = 1e-2
        // A fixed 64×64 window as the yardstick.
        let s = samples[0], side = 64
        var x = Tensor(n: 1, h: side, w: side, c: 3)
        var t = [Float](repeating: 0, count: side * side * 2)
        for y in 0..<side {
            for xx in 0..<side {
                let src = (100 + y) * s.width + 100 + xx
                for c in 0..<3 { x.data[(y * side + xx) * 3 + c] = s.input[src * 3 + c] * LearnedNucleusDetector.inputScale }
                t[(y * side + xx) * 2] = s.targets[src * 2]; t[(y * side + xx) * 2 + 1] = s.targets[src * 2 + 1]
            }
        }
        func loss(_ net: NucleusMapNet) -> Float {
            sigmoidCrossEntropy(logits: net.forward(x, training: false), targets: t, channelWeights: [1, 2]).loss
        }
        let untrained = NucleusMapNet(widths: options.widths, seed: options.seed)
        let trained = DetectorTraining.train(samples, options: options)
        #expect(loss(trained) < 0.8 * loss(untrained), "loss \(loss(untrained)) → \(loss(trained))")
        options.steps = 5
        let a = DetectorTraining.train(samples, options: options), b = DetectorTraining.train(samples, options: options)
        // Same seed, same crops: the same weights up to rounding. Not bit-equal: other suites running at the same time
        // may change OpenBLAS's thread count between the two runs, which reorders its sums.
        for (p, q) in zip(a.parameters, b.parameters) {
            let largest = zip(p.value, q.value).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
            #expect(largest < 1e-3, "\(p.name): relative difference \(largest)")
        }
    }
}
