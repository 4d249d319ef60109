// A small U-Net (Ronneberger et al., MICCAI 2015) that turns an image at the detector's working resolution into two
// per-pixel maps: P(pixel lies in a nucleus) and a "nucleus centre" heat map (a Gaussian around each nucleus
// centroid, as in Sirinukunwattana et al.'s SC-CNN, IEEE TMI 35:1196, 2016). HaliImaging turns the maps into nuclei
// (seeds = peaks of the centre map, regions = marker watershed inside the foreground).
//
// Layout (NHWC; w = widths, additive skips instead of concatenation, all 3×3 convolutions with zero padding 1):
//   x → [conv3 w0, conv3 w0] = s1 → maxpool 2 → [conv3 w1, conv3 w1] = s2 → maxpool 2 → [conv3 w2, conv3 w2]
//     → conv1 w1 (BN, no ReLU) → nearest ×2 → relu(· + s2) → conv3 w1
//     → conv1 w0 (BN, no ReLU) → nearest ×2 → relu(· + s1) → conv3 w0 → conv1 2 (+ bias) = logits
// Every convolution but the last is followed by batch norm. Input height and width must be multiples of 4.
// Receptive field: 38 px wide; with the pooling grid's offsets an output pixel depends on at most ±21 input pixels
// (±10.5 µm at 0.5 µm/px).
// Cost per input pixel with widths 16/32/64: ≈ 15.6 k multiply-adds.

import HaliMath
import Synchronization

/// A convolution + batch norm (+ ReLU) unit with its backward pass.
final class ConvUnit: @unchecked Sendable {
    let conv: Conv2D, bn: BatchNorm, relu: Bool
    private var out = Tensor(n: 0, h: 0, w: 0, c: 0)

    init(name: String, inChannels: Int, outChannels: Int, kernel: Int, relu: Bool, rng: inout SeededRandom) {
        conv = Conv2D(
            name: name + ".conv.weight", inChannels: inChannels, outChannels: outChannels, kernel: kernel,
            stride: 1, pad: kernel / 2, rng: &rng)
        bn = BatchNorm(name: name + ".bn", channels: outChannels)
        self.relu = relu
    }

    var parameters: [Parameter] { [conv.weight] + bn.parameters }

    func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = bn.forward(conv.forward(x, training: training), training: training)
        if relu { Activation.relu(&h) }
        if training && relu { out = h }
        return h
    }

    func backward(_ dy: Tensor, needInputGradient: Bool = true) -> Tensor? {
        let d = relu ? Activation.reluBackward(dy, output: out) : dy
        return conv.backward(bn.backward(d), needInputGradient: needInputGradient)
    }

    /// Inference form: HWIO weights with the batch norm's scale folded in, and the per-channel shift.
    func folded() -> FoldedConv {
        let (scale, shift) = bn.inferenceAffine()
        var w = conv.weight.value
        let cout = conv.outChannels
        for i in 0..<w.count { w[i] *= scale[i % cout] }
        return FoldedConv(
            inChannels: conv.inChannels, outChannels: cout, kernel: conv.kernel, stride: 1, pad: conv.kernel / 2,
            weight: w, bias: shift, relu: relu)
    }
}

/// Nearest-neighbour ×2 upsampling (forward) and its adjoint (sum of each 2×2 block).
enum Upsample2 {
    static func forward(_ x: Tensor) -> Tensor {
        var y = Tensor(n: x.n, h: x.h * 2, w: x.w * 2, c: x.c)
        x.data.withUnsafeBufferPointer { px in
            y.data.withUnsafeMutableBufferPointer { py in
                forward(px.baseAddress!, n: x.n, h: x.h, w: x.w, c: x.c, into: py.baseAddress!)
            }
        }
        return y
    }

    static func forward(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, into y: UnsafeMutablePointer<Float>) {
        let W = 2 * w
        for b in 0..<n {
            for iy in 0..<h {
                let src = x + (b * h + iy) * w * c
                let row0 = y + ((b * 2 * h) + 2 * iy) * W * c
                for ix in 0..<w {
                    let s = src + ix * c, d = row0 + 2 * ix * c
                    for k in 0..<c { d[k] = s[k]; d[c + k] = s[k] }
                }
                (row0 + W * c).update(from: row0, count: W * c)
            }
        }
    }

