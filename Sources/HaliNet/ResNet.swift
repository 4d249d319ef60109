// ResNets with torchvision's BasicBlock and torchvision's parameter names (conv1.weight, bn1.*,
// layer1.0.conv1.weight, layer1.0.downsample.0.weight, …, fc.weight|bias), so that a torchvision
// `resnet18().state_dict()` saved as safetensors loads as is.

import HaliMath

/// The shape of a ResNet: stem convolution (+ optional 3×3/2 max pool), stages of BasicBlocks, linear head.
public struct ResNetConfig: Sendable, Equatable, CustomStringConvertible {
    public var inputChannels = 3
    public var stemWidth: Int
    public var stemKernel: Int
    public var stemStride: Int
    public var stemMaxPool: Bool
    public var widths: [Int]
    public var blocks: [Int]
    public var strides: [Int]
    public var numClasses: Int

    public init(
        stemWidth: Int, stemKernel: Int, stemStride: Int, stemMaxPool: Bool, widths: [Int], blocks: [Int],
        strides: [Int], numClasses: Int
    ) {
        precondition(widths.count == blocks.count && widths.count == strides.count && !widths.isEmpty)
        self.stemWidth = stemWidth; self.stemKernel = stemKernel; self.stemStride = stemStride
        self.stemMaxPool = stemMaxPool; self.widths = widths; self.blocks = blocks; self.strides = strides
        self.numClasses = numClasses
    }

    /// torchvision ResNet-18: 7×7/2 stem, 3×3/2 max pool, 4 stages × 2 blocks, widths 64…512.
    public static func resnet18(numClasses: Int = 1000) -> ResNetConfig {
        ResNetConfig(
            stemWidth: 64, stemKernel: 7, stemStride: 2, stemMaxPool: true, widths: [64, 128, 256, 512],
            blocks: [2, 2, 2, 2], strides: [1, 2, 2, 2], numClasses: numClasses)
    }

    /// HALI's default nucleus backbone for 40×40 patches: 3×3/1 stem (no pool) at 40×40, then one BasicBlock
    /// per stage at 20×20, 10×10, 5×5; 128-d features; ≈ 21 M multiply-adds per patch.
    public static func compact(numClasses: Int = 4) -> ResNetConfig {
        ResNetConfig(
            stemWidth: 32, stemKernel: 3, stemStride: 1, stemMaxPool: false, widths: [32, 64, 128],
            blocks: [1, 1, 1], strides: [2, 2, 2], numClasses: numClasses)
    }

    public var featureDimension: Int { widths.last! }

    /// Whether the network has its linear head (`fc`). Without one (`numClasses` 0, a headless backbone file)
    /// it gives features only: classifying or training needs a head.
    public var hasHead: Bool { numClasses > 0 }

    /// Compact text form stored in weight files (`hali.arch`), e.g.
    /// `resnet stem=32,3,1,nopool widths=32,64,128 blocks=1,1,1 strides=2,2,2 classes=4`.
    public var description: String {
        func j(_ a: [Int]) -> String { a.map(String.init).joined(separator: ",") }
        return "resnet stem=\(stemWidth),\(stemKernel),\(stemStride),\(stemMaxPool ? "maxpool" : "nopool") "
            + "widths=\(j(widths)) blocks=\(j(blocks)) strides=\(j(strides)) classes=\(numClasses)"
    }

    public init?(description s: String) {
        var f: [String: [String]] = [:]
        let parts = s.split(separator: " ")
        guard parts.first == "resnet" else { return nil }
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { return nil }
            f[String(kv[0])] = kv[1].split(separator: ",").map(String.init)
        }
        func ints(_ k: String) -> [Int]? { f[k].flatMap { v in v.compactMap { Int($0) }.count == v.count ? v.compactMap { Int($0) } : nil } }
        guard let stem = f["stem"], stem.count == 4, let sw = Int(stem[0]), let sk = Int(stem[1]), let ss = Int(stem[2]),
            let w = ints("widths"), let b = ints("blocks"), let st = ints("strides"), let c = ints("classes")?.first,
            w.count == b.count, w.count == st.count, !w.isEmpty
        else { return nil }
        self.init(
            stemWidth: sw, stemKernel: sk, stemStride: ss, stemMaxPool: stem[3] == "maxpool", widths: w,
            blocks: b, strides: st, numClasses: c)
    }

    /// Multiply-adds of the convolutions and the head for one H×W input.
    public func multiplyAdds(height: Int, width: Int) -> Int {
        var h = convOutputSize(height, kernel: stemKernel, stride: stemStride, pad: stemKernel / 2)
        var w = convOutputSize(width, kernel: stemKernel, stride: stemStride, pad: stemKernel / 2)
        var total = h * w * stemKernel * stemKernel * inputChannels * stemWidth
        if stemMaxPool { h = convOutputSize(h, kernel: 3, stride: 2, pad: 1); w = convOutputSize(w, kernel: 3, stride: 2, pad: 1) }
        var c = stemWidth
        for (i, width_) in widths.enumerated() {
            for j in 0..<blocks[i] {
                let s = j == 0 ? strides[i] : 1
                let ho = convOutputSize(h, kernel: 3, stride: s, pad: 1), wo = convOutputSize(w, kernel: 3, stride: s, pad: 1)
                total += ho * wo * 9 * c * width_ + ho * wo * 9 * width_ * width_
                if s != 1 || c != width_ { total += ho * wo * c * width_ }
                h = ho; w = wo; c = width_
            }
        }
        return total + c * numClasses
    }
}

