// Detection evaluation: one-to-one matching of predicted and labelled nucleus centroids.
//
// Matching rule: all (prediction, truth) pairs closer than the radius r (in pixels: r_µm / µm-per-px) are
// sorted by ascending distance (ties: prediction index, then truth index) and accepted greedily when
// neither point is already matched. Accepted pairs are true positives; unmatched predictions are false
// positives, unmatched labels false negatives. Candidate pairs come from a uniform grid of cell size r, so
// the cost is O((P + T) + K log K) for K pairs within r. Greedy-by-distance can differ from an optimal
// (Hungarian) assignment only when chains of points lie within r of each other; at r = 3 µm and typical
// nucleus spacing (> 5 µm) this is rare.
//
// precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN); the overall figures pool TP, FP, FN
// over all images (micro-average).

import Foundation
public import HaliImaging
import HaliPNG

public struct MatchCounts: Sendable, Equatable, Codable {
    public var truePositives: Int
    public var falsePositives: Int
    public var falseNegatives: Int

    public init(truePositives: Int, falsePositives: Int, falseNegatives: Int) {
        self.truePositives = truePositives; self.falsePositives = falsePositives; self.falseNegatives = falseNegatives
    }

    public var precision: Double { ratio(truePositives, truePositives + falsePositives) }
    public var recall: Double { ratio(truePositives, truePositives + falseNegatives) }
    public var f1: Double { ratio(2 * truePositives, 2 * truePositives + falsePositives + falseNegatives) }

    private func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 1 : Double(a) / Double(b) }

    public static func + (a: MatchCounts, b: MatchCounts) -> MatchCounts {
        MatchCounts(
            truePositives: a.truePositives + b.truePositives, falsePositives: a.falsePositives + b.falsePositives,
            falseNegatives: a.falseNegatives + b.falseNegatives)
    }
}

public enum CentroidMatching {
    public static let rule = "one-to-one greedy matching by ascending centroid distance within the radius (pooled TP/FP/FN for overall)"

    /// Matches `predicted` to `truth` within `radius` (same units as the points). Returns the accepted pairs
    /// (prediction index, truth index) in acceptance order and the counts.
    public static func match(predicted: [Point], truth: [Point], radius: Double) -> (pairs: [(Int, Int)], counts: MatchCounts) {
        guard radius > 0, !predicted.isEmpty, !truth.isEmpty else {
            return ([], MatchCounts(truePositives: 0, falsePositives: predicted.count, falseNegatives: truth.count))
        }
        struct Cell: Hashable { var x: Int; var y: Int }
        var grid: [Cell: [Int]] = [:]
        for (j, t) in truth.enumerated() {
            grid[Cell(x: Int((t.x / radius).rounded(.down)), y: Int((t.y / radius).rounded(.down))), default: []].append(j)
        }
        var candidates: [(d: Double, p: Int, t: Int)] = []
        let r2 = radius * radius
        for (i, p) in predicted.enumerated() {
            let cx = Int((p.x / radius).rounded(.down)), cy = Int((p.y / radius).rounded(.down))
            for dy in -1...1 {
                for dx in -1...1 {
                    guard let js = grid[Cell(x: cx + dx, y: cy + dy)] else { continue }
                    for j in js {
                        let ex = p.x - truth[j].x, ey = p.y - truth[j].y
                        let d2 = ex * ex + ey * ey
                        if d2 <= r2 { candidates.append((d2, i, j)) }
                    }
                }
            }
        }
        candidates.sort { ($0.d, $0.p, $0.t) < ($1.d, $1.p, $1.t) }
        var usedP = [Bool](repeating: false, count: predicted.count)
        var usedT = [Bool](repeating: false, count: truth.count)
        var pairs: [(Int, Int)] = []
        for c in candidates where !usedP[c.p] && !usedT[c.t] {
            usedP[c.p] = true; usedT[c.t] = true
            pairs.append((c.p, c.t))
        }
        return (
            pairs,
            MatchCounts(
                truePositives: pairs.count, falsePositives: predicted.count - pairs.count,
                falseNegatives: truth.count - pairs.count)
        )
    }
}

/// Result of one image.
public struct ImageDetectionResult: Sendable, Codable {
    public var image: String
    public var width: Int
    public var height: Int
    public var labelled: Int
    public var detected: Int
    public var counts: MatchCounts
    public var precision: Double
    public var recall: Double
    public var f1: Double
    /// Detector time (RGB in memory → nuclei with measurements), seconds; PNG decoding excluded.
    public var detectSeconds: Double
}

/// Evaluation of the nucleus detector on a labelled dataset.
public struct DetectionReport: Sendable, Codable {
    public var dataset: String
    public var labelSource: String
    public var micronsPerPixel: Double
    public var stain: String
    public var radiusMicrons: Double
    public var radiusPixels: Double
    public var matchingRule: String
    /// "hali-watershed" (with `parameters`) or the learned detector's weights.
    public var detector: String
    public var parameters: NucleusDetectionParameters
    public var images: [ImageDetectionResult]
    public var overall: MatchCounts
    public var precision: Double
    public var recall: Double
    public var f1: Double
    public var totalDetectSeconds: Double
    public var megapixelsPerSecond: Double
    public var nucleiPerSecond: Double

