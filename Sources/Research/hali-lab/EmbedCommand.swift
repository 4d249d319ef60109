import ArgumentParser
import Foundation
import HaliInference
import HaliNet
import HaliTraining

/// `hali embed`: penultimate-layer features of an N×H×W×3 uint8 .npy of patches.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Run the backbone on N×H×W×3 uint8 patches (.npy) and write N×D float32 features (.npy).",
        discussion: "Patches must already be sampled at the weights' µm/px (hali.patch_um / hali.patch_px in the file).")

    @Option(help: "Weights (.safetensors).") var weights: String
    @Option(help: "Input patches, N×H×W×3 uint8 .npy.") var patches: String
    @Option(help: "Output features, N×D float32 .npy.") var out: String
    @Option(help: "Worker threads (each runs its own batches with single-threaded OpenBLAS).") var threads = 2
    @Option(help: "Patches per batch.") var batchSize = 128

    func run() throws {
        let (net, meta) = try WeightsFile.load(path: weights)
        let input = try NPYArray.read(path: patches)
        guard input.dtype == "|u1", input.shape.count == 4, input.shape[3] == 3 else {
            throw ValidationError("\(patches): expected an N×H×W×3 uint8 array, got \(input.dtype) \(input.shape)")
        }
        let (n, h, w) = (input.shape[0], input.shape[1], input.shape[2])
        if h != meta.patchPixels || w != meta.patchPixels {
            FileHandle.standardError.write(
                Data(
                    "warning: patches are \(h)×\(w), the weights expect \(meta.patchPixels)×\(meta.patchPixels) at \(meta.micronsPerPixel) µm/px\n"
                        .utf8))
        }
        var e = Embedder(net: net.folded(), metadata: meta)
        e.batchSize = batchSize
        let t0 = Date()
        let f = e.features(pixels: input.uint8Values, count: n, height: h, width: w, threads: threads)
        let dt = Date().timeIntervalSince(t0)
        try NPYArray(shape: [n, net.config.featureDimension], float32: f).write(path: out)
        FileHandle.standardError.write(
            Data(
                String(format: "%d patches → %d features in %.2f s (%.0f patches/s)\n", n, net.config.featureDimension, dt, Double(n) / max(dt, 1e-9))
                    .utf8))
    }
}