/// torchvision's BasicBlock: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x).
public final class BasicBlock: @unchecked Sendable {
    public let conv1: Conv2D, bn1: BatchNorm, conv2: Conv2D, bn2: BatchNorm
    public let downConv: Conv2D?, downBN: BatchNorm?
    private var r1 = Tensor(n: 0, h: 0, w: 0, c: 0), out = Tensor(n: 0, h: 0, w: 0, c: 0)

    public init(name: String, inChannels: Int, outChannels: Int, stride: Int, rng: inout SeededRandom) {
        conv1 = Conv2D(
            name: name + ".conv1.weight", inChannels: inChannels, outChannels: outChannels, kernel: 3,
            stride: stride, pad: 1, rng: &rng)
        bn1 = BatchNorm(name: name + ".bn1", channels: outChannels)
        conv2 = Conv2D(
            name: name + ".conv2.weight", inChannels: outChannels, outChannels: outChannels, kernel: 3,
            stride: 1, pad: 1, rng: &rng)
        bn2 = BatchNorm(name: name + ".bn2", channels: outChannels)
        if stride != 1 || inChannels != outChannels {
            downConv = Conv2D(
                name: name + ".downsample.0.weight", inChannels: inChannels, outChannels: outChannels,
                kernel: 1, stride: stride, pad: 0, rng: &rng)
            downBN = BatchNorm(name: name + ".downsample.1", channels: outChannels)
        } else {
            downConv = nil; downBN = nil
        }
    }

    public var parameters: [Parameter] {
        [conv1.weight] + bn1.parameters + [conv2.weight] + bn2.parameters
            + (downConv.map { [$0.weight] + downBN!.parameters } ?? [])
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = bn1.forward(conv1.forward(x, training: training), training: training)
        Activation.relu(&h)
        var o = bn2.forward(conv2.forward(h, training: training), training: training)
        let s = downConv.map { downBN!.forward($0.forward(x, training: training), training: training) } ?? x
        for i in 0..<o.count { o.data[i] = max(o.data[i] + s.data[i], 0) }
        if training { r1 = h; out = o }
        return o
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let d = Activation.reluBackward(dy, output: out)
        let dh = Activation.reluBackward(conv2.backward(bn2.backward(d))!, output: r1)
        var dx = conv1.backward(bn1.backward(dh))!
        let ds = downConv.map { $0.backward(downBN!.backward(d))! } ?? d
        for i in 0..<dx.count { dx.data[i] += ds.data[i] }
        return dx
    }
}

/// A trainable ResNet (training-mode batch norm, caches for backward). For inference use `folded()`.
public final class ResNet: @unchecked Sendable {
    public let config: ResNetConfig
    public let conv1: Conv2D, bn1: BatchNorm
    public let pool: MaxPool?
    public let blocks: [BasicBlock]
    public let fc: Linear
    private var stemOut = Tensor(n: 0, h: 0, w: 0, c: 0)
    private var lastShape = (h: 0, w: 0)