    static func backward(_ dy: Tensor) -> Tensor {
        let h = dy.h / 2, w = dy.w / 2, c = dy.c
        var dx = Tensor(n: dy.n, h: h, w: w, c: c)
        for b in 0..<dy.n {
            for iy in 0..<h {
                for ix in 0..<w {
                    for k in 0..<c {
                        var s: Float = 0
                        for dy_ in 0..<2 { for dx_ in 0..<2 { s += dy.data[((b * dy.h + 2 * iy + dy_) * dy.w + 2 * ix + dx_) * c + k] } }
                        dx.data[((b * h + iy) * w + ix) * c + k] = s
                    }
                }
            }
        }
        return dx
    }
}

/// The trainable network (training-mode batch norm, caches for backward). For inference use `folded()`.
public final class NucleusMapNet: @unchecked Sendable {
    public static let outputs = 2
    public let widths: [Int]
    let e1a: ConvUnit, e1b: ConvUnit, e2a: ConvUnit, e2b: ConvUnit, e3a: ConvUnit, e3b: ConvUnit
    let lateral2: ConvUnit, d2: ConvUnit, lateral1: ConvUnit, d1: ConvUnit
    let head: Conv2D
    public let headBias: Parameter
    let pool1 = MaxPool(kernel: 2, stride: 2, pad: 0), pool2 = MaxPool(kernel: 2, stride: 2, pad: 0)
    private var a1 = Tensor(n: 0, h: 0, w: 0, c: 0), a2 = Tensor(n: 0, h: 0, w: 0, c: 0)

    public init(widths: [Int] = [16, 32, 64], inputChannels: Int = 3, seed: UInt64) {
        precondition(widths.count == 3)
        self.widths = widths
        var rng = SeededRandom(seed: seed)
        let (w0, w1, w2) = (widths[0], widths[1], widths[2])
        e1a = ConvUnit(name: "enc1.0", inChannels: inputChannels, outChannels: w0, kernel: 3, relu: true, rng: &rng)
        e1b = ConvUnit(name: "enc1.1", inChannels: w0, outChannels: w0, kernel: 3, relu: true, rng: &rng)
        e2a = ConvUnit(name: "enc2.0", inChannels: w0, outChannels: w1, kernel: 3, relu: true, rng: &rng)
        e2b = ConvUnit(name: "enc2.1", inChannels: w1, outChannels: w1, kernel: 3, relu: true, rng: &rng)
        e3a = ConvUnit(name: "enc3.0", inChannels: w1, outChannels: w2, kernel: 3, relu: true, rng: &rng)
        e3b = ConvUnit(name: "enc3.1", inChannels: w2, outChannels: w2, kernel: 3, relu: true, rng: &rng)
        lateral2 = ConvUnit(name: "up2.lateral", inChannels: w2, outChannels: w1, kernel: 1, relu: false, rng: &rng)
        d2 = ConvUnit(name: "dec2", inChannels: w1, outChannels: w1, kernel: 3, relu: true, rng: &rng)
        lateral1 = ConvUnit(name: "up1.lateral", inChannels: w1, outChannels: w0, kernel: 1, relu: false, rng: &rng)
        d1 = ConvUnit(name: "dec1", inChannels: w0, outChannels: w0, kernel: 3, relu: true, rng: &rng)
        head = Conv2D(
            name: "head.weight", inChannels: w0, outChannels: NucleusMapNet.outputs, kernel: 1, stride: 1, pad: 0,
            rng: &rng)
        headBias = Parameter(
            name: "head.bias", fileShape: [NucleusMapNet.outputs],
            value: [Float](repeating: -2, count: NucleusMapNet.outputs))
    }

    var units: [ConvUnit] { [e1a, e1b, e2a, e2b, e3a, e3b, lateral2, d2, lateral1, d1] }

    /// Every tensor of the weight file, in a fixed order.
    public var parameters: [Parameter] { units.flatMap(\.parameters) + [head.weight, headBias] }

