// Running a folded backbone over uint8 patches: normalisation from the weights' metadata, batches, threads.
// The daemon and ingest run it; training (HaliTraining) adds patch sets and writes the weights it loads.

import Dispatch
import HaliMath
public import HaliNet

public struct Embedder: Sendable {
    public var net: FoldedResNet
    public var metadata: BackboneMetadata
    /// Patches per forward pass. Small batches keep a layer's activations and im2col columns in cache:
    /// hali-bench-cnn on 2 cores measured 4,411 cells/s at 8, 3,633 at 32 and 3,000 at 128 (batches of 4–8 are
    /// the plateau).
    public var batchSize = 8

    public init(net: FoldedResNet, metadata: BackboneMetadata) { self.net = net; self.metadata = metadata }

    /// Penultimate features (count × D, row-major) of uint8 NHWC patches (count × side × side × 3).
    /// `threads` > 1 runs that many batches at once, each with single-threaded OpenBLAS.
    public func features(pixels: [UInt8], count: Int, height: Int, width: Int, threads: Int = 1) -> [Float] {
        let D = net.config.featureDimension
        let batches = (count + batchSize - 1) / batchSize
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: count * D)
        defer { out.deallocate() }
        let outBase = UnsafeSendablePointer(out.baseAddress!)
        let per = height * width * 3
        let mean = metadata.mean, std = metadata.std
        let inv: [Float] = std.map { 1 / (255 * $0) }
        let sh: [Float] = (0..<3).map { -mean[$0] / std[$0] }
        // One workspace per worker: the input batch (slot 5) and every activation are reused across batches.
        let run: @Sendable (Int, InferenceWorkspace) -> Void = { bi, workspace in
            let lo = bi * batchSize, hi = min(count, lo + batchSize)
            let x = workspace.buffer(5, count: (hi - lo) * per)
            pixels.withUnsafeBufferPointer { p in
                for i in 0..<((hi - lo) * height * width) {
                    let s = lo * per + i * 3
                    x[i * 3] = Float(p[s]) * inv[0] + sh[0]
                    x[i * 3 + 1] = Float(p[s + 1]) * inv[1] + sh[1]
                    x[i * 3 + 2] = Float(p[s + 2]) * inv[2] + sh[2]
                }
            }
            net.features(x, n: hi - lo, h: height, w: width, into: outBase.pointer + lo * D, workspace: workspace)
        }
        if threads <= 1 {
            let workspace = InferenceWorkspace()
            for b in 0..<batches { run(b, workspace) }
        } else {
            let next = AtomicCounter()
            BLAS.withOneThreadPerCaller {
                DispatchQueue.concurrentPerform(iterations: threads) { _ in
                    let workspace = InferenceWorkspace()
                    while true {
                        let b = next.increment()
                        if b >= batches { break }
                        run(b, workspace)
                    }
                }
            }
        }
        return Array(out)
    }

    /// Arg-max class of the network's own head on features already computed (count × D); refused for a headless
    /// backbone.
    public func predict(features f: [Float], count: Int) throws -> [Int] {
        guard net.config.hasHead else { throw NoHeadError() }
        let logits = net.logits(features: Tensor(n: count, h: 1, w: 1, c: net.config.featureDimension, data: f))
        let K = net.config.numClasses
        return (0..<count).map { b in (0..<K).max { logits.data[b * K + $0] < logits.data[b * K + $1] }! }
    }
}

struct UnsafeSendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
}

final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let q = DispatchQueue(label: "hali.counter")
    func increment() -> Int {
        q.sync {
            let v = value; value += 1; return v
        }
    }
}

/// Classes were asked of weights without their head (`fc.weight`, `fc.bias`): a headless backbone file gives features
/// only (`ResNet.load`).
public struct NoHeadError: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
        "these weights have no classification head (fc.weight, fc.bias): a headless backbone gives features, not classes"
    }
}
