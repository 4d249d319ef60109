// Training the nucleus backbone: augmentation, mini-batches, AdamW/SGD with a cosine schedule, class-weighted
// cross-entropy, a progress bar and validation per epoch.

import Foundation
import HaliInference
import HaliMath
public import HaliNet

/// Random dihedral transform (flips, 90° rotations), shift (random crop of a larger stored patch) and small
/// stain/colour jitter (per-channel gain and offset, global brightness), applied to uint8 patches while
/// converting to the normalised float input.
public struct Augmentation: Sendable {
    public var dihedral = true
    public var maxShift = 3
    public var channelGain: Float = 0.06
    public var channelOffset: Float = 0.04
    public var brightness: Float = 0.06
    public init() {}
    public static let none: Augmentation = {
        var a = Augmentation(); a.dihedral = false; a.maxShift = 0; a.channelGain = 0; a.channelOffset = 0; a.brightness = 0
        return a
    }()
}

/// The source pixel that destination (x, y) of a side × side square reads under dihedral transform `transform`
/// (bit 0: mirror x, bit 1: mirror y, bit 2: transpose; the 8 symmetries of the square).
@inline(__always) func dihedralSource(x: Int, y: Int, side: Int, transform: Int) -> (x: Int, y: Int) {
    var u = x, v = y
    if transform & 1 != 0 { u = side - 1 - u }
    if transform & 2 != 0 { v = side - 1 - v }
    if transform & 4 != 0 { swap(&u, &v) }
    return (u, v)
}

public enum BatchBuilder {
    /// Builds an N×side×side×3 input from patches `idx` of `set` (stored side ≥ `side`), normalised with
    /// `mean`/`std` after augmentation.
    public static func batch(
        _ set: PatchSet, _ idx: ArraySlice<Int>, side: Int, mean: [Float], std: [Float],
        augmentation a: Augmentation, rng: inout SeededRandom
    ) -> Tensor {
        var t = Tensor(n: idx.count, h: side, w: side, c: 3)
        let S = set.side, margin = (S - side) / 2
        t.data.withUnsafeMutableBufferPointer { out in
            set.pixels.withUnsafeBufferPointer { px in
                for (b, i) in idx.enumerated() {
                    let sh = min(a.maxShift, margin)
                    let ox = margin + (sh > 0 ? Int(rng.next() % UInt64(2 * sh + 1)) - sh : 0)
                    let oy = margin + (sh > 0 ? Int(rng.next() % UInt64(2 * sh + 1)) - sh : 0)
                    let d = a.dihedral ? Int(rng.next() % 8) : 0
                    var gain = [Float](repeating: 1, count: 3), off = [Float](repeating: 0, count: 3)
                    let bright = 1 + (rng.uniform() * 2 - 1) * a.brightness
                    for c in 0..<3 {
                        gain[c] = bright * (1 + (rng.uniform() * 2 - 1) * a.channelGain)
                        off[c] = (rng.uniform() * 2 - 1) * a.channelOffset
                    }
                    let base = i * S * S * 3
                    for y in 0..<side {
                        for x in 0..<side {
                            // destination (y, x) reads source (sy, sx) under dihedral transform d
                            let (sx, sy) = dihedralSource(x: x, y: y, side: side, transform: d)
                            let s = base + ((sy + oy) * S + sx + ox) * 3
                            let o = ((b * side + y) * side + x) * 3
                            for c in 0..<3 {
                                let v = Float(px[s + c]) * (1 / 255) * gain[c] + off[c]
                                out[o + c] = (v - mean[c]) / std[c]
                            }
                        }
                    }
                }
            }
        }
        return t
    }

    /// Per-channel mean and std of patches (pixel values in [0, 1]).
    public static func channelStatistics(_ set: PatchSet) -> (mean: [Float], std: [Float]) {
        var s = [Double](repeating: 0, count: 3), sq = s
        let n = set.pixels.count / 3
        for i in 0..<n { for c in 0..<3 { let v = Double(set.pixels[i * 3 + c]) / 255; s[c] += v; sq[c] += v * v } }
        let mean = s.map { $0 / Double(n) }
        let std = (0..<3).map { (sq[$0] / Double(n) - mean[$0] * mean[$0]).squareRoot() }
        return (mean.map { Float($0) }, std.map { Float(max($0, 1e-3)) })
    }
}

public struct TrainingOptions: Sendable {
    public var epochs = 12
    public var batchSize = 64
    public var learningRate: Float = 2e-3
    public var weightDecay: Float = 1e-4
    public var optimizer = "adamw"  // or "sgd"
    public var seed: UInt64 = 1
    public var side = 40
    public var augmentation = Augmentation()
    /// Class weights in the loss ∝ frequency^−power (0 = unweighted, 0.5 = inverse square root).
    public var classWeightPower: Float = 0.5
    public var progress = true
    /// Stop after this many seconds (the current epoch completes its validation first).
    public var timeLimit: Double = .infinity
    public init() {}
}

public struct EpochReport: Sendable {
    public var epoch: Int, trainLoss: Float, trainAccuracy: Double
    public var validation: [(name: String, accuracy: Double, balancedAccuracy: Double)]
    public var seconds: Double
}

