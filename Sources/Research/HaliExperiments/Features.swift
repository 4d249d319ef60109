// Feature extraction: every cell becomes one row of an N × D Float matrix. The learning code only sees the matrix.
//
// "cheap" features (default until the CNN embedding is available), at physical scale (µm, so 20x and 40x agree):
//  * an 8 × 8 RGB thumbnail of the 24 × 24 µm window centred on the centroid (each thumbnail pixel = the mean of
//    its 3 × 3 µm block): 192 values;
//  * mean R, G, B and grey standard deviation in a disc of 4 µm radius (the nucleus) and rings 4–8 µm and
//    8–14 µm (context): 12 values.
// Columns are z-scored over the whole dataset (an unsupervised step; no labels are used).

import Foundation
import HaliDatasets
public import HaliImaging
public import HaliMath

public enum FeatureKind: String, Sendable, CaseIterable, Codable {
    case cheap
    case cnn
    /// The CNN embedding and the cheap features' 12 colour statistics (nucleus disc, two context rings): colour the
    /// H&E-trained backbone may not carry, e.g. the DAB brown of a Ki-67-positive nucleus (issue 17, item 4).
    case cnnColour = "cnn+colour"
}

public enum CheapFeatures {
    public static let dimension = 8 * 8 * 3 + 12

    /// Raw (unstandardised) features for all cells of `data` (reads each image once).
    public static func extract(_ data: CellData) throws -> Matrix {
        var out = [Float](repeating: 0, count: data.count * dimension)
        let byImage = Dictionary(grouping: 0..<data.count, by: { data.image[$0] })
        for (im, cells) in byImage {
            let (rgb, dx, dy) = try data.pixels(ofImage: im)
            for c in cells {
                let f = cellFeatures(rgb, x: data.x[c] + dx, y: data.y[c] + dy, mpp: data.micronsPerPixel)
                for j in 0..<dimension { out[c * dimension + j] = f[j] }
            }
        }
        return Matrix(rows: data.count, columns: dimension, values: out)
    }

    /// The 12 colour statistics alone (mean R, G, B and grey sd of the nucleus disc and the two rings).
    public static func colour(_ data: CellData) throws -> Matrix {
        let all = try extract(data)
        let first = 8 * 8 * 3
        var out = [Float](repeating: 0, count: data.count * 12)
        for c in 0..<data.count {
            for j in 0..<12 { out[c * 12 + j] = all.values[c * dimension + first + j] }
        }
        return Matrix(rows: data.count, columns: 12, values: out)
    }

    public static func cellFeatures(_ img: RGBImage, x: Double, y: Double, mpp: Double) -> [Float] {
        var f = [Float](repeating: 0, count: dimension)
        let w = img.width, h = img.height
        let blockPx = 3.0 / mpp
        let half = 12.0 / mpp
        img.pixels.withUnsafeBufferPointer { p in
            // Thumbnail.
            for by in 0..<8 {
                for bx in 0..<8 {
                    let x0 = x - half + Double(bx) * blockPx, y0 = y - half + Double(by) * blockPx
                    var s = (0.0, 0.0, 0.0), n = 0.0
                    var yy = y0
                    while yy < y0 + blockPx {
                        var xx = x0
                        let yi = min(h - 1, max(0, Int(yy)))
                        while xx < x0 + blockPx {
                            let xi = min(w - 1, max(0, Int(xx)))
                            let o = (yi * w + xi) * 3
                            s.0 += Double(p[o]); s.1 += Double(p[o + 1]); s.2 += Double(p[o + 2]); n += 1
                            xx += 1
                        }
                        yy += 1
                    }
                    let o = (by * 8 + bx) * 3
                    f[o] = Float(s.0 / max(n, 1) / 255); f[o + 1] = Float(s.1 / max(n, 1) / 255); f[o + 2] = Float(s.2 / max(n, 1) / 255)
                }
            }
            // Radial statistics.
            let radii = [0.0, 4.0, 8.0, 14.0].map { $0 / mpp }
            var sums = [[Double]](repeating: [0, 0, 0, 0, 0], count: 3)  // r, g, b, grey, grey²
            var counts = [Double](repeating: 0, count: 3)
            let r = Int(radii[3].rounded(.up))
            for dy in -r...r {
                let yi = Int(y.rounded()) + dy
                if yi < 0 || yi >= h { continue }
                for dx in -r...r {
                    let xi = Int(x.rounded()) + dx
                    if xi < 0 || xi >= w { continue }
                    let d = (Double(dx * dx + dy * dy)).squareRoot()
                    guard d < radii[3] else { continue }
                    let ring = d < radii[1] ? 0 : (d < radii[2] ? 1 : 2)
                    let o = (yi * w + xi) * 3
                    let rr = Double(p[o]) / 255, gg = Double(p[o + 1]) / 255, bb = Double(p[o + 2]) / 255
                    let grey = (rr + gg + bb) / 3
                    sums[ring][0] += rr; sums[ring][1] += gg; sums[ring][2] += bb; sums[ring][3] += grey; sums[ring][4] += grey * grey
                    counts[ring] += 1
                }
            }
            for ring in 0..<3 {
                let n = max(counts[ring], 1)
                let base = 192 + ring * 4
                f[base] = Float(sums[ring][0] / n); f[base + 1] = Float(sums[ring][1] / n); f[base + 2] = Float(sums[ring][2] / n)
                let mean = sums[ring][3] / n
                f[base + 3] = Float(max(sums[ring][4] / n - mean * mean, 0).squareRoot())
            }
        }
        return f
    }
}

