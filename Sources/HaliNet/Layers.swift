// Layers with forward and backward passes (NHWC; see Tensor.swift). Each layer object caches what its
// backward pass needs from the last training-mode forward pass, so one object serves one mini-batch at a time.

import HaliMath

/// A learnable (or buffered) array. `value` is in HaliNet's internal layout; `fileShape` is the PyTorch
/// shape used in weight files (for convolutions OIHW, while `value` is HWIO; see `Tensor.swift`).
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let fileShape: [Int]
    public var value: [Float]
    public var grad: [Float]
    /// False for batch-norm running statistics (updated by the forward pass, not by an optimiser).
    public let trainable: Bool
    /// Weight decay applies (convolution and linear weights; not biases or batch-norm affine parameters).
    public let decays: Bool
    /// Set for convolution weights: (out, in, kh, kw) of the file layout.
    public let convOIHW: (o: Int, i: Int, kh: Int, kw: Int)?

    public init(
        name: String, fileShape: [Int], value: [Float], trainable: Bool = true, decays: Bool = false,
        convOIHW: (o: Int, i: Int, kh: Int, kw: Int)? = nil
    ) {
        precondition(value.count == fileShape.reduce(1, *), "\(name): \(value.count) values for shape \(fileShape)")
        self.name = name; self.fileShape = fileShape; self.value = value
        self.grad = [Float](repeating: 0, count: trainable ? value.count : 0)
        self.trainable = trainable; self.decays = decays; self.convOIHW = convOIHW
    }

    /// The values in file (PyTorch) layout.
    public func fileValues() -> [Float] {
        guard let s = convOIHW else { return value }
        var out = [Float](repeating: 0, count: value.count)
        for o in 0..<s.o {
            for i in 0..<s.i {
                for y in 0..<s.kh {
                    for x in 0..<s.kw {
                        out[((o * s.i + i) * s.kh + y) * s.kw + x] = value[((y * s.kw + x) * s.i + i) * s.o + o]
                    }
                }
            }
        }
        return out
    }

    /// Sets the values from file (PyTorch) layout.
    public func setFileValues(_ v: [Float]) {
        precondition(v.count == value.count)
        guard let s = convOIHW else { value = v; return }
        for o in 0..<s.o {
            for i in 0..<s.i {
                for y in 0..<s.kh {
                    for x in 0..<s.kw {
                        value[((y * s.kw + x) * s.i + i) * s.o + o] = v[((o * s.i + i) * s.kh + y) * s.kw + x]
                    }
                }
            }
        }
    }

    public func zeroGrad() { for i in grad.indices { grad[i] = 0 } }
}

// MARK: - im2col / col2im

/// Output size of a convolution or pooling window.
@inline(__always) public func convOutputSize(_ size: Int, kernel: Int, stride: Int, pad: Int) -> Int {
    (size + 2 * pad - kernel) / stride + 1
}

/// Copies the k×k×C window of every output pixel into one row of `cols` ([N·Ho·Wo, k·k·C], zero padding).
/// Rows of images `n0..<n1` only (so that callers can split the batch across threads).
@inline(__always)
func im2col(
    _ x: UnsafePointer<Float>, h: Int, w: Int, c: Int, k: Int, stride: Int, pad: Int, ho: Int, wo: Int,
    images: Range<Int>, into cols: UnsafeMutablePointer<Float>
) {
    let kc = k * c, K = k * kc
    for b in images {
        for oy in 0..<ho {
            for ox in 0..<wo {
                let row = cols + ((b * ho + oy) * wo + ox) * K
                let x0 = ox * stride - pad
                let lo = max(0, -x0), hi = min(k, w - x0)  // valid kx range [lo, hi)
                for ky in 0..<k {
                    let dst = row + ky * kc
                    let iy = oy * stride - pad + ky
                    if iy < 0 || iy >= h || hi <= lo { dst.update(repeating: 0, count: kc); continue }
                    if lo > 0 { dst.update(repeating: 0, count: lo * c) }
                    let run = (hi - lo) * c, src = x + ((b * h + iy) * w + x0 + lo) * c
                    if run <= 16 {  // the RGB stem's 9-float runs: a call to memmove costs more than the copy
                        for j in 0..<run { dst[lo * c + j] = src[j] }
                    } else {
                        dst.advanced(by: lo * c).update(from: src, count: run)
                    }
                    if hi < k { dst.advanced(by: hi * c).update(repeating: 0, count: (k - hi) * c) }
                }
            }
        }
    }
}