public final class Trainer {
    public let net: ResNet
    public var metadata: BackboneMetadata
    public let options: TrainingOptions
    public private(set) var history: [EpochReport] = []

    public init(config: ResNetConfig, metadata: BackboneMetadata, options: TrainingOptions) {
        precondition(config.hasHead, "Trainer: a network without its head (numClasses 0) has nothing to train against")
        net = ResNet(config: config, seed: options.seed)
        self.metadata = metadata
        self.options = options
    }

    /// Trains on `train`; evaluates on each validation set after every epoch.
    public func train(_ train: PatchSet, validation: [(String, PatchSet)], log: (String) -> Void) {
        let o = options
        var rng = SeededRandom(seed: o.seed &+ 1000)
        let K = net.config.numClasses
        var freq = [Double](repeating: 0, count: K)
        for l in train.labels { freq[l] += 1 }
        var cw = freq.map { $0 > 0 ? Float(pow($0 / Double(train.count), -Double(o.classWeightPower))) : 0 }
        let norm = zip(cw, freq).map { Double($0) * $1 }.reduce(0, +) / Double(train.count)
        cw = cw.map { $0 / Float(norm) }
        log(
            "training on \(train.count) patches, classes \(zip(metadata.classes, freq.map { Int($0) }).map { "\($0)=\($1)" }.joined(separator: " ")), loss weights \(cw.map { String(format: "%.2f", $0) })"
        )
        let opt: any Optimizer =
            o.optimizer == "sgd"
            ? SGD(learningRate: o.learningRate, momentum: 0.9, weightDecay: o.weightDecay)
            : Adam(learningRate: o.learningRate, weightDecay: o.weightDecay)
        let stepsPerEpoch = train.count / o.batchSize
        let totalSteps = stepsPerEpoch * o.epochs
        let warmup = min(200, totalSteps / 20)
        var step = 0
        let start = Date()
        let params = net.trainableParameters
        for epoch in 1...o.epochs {
            let t0 = Date()
            var order = Array(0..<train.count)
            order.shuffle(using: &rng)
            var lossSum: Double = 0, correct = 0, seen = 0
            for s in 0..<stepsPerEpoch {
                let lr =
                    step < warmup
                    ? o.learningRate * Float(step + 1) / Float(warmup)
                    : o.learningRate * 0.5 * (1 + Float(cos(Double.pi * Double(step - warmup) / Double(max(1, totalSteps - warmup)))))
                opt.learningRate = lr
                let idx = order[(s * o.batchSize)..<((s + 1) * o.batchSize)]
                let x = BatchBuilder.batch(
                    train, idx, side: o.side, mean: metadata.mean, std: metadata.std,
                    augmentation: o.augmentation, rng: &rng)
                let labels = idx.map { train.labels[$0] }
                net.zeroGrad()
                let (_, logits) = net.forward(x, training: true)
                var (loss, grad, ok) = softmaxCrossEntropy(logits: logits, labels: labels)
                for b in 0..<labels.count { for k in 0..<K { grad.data[b * K + k] *= cw[labels[b]] } }
                net.backward(grad)
                opt.step(params)
                step += 1
                lossSum += Double(loss) * Double(labels.count); correct += ok; seen += labels.count
                if o.progress && (s % 5 == 0 || s == stepsPerEpoch - 1) {
                    let frac = Double(s + 1) / Double(stepsPerEpoch)
                    let bar = String(repeating: "=", count: Int(frac * 30)) + String(repeating: " ", count: 30 - Int(frac * 30))
                    let rate = Double(seen) / Date().timeIntervalSince(t0)
                    FileHandle.standardError.write(
                        Data(
                            String(
                                format: "\repoch %d/%d [%@] %3.0f%% loss %.3f acc %.3f %.0f patches/s ",
                                epoch, o.epochs, bar, frac * 100, lossSum / Double(seen), Double(correct) / Double(seen), rate
                            ).utf8))
                }
            }
            if o.progress { FileHandle.standardError.write(Data("\n".utf8)) }
            var vals: [(name: String, accuracy: Double, balancedAccuracy: Double)] = []
            let folded = net.folded()
            for (name, v) in validation {
                // Cannot throw: the trainer's network has its head (init).
                let pred = try! Embedder(net: folded, metadata: metadata).predict(v.centreCropped(to: o.side))
                let m = ClassificationMetrics(truth: v.labels, predicted: pred, classes: K)
                vals.append((name, m.accuracy, m.balancedAccuracy))
            }
            let rep = EpochReport(
                epoch: epoch, trainLoss: Float(lossSum / Double(seen)), trainAccuracy: Double(correct) / Double(seen),
                validation: vals, seconds: Date().timeIntervalSince(t0))
            history.append(rep)
            log(
                String(format: "epoch %d: train loss %.4f acc %.4f | ", epoch, rep.trainLoss, rep.trainAccuracy)
                    + vals.map { String(format: "%@ acc %.4f bal %.4f", $0.name, $0.accuracy, $0.balancedAccuracy) }.joined(separator: " | ")
                    + String(format: " | %.0f s", rep.seconds))
            if Date().timeIntervalSince(start) > o.timeLimit { log("time limit reached after epoch \(epoch)"); break }
        }
    }
}