/// Column z-scoring in place (constant columns become 0).
public func standardize(_ m: inout Matrix) {
    let n = m.rows, d = m.columns
    guard n > 0 else { return }
    var mean = [Double](repeating: 0, count: d), sq = mean
    for r in 0..<n { for c in 0..<d { let v = Double(m.values[r * d + c]); mean[c] += v; sq[c] += v * v } }
    for c in 0..<d {
        mean[c] /= Double(n)
        let v = max(sq[c] / Double(n) - mean[c] * mean[c], 0)
        sq[c] = v > 1e-12 ? 1 / v.squareRoot() : 0
    }
    for r in 0..<n { for c in 0..<d { m.values[r * d + c] = Float((Double(m.values[r * d + c]) - mean[c]) * sq[c]) } }
}

/// FNV-1a, 64-bit (Fowler, Noll, Vo): a cheap content hash for cache names, not for security.
public enum FNV1a {
    public static let offsetBasis: UInt64 = 14695981039346656037

    public static func hash<S: Sequence>(_ bytes: S, from start: UInt64 = offsetBasis) -> UInt64 where S.Element == UInt8 {
        var h = start
        for b in bytes { h = (h ^ UInt64(b)) &* 1099511628211 }
        return h
    }

    /// Continues `start` with the 8 little-endian bytes of `word` (no allocation).
    public static func hash(word: UInt64, from start: UInt64) -> UInt64 {
        var h = start
        for shift in stride(from: 0, to: 64, by: 8) { h = (h ^ ((word >> UInt64(shift)) & 0xff)) &* 1099511628211 }
        return h
    }
}

/// Caches features as a raw little-endian Float32 file beside nothing in the dataset: under `cacheDirectory`.
public enum FeatureCache {
    public static func load(
        _ data: CellData, kind: FeatureKind, cacheDirectory: String?,
        compute: () throws -> Matrix
    ) throws -> Matrix {
        guard let dir = cacheDirectory else { return try compute() }
        // What the features depend on: the images (or blocks) by name, the scale, and every cell's place.
        var h = FNV1a.hash(data.imageNames.joined(separator: ",").utf8)
        h = FNV1a.hash(word: data.micronsPerPixel.bitPattern, from: h)
        for c in 0..<data.count {
            h = FNV1a.hash(word: UInt64(data.image[c]), from: h)
            h = FNV1a.hash(word: data.x[c].bitPattern, from: h)
            h = FNV1a.hash(word: data.y[c].bitPattern, from: h)
        }
        let key = data.directory.replacingOccurrences(of: "/", with: "_") + "-\(kind.rawValue)-\(data.count)-\(String(h, radix: 16)).f32"
        let path = dir + "/" + key
        if let d = FileManager.default.contents(atPath: path), d.count % 4 == 0, d.count > 0, data.count > 0 {
            let floats = d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            if floats.count % data.count == 0 {
                return Matrix(rows: data.count, columns: floats.count / data.count, values: floats)
            }
        }
        let m = try compute()
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bytes = m.values.withUnsafeBytes { Data($0) }
        _ = FileManager.default.createFile(atPath: path, contents: bytes)  // a cache: failing to write only costs time
        return m
    }
}