/// Max pooling on raw NHWC buffers, windows `kernel`×`kernel` at `stride` with `pad` (outside pixels ignored).
/// `argmax`, when given, receives the flat input index of each output's maximum (−1 if the window is empty),
/// for the backward pass. One kernel for training (`MaxPool`) and inference (`FoldedResNet`).
func maxPool(
    _ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, kernel: Int, stride: Int, pad: Int,
    into y: UnsafeMutablePointer<Float>, ho: Int, wo: Int, argmax: UnsafeMutablePointer<Int32>?
) {
    for b in 0..<n {
        for oy in 0..<ho {
            for ox in 0..<wo {
                let o = ((b * ho + oy) * wo + ox) * c
                (y + o).update(repeating: -.infinity, count: c)
                argmax.map { (($0 + o)).update(repeating: -1, count: c) }
                for ky in 0..<kernel {
                    let iy = oy * stride - pad + ky
                    if iy < 0 || iy >= h { continue }
                    for kx in 0..<kernel {
                        let ix = ox * stride - pad + kx
                        if ix < 0 || ix >= w { continue }
                        let i = ((b * h + iy) * w + ix) * c
                        for k in 0..<c where x[i + k] > y[o + k] {
                            y[o + k] = x[i + k]
                            argmax?[o + k] = Int32(i + k)
                        }
                    }
                }
            }
        }
    }
}

/// Adds every row of `cols` back into the window it came from (the adjoint of `im2col`); `dx` must be zeroed.
func col2im(
    _ cols: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, k: Int, stride: Int, pad: Int, ho: Int,
    wo: Int, into dx: UnsafeMutablePointer<Float>
) {
    let kc = k * c, K = k * kc
    for b in 0..<n {
        for oy in 0..<ho {
            for ox in 0..<wo {
                let row = cols + ((b * ho + oy) * wo + ox) * K
                let x0 = ox * stride - pad
                let lo = max(0, -x0), hi = min(k, w - x0)
                if hi <= lo { continue }
                for ky in 0..<k {
                    let iy = oy * stride - pad + ky
                    if iy < 0 || iy >= h { continue }
                    let src = row + ky * kc + lo * c
                    let dst = dx + ((b * h + iy) * w + x0 + lo) * c
                    for j in 0..<((hi - lo) * c) { dst[j] += src[j] }
                }
            }
        }
    }
}

// MARK: - Convolution

/// 2-D convolution without bias (ResNet style; batch norm follows), square kernel, zero padding.
/// Forward: one sgemm per mini-batch, im2col(X)[N·Ho·Wo, k·k·Cin] × W[k·k·Cin, Cout].
public final class Conv2D: @unchecked Sendable {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pad: Int
    public let weight: Parameter
    private var cols: [Float] = []
    private var inShape = (n: 0, h: 0, w: 0)

    public init(
        name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pad: Int,
        rng: inout SeededRandom
    ) {
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.pad = pad
        // He (Kaiming normal, fan_out as torchvision does for ResNets).
        let std = (2.0 / Float(outChannels * kernel * kernel)).squareRoot()
        let count = outChannels * inChannels * kernel * kernel
        weight = Parameter(
            name: name, fileShape: [outChannels, inChannels, kernel, kernel],
            value: (0..<count).map { _ in rng.normal() * std }, decays: true,
            convOIHW: (outChannels, inChannels, kernel, kernel))
    }