    public init(config: ResNetConfig, seed: UInt64) {
        self.config = config
        var rng = SeededRandom(seed: seed)
        conv1 = Conv2D(
            name: "conv1.weight", inChannels: config.inputChannels, outChannels: config.stemWidth,
            kernel: config.stemKernel, stride: config.stemStride, pad: config.stemKernel / 2, rng: &rng)
        bn1 = BatchNorm(name: "bn1", channels: config.stemWidth)
        pool = config.stemMaxPool ? MaxPool(kernel: 3, stride: 2, pad: 1) : nil
        var b: [BasicBlock] = []
        var c = config.stemWidth
        for (i, w) in config.widths.enumerated() {
            for j in 0..<config.blocks[i] {
                b.append(
                    BasicBlock(
                        name: "layer\(i + 1).\(j)", inChannels: c, outChannels: w,
                        stride: j == 0 ? config.strides[i] : 1, rng: &rng))
                c = w
            }
        }
        blocks = b
        fc = Linear(name: "fc", inFeatures: c, outFeatures: config.numClasses, rng: &rng)
    }

    /// Every tensor of the state dict, in torchvision order (without `fc.*` when headless: the file has none).
    public var parameters: [Parameter] {
        [conv1.weight] + bn1.parameters + blocks.flatMap(\.parameters) + (config.hasHead ? [fc.weight, fc.bias] : [])
    }

    public var trainableParameters: [Parameter] { parameters.filter(\.trainable) }

    /// (penultimate features N×1×1×D, logits N×1×1×classes).
    public func forward(_ x: Tensor, training: Bool) -> (features: Tensor, logits: Tensor) {
        var h = bn1.forward(conv1.forward(x, training: training), training: training)
        Activation.relu(&h)
        if training { stemOut = h }
        if let pool { h = pool.forward(h, training: training) }
        for b in blocks { h = b.forward(h, training: training) }
        lastShape = (h.h, h.w)
        let f = GlobalAveragePool.forward(h)
        return (f, fc.forward(f, training: training))
    }

    /// Back-propagates dL/dlogits through the network, accumulating every parameter gradient.
    public func backward(_ dLogits: Tensor) {
        var d = GlobalAveragePool.backward(fc.backward(dLogits), h: lastShape.h, w: lastShape.w)
        for b in blocks.reversed() { d = b.backward(d) }
        if let pool { d = pool.backward(d) }
        d = Activation.reluBackward(d, output: stemOut)
        conv1.backward(bn1.backward(d), needInputGradient: false)
    }

    public func zeroGrad() { for p in trainableParameters { p.zeroGrad() } }

    /// The inference network with every batch norm folded into the convolution before it.
    public func folded() -> FoldedResNet {
        func fold(_ conv: Conv2D, _ bn: BatchNorm, relu: Bool) -> FoldedConv {
            let (s, t) = bn.inferenceAffine()
            var w = conv.weight.value
            let O = conv.outChannels
            for r in 0..<(w.count / O) { for o in 0..<O { w[r * O + o] *= s[o] } }
            return FoldedConv(
                inChannels: conv.inChannels, outChannels: O, kernel: conv.kernel, stride: conv.stride,
                pad: conv.pad, weight: w, bias: t, relu: relu)
        }
        return FoldedResNet(
            config: config, stem: fold(conv1, bn1, relu: true),
            blocks: blocks.map { b in
                // conv2's ReLU comes after the residual add, which FoldedConv's epilogue does before activating.
                FoldedBlock(
                    conv1: fold(b.conv1, b.bn1, relu: true), conv2: fold(b.conv2, b.bn2, relu: true),
                    down: b.downConv.map { fold($0, b.downBN!, relu: false) })
            },
            fcWeight: fc.weight.value, fcBias: fc.bias.value)
    }
}

// MARK: - Inference

/// A convolution with batch norm folded in: y = act(im2col(x)·W + b), W HWIO.
public struct FoldedConv: Sendable {
    public var inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pad: Int
    public var weight: [Float]
    public var bias: [Float]
    public var relu: Bool