    /// Logits N×H×W×2 (channel 0: foreground, 1: centre).
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.h % 4 == 0 && x.w % 4 == 0, "NucleusMapNet: input \(x.h)×\(x.w) is not a multiple of 4")
        let s1 = e1b.forward(e1a.forward(x, training: training), training: training)
        let s2 = e2b.forward(e2a.forward(pool1.forward(s1, training: training), training: training), training: training)
        let b = e3b.forward(e3a.forward(pool2.forward(s2, training: training), training: training), training: training)
        var u2 = Upsample2.forward(lateral2.forward(b, training: training))
        for i in 0..<u2.count { u2.data[i] = max(u2.data[i] + s2.data[i], 0) }
        let o2 = d2.forward(u2, training: training)
        var u1 = Upsample2.forward(lateral1.forward(o2, training: training))
        for i in 0..<u1.count { u1.data[i] = max(u1.data[i] + s1.data[i], 0) }
        let o1 = d1.forward(u1, training: training)
        var y = head.forward(o1, training: training)
        let C = NucleusMapNet.outputs
        for r in 0..<y.rows { for c in 0..<C { y.data[r * C + c] += headBias.value[c] } }
        if training { a1 = u1; a2 = u2 }
        return y
    }

    /// Accumulates every parameter's gradient from dL/dlogits.
    public func backward(_ dy: Tensor) {
        let C = NucleusMapNet.outputs
        for r in 0..<dy.rows { for c in 0..<C { headBias.grad[c] += dy.data[r * C + c] } }
        let da1 = Activation.reluBackward(d1.backward(head.backward(dy)!)!, output: a1)
        let da2 = Activation.reluBackward(d2.backward(lateral1.backward(Upsample2.backward(da1))!)!, output: a2)
        let db = lateral2.backward(Upsample2.backward(da2))!
        var ds2 = pool2.backward(e3a.backward(e3b.backward(db)!)!)
        for i in 0..<ds2.count { ds2.data[i] += da2.data[i] }
        var ds1 = pool1.backward(e2a.backward(e2b.backward(ds2)!)!)
        for i in 0..<ds1.count { ds1.data[i] += da1.data[i] }
        _ = e1a.backward(e1b.backward(ds1)!, needInputGradient: false)
    }

    public func folded() -> FoldedNucleusMapNet {
        FoldedNucleusMapNet(
            units: units.map { $0.folded() },
            head: FoldedConv(
                inChannels: widths[0], outChannels: NucleusMapNet.outputs, kernel: 1, stride: 1,
                pad: 0, weight: head.weight.value, bias: headBias.value, relu: false),
            widths: widths)
    }

    /// Multiply-adds per input pixel.
    public static func multiplyAddsPerPixel(widths w: [Int], inputChannels: Int = 3) -> Double {
        let full = Double(9 * inputChannels * w[0] + 9 * w[0] * w[0] + w[1] * w[0] + 9 * w[0] * w[0] + w[0] * NucleusMapNet.outputs)
        let half = Double(9 * w[0] * w[1] + 9 * w[1] * w[1] + w[2] * w[1] + 9 * w[1] * w[1]) / 4
        let quarter = Double(9 * w[1] * w[2] + 9 * w[2] * w[2]) / 16
        return full + half + quarter
    }
}

extension FoldedConv {
    /// Side of the square pixel blocks that `forwardBlocked` sends to OpenBLAS one at a time (256 rows per sgemm).
    static let blockSide = 16