    public func renderJSON() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? enc.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    public func renderTable() -> String {
        func f(_ v: Double, _ d: Int = 3) -> String { String(format: "%.\(d)f", v) }
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            s.count >= w ? s : (left ? s + String(repeating: " ", count: w - s.count) : String(repeating: " ", count: w - s.count) + s)
        }
        let nameW = max(5, images.map(\.image.count).max() ?? 5)
        var out = "dataset: \(dataset)  (labels: \(labelSource), stain: \(stain), \(f(micronsPerPixel, 4)) µm/px)\n"
        out += "detector: \(detector)\n"
        out += "matching: \(matchingRule); radius \(f(radiusMicrons, 2)) µm = \(f(radiusPixels, 2)) px\n"
        let cols = ["truth", "pred", "TP", "FP", "FN", "prec", "recall", "F1", "ms"]
        out += pad("image", nameW, left: true) + cols.map { pad($0, 7) }.joined(separator: " ") + "\n"
        for r in images {
            let v = [
                String(r.labelled), String(r.detected), String(r.counts.truePositives), String(r.counts.falsePositives),
                String(r.counts.falseNegatives), f(r.precision), f(r.recall), f(r.f1), f(r.detectSeconds * 1000, 0),
            ]
            out += pad(r.image, nameW, left: true) + v.map { pad($0, 7) }.joined(separator: " ") + "\n"
        }
        let tv = [
            String(overall.truePositives + overall.falseNegatives), String(overall.truePositives + overall.falsePositives),
            String(overall.truePositives), String(overall.falsePositives), String(overall.falseNegatives),
            f(precision), f(recall), f(f1), f(totalDetectSeconds * 1000, 0),
        ]
        out += pad("overall", nameW, left: true) + tv.map { pad($0, 7) }.joined(separator: " ") + "\n"
        out += "detector: \(f(megapixelsPerSecond, 2)) MP/s, \(f(nucleiPerSecond, 0)) nuclei/s (one thread, PNG decoding excluded)\n"
        return out
    }
}

public enum DetectionEvaluation {
    /// Runs the detector on every image of a dataset directory (see `DatasetReader`) and matches its
    /// centroids to the labels within `radiusMicrons`.
    /// - Parameters:
    ///   - mpp: input pixel size in µm; nil = from the dataset (meta.json / XML).
    ///   - stain: nil = from meta.json (default H&E).
    ///   - limit: evaluate only the first `limit` images (sorted by name).
    ///   - range: evaluate only images `range` (1-based, sorted by name; applied before `limit`).
    ///   - detect: another detector (e.g. the learned one) instead of the watershed detector with `parameters`.
    public static func run(
        datasetDirectory: String, radiusMicrons: Double = 3, mpp: Double? = nil,
        stain: StainKind? = nil, limit: Int? = nil, range: ClosedRange<Int>? = nil,
        parameters: NucleusDetectionParameters = .init(),
        detect: (@Sendable (RGBImage, Double) -> [Nucleus])? = nil,
        detectorName: String = "hali-watershed"
    ) throws -> DetectionReport {
        guard radiusMicrons > 0 else { throw DatasetError.malformed("radius must be positive") }
        var ds = try DatasetReader.load(directory: datasetDirectory)
        if let r = range {
            guard let selected = ImageRange.select(ds.images, r) else {
                throw DatasetError.malformed("images \(r.lowerBound)-\(r.upperBound) outside 1…\(ds.images.count)")
            }
            ds.images = selected
        }
        if let l = limit { ds.images = Array(ds.images.prefix(max(0, l))) }
        guard let pixelSize = mpp ?? ds.micronsPerPixel, pixelSize > 0 else {
            throw DatasetError.malformed("\(datasetDirectory): pixel size unknown (no approx_mpp in meta.json); pass --mpp")
        }
        let stainKind = stain ?? ds.stain ?? .he
        let detector = NucleusDetector(parameters: parameters, stains: stainKind.matrix)
        let radiusPx = radiusMicrons / pixelSize
        var rows: [ImageDetectionResult] = []
        var total = MatchCounts(truePositives: 0, falsePositives: 0, falseNegatives: 0)
        var seconds = 0.0, pixels = 0, nuclei = 0
        for img in ds.images {
            let rgb = try PNGReader.readRGB(path: img.path)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let found = detect?(rgb, pixelSize) ?? detector.detect(rgb, micronsPerPixel: pixelSize)
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let m = CentroidMatching.match(predicted: found.map(\.centroid), truth: img.centroids, radius: radiusPx).counts
            rows.append(
                ImageDetectionResult(
                    image: img.name, width: rgb.width, height: rgb.height, labelled: img.centroids.count,
                    detected: found.count, counts: m, precision: m.precision, recall: m.recall,
                    f1: m.f1, detectSeconds: dt))
            total = total + m
            seconds += dt; pixels += rgb.width * rgb.height; nuclei += found.count
        }
        return DetectionReport(
            dataset: datasetDirectory, labelSource: ds.labelSource.rawValue, micronsPerPixel: pixelSize,
            stain: stainKind.rawValue, radiusMicrons: radiusMicrons, radiusPixels: radiusPx,
            matchingRule: CentroidMatching.rule, detector: detectorName, parameters: parameters, images: rows, overall: total,
            precision: total.precision, recall: total.recall, f1: total.f1, totalDetectSeconds: seconds,
            megapixelsPerSecond: seconds > 0 ? Double(pixels) / 1e6 / seconds : 0,
            nucleiPerSecond: seconds > 0 ? Double(nuclei) / seconds : 0)
    }
}