    /// Output height and width for an input of `h`×`w`.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        (convOutputSize(h, kernel: kernel, stride: stride, pad: pad), convOutputSize(w, kernel: kernel, stride: stride, pad: pad))
    }

    /// Floats of im2col scratch needed for `n` images of `h`×`w` (0 for 1×1 stride-1 convolutions).
    public func columnsCount(n: Int, h: Int, w: Int) -> Int {
        if kernel == 1 && stride == 1 && pad == 0 { return 0 }
        let o = outputSize(h: h, w: w)
        return n * o.h * o.w * kernel * kernel * inChannels
    }

    /// Runs on `x` (N×H×W×Cin); `residual`, when given, is added before the activation.
    public func forward(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        let o = outputSize(h: x.h, w: x.w)
        let M = x.n * o.h * o.w
        var y = Tensor(
            n: x.n, h: o.h, w: o.w, c: outChannels,
            data: [Float](unsafeUninitializedCapacity: M * outChannels) { _, c in c = M * outChannels })
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: max(1, columnsCount(n: x.n, h: x.h, w: x.w)))
        defer { cols.deallocate() }
        x.data.withUnsafeBufferPointer { px in
            y.data.withUnsafeMutableBufferPointer { py in
                if let residual {
                    residual.data.withUnsafeBufferPointer { pr in
                        forward(px.baseAddress!, n: x.n, h: x.h, w: x.w, residual: pr.baseAddress!, into: py.baseAddress!, columns: cols)
                    }
                } else {
                    forward(px.baseAddress!, n: x.n, h: x.h, w: x.w, residual: nil, into: py.baseAddress!, columns: cols)
                }
            }
        }
        return y
    }

    /// The same on raw NHWC buffers: `y` (N×Ho×Wo×Cout) = act(im2col(`x`)·W + b [+ `residual`]), with `columns`
    /// at least `columnsCount(n:h:w:)` floats of scratch. Allocates nothing, so a caller that keeps its buffers
    /// (`InferenceWorkspace`) runs batch after batch without touching the allocator.
    /// - Complexity: N·Ho·Wo·k²·Cin·Cout multiply-adds (one sgemm) plus O(N·Ho·Wo·(k²·Cin + Cout)) copies.
    public func forward(
        _ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, residual: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>
    ) {
        let o = outputSize(h: h, w: w)
        let M = n * o.h * o.w, K = kernel * kernel * inChannels, O = outChannels
        weight.withUnsafeBufferPointer { pw in
            if kernel == 1 && stride == 1 && pad == 0 {
                BLAS.sgemm(m: M, n: O, k: K, a: x, lda: K, b: pw.baseAddress!, ldb: O, c: y, ldc: O)
            } else {
                im2col(
                    x, h: h, w: w, c: inChannels, k: kernel, stride: stride, pad: pad, ho: o.h, wo: o.w,
                    images: 0..<n, into: columns)
                BLAS.sgemm(m: M, n: O, k: K, a: columns, lda: K, b: pw.baseAddress!, ldb: O, c: y, ldc: O)
            }
        }
        bias.withUnsafeBufferPointer { pb in
            addBiasResidualActivation(y, rows: M, columns: O, bias: pb.baseAddress!, residual: residual, relu: relu)
        }
    }
}

public struct FoldedBlock: Sendable {
    public var conv1: FoldedConv, conv2: FoldedConv, down: FoldedConv?

    public func forward(_ x: Tensor) -> Tensor {
        let h = conv1.forward(x)
        let s = down.map { $0.forward(x) } ?? x
        return conv2.forward(h, residual: s)
    }
}

/// Inference-only ResNet: batch norms folded, ReLUs and residual adds fused into the convolution epilogue.
public struct FoldedResNet: Sendable {
    public var config: ResNetConfig
    public var stem: FoldedConv
    public var blocks: [FoldedBlock]
    public var fcWeight: [Float], fcBias: [Float]

    /// Penultimate features (after global average pooling), N×1×1×D.
    public func features(_ x: Tensor) -> Tensor {
        var h = stem.forward(x)
        if config.stemMaxPool { h = MaxPool(kernel: 3, stride: 2, pad: 1).forward(h, training: false) }
        for b in blocks { h = b.forward(h) }
        return GlobalAveragePool.forward(h)
    }

