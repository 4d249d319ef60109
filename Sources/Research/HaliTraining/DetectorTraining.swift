// Training and running the learned nucleus detector (HaliNet.NucleusMapNet + HaliImaging's map detection).
//
// Targets, at the detector's working resolution (0.5 µm/px by default), from instance maps (CoNSeP layout):
//   foreground = fraction of the working pixel's input pixels inside any nucleus (area average of the binary map);
//   centre     = max over nuclei of exp(−d²/2σ²), d = distance to the nucleus's pixel-mean centroid, σ = 1 µm.
// Loss: per-pixel binary cross-entropy with logits on both maps (soft targets). Input: per-channel optical density of
// R, G, B times `LearnedNucleusDetector.inputScale`. Augmentation: random crops, the 8 dihedral transforms, and a
// random near-identity 3×3 mixing of the OD channels with a global gain (stain strength and hue vary between labs).

import Foundation
import HaliDatasets
import HaliInference
public import HaliImaging
import HaliMath
public import HaliNet
import HaliPNG

/// One training image at the working resolution: OD input (H×W×3) and targets (H×W×2).
public struct DetectorSample: Sendable {
    public var name: String
    public var width: Int, height: Int
    public var input: [Float]
    public var targets: [Float]
    /// Labelled centroids in working pixels (for validation).
    public var centroids: [Point]
}

public enum DetectorData {
    /// Loads images/*.png of `directory` with their instance maps (instances/*.png, else annotations/*.xml polygons
    /// rasterised by `DatasetReader.instanceMap`), resampled to `parameters.workingPixelSizeMicrons`.
    /// `names`: a subset of image file names (nil = all). Only exhaustively outlined sets belong here: an unlabelled
    /// nucleus would be taught as background.
    public static func load(
        directory: String, names: [String]? = nil, micronsPerPixel: Double? = nil,
        parameters: NucleusDetectionParameters = .init(), centreSigmaMicrons: Double = 1
    ) throws -> [DetectorSample] {
        let ds = try DatasetReader.load(directory: directory)
        let hasInstances = FileManager.default.fileExists(atPath: directory + "/instances")
        guard hasInstances || FileManager.default.fileExists(atPath: directory + "/annotations") else {
            throw DatasetError.malformed("\(directory): training the detector needs instances/*.png or annotations/*.xml (nucleus outlines)")
        }
        guard let mpp = micronsPerPixel ?? ds.micronsPerPixel else {
            throw DatasetError.malformed("\(directory): pixel size unknown (no approx_mpp in meta.json)")
        }
        let detector = NucleusDetector(parameters: parameters, stains: .hematoxylinEosin)
        var out: [DetectorSample] = []
        for img in ds.images where names == nil || names!.contains(img.name) {
            let rgb = try PNGReader.readRGB(path: img.path)
            let map =
                hasInstances
                ? try PNGReader.readGray16(path: directory + "/instances/" + img.name)
                : DatasetReader.instanceMap(
                    polygons: try AperioXML.read(path: directory + "/annotations/" + img.name.dropLast(4) + ".xml").polygons,
                    width: rgb.width, height: rgb.height)
            guard map.width == rgb.width, map.height == rgb.height else {
                throw DatasetError.malformed("\(img.name): instance map \(map.width)×\(map.height) ≠ image \(rgb.width)×\(rgb.height)")
            }
            let working = detector.workingImage(rgb, micronsPerPixel: mpp)
            let w = working.width, h = working.height
            var binary = FloatImage(width: map.width, height: map.height)
            for i in 0..<binary.count where map.samples[i] != 0 { binary.data[i] = 1 }
            let fg = Filters.resampleArea(binary, newWidth: w, newHeight: h)
            let centres = DatasetReader.instanceCentroids(map).map {
                Point(x: ($0.x + 0.5) / working.scaleX - 0.5, y: ($0.y + 0.5) / working.scaleY - 0.5)
            }
            let sigma = centreSigmaMicrons / working.micronsPerPixelX
            var centre = [Float](repeating: 0, count: w * h)
            let reach = Int((3 * sigma).rounded(.up))
            for c in centres {
                let cx = Int(c.x.rounded()), cy = Int(c.y.rounded())
                for y in max(0, cy - reach)...min(h - 1, cy + reach) {
                    for x in max(0, cx - reach)...min(w - 1, cx + reach) {
                        let dx = Double(x) - c.x, dy = Double(y) - c.y
                        let v = Float(exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)))
                        if v > centre[y * w + x] { centre[y * w + x] = v }
                    }
                }
            }
            var targets = [Float](repeating: 0, count: w * h * 2)
            for i in 0..<(w * h) { targets[2 * i] = fg.data[i]; targets[2 * i + 1] = centre[i] }
            out.append(
                DetectorSample(
                    name: img.name, width: w, height: h, input: working.opticalDensity, targets: targets,
                    centroids: centres))
        }
        return out
    }
}

public struct DetectorTrainingOptions: Sendable {
    public var steps = 1500
    public var batchSize = 8
    /// Crop side at the working resolution (multiple of 4).
    public var crop = 128
    public var learningRate: Float = 3e-3
    public var weightDecay: Float = 1e-4
    public var widths = [16, 32, 64]
    public var seed: UInt64 = 1
    /// OD mixing strength: off-diagonal ±0.06·s, per-channel gain ±0.15·s, global gain ×[1 − 0.25·s, 1 + 0.3·s].
    public var colourJitter: Float = 1
    public var centreWeight: Float = 2
    /// Scale augmentation: crops are resampled by exp(U(−a, a)) (0.25 → ×0.78…1.28). 0 = none.
    public var scaleJitter: Float = 0.25
    public init() {}
}