    /// Stride-1 "same" convolution of one H×W×Cin image into `y` (H×W×Cout), one 16×16 block of output pixels per
    /// sgemm. The blocks lie on a grid of the whole slide, not of this image: the image's first pixel sits at
    /// (`phaseX`, `phaseY`) inside its block (0…15); pixels of a block outside the image are zero rows. `scratch` must
    /// hold `blockScratchCount` floats; each block's im2col columns stay in cache.
    ///
    /// Why blocks: single-threaded OpenBLAS computes a row of a product in an order that depends on the row's
    /// position in the matrix (measured: the same row moved by 8…64 places changes in the last bits), but not on
    /// the other rows. A pixel's row is (slide y mod 16)·16 + (slide x mod 16) here, so every tile that contains a
    /// pixel and enough context around it computes it bit for bit alike, and tiled detection does not depend on the
    /// tiling.
    func forwardBlocked(
        _ x: UnsafePointer<Float>, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, phaseX: Int = 0, phaseY: Int = 0
    ) {
        precondition(stride == 1 && pad == kernel / 2)
        precondition((0..<FoldedConv.blockSide).contains(phaseX) && (0..<FoldedConv.blockSide).contains(phaseY))
        let K = kernel * kernel * inChannels, O = outChannels, kc = kernel * inChannels
        let B = FoldedConv.blockSide, P = B * B
        let columns = scratch, out = scratch + P * K
        weight.withUnsafeBufferPointer { pw in
            bias.withUnsafeBufferPointer { pb in
                for by in Swift.stride(from: -phaseY, to: h, by: B) {
                    for bx in Swift.stride(from: -phaseX, to: w, by: B) {
                        // The block's pixels inside the image: rows y0..<y1, columns x0..<x1.
                        let y0 = max(0, by), y1 = min(h, by + B), x0 = max(0, bx), x1 = min(w, bx + B)
                        if y1 - y0 < B || x1 - x0 < B { columns.update(repeating: 0, count: P * K) }
                        for oy in y0..<y1 {
                            if kernel == 1 {  // the block row's pixels are contiguous in x and in the columns
                                (columns + ((oy - by) * B + x0 - bx) * K).update(
                                    from: x + (oy * w + x0) * inChannels,
                                    count: (x1 - x0) * K)
                                continue
                            }
                            for ox in x0..<x1 {
                                let row = columns + ((oy - by) * B + ox - bx) * K
                                let left = ox - pad
                                let lo = max(0, -left), hi = min(kernel, w - left)
                                for ky in 0..<kernel {
                                    let dst = row + ky * kc
                                    let iy = oy - pad + ky
                                    if iy < 0 || iy >= h { dst.update(repeating: 0, count: kc); continue }
                                    if lo > 0 { dst.update(repeating: 0, count: lo * inChannels) }
                                    let run = (hi - lo) * inChannels, src = x + (iy * w + left + lo) * inChannels
                                    if run <= 16 {  // the stem's 9-float runs: a call to memmove costs more than the copy
                                        for q in 0..<run { dst[lo * inChannels + q] = src[q] }
                                    } else {
                                        (dst + lo * inChannels).update(from: src, count: run)
                                    }
                                    if hi < kernel { (dst + hi * inChannels).update(repeating: 0, count: (kernel - hi) * inChannels) }
                                }
                            }
                        }
                        BLAS.sgemm(m: P, n: O, k: K, a: columns, lda: K, b: pw.baseAddress!, ldb: O, c: out, ldc: O)
                        addBiasResidualActivation(out, rows: P, columns: O, bias: pb.baseAddress!, residual: nil, relu: relu)
                        for oy in y0..<y1 {
                            (y + (oy * w + x0) * O).update(from: out + ((oy - by) * B + x0 - bx) * O, count: (x1 - x0) * O)
                        }
                    }
                }
            }
        }
    }

    var blockScratchCount: Int {
        let P = FoldedConv.blockSide * FoldedConv.blockSide
        return P * (kernel * kernel * inChannels + outChannels)
    }
}

/// The inference network: batch norm folded into the convolutions, one image at a time, 16×16 pixel blocks.
/// Given the image's origin on the slide (working pixels, a multiple of 4 so that the 2×2 poolings fall on the slide's
/// grid), every convolution's blocks lie on the slide's 16-pixel grid of its level: two tiles then compute the pixels
/// they share (away from their edges) bit for bit alike when OpenBLAS runs single-threaded (see
/// `FoldedConv.forwardBlocked`).
public struct FoldedNucleusMapNet: Sendable {
    let units: [FoldedConv]
    let head: FoldedConv
    public let widths: [Int]

