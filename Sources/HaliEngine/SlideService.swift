public import HaliCore
import Foundation
public import HaliIndex
public import HaliMath
public import HaliSlide

/// A slide being served: its OpenSlide handle, its cells (the index from ingest), a spatial grid over them, and the
/// per-cell feature matrix the heads and the active learner use. Immutable once built, so shared freely.
public final class ServedSlide: Sendable {
    public let id: String
    public let slide: Slide
    public let table: CellTable
    public let features: Matrix
    /// "cnn:<weights>" when the index holds CNN embeddings (hali ingest --weights), else "measurements" (shape and
    /// stain statistics from ingest, standardised).
    public let featureKind: String
    public let micronsPerPixel: Double
    /// How the index was made (for exports and the record).
    public let manifest: IndexManifest
    let grid: CellGrid

    public init(id: String, slide: Slide, table: CellTable, manifest: IndexManifest) {
        self.id = id
        self.slide = slide
        self.table = table
        self.manifest = manifest
        self.micronsPerPixel = manifest.slide.micronsPerPixel
        if table.embeddingDimension > 0 {
            self.features = Matrix(rows: table.count, columns: table.embeddingDimension, values: table.embeddings)
            self.featureKind = "cnn:\(table.embeddingSource)"
        } else {
            self.features = SlideFeatures.measurements(table)
            self.featureKind = "measurements"
        }
        self.grid = CellGrid(table: table, bucket: 256)
    }

    /// A client's region checked against the slide: non-empty and wholly inside it. The comparisons are written so
    /// that no sum of client numbers is formed (`x + width` overflows for width = Int64.max and would trap), so every
    /// later `x + width` on the returned region is safe: it is at most the slide's width.
    public func validated(_ region: Region) throws(EngineError) -> Region {
        let (w, h) = (slide.width, slide.height)
        guard region.width > 0, region.height > 0, region.x >= 0, region.y >= 0, region.x < w, region.y < h,
            region.width <= w - region.x, region.height <= h - region.y
        else {
            throw EngineError(
                .invalidArgument,
                "region (\(region.x), \(region.y)) \(region.width)×\(region.height) is empty or outside the \(w)×\(h) slide")
        }
        return region
    }

    /// Rows whose centroid lies in the level-0 rectangle, in row (id) order.
    public func cells(inX x: Int64, y: Int64, width: Int64, height: Int64) -> [Int] {
        grid.rows(x0: Double(x) - 0.5, y0: Double(y) - 0.5, x1: Double(x + width) - 0.5, y1: Double(y + height) - 0.5, table: table)
    }
}

/// Buckets of cell rows by centroid, `bucket` level-0 pixels square: a region query visits only the buckets it
/// overlaps. O(cells) to build, O(buckets touched + cells returned) per query.
struct CellGrid: Sendable {
    let bucket: Double
    let columns: Int
    let rows: Int
    let members: [[Int32]]

    init(table: CellTable, bucket: Double) {
        self.bucket = bucket
        let maxX = table.centroidX.max().map(Double.init) ?? 0
        let maxY = table.centroidY.max().map(Double.init) ?? 0
        columns = Int(max(0, maxX) / bucket) + 1
        rows = Int(max(0, maxY) / bucket) + 1
        var members = [[Int32]](repeating: [], count: columns * rows)
        for i in 0..<table.count {
            let c = min(columns - 1, max(0, Int(Double(table.centroidX[i]) / bucket)))
            let r = min(rows - 1, max(0, Int(Double(table.centroidY[i]) / bucket)))
            members[r * columns + c].append(Int32(i))
        }
        self.members = members
    }

    func rows(x0: Double, y0: Double, x1: Double, y1: Double, table: CellTable) -> [Int] {
        guard x1 > x0, y1 > y0 else { return [] }
        let c0 = max(0, Int(x0 / bucket)), c1 = min(columns - 1, Int(x1 / bucket))
        let r0 = max(0, Int(y0 / bucket)), r1 = min(rows - 1, Int(y1 / bucket))
        guard c0 <= c1, r0 <= r1 else { return [] }
        var out: [Int] = []
        for r in r0...r1 {
            for c in c0...c1 {
                for m in members[r * columns + c] {
                    let i = Int(m)
                    let x = Double(table.centroidX[i]), y = Double(table.centroidY[i])
                    if x >= x0 && x < x1 && y >= y0 && y < y1 { out.append(i) }
                }
            }
        }
        return out.sorted()
    }
}

public enum SlideFeatures {
    /// Per-cell features from the ingest measurements, each column standardised to mean 0 and standard deviation 1
    /// over the slide (absent values become 0, the mean): area, perimeter, circularity, solidity, eccentricity,
    /// major and minor axes, and mean/std/min/max optical density per stain.
    public static func measurements(_ table: CellTable) -> Matrix {
        var columns: [[Float]] = [
            table.areaMicrons2, table.perimeterMicrons, table.circularity, table.solidity, table.eccentricity,
            table.majorAxisMicrons, table.minorAxisMicrons,
        ]
        columns += table.stainStatistics
        if columns.isEmpty || table.count == 0 { return Matrix(rows: table.count, columns: max(1, columns.count)) }
        var values = [Float](repeating: 0, count: table.count * columns.count)
        for (c, column) in columns.enumerated() {
            let finite = column.filter(\.isFinite)
            let mean = finite.isEmpty ? 0 : finite.reduce(0, +) / Float(finite.count)
            let variance = finite.isEmpty ? 0 : finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(finite.count)
            let scale: Float = variance > 1e-12 ? 1 / variance.squareRoot() : 0
            for r in 0..<table.count where column[r].isFinite {
                values[r * columns.count + c] = (column[r] - mean) * scale
            }
        }
        return Matrix(rows: table.count, columns: columns.count, values: values)
    }
}