public enum DetectorTraining {
    /// Trains from `samples` with Adam (decoupled weight decay), linear warm-up over 5 % of the steps then cosine decay.
    /// `report(step, loss)` is called every 25 steps. Deterministic for a seed (single-threaded augmentation).
    public static func train(
        _ samples: [DetectorSample], options o: DetectorTrainingOptions,
        report: (Int, Float) -> Void = { _, _ in }
    ) -> NucleusMapNet {
        precondition(!samples.isEmpty && o.crop % 4 == 0)
        precondition(samples.allSatisfy { $0.width >= 2 && $0.height >= 2 }, "training images must be at least 2×2 working pixels")
        let net = NucleusMapNet(widths: o.widths, seed: o.seed)
        let optimiser = Adam(learningRate: o.learningRate, weightDecay: o.weightDecay)
        var rng = SeededRandom(seed: o.seed &+ 17)
        let side = o.crop, per = side * side
        let weights: [Float] = [1, o.centreWeight]
        var running: Float = 0
        for step in 1...o.steps {
            var x = Tensor(n: o.batchSize, h: side, w: side, c: 3)
            var t = [Float](repeating: 0, count: o.batchSize * per * 2)
            for b in 0..<o.batchSize {
                let s = samples[Int(rng.next() % UInt64(samples.count))]
                // Scale: the crop covers side·scale source pixels (nuclei look larger when scale < 1).
                let scale = o.scaleJitter > 0 ? Float(exp(Double((rng.uniform() * 2 - 1) * o.scaleJitter))) : 1
                let span = Float(side) * scale
                let x0 = rng.uniform() * max(0, Float(s.width) - span), y0 = rng.uniform() * max(0, Float(s.height) - span)
                let transform = Int(rng.next() % 8)
                let mix = colourMix(&rng, strength: o.colourJitter)
                for yy in 0..<side {
                    for xx in 0..<side {
                        let (u, v) = dihedralSource(x: xx, y: yy, side: side, transform: transform)
                        // Bilinear sample at the source position of this pixel's centre; outside the image stays 0 (white).
                        let fx = x0 + (Float(u) + 0.5) * scale - 0.5, fy = y0 + (Float(v) + 0.5) * scale - 0.5
                        guard fx > -0.5, fy > -0.5, fx < Float(s.width) - 0.5, fy < Float(s.height) - 0.5 else { continue }
                        let cx = min(max(fx, 0), Float(s.width - 1)), cy = min(max(fy, 0), Float(s.height - 1))
                        let ix = min(Int(cx), s.width - 2), iy = min(Int(cy), s.height - 2)
                        let ax = cx - Float(ix), ay = cy - Float(iy)
                        let i00 = iy * s.width + ix, i01 = i00 + 1, i10 = i00 + s.width, i11 = i10 + 1
                        let w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay
                        @inline(__always) func at(_ a: [Float], _ c: Int, _ stride: Int) -> Float {
                            w00 * a[i00 * stride + c] + w01 * a[i01 * stride + c] + w10 * a[i10 * stride + c] + w11 * a[i11 * stride + c]
                        }
                        let dst = (b * per + yy * side + xx)
                        let r = at(s.input, 0, 3), g = at(s.input, 1, 3), bl = at(s.input, 2, 3)
                        for c in 0..<3 {
                            let od = max(0, mix[c * 3] * r + mix[c * 3 + 1] * g + mix[c * 3 + 2] * bl)
                            x.data[dst * 3 + c] = od * LearnedNucleusDetector.inputScale
                        }
                        t[dst * 2] = at(s.targets, 0, 2); t[dst * 2 + 1] = at(s.targets, 1, 2)
                    }
                }
            }
            let progress = Float(step - 1) / Float(max(1, o.steps - 1))
            let warm = max(1, o.steps / 20)
            optimiser.learningRate =
                step <= warm
                ? o.learningRate * Float(step) / Float(warm)
                : o.learningRate * 0.5 * (1 + Float(cos(Double(progress) * Double.pi)))
            for p in net.parameters where p.trainable { p.zeroGrad() }
            let logits = net.forward(x, training: true)
            let (loss, grad) = sigmoidCrossEntropy(logits: logits, targets: t, channelWeights: weights)
            net.backward(grad)
            optimiser.step(net.parameters)
            running = step == 1 ? loss : 0.95 * running + 0.05 * loss
            if step % 25 == 0 || step == o.steps { report(step, running) }
        }
        return net
    }

    /// A random near-identity 3×3 OD mixing matrix (row-major, output channel × input channel).
    static func colourMix(_ rng: inout SeededRandom, strength s: Float) -> [Float] {
        func uniform(_ a: Float) -> Float { (rng.uniform() * 2 - 1) * a }
        let global = 1 + (rng.uniform() * 0.55 - 0.25) * s
        var m = [Float](repeating: 0, count: 9)
        for r in 0..<3 {
            for c in 0..<3 { m[r * 3 + c] = r == c ? (1 + uniform(0.15 * s)) * global : uniform(0.06 * s) * global }
        }
        return m
    }
}
