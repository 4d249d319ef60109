import HaliMath
import Testing

@testable import HaliNet

@Suite struct NucleusMapNetTests {
    /// Every layer's backward pass, through both skips and both poolings, against central finite differences.
    @Test func gradientsMatchFiniteDifferences() {
        let net = NucleusMapNet(widths: [3, 4, 5], seed: 11)
        let x = randomTensor(2, 8, 8, 3, seed: 5)
        let failures = gradientCheck(
            input: x, parameters: net.parameters, samples: 10,
            forward: { net.forward($0, training: true) },
            backward: { dy in
                net.backward(dy); return nil
            })
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// The folded, chunked inference path computes the same logits as the layer-by-layer inference forward pass.
    @Test func foldedEqualsLayerForward() {
        let net = NucleusMapNet(widths: [4, 6, 8], seed: 3)
        // Non-trivial batch-norm running statistics.
        for s in 0..<3 { _ = net.forward(randomTensor(2, 16, 16, 3, seed: UInt64(20 + s)), training: true) }
        let x = randomTensor(1, 20, 28, 3, seed: 9)  // 560 pixels: two full chunks and a padded one
        let reference = net.forward(x, training: false)
        let folded = net.folded().logits(x.data, height: 20, width: 28)
        let largest = zip(reference.data, folded).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest < 1e-4, "folded logits differ by \(largest)")
    }

    /// A pixel far enough from a crop's edges gets bit-identical logits in the crop and in the whole image when the crop
    /// is told its origin (a multiple of 4) and OpenBLAS is single-threaded: the 16×16 sgemm blocks of every level then
    /// lie on the whole image's grid. What makes tiled whole-slide detection independent of the tiling. Serialized: the
    /// cases share OpenBLAS's global thread count.
    @Test(.serialized, arguments: [64, 36, 20])
    func cropWithItsOriginGivesIdenticalInterior(offset c0: Int) {
        // 36 and 20 are not multiples of 16 at any level (36, 18, 9; 20, 10, 5): without the origin their blocks would
        // sit elsewhere, and the last bits of the sums would differ.
        let net = NucleusMapNet(widths: [4, 6, 8], seed: 4).folded()
        BLAS.withOneThreadPerCaller { checkCropInterior(net: net, offset: c0) }
    }

    private func checkCropInterior(net: FoldedNucleusMapNet, offset c0: Int) {
        let side = 160
        let x = randomTensor(1, side, side, 3, seed: 12).data
        let whole = net.logits(x, height: side, width: side)
        let cs = side - c0
        var crop = [Float](repeating: 0, count: cs * cs * 3)
        for y in 0..<cs { for i in 0..<(cs * 3) { crop[y * cs * 3 + i] = x[((y + c0) * side + c0) * 3 + i] } }
        func mismatches(_ part: [Float]) -> (count: Int, largest: Float) {
            var count = 0, largest: Float = 0
            for y in (c0 + 24)..<side {
                for xx in (c0 + 24)..<side {
                    for c in 0..<2 {
                        let a = whole[(y * side + xx) * 2 + c], b = part[((y - c0) * cs + xx - c0) * 2 + c]
                        if a != b { count += 1; largest = max(largest, abs(a - b)) }
                    }
                }
            }
            return (count, largest)
        }
        let told = mismatches(net.logits(crop, height: cs, width: cs, originX: c0, originY: c0))
        #expect(told.count == 0, "largest difference \(told.largest)")
        // Without the origin the crop's blocks sit elsewhere and the sums' order changes (seen with OpenBLAS's
        // Haswell kernels: 2,085 and 4,277 mismatches of ≤ 2.4e-6 for 36 and 20). Whether that order shows in the last
        // bits is the BLAS kernel's business (with another kernel none did), so only closeness is asserted here.
        let untold = mismatches(net.logits(crop, height: cs, width: cs))
        #expect(untold.largest < 1e-4, "\(untold)")
    }

    @Test func reusedWorkspaceGivesTheSameLogitsAsFreshBuffers() {
        // A workspace grown by a large image, then handed a smaller one (stale values left in it), then a larger one
        // (it grows again): every call must equal the same call with buffers of its own.
        let net = NucleusMapNet(widths: [4, 6, 8], seed: 5).folded()
        let space = NucleusMapWorkspace()
        for (side, seed) in [(96, 21), (36, 22), (132, 23)] as [(Int, UInt64)] {
            let x = randomTensor(1, side, side, 3, seed: seed).data
            #expect(
                net.logits(x, height: side, width: side, workspace: space) == net.logits(x, height: side, width: side),
                "side \(side)")
        }
    }

    @Test func sigmoidCrossEntropyKnownAnswer() {
        let logits = Tensor(n: 1, h: 1, w: 1, c: 2, data: [0, 2])
        let (loss, grad) = sigmoidCrossEntropy(logits: logits, targets: [0.5, 1], channelWeights: [1, 2])
        // 1·(0 − 0 + ln 2) + 2·(2 − 2 + ln(1 + e⁻²)) = 0.693147 + 2·0.126928
        #expect(abs(loss - 0.947003) < 1e-5)
        #expect(abs(grad.data[0]) < 1e-7)
        #expect(abs(grad.data[1] - 2 * (1 / (1 + Float(0.1353353)) - 1)) < 1e-6)
    }

    @Test func weightFilesRoundTripAndRefuseOthers() throws {
        let net = NucleusMapNet(widths: [4, 6, 8], seed: 2)
        let bytes = net.safetensors(metadata: ["hali.working_mpp": "0.5"])
        let back = try NucleusMapNet.load(try SafeTensors.parse(bytes))
        #expect(back.widths == [4, 6, 8])
        for (a, b) in zip(net.parameters, back.parameters) { #expect(a.value == b.value, "\(a.name)") }
        // A backbone file is not a detector file.
        let resnet = ResNet(config: .compact(), seed: 1)
        #expect(throws: SafeTensorsError.self) {
            _ = try NucleusMapNet.load(try SafeTensors.parse(resnet.safetensors(metadata: BackboneMetadata())))
        }
        // A missing tensor is named.
        var file = try SafeTensors.parse(bytes)
        file.tensors["dec1.conv.weight"] = nil
        let reserialised = SafeTensors.serialize(file.tensors.map { ($0.key, $0.value.shape, $0.value.values) }, metadata: file.metadata)
        #expect(throws: SafeTensorsError.missing(name: "dec1.conv.weight", expectedShape: [4, 4, 3, 3])) {
            _ = try NucleusMapNet.load(try SafeTensors.parse(reserialised))
        }
    }
}
