// Labelled nucleus patches from the shared data layouts (DIR/images/*.png, DIR/cells.csv, DIR/meta.json),
// centred on the centroids and resampled so that every patch covers the same area in microns.

import Foundation
import HaliDatasets
import HaliImaging
import HaliInference
import HaliPNG

/// The classes the backbone is trained on: CoNSeP's spindle and CRC's fibroblast are both "stromal".
public enum NucleusClass {
    public static let names = ["epithelial", "stromal", "inflammatory", "other"]

    /// Class index for a cells.csv class name, nil for names outside the training classes.
    public static func index(of raw: String) -> Int? {
        switch raw.lowercased() {
        case "epithelial", "malignant", "dysplastic/malignant epithelial", "healthy epithelial", "neoplastic": return 0
        case "spindle", "fibroblast", "stromal", "endothelial", "muscle": return 1
        case "inflammatory", "lymphocyte", "plasma", "neutrophil", "eosinophil": return 2
        case "other", "miscellaneous", "dead", "necrosis": return 3
        default: return nil
        }
    }
}

/// Patches stored as uint8 NHWC (`count × side × side × 3`), with labels (indices into `classNames`).
public struct PatchSet: Sendable {
    public var side: Int
    public var pixels: [UInt8]
    public var labels: [Int]
    public var classNames: [String]
    /// Source image of each patch (for splits by image).
    public var images: [String]

    public init(side: Int, classNames: [String]) { self.side = side; pixels = []; labels = []; self.classNames = classNames; images = [] }

    public var count: Int { labels.count }
    public var patchBytes: Int { side * side * 3 }

    public mutating func append(_ other: PatchSet) {
        precondition(other.side == side)
        pixels += other.pixels; labels += other.labels; images += other.images
    }

    public func subset(_ idx: [Int]) -> PatchSet {
        var s = PatchSet(side: side, classNames: classNames)
        s.pixels.reserveCapacity(idx.count * patchBytes)
        for i in idx {
            s.pixels += pixels[(i * patchBytes)..<((i + 1) * patchBytes)]
            s.labels.append(labels[i]); s.images.append(images[i])
        }
        return s
    }

    /// Centre crop to `side` (patches may be stored larger for shift augmentation).
    public func centreCropped(to newSide: Int) -> PatchSet {
        guard newSide != side else { return self }
        let o = (side - newSide) / 2
        var s = PatchSet(side: newSide, classNames: classNames)
        s.labels = labels; s.images = images
        s.pixels.reserveCapacity(count * newSide * newSide * 3)
        for i in 0..<count {
            for y in 0..<newSide {
                let start = ((i * side + y + o) * side + o) * 3
                s.pixels += pixels[start..<(start + newSide * 3)]
            }
        }
        return s
    }
}

/// One labelled set on disk (`DIR/images`, `DIR/cells.csv` with a `class` column, `DIR/meta.json`).
public struct LabelledCells: Sendable {
    public struct Cell: Sendable { public var x: Double, y: Double, className: String }
    public var directory: String
    public var micronsPerPixel: Double
    /// image file name → cells, images in sorted order.
    public var imageNames: [String]
    public var cells: [String: [Cell]]
    public var classNames: [String]

    public static func load(_ directory: String) throws -> LabelledCells {
        let csvPath = directory + "/cells.csv"
        guard let d = FileManager.default.contents(atPath: csvPath) else { throw DatasetError.notFound(csvPath) }
        var lines = String(decoding: d, as: UTF8.self).split(whereSeparator: \.isNewline).makeIterator()
        guard let header = lines.next() else { throw DatasetError.malformed("\(csvPath) is empty") }
        let cols = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let ci = cols.firstIndex(of: "image"), let cx = cols.firstIndex(of: "x"), let cy = cols.firstIndex(of: "y"),
            let cc = cols.firstIndex(of: "class")
        else {
            throw DatasetError.malformed("\(csvPath): header must contain image,x,y,class")
        }
        var cells: [String: [Cell]] = [:]
        var classes = Set<String>()
        while let line = lines.next() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count > max(ci, cx, cy, cc), let x = Double(f[cx]), let y = Double(f[cy]) else {
                throw DatasetError.malformed("\(csvPath): cannot parse '\(line)'")
            }
            let c = f[cc].trimmingCharacters(in: .whitespaces)
            classes.insert(c)
            cells[String(f[ci]), default: []].append(Cell(x: x, y: y, className: c))
        }
        var mpp = 0.25
        if let md = FileManager.default.contents(atPath: directory + "/meta.json"),
            let obj = (try? JSONSerialization.jsonObject(with: md)) as? [String: Any]
        {
            if let v = (obj["approx_mpp"] as? NSNumber)?.doubleValue {
                mpp = v
            } else if let mag = obj["magnification"] as? String, let m = Double(mag.lowercased().replacingOccurrences(of: "x", with: "")), m > 0 {
                mpp = 10 / m
            }
        }
        return LabelledCells(
            directory: directory, micronsPerPixel: mpp, imageNames: cells.keys.sorted(), cells: cells,
            classNames: classes.sorted())
    }

    /// Patches of the given images (all when nil), labels from `label` (cells it maps to nil are skipped).
    /// Images are decoded on up to `threads` threads.
    public func patches(
        images: [String]? = nil, side: Int, micronsPerPixel target: Double, classNames: [String],
        label: @Sendable (String) -> Int?, threads: Int = 2
    ) throws -> PatchSet {
        let names = images ?? imageNames
        let scale = target / micronsPerPixel
        let results = ConcurrentResults<Result<PatchSet, any Error>>(count: names.count)
        let dir = directory, table = cells
        DispatchQueue.concurrentPerform(iterations: max(1, threads)) { t in
            for i in stride(from: t, to: names.count, by: max(1, threads)) {
                results.set(
                    i,
                    Result {
                        var s = PatchSet(side: side, classNames: classNames)
                        let img = try PNGReader.readRGB(path: dir + "/images/" + names[i])
                        for c in table[names[i]] ?? [] {
                            guard let l = label(c.className) else { continue }
                            PatchExtractor.patch(img, cx: c.x, cy: c.y, side: side, scale: scale, into: &s.pixels)
                            s.labels.append(l); s.images.append(names[i])
                        }
                        return s
                    })
            }
        }
        var out = PatchSet(side: side, classNames: classNames)
        for r in results.values { out.append(try r!.get()) }
        return out
    }
}

