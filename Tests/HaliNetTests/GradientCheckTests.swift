import HaliMath
import Testing

@testable import HaliNet

/// Central finite differences of L = Σ out ⊙ R against the analytic gradients, on a sample of coordinates of
/// the input and of every trainable parameter.
func gradientCheck(
    input: Tensor, parameters: [Parameter], seed: UInt64 = 7, samples: Int = 12, eps: Float = 1e-3,
    forward: (Tensor) -> Tensor, backward: (Tensor) -> Tensor?
) -> [String] {
    var rng = SeededRandom(seed: seed)
    let out = forward(input)
    var r = out
    for i in 0..<r.count { r.data[i] = rng.normal() }
    for p in parameters where p.trainable { p.zeroGrad() }
    let dx = backward(r)
    func loss(_ x: Tensor) -> Double {
        let y = forward(x)
        var s = 0.0
        for i in 0..<y.count { s += Double(y.data[i]) * Double(r.data[i]) }
        return s
    }
    var failures: [String] = []
    func compare(_ what: String, analytic: [Float], perturb: (Int, Float) -> Void, count: Int) {
        let scale = Double(analytic.map { abs($0) }.max() ?? 0)
        for _ in 0..<min(samples, count) {
            let i = Int(rng.next() % UInt64(count))
            perturb(i, eps); let lp = loss(input)
            perturb(i, -2 * eps); let lm = loss(input)
            perturb(i, eps)
            let num = (lp - lm) / Double(2 * eps), ana = Double(analytic[i])
            if abs(num - ana) > 2e-2 * max(abs(num), abs(ana)) + 3e-3 * max(scale, 1e-2) {
                failures.append("\(what)[\(i)]: numeric \(num), analytic \(ana)")
            }
        }
    }
    var x = input
    if let dx {
        let scale = Double(dx.data.map { abs($0) }.max() ?? 0)
        for _ in 0..<min(samples, x.count) {
            let i = Int(rng.next() % UInt64(x.count))
            let v = x.data[i]
            x.data[i] = v + eps; let lp = loss(x)
            x.data[i] = v - eps; let lm = loss(x)
            x.data[i] = v
            let num = (lp - lm) / Double(2 * eps), ana = Double(dx.data[i])
            if abs(num - ana) > 2e-2 * max(abs(num), abs(ana)) + 3e-3 * max(scale, 1e-2) {
                failures.append("input[\(i)]: numeric \(num), analytic \(ana)")
            }
        }
    }
    for p in parameters where p.trainable {
        let g = p.grad
        compare(p.name, analytic: g, perturb: { i, d in p.value[i] += d }, count: p.value.count)
    }
    return failures
}

func randomTensor(_ n: Int, _ h: Int, _ w: Int, _ c: Int, seed: UInt64) -> Tensor {
    var rng = SeededRandom(seed: seed)
    return Tensor(n: n, h: h, w: w, c: c, data: (0..<(n * h * w * c)).map { _ in rng.normal() })
}