    /// Penultimate features of `n` NHWC images at `x` (n×h×w×3), written to `out` (n × featureDimension),
    /// with every intermediate buffer taken from `workspace`: no allocation once the workspace has grown to
    /// the batch size. Equal to `features(_:)` (same sgemm calls on the same values).
    public func features(
        _ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, into out: UnsafeMutablePointer<Float>,
        workspace: InferenceWorkspace
    ) {
        // Slots: 0/1 alternate as a block's input and output, 2 holds conv1's output, 3 the downsampled
        // shortcut, 4 the im2col columns.
        var size = stem.outputSize(h: h, w: w)
        var current = workspace.buffer(0, count: n * size.h * size.w * stem.outChannels)
        stem.forward(
            x, n: n, h: h, w: w, residual: nil, into: current,
            columns: workspace.buffer(4, count: stem.columnsCount(n: n, h: h, w: w)))
        var slot = 0
        var channels = stem.outChannels
        if config.stemMaxPool {
            let (ph, pw) = (convOutputSize(size.h, kernel: 3, stride: 2, pad: 1), convOutputSize(size.w, kernel: 3, stride: 2, pad: 1))
            let pooled = workspace.buffer(1, count: n * ph * pw * channels)
            maxPool(
                current, n: n, h: size.h, w: size.w, c: channels, kernel: 3, stride: 2, pad: 1, into: pooled,
                ho: ph, wo: pw, argmax: nil)
            current = pooled; slot = 1; size = (ph, pw)
        }
        for block in blocks {
            let mid = block.conv1.outputSize(h: size.h, w: size.w)
            let hidden = workspace.buffer(2, count: n * mid.h * mid.w * block.conv1.outChannels)
            block.conv1.forward(
                current, n: n, h: size.h, w: size.w, residual: nil, into: hidden,
                columns: workspace.buffer(4, count: block.conv1.columnsCount(n: n, h: size.h, w: size.w)))
            var shortcut = UnsafePointer(current)
            if let down = block.down {
                let s = workspace.buffer(3, count: n * mid.h * mid.w * down.outChannels)
                down.forward(
                    current, n: n, h: size.h, w: size.w, residual: nil, into: s,
                    columns: workspace.buffer(4, count: down.columnsCount(n: n, h: size.h, w: size.w)))
                shortcut = UnsafePointer(s)
            }
            let conv2 = block.conv2
            let next = workspace.buffer(1 - slot, count: n * mid.h * mid.w * conv2.outChannels)
            conv2.forward(
                hidden, n: n, h: mid.h, w: mid.w, residual: shortcut, into: next,
                columns: workspace.buffer(4, count: conv2.columnsCount(n: n, h: mid.h, w: mid.w)))
            current = next; slot = 1 - slot; size = mid; channels = conv2.outChannels
        }
        GlobalAveragePool.forward(current, n: n, positions: size.h * size.w, channels: channels, into: out)
    }

    public func logits(features f: Tensor) -> Tensor {
        let D = f.c, K = config.numClasses
        var y = Tensor(n: f.n, h: 1, w: 1, c: K)
        for b in 0..<f.n {
            for k in 0..<K {
                var s = fcBias[k]
                for d in 0..<D { s += f.data[b * D + d] * fcWeight[k * D + d] }
                y.data[b * K + k] = s
            }
        }
        return y
    }
}

/// Scratch buffers reused from batch to batch by one inference thread (not shareable between threads).
/// Why: a batch of 128 compact-backbone patches needs activations and im2col columns of 20–60 MB; allocating
/// them per layer made glibc map and unmap fresh pages every time (above its mmap threshold), and the page
/// faults cost as much as the convolutions (hali-bench-cnn: 1.8× faster with the buffers kept).
public final class InferenceWorkspace {
    private var pointers: [UnsafeMutablePointer<Float>?]
    private var capacities: [Int]

    public init(slots: Int = 6) {
        pointers = Array(repeating: nil, count: slots); capacities = Array(repeating: 0, count: slots)
    }

    /// At least `count` floats in `slot`; the contents are not kept when it grows.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacities[slot] || pointers[slot] == nil {
            pointers[slot]?.deallocate()
            let capacity = max(count, 1)
            pointers[slot] = .allocate(capacity: capacity)
            capacities[slot] = capacity
        }
        return pointers[slot]!
    }

    deinit { for p in pointers { p?.deallocate() } }
}

/// y[i, c] = act(y[i, c] + bias[c] (+ residual[i, c])) over a rows × columns row-major matrix: the epilogue
/// of every folded convolution. Written over row pointers with one loop per case so that the compiler
/// vectorises it (the first version, indexing with checked `i * columns + c` arithmetic, stayed scalar and
/// took 10 % of feature extraction in hali-bench-cnn's profile).
@inline(__always)
func addBiasResidualActivation(
    _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>,
    residual: UnsafePointer<Float>?, relu: Bool
) {
    for i in 0..<rows {
        let out = y + i * columns
        if let residual {
            let res = residual + i * columns
            if relu {
                for c in 0..<columns { let v = out[c] + bias[c] + res[c]; out[c] = v > 0 ? v : 0 }
            } else {
                for c in 0..<columns { out[c] = out[c] + bias[c] + res[c] }
            }
        } else if relu {
            for c in 0..<columns { let v = out[c] + bias[c]; out[c] = v > 0 ? v : 0 }
        } else {
            for c in 0..<columns { out[c] += bias[c] }
        }
    }
}
