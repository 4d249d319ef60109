import Foundation
import HaliImaging
import HaliNet
import Testing

@testable import HaliTraining
import HaliInference

@Suite struct TrainingUtilityTests {
    @Test func npyRoundTrip() throws {
        let a = NPYArray(shape: [2, 3], float32: [1, 2, 3, 4, 5, -6.5])
        let b = try NPYArray.parse(a.serialized())
        #expect(b.shape == [2, 3] && b.float32Values == [1, 2, 3, 4, 5, -6.5])
        let u = try NPYArray.parse(NPYArray(shape: [1, 2, 2, 3], uint8: Array(0..<12)).serialized())
        #expect(u.dtype == "|u1" && u.uint8Values == Array(0..<12) && u.shape == [1, 2, 2, 3])
        #expect(throws: FileFormatError.self) { try NPYArray.parse(Array(a.serialized().dropLast(3))) }
    }

    @Test func aurocMatchesHandComputed() {
        #expect(auroc(scores: [0.1, 0.4, 0.35, 0.8], positive: [false, false, true, true]) == 0.75)
        #expect(auroc(scores: [1, 1], positive: [true, false]) == 0.5)
    }

    @Test func balancedAccuracy() {
        let m = ClassificationMetrics(truth: [0, 0, 0, 1], predicted: [0, 0, 0, 0], classes: 2)
        #expect(m.accuracy == 0.75 && m.balancedAccuracy == 0.5)
    }

    @Test func logisticRegressionSeparatesBlobs() {
        var rng = SeededRandom(seed: 1)
        var x: [Float] = [], y: [Int] = []
        for i in 0..<300 { let c = i % 3; y.append(c); x += [Float(c) * 3 + rng.normal(), Float(c % 2) * 2 + rng.normal()] }
        let m = LogisticRegression.fit(features: x, count: 300, dimension: 2, labels: y, classes: 3)
        let p = m.probabilities(features: x, count: 300)
        let acc = zip(p, y).filter { row, c in row.indices.max { row[$0] < row[$1] } == c }.count
        #expect(acc > 270)
    }

    @Test func patchResamplingKeepsCentre() {
        // 8×8 ramp (red = y·8 + x); a 2×2 patch at scale 1 centred on (4.5, 4.5) samples pixels 4…5 exactly.
        let px: [UInt8] = (0..<64).flatMap { (i: Int) -> [UInt8] in [UInt8(i), 0, 0] }
        let img = RGBImage(width: 8, height: 8, pixels: px)
        var out: [UInt8] = []
        PatchExtractor.patch(img, cx: 4.5, cy: 4.5, side: 2, scale: 1, into: &out)
        #expect(out.count == 12)
        #expect(out[0] == 36 && out[3] == 37 && out[6] == 44 && out[9] == 45)
    }

    /// A headless backbone (weights without `fc.*`) embeds, and refuses to classify instead of answering nonsense.
    @Test func headlessBackboneEmbedsButDoesNotClassify() throws {
        let net = ResNet(config: .compact(), seed: 1)
        let state = net.parameters.filter { !$0.name.hasPrefix("fc.") }.map { ($0.name, $0.fileShape, $0.fileValues()) }
        let (headless, meta) = try ResNet.load(
            try SafeTensors.parse(SafeTensors.serialize(state, metadata: BackboneMetadata().encode(config: net.config))))
        let pixels = (0..<(2 * 40 * 40 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let full = Embedder(net: net.folded(), metadata: meta), embedder = Embedder(net: headless.folded(), metadata: meta)
        let f = embedder.features(pixels: pixels, count: 2, height: 40, width: 40)
        let g = full.features(pixels: pixels, count: 2, height: 40, width: 40)  // equal up to OpenBLAS's summation order
        #expect(f.count == 2 * 128 && zip(f, g).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        #expect(try full.predict(features: f, count: 2).count == 2)
        let error = #expect(throws: NoHeadError.self) { try embedder.predict(features: f, count: 2) }
        #expect(error?.description.contains("no classification head") == true)
    }
}