@Suite struct GradientChecks {
    @Test(arguments: [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (7, 2, 3)])
    func conv2d(kernel: Int, stride: Int, pad: Int) {
        var rng = SeededRandom(seed: 1)
        let conv = Conv2D(name: "c", inChannels: 3, outChannels: 4, kernel: kernel, stride: stride, pad: pad, rng: &rng)
        let x = randomTensor(2, 7, 6, 3, seed: 2)
        let f = gradientCheck(
            input: x, parameters: [conv.weight], forward: { conv.forward($0, training: true) },
            backward: { conv.backward($0) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test func batchNorm() {
        let bn = BatchNorm(name: "bn", channels: 3)
        var rng = SeededRandom(seed: 3)
        for i in 0..<3 { bn.gamma.value[i] = 0.5 + rng.uniform(); bn.beta.value[i] = rng.normal() }
        let x = randomTensor(2, 3, 3, 3, seed: 4)
        let f = gradientCheck(
            input: x, parameters: [bn.gamma, bn.beta], forward: { bn.forward($0, training: true) },
            backward: { bn.backward($0) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test func relu() {
        var saved = Tensor(n: 0, h: 0, w: 0, c: 0)
        let x = randomTensor(2, 4, 4, 3, seed: 5)
        let f = gradientCheck(
            input: x, parameters: [],
            forward: {
                var y = $0; Activation.relu(&y); saved = y; return y
            },
            backward: { Activation.reluBackward($0, output: saved) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test func maxPool() {
        let pool = MaxPool(kernel: 3, stride: 2, pad: 1)
        let x = randomTensor(2, 7, 6, 3, seed: 6)
        let f = gradientCheck(
            input: x, parameters: [], forward: { pool.forward($0, training: true) },
            backward: { pool.backward($0) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test func globalAveragePool() {
        let x = randomTensor(2, 3, 5, 4, seed: 8)
        let f = gradientCheck(
            input: x, parameters: [], forward: { GlobalAveragePool.forward($0) },
            backward: { GlobalAveragePool.backward($0, h: 3, w: 5) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test func linear() {
        var rng = SeededRandom(seed: 9)
        let fc = Linear(name: "fc", inFeatures: 6, outFeatures: 3, rng: &rng)
        let x = randomTensor(4, 1, 1, 6, seed: 10)
        let f = gradientCheck(
            input: x, parameters: [fc.weight, fc.bias], forward: { fc.forward($0, training: true) },
            backward: { fc.backward($0) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test(arguments: [(4, 4, 1), (4, 6, 2)])
    func basicBlock(inC: Int, outC: Int, stride: Int) {
        var rng = SeededRandom(seed: 11)
        let b = BasicBlock(name: "layer1.0", inChannels: inC, outChannels: outC, stride: stride, rng: &rng)
        let x = randomTensor(2, 5, 5, inC, seed: 12)
        let f = gradientCheck(
            input: x, parameters: b.parameters, forward: { b.forward($0, training: true) },
            backward: { b.backward($0) })
        #expect(f.isEmpty, "\(f)")
    }

    @Test func softmaxCrossEntropyGradient() {
        let logits = randomTensor(3, 1, 1, 4, seed: 13)
        let labels = [0, 3, 1]
        let (_, g, _) = softmaxCrossEntropy(logits: logits, labels: labels)
        for i in 0..<logits.count {
            var p = logits, m = logits
            p.data[i] += 1e-3; m.data[i] -= 1e-3
            let num = (softmaxCrossEntropy(logits: p, labels: labels).loss - softmaxCrossEntropy(logits: m, labels: labels).loss) / 2e-3
            #expect(abs(num - g.data[i]) < 2e-3, "logit \(i): numeric \(num), analytic \(g.data[i])")
        }
    }

    /// The whole network end to end (stem with max pool, two stages with a downsampling block, head).
    @Test func tinyResNet() {
        let cfg = ResNetConfig(
            stemWidth: 4, stemKernel: 3, stemStride: 1, stemMaxPool: true, widths: [4, 6],
            blocks: [1, 1], strides: [1, 2], numClasses: 3)
        let net = ResNet(config: cfg, seed: 14)
        let x = randomTensor(3, 8, 8, 3, seed: 15)
        let f = gradientCheck(
            input: x, parameters: net.trainableParameters, samples: 4,
            forward: { net.forward($0, training: true).logits },
            backward: {
                net.backward($0); return nil
            })
        #expect(f.isEmpty, "\(f)")
    }
}

@Suite struct ConvolutionTests {
    /// The sgemm convolution against a direct 7-loop convolution on a small literal case.
    @Test func im2colMatchesDirectConvolution() {
        var rng = SeededRandom(seed: 20)
        let conv = Conv2D(name: "c", inChannels: 2, outChannels: 3, kernel: 3, stride: 2, pad: 1, rng: &rng)
        // 1×5×4×2 input with literal values 0, 1, 2, …
        let x = Tensor(n: 1, h: 5, w: 4, c: 2, data: (0..<40).map { Float($0) * 0.1 - 1 })
        let y = conv.forward(x, training: false)
        #expect(y.shape == [1, 3, 2, 3])
        let w = conv.weight.fileValues()  // OIHW
        for oy in 0..<3 {
            for ox in 0..<2 {
                for o in 0..<3 {
                    var s: Float = 0
                    for i in 0..<2 {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx
                                if iy >= 0, iy < 5, ix >= 0, ix < 4 { s += x[0, iy, ix, i] * w[((o * 2 + i) * 3 + ky) * 3 + kx] }
                            }
                        }
                    }
                    #expect(abs(y[0, oy, ox, o] - s) < 1e-5)
                }
            }
        }
    }

    /// Folding batch norm into the convolutions does not change the inference output.
    @Test func foldedEqualsUnfolded() {
        let net = ResNet(config: .compact(), seed: 21)
        randomizeBatchNorm(net, seed: 22)
        let x = randomTensor(2, 40, 40, 3, seed: 23)
        let (f1, l1) = net.forward(x, training: false)
        let folded = net.folded()
        let f2 = folded.features(x), l2 = folded.logits(features: f2)
        #expect(maxRelativeError(f2.data, f1.data) < 1e-5)
        #expect(maxRelativeError(l2.data, l1.data) < 1e-5)
    }

    /// The allocation-free workspace path gives exactly the tensor path's features, for the compact layout
    /// and for ResNet-18's (7×7/2 stem and max pool), and a workspace reused for a smaller batch stays right.
    @Test(arguments: ["compact", "resnet18"]) func workspaceEqualsTensorPath(layout: String) {
        let config: ResNetConfig = layout == "compact" ? .compact() : .resnet18(numClasses: 3)
        let net = ResNet(config: config, seed: 31)
        randomizeBatchNorm(net, seed: 32)
        let folded = net.folded()
        let workspace = InferenceWorkspace()
        for (n, seed) in [(3, UInt64(33)), (2, UInt64(34))] {
            let x = randomTensor(n, 40, 40, 3, seed: seed)
            let expected = folded.features(x).data
            var got = [Float](repeating: .nan, count: n * config.featureDimension)
            x.data.withUnsafeBufferPointer { px in
                got.withUnsafeMutableBufferPointer { po in
                    folded.features(px.baseAddress!, n: n, h: 40, w: 40, into: po.baseAddress!, workspace: workspace)
                }
            }
            #expect(got == expected)
        }
    }
}

func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    let scale = b.map { abs($0) }.max() ?? 0
    return zip(a, b).map { abs($0 - $1) }.max()! / max(scale, 1e-12)
}

/// Non-trivial batch-norm statistics so that folding and loading are really exercised.
func randomizeBatchNorm(_ net: ResNet, seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    for p in net.parameters {
        for i in p.value.indices {
            if p.name.hasSuffix("bn1.weight") || p.name.hasSuffix("bn2.weight") || p.name.hasSuffix("downsample.1.weight") {
                p.value[i] = 0.5 + rng.uniform()
            } else if p.name.hasSuffix(".bias") && !p.name.hasPrefix("fc") {
                p.value[i] = 0.1 * rng.normal()
            } else if p.name.hasSuffix("running_mean") {
                p.value[i] = 0.1 * rng.normal()
            } else if p.name.hasSuffix("running_var") {
                p.value[i] = 0.5 + rng.uniform()
            }
        }
    }
}