    var isPointwise: Bool { kernel == 1 && stride == 1 && pad == 0 }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.c == inChannels, "\(weight.name): input has \(x.c) channels, expected \(inChannels)")
        let ho = convOutputSize(x.h, kernel: kernel, stride: stride, pad: pad)
        let wo = convOutputSize(x.w, kernel: kernel, stride: stride, pad: pad)
        let M = x.n * ho * wo, K = kernel * kernel * inChannels
        var y = Tensor(n: x.n, h: ho, w: wo, c: outChannels)
        inShape = (x.n, x.h, x.w)
        if isPointwise {
            if training { cols = x.data }
        } else {
            cols = [Float](unsafeUninitializedCapacity: M * K) { buf, done in
                x.data.withUnsafeBufferPointer { px in
                    im2col(
                        px.baseAddress!, h: x.h, w: x.w, c: x.c, k: kernel, stride: stride, pad: pad, ho: ho,
                        wo: wo, images: 0..<x.n, into: buf.baseAddress!)
                }
                done = M * K
            }
        }
        let a = isPointwise ? x.data : cols
        a.withUnsafeBufferPointer { pa in
            weight.value.withUnsafeBufferPointer { pw in
                y.data.withUnsafeMutableBufferPointer { py in
                    BLAS.sgemm(
                        m: M, n: outChannels, k: K, a: pa.baseAddress!, lda: K, b: pw.baseAddress!,
                        ldb: outChannels, c: py.baseAddress!, ldc: outChannels)
                }
            }
        }
        if !training { cols = [] }
        return y
    }

    /// Accumulates dL/dW; returns dL/dX when `needInputGradient`.
    @discardableResult
    public func backward(_ dy: Tensor, needInputGradient: Bool = true) -> Tensor? {
        let (n, h, w) = inShape
        let M = dy.rows, K = kernel * kernel * inChannels
        precondition(cols.count == M * K, "\(weight.name): backward without a training forward pass")
        cols.withUnsafeBufferPointer { pc in
            dy.data.withUnsafeBufferPointer { pd in
                weight.grad.withUnsafeMutableBufferPointer { pg in
                    // dW[K, Cout] += colsᵀ · dY
                    BLAS.sgemm(
                        transposeA: true, m: K, n: outChannels, k: M, a: pc.baseAddress!, lda: K,
                        b: pd.baseAddress!, ldb: outChannels, beta: 1, c: pg.baseAddress!, ldc: outChannels)
                }
            }
        }
        guard needInputGradient else { return nil }
        var dx = Tensor(n: n, h: h, w: w, c: inChannels)
        var dcols = isPointwise ? [] : [Float](repeating: 0, count: M * K)
        dy.data.withUnsafeBufferPointer { pd in
            weight.value.withUnsafeBufferPointer { pw in
                if isPointwise {
                    dx.data.withUnsafeMutableBufferPointer { px in
                        BLAS.sgemm(
                            transposeB: true, m: M, n: K, k: outChannels, a: pd.baseAddress!, lda: outChannels,
                            b: pw.baseAddress!, ldb: outChannels, c: px.baseAddress!, ldc: K)
                    }
                } else {
                    dcols.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemm(
                            transposeB: true, m: M, n: K, k: outChannels, a: pd.baseAddress!, lda: outChannels,
                            b: pw.baseAddress!, ldb: outChannels, c: pc.baseAddress!, ldc: K)
                    }
                }
            }
        }
        if !isPointwise {
            dcols.withUnsafeBufferPointer { pc in
                dx.data.withUnsafeMutableBufferPointer { px in
                    col2im(
                        pc.baseAddress!, n: n, h: h, w: w, c: inChannels, k: kernel, stride: stride, pad: pad,
                        ho: dy.h, wo: dy.w, into: px.baseAddress!)
                }
            }
        }
        return dx
    }
}

// MARK: - Batch norm