    /// Logits H×W×2 of one H×W×Cin image (H, W multiples of 4). Single-threaded unless BLAS has more threads.
    /// `workspace` (one per thread) keeps the activations between calls; without one they are allocated for this call.
    /// (`originX`, `originY`): the image's first pixel on the slide's working-pixel grid, multiples of 4.
    public func logits(
        _ input: [Float], height h: Int, width w: Int, workspace: NucleusMapWorkspace? = nil,
        originX: Int = 0, originY: Int = 0
    ) -> [Float] {
        precondition(h % 4 == 0 && w % 4 == 0, "NucleusMapNet: input \(h)×\(w) is not a multiple of 4")
        precondition(
            originX >= 0 && originY >= 0 && originX % 4 == 0 && originY % 4 == 0,
            "NucleusMapNet: origin (\(originX), \(originY)) is not a multiple of 4")
        precondition(input.count == h * w * units[0].inChannels)
        let (w0, w1, w2) = (widths[0], widths[1], widths[2])
        let full = h * w, half = full / 4, quarter = full / 16
        // Scratch for one block's im2col columns and product, then seven activation buffers, each reused once its
        // contents are dead (two at full resolution instead of four); each on a 64-byte boundary.
        let counts = [
            (units + [head]).map(\.blockScratchCount).max()!, full * w0, full * w0, half * max(w0, w1),
            half * max(w0, w1), half * w1, quarter * max(w1, w2), quarter * max(w1, w2),
        ].map { ($0 + 15) / 16 * 16 }
        let space = workspace ?? NucleusMapWorkspace()
        defer { withExtendedLifetime(space) {} }  // the buffers below point into it
        var next = space.floats(counts.reduce(0, +))
        var parts: [UnsafeMutablePointer<Float>] = []
        for n in counts { parts.append(next); next += n }
        let (scratch, a, b, c, d, e, f, g) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7])
        // Where the image starts inside its 16×16 block at full, half and quarter resolution.
        func phase(_ level: Int) -> (x: Int, y: Int) {
            ((originX >> level) % FoldedConv.blockSide, (originY >> level) % FoldedConv.blockSide)
        }
        let (p0, p1, p2) = (phase(0), phase(1), phase(2))
        var y = [Float](repeating: 0, count: full * NucleusMapNet.outputs)
        input.withUnsafeBufferPointer { x in
            units[0].forwardBlocked(x.baseAddress!, h: h, w: w, into: a, scratch: scratch, phaseX: p0.x, phaseY: p0.y)
        }
        units[1].forwardBlocked(a, h: h, w: w, into: b, scratch: scratch, phaseX: p0.x, phaseY: p0.y)  // b = s1
        maxPool(b, n: 1, h: h, w: w, c: w0, kernel: 2, stride: 2, pad: 0, into: c, ho: h / 2, wo: w / 2, argmax: nil)
        units[2].forwardBlocked(c, h: h / 2, w: w / 2, into: d, scratch: scratch, phaseX: p1.x, phaseY: p1.y)
        units[3].forwardBlocked(d, h: h / 2, w: w / 2, into: e, scratch: scratch, phaseX: p1.x, phaseY: p1.y)  // e = s2
        maxPool(e, n: 1, h: h / 2, w: w / 2, c: w1, kernel: 2, stride: 2, pad: 0, into: f, ho: h / 4, wo: w / 4, argmax: nil)
        units[4].forwardBlocked(f, h: h / 4, w: w / 4, into: g, scratch: scratch, phaseX: p2.x, phaseY: p2.y)
        units[5].forwardBlocked(g, h: h / 4, w: w / 4, into: f, scratch: scratch, phaseX: p2.x, phaseY: p2.y)  // bottleneck
        units[6].forwardBlocked(f, h: h / 4, w: w / 4, into: g, scratch: scratch, phaseX: p2.x, phaseY: p2.y)
        Upsample2.forward(g, n: 1, h: h / 4, w: w / 4, c: w1, into: d)
        for i in 0..<(half * w1) { d[i] = max(d[i] + e[i], 0) }
        units[7].forwardBlocked(d, h: h / 2, w: w / 2, into: c, scratch: scratch, phaseX: p1.x, phaseY: p1.y)
        units[8].forwardBlocked(c, h: h / 2, w: w / 2, into: d, scratch: scratch, phaseX: p1.x, phaseY: p1.y)
        Upsample2.forward(d, n: 1, h: h / 2, w: w / 2, c: w0, into: a)
        for i in 0..<(full * w0) { a[i] = max(a[i] + b[i], 0) }
        units[9].forwardBlocked(a, h: h, w: w, into: b, scratch: scratch, phaseX: p0.x, phaseY: p0.y)
        y.withUnsafeMutableBufferPointer { py in
            head.forwardBlocked(b, h: h, w: w, into: py.baseAddress!, scratch: scratch, phaseX: p0.x, phaseY: p0.y)
        }
        return y
    }
}

/// The activation buffers of `FoldedNucleusMapNet.logits`, kept from one call to the next. Why: a worker running tile
/// after tile otherwise maps fresh pages for every tile, and the kernel faults in and zeroes each of them (measured
/// with perf on a learned-detector ingest: 12% of the time in `clear_page`, twice the page faults). One contiguous
/// allocation that only grows; one thread at a time.
public final class NucleusMapWorkspace: @unchecked Sendable {
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0