/// Slots written by concurrent workers (each index by one worker).
final class ConcurrentResults<T>: @unchecked Sendable {
    private(set) var values: [T?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.lock(); values[i] = v; lock.unlock() }
}

extension LabelledCells {
    /// QuPath-style measurements of labelled cells, the cheap baseline a backbone must beat: HALI's own
    /// detector runs on each image (defaults, H&E), labelled centroids are matched one-to-one to detections
    /// within `radiusMicrons` (greedy by distance, as `hali eval detection`), and each cell gets its detection's
    /// area, perimeter, circularity, solidity, eccentricity, major/minor axis and per-stain mean/std/min/max OD,
    /// plus a last column that is 1 when no detection matched (its other values are then 0). Rows are in the
    /// order of `patches(images:…)` with the same `label`, so the two line up.
    /// - Returns: row-major values, the dimension, and the fraction of cells matched to a detection.
    public func measurementFeatures(
        images: [String]? = nil, label: @Sendable (String) -> Int?, radiusMicrons: Double = 4,
        threads: Int = 2
    ) throws -> (values: [Float], dimension: Int, matched: Double) {
        let names = images ?? imageNames
        let dir = directory, table = cells, mpp = micronsPerPixel
        let stainCount = 2  // the detector measures hematoxylin and the second stain (eosin for H&E)
        let dimension = 7 + 4 * stainCount + 1
        let results = ConcurrentResults<Result<(values: [Float], matched: Int, total: Int), any Error>>(count: names.count)
        DispatchQueue.concurrentPerform(iterations: max(1, threads)) { t in
            for i in stride(from: t, to: names.count, by: max(1, threads)) {
                results.set(
                    i,
                    Result {
                        let img = try PNGReader.readRGB(path: dir + "/images/" + names[i])
                        let found = NucleusDetector().detect(img, micronsPerPixel: mpp)
                        let labelled = (table[names[i]] ?? []).filter { label($0.className) != nil }
                        let (pairs, _) = CentroidMatching.match(
                            predicted: found.map(\.centroid),
                            truth: labelled.map { Point(x: $0.x, y: $0.y) },
                            radius: radiusMicrons / mpp)
                        var detectionOf = [Int?](repeating: nil, count: labelled.count)
                        for (p, t) in pairs { detectionOf[t] = p }
                        var values: [Float] = []
                        values.reserveCapacity(labelled.count * dimension)
                        for d in detectionOf {
                            guard let d else { values += [Float](repeating: 0, count: dimension - 1) + [1]; continue }
                            let n = found[d]
                            var row = [
                                n.areaMicrons2, n.perimeterMicrons, n.circularity, n.solidity, n.eccentricity,
                                n.majorAxisMicrons, n.minorAxisMicrons,
                            ]
                            for s in 0..<stainCount {
                                if s < n.stains.count {
                                    let st = n.stains[s]
                                    row += [st.mean, st.std, st.min, st.max]
                                } else {
                                    row += [0, 0, 0, 0]
                                }
                            }
                            values += row.map { Float($0) } + [0]
                        }
                        return (values, pairs.count, labelled.count)
                    })
            }
        }
        var values: [Float] = [], matched = 0, total = 0
        for r in results.values { let v = try r!.get(); values += v.values; matched += v.matched; total += v.total }
        return (values, dimension, total > 0 ? Double(matched) / Double(total) : 0)
    }
}