/// Batch normalisation over N·H·W per channel (PyTorch semantics: biased variance for normalising,
/// unbiased variance in the running estimate, momentum 0.1, eps 1e-5).
public final class BatchNorm: @unchecked Sendable {
    public let channels: Int
    public let gamma: Parameter, beta: Parameter, runningMean: Parameter, runningVar: Parameter
    public var eps: Float = 1e-5
    public var momentum: Float = 0.1
    private var xhat: [Float] = []
    private var invStd: [Float] = []

    public init(name: String, channels: Int) {
        self.channels = channels
        gamma = Parameter(name: name + ".weight", fileShape: [channels], value: .init(repeating: 1, count: channels))
        beta = Parameter(name: name + ".bias", fileShape: [channels], value: .init(repeating: 0, count: channels))
        runningMean = Parameter(
            name: name + ".running_mean", fileShape: [channels],
            value: .init(repeating: 0, count: channels), trainable: false)
        runningVar = Parameter(
            name: name + ".running_var", fileShape: [channels],
            value: .init(repeating: 1, count: channels), trainable: false)
    }

    public var parameters: [Parameter] { [gamma, beta, runningMean, runningVar] }

    /// Per-channel (scale, shift) of the inference-mode transform y = scale·x + shift.
    public func inferenceAffine() -> (scale: [Float], shift: [Float]) {
        var s = [Float](repeating: 0, count: channels), t = s
        for c in 0..<channels {
            s[c] = gamma.value[c] / (runningVar.value[c] + eps).squareRoot()
            t[c] = beta.value[c] - runningMean.value[c] * s[c]
        }
        return (s, t)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.c == channels)
        let C = channels, M = x.rows
        var y = x
        if !training {
            let (s, t) = inferenceAffine()
            y.data.withUnsafeMutableBufferPointer { p in
                for r in 0..<M { for c in 0..<C { p[r * C + c] = p[r * C + c] * s[c] + t[c] } }
            }
            return y
        }
        var mean = [Double](repeating: 0, count: C), sq = mean
        x.data.withUnsafeBufferPointer { p in
            for r in 0..<M { for c in 0..<C { mean[c] += Double(p[r * C + c]) } }
            for c in 0..<C { mean[c] /= Double(M) }
            for r in 0..<M { for c in 0..<C { let d = Double(p[r * C + c]) - mean[c]; sq[c] += d * d } }
        }
        invStd = [Float](repeating: 0, count: C)
        for c in 0..<C {
            let v = sq[c] / Double(M)
            invStd[c] = Float(1 / (v + Double(eps)).squareRoot())
            runningMean.value[c] = (1 - momentum) * runningMean.value[c] + momentum * Float(mean[c])
            let unbiased = M > 1 ? sq[c] / Double(M - 1) : v
            runningVar.value[c] = (1 - momentum) * runningVar.value[c] + momentum * Float(unbiased)
        }
        xhat = [Float](repeating: 0, count: M * C)
        let m = mean.map { Float($0) }
        xhat.withUnsafeMutableBufferPointer { ph in
            y.data.withUnsafeMutableBufferPointer { p in
                for r in 0..<M {
                    for c in 0..<C {
                        let v = (p[r * C + c] - m[c]) * invStd[c]
                        ph[r * C + c] = v
                        p[r * C + c] = v * gamma.value[c] + beta.value[c]
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let C = channels, M = dy.rows
        precondition(xhat.count == M * C, "\(gamma.name): backward without a training forward pass")
        var sumDy = [Float](repeating: 0, count: C), sumDyXhat = sumDy
        var dx = dy
        xhat.withUnsafeBufferPointer { ph in
            dx.data.withUnsafeMutableBufferPointer { p in
                for r in 0..<M { for c in 0..<C { sumDy[c] += p[r * C + c]; sumDyXhat[c] += p[r * C + c] * ph[r * C + c] } }
                var k = [Float](repeating: 0, count: C)
                for c in 0..<C {
                    gamma.grad[c] += sumDyXhat[c]; beta.grad[c] += sumDy[c]
                    k[c] = gamma.value[c] * invStd[c] / Float(M)
                }
                let fm = Float(M)
                for r in 0..<M {
                    for c in 0..<C {
                        p[r * C + c] = k[c] * (fm * p[r * C + c] - sumDy[c] - ph[r * C + c] * sumDyXhat[c])
                    }
                }
            }
        }
        return dx
    }
}

// MARK: - Elementwise, pooling, linear

public enum Activation {
    /// max(0, x) in place.
    public static func relu(_ x: inout Tensor) {
        x.data.withUnsafeMutableBufferPointer { p in for i in 0..<p.count where p[i] < 0 { p[i] = 0 } }
    }

    /// dL/dx of ReLU given its output `y` (gradient passes where y > 0).
    public static func reluBackward(_ dy: Tensor, output y: Tensor) -> Tensor {
        var dx = dy
        dx.data.withUnsafeMutableBufferPointer { pd in
            y.data.withUnsafeBufferPointer { py in for i in 0..<pd.count where py[i] <= 0 { pd[i] = 0 } }
        }
        return dx
    }
}

/// Max pooling (square window, stride, padding by −∞ as PyTorch).
public final class MaxPool: @unchecked Sendable {
    public let kernel: Int, stride: Int, pad: Int
    private var argmax: [Int32] = []
    private var inShape = (n: 0, h: 0, w: 0, c: 0)

    public init(kernel: Int, stride: Int, pad: Int) { self.kernel = kernel; self.stride = stride; self.pad = pad }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let ho = convOutputSize(x.h, kernel: kernel, stride: stride, pad: pad)
        let wo = convOutputSize(x.w, kernel: kernel, stride: stride, pad: pad)
        var y = Tensor(n: x.n, h: ho, w: wo, c: x.c)
        if training { argmax = [Int32](repeating: -1, count: y.count); inShape = (x.n, x.h, x.w, x.c) }
        x.data.withUnsafeBufferPointer { px in
            y.data.withUnsafeMutableBufferPointer { py in
                if training {
                    argmax.withUnsafeMutableBufferPointer { am in
                        maxPool(
                            px.baseAddress!, n: x.n, h: x.h, w: x.w, c: x.c, kernel: kernel, stride: stride, pad: pad,
                            into: py.baseAddress!, ho: ho, wo: wo, argmax: am.baseAddress!)
                    }
                } else {
                    maxPool(
                        px.baseAddress!, n: x.n, h: x.h, w: x.w, c: x.c, kernel: kernel, stride: stride, pad: pad,
                        into: py.baseAddress!, ho: ho, wo: wo, argmax: nil)
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var dx = Tensor(n: inShape.n, h: inShape.h, w: inShape.w, c: inShape.c)
        for i in 0..<dy.count where argmax[i] >= 0 { dx.data[Int(argmax[i])] += dy.data[i] }
        return dx
    }
}

/// Global average pooling N×H×W×C → N×1×1×C.
public enum GlobalAveragePool {
    public static func forward(_ x: Tensor) -> Tensor {
        var y = Tensor(n: x.n, h: 1, w: 1, c: x.c)
        x.data.withUnsafeBufferPointer { px in
            y.data.withUnsafeMutableBufferPointer { py in
                forward(px.baseAddress!, n: x.n, positions: x.h * x.w, channels: x.c, into: py.baseAddress!)
            }
        }
        return y
    }

    /// The same on raw NHWC buffers: `out` (n × channels) = mean over the `positions` pixels of each image.
    public static func forward(
        _ x: UnsafePointer<Float>, n: Int, positions: Int, channels: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        let inv = 1 / Float(positions)
        for b in 0..<n {
            let o = out + b * channels
            o.update(repeating: 0, count: channels)
            for s in 0..<positions { let p = x + (b * positions + s) * channels; for c in 0..<channels { o[c] += p[c] } }
            for c in 0..<channels { o[c] *= inv }
        }
    }

    public static func backward(_ dy: Tensor, h: Int, w: Int) -> Tensor {
        var dx = Tensor(n: dy.n, h: h, w: w, c: dy.c)
        let hw = h * w, C = dy.c, inv = 1 / Float(hw)
        for b in 0..<dy.n { for s in 0..<hw { for c in 0..<C { dx.data[(b * hw + s) * C + c] = dy.data[b * C + c] * inv } } }
        return dx
    }
}

/// Fully connected layer y = x·Wᵀ + b with W stored [out, in] (PyTorch layout).
public final class Linear: @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let weight: Parameter, bias: Parameter
    private var input: Tensor?

    public init(name: String, inFeatures: Int, outFeatures: Int, rng: inout SeededRandom) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(
            name: name + ".weight", fileShape: [outFeatures, inFeatures],
            value: (0..<(outFeatures * inFeatures)).map { _ in (rng.uniform() * 2 - 1) * bound },
            decays: true)
        bias = Parameter(
            name: name + ".bias", fileShape: [outFeatures],
            value: (0..<outFeatures).map { _ in (rng.uniform() * 2 - 1) * bound })
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let n = x.n, K = x.count / max(n, 1)
        precondition(K == inFeatures, "\(weight.name): input has \(K) features, expected \(inFeatures)")
        var y = Tensor(n: n, h: 1, w: 1, c: outFeatures)
        for b in 0..<n { for o in 0..<outFeatures { y.data[b * outFeatures + o] = bias.value[o] } }
        x.data.withUnsafeBufferPointer { px in
            weight.value.withUnsafeBufferPointer { pw in
                y.data.withUnsafeMutableBufferPointer { py in
                    BLAS.sgemm(
                        transposeB: true, m: n, n: outFeatures, k: K, a: px.baseAddress!, lda: K,
                        b: pw.baseAddress!, ldb: K, beta: 1, c: py.baseAddress!, ldc: outFeatures)
                }
            }
        }
        input = training ? x : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("\(weight.name): backward without a training forward pass") }
        let n = x.n, K = inFeatures, O = outFeatures
        for b in 0..<n { for o in 0..<O { bias.grad[o] += dy.data[b * O + o] } }
        var dx = Tensor(n: x.n, h: x.h, w: x.w, c: x.c)
        dy.data.withUnsafeBufferPointer { pd in
            x.data.withUnsafeBufferPointer { px in
                weight.grad.withUnsafeMutableBufferPointer { pg in
                    BLAS.sgemm(
                        transposeA: true, m: O, n: K, k: n, a: pd.baseAddress!, lda: O, b: px.baseAddress!,
                        ldb: K, beta: 1, c: pg.baseAddress!, ldc: K)
                }
            }
            weight.value.withUnsafeBufferPointer { pw in
                dx.data.withUnsafeMutableBufferPointer { pdx in
                    BLAS.sgemm(
                        m: n, n: K, k: O, a: pd.baseAddress!, lda: O, b: pw.baseAddress!, ldb: K,
                        c: pdx.baseAddress!, ldc: K)
                }
            }
        }
        return dx
    }
}

/// Mean softmax cross-entropy over a batch of logits (N×1×1×K): (loss, dL/dlogits, correct predictions).
public func softmaxCrossEntropy(logits: Tensor, labels: [Int]) -> (loss: Float, gradient: Tensor, correct: Int) {
    let n = logits.n, K = logits.c
    var grad = Tensor(n: n, h: 1, w: 1, c: K)
    var loss: Double = 0
    var correct = 0
    for b in 0..<n {
        var mx = -Float.infinity, arg = 0
        for k in 0..<K where logits.data[b * K + k] > mx { mx = logits.data[b * K + k]; arg = k }
        if arg == labels[b] { correct += 1 }
        var s: Float = 0
        for k in 0..<K { let e = _exp(logits.data[b * K + k] - mx); grad.data[b * K + k] = e; s += e }
        for k in 0..<K { grad.data[b * K + k] /= s }
        loss -= _log(Double(max(grad.data[b * K + labels[b]], 1e-30)))
        grad.data[b * K + labels[b]] -= 1
        for k in 0..<K { grad.data[b * K + k] /= Float(n) }
    }
    return (Float(loss / Double(n)), grad, correct)
}