    public init() {}
    deinit { storage?.deallocate() }

    /// At least `count` floats of uninitialised storage, valid until the next call.
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            // A quarter more than asked: tiles on the slide's edge come first and are smaller (their context is cut
            // off), and each regrowth faults every page in again.
            storage?.deallocate()
            capacity = count + count / 4
            storage = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: 64)
        }
        return storage!.bindMemory(to: Float.self, capacity: count)
    }
}

/// Workspaces for concurrent callers: each call borrows an idle one (or a new one) and returns it afterwards, so a
/// pool serving N threads holds N workspaces.
public final class NucleusMapWorkspacePool: Sendable {
    private let idle = Mutex<[NucleusMapWorkspace]>([])

    public init() {}

    public func withWorkspace<R>(_ body: (NucleusMapWorkspace) throws -> R) rethrows -> R {
        let space = idle.withLock { $0.popLast() } ?? NucleusMapWorkspace()
        defer { idle.withLock { $0.append(space) } }
        return try body(space)
    }
}

// MARK: - Loss and weight files

/// Mean binary cross-entropy with logits over every element, soft targets in [0, 1], per-channel weights:
/// (loss, dL/dlogits). L = Σ wc·[max(z,0) − z·t + log(1 + e^−|z|)] / N.
public func sigmoidCrossEntropy(logits: Tensor, targets: [Float], channelWeights: [Float]) -> (loss: Float, gradient: Tensor) {
    precondition(targets.count == logits.count && channelWeights.count == logits.c)
    var grad = Tensor(n: logits.n, h: logits.h, w: logits.w, c: logits.c)
    let C = logits.c, rows = logits.rows
    let inv = 1 / Float(rows)
    var loss: Double = 0
    for r in 0..<rows {
        for c in 0..<C {
            let i = r * C + c, z = logits.data[i], t = targets[i], wc = channelWeights[c]
            loss += Double(wc * (max(z, 0) - z * t + _log1p(_exp(-abs(z)))))
            grad.data[i] = wc * (1 / (1 + _exp(-z)) - t) * inv
        }
    }
    return (Float(loss / Double(rows)), grad)
}

@inline(__always) func _log1p(_ x: Float) -> Float { Float(_log(Double(1 + x))) }

extension NucleusMapNet {
    /// The weights as safetensors bytes with `metadata` (string pairs; `hali.kind` and `hali.arch` are added).
    public func safetensors(metadata: [String: String]) -> [UInt8] {
        var m = metadata
        m["hali.kind"] = "nucleus-maps"
        m["hali.arch"] = "unet widths=" + widths.map(String.init).joined(separator: ",")
        return SafeTensors.serialize(parameters.map { ($0.name, $0.fileShape, $0.fileValues()) }, metadata: m)
    }

    /// Builds the network from parsed safetensors written by `safetensors(metadata:)`: every tensor present with
    /// its shape, nothing extra.
    public static func load(_ file: SafeTensors) throws -> NucleusMapNet {
        guard file.metadata["hali.kind"] == "nucleus-maps" else {
            throw SafeTensorsError.metadata("not a nucleus detector weight file (hali.kind is \(file.metadata["hali.kind"] ?? "missing"))")
        }
        guard let arch = file.metadata["hali.arch"], arch.hasPrefix("unet widths="),
            case let w = arch.dropFirst("unet widths=".count).split(separator: ",").compactMap({ Int($0) }), w.count == 3,
            w.allSatisfy({ $0 > 0 && $0 <= 512 })
        else {
            throw SafeTensorsError.metadata("cannot parse hali.arch '\(file.metadata["hali.arch"] ?? "")'")
        }
        let net = NucleusMapNet(widths: w, seed: 0)
        var expected = Set<String>()
        for p in net.parameters {
            expected.insert(p.name)
            guard let t = file.tensors[p.name] else { throw SafeTensorsError.missing(name: p.name, expectedShape: p.fileShape) }
            guard t.shape == p.fileShape else { throw SafeTensorsError.shapeMismatch(name: p.name, expected: p.fileShape, found: t.shape) }
            p.setFileValues(t.values)
        }
        let extra = file.tensors.keys.filter { !expected.contains($0) }.sorted()
        guard extra.isEmpty else { throw SafeTensorsError.unexpected(names: extra) }
        return net
    }
}
