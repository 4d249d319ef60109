// The domain's cells: the nuclei of one slide as a columnar table. HaliIndex stores it (`.hidx`); ingest builds it; the
// engine, exports and predictions read it.

import Foundation

/// The cells of one slide: what ingest produces and everything later stages (features, sessions, exports) read.
///
/// Columnar, one entry per nucleus, rows sorted by centroid (y, then x) so ids are reproducible: the same cells
/// always get the same ids, whatever the tiling or thread count that found them. Ids are 1-based row numbers.
///
/// Coordinates are level-0 pixels of the slide, x = column, y = row, origin top-left; pixel centres at integers.
public struct CellTable: Sendable, Equatable {
    /// Bitwise on floats, so NaN (an absent measurement) equals NaN.
    public static func == (a: CellTable, b: CellTable) -> Bool {
        func same(_ x: [Float], _ y: [Float]) -> Bool { x.count == y.count && zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern } }
        return same(a.centroidX, b.centroidX) && same(a.centroidY, b.centroidY) && same(a.minX, b.minX) && same(a.minY, b.minY)
            && same(a.maxX, b.maxX) && same(a.maxY, b.maxY) && same(a.areaMicrons2, b.areaMicrons2)
            && same(a.perimeterMicrons, b.perimeterMicrons) && same(a.circularity, b.circularity) && same(a.solidity, b.solidity)
            && same(a.eccentricity, b.eccentricity) && same(a.majorAxisMicrons, b.majorAxisMicrons)
            && same(a.minorAxisMicrons, b.minorAxisMicrons) && a.stainNames == b.stainNames
            && a.stainStatistics.count == b.stainStatistics.count && zip(a.stainStatistics, b.stainStatistics).allSatisfy(same)
            && a.contourStart == b.contourStart && same(a.contourPoints, b.contourPoints) && a.classNames == b.classNames
            && a.classIndex == b.classIndex && same(a.classProbability, b.classProbability)
            && a.embeddingDimension == b.embeddingDimension && same(a.embeddings, b.embeddings)
    }

    public var centroidX: [Float] = []
    public var centroidY: [Float] = []
    /// Bounding box corners (pixel edges: a single pixel (x, y) spans [x − ½, x + ½]).
    public var minX: [Float] = []
    public var minY: [Float] = []
    public var maxX: [Float] = []
    public var maxY: [Float] = []
    public var areaMicrons2: [Float] = []
    public var perimeterMicrons: [Float] = []
    public var circularity: [Float] = []
    public var solidity: [Float] = []
    public var eccentricity: [Float] = []
    public var majorAxisMicrons: [Float] = []
    public var minorAxisMicrons: [Float] = []
    /// Per-stain optical density statistics: `stainStatistics[stain * 4 + k]` for k = mean, std, min, max.
    public var stainNames: [String] = []
    public var stainStatistics: [[Float]] = []
    /// Contour of row i: `contourPoints[2 * contourStart[i] ..< 2 * contourStart[i + 1]]` as x0 y0 x1 y1 …
    public var contourStart: [UInt32] = [0]
    public var contourPoints: [Float] = []
    /// Class given by an external detector (HoVer-Net type, GeoJSON classification), −1 when none.
    public var classNames: [String] = []
    public var classIndex: [Int16] = []
    public var classProbability: [Float] = []
    /// Per-cell CNN features (the backbone's penultimate layer): row i is
    /// `embeddings[i * embeddingDimension ..< (i + 1) * embeddingDimension]`; empty when ingest ran without weights.
    /// Stored as IEEE half precision in the index.
    public var embeddingDimension = 0
    public var embeddings: [Float] = []
    /// Which weights made the embeddings (their file name), for the record.
    public var embeddingSource = ""

    public init() {}

    public var count: Int { centroidX.count }

    /// Stable id of row `row`.
    public static func id(ofRow row: Int) -> UInt64 { UInt64(row + 1) }
    /// Row of a cell id, or nil for ids outside the table.
    public func row(ofID id: UInt64) -> Int? { id >= 1 && id <= UInt64(count) ? Int(id - 1) : nil }

    public func contour(ofRow row: Int) -> ArraySlice<Float> {
        contourPoints[Int(contourStart[row]) * 2..<Int(contourStart[row + 1]) * 2]
    }

    /// One cell in row form, for building tables.
    public struct Row: Sendable {
        public var centroidX: Double, centroidY: Double
        public var minX: Double, minY: Double, maxX: Double, maxY: Double
        public var areaMicrons2: Double = .nan, perimeterMicrons: Double = .nan
        public var circularity: Double = .nan, solidity: Double = .nan, eccentricity: Double = .nan
        public var majorAxisMicrons: Double = .nan, minorAxisMicrons: Double = .nan
        /// Four values (mean, std, min, max) per stain of the table's `stainNames`.
        public var stainStatistics: [Double] = []
        /// x0 y0 x1 y1 …
        public var contour: [Double] = []
        public var className: String?
        public var classProbability: Double = .nan
        /// CNN features of this cell (empty when none).
        public var embedding: [Float] = []

        public init(centroidX: Double, centroidY: Double, minX: Double, minY: Double, maxX: Double, maxY: Double) {
            self.centroidX = centroidX
            self.centroidY = centroidY
            self.minX = minX
            self.minY = minY
            self.maxX = maxX
            self.maxY = maxY
        }
    }

    /// Id order: by centroid y, then x, then area and outline length for ties.
    public static func idOrder(_ a: Row, _ b: Row) -> Bool {
        if a.centroidY != b.centroidY { return a.centroidY < b.centroidY }
        if a.centroidX != b.centroidX { return a.centroidX < b.centroidX }
        if a.areaMicrons2 != b.areaMicrons2 { return a.areaMicrons2 < b.areaMicrons2 }
        return a.contour.count < b.contour.count
    }

    /// Builds a table from rows, sorting them into id order (`idOrder`).
    public init(rows unsorted: [Row], stainNames: [String], embeddingSource: String = "") {
        let rows = unsorted.sorted(by: Self.idOrder)
        self.init()
        self.stainNames = stainNames
        stainStatistics = Array(repeating: [], count: stainNames.count * 4)
        embeddingDimension = rows.first?.embedding.count ?? 0
        self.embeddingSource = embeddingDimension > 0 ? embeddingSource : ""
        precondition(rows.allSatisfy { $0.embedding.count == embeddingDimension }, "rows with different embedding sizes")
        embeddings.reserveCapacity(rows.count * embeddingDimension)
        var classLookup: [String: Int16] = [:]
        for row in rows {
            centroidX.append(Float(row.centroidX))
            centroidY.append(Float(row.centroidY))
            minX.append(Float(row.minX))
            minY.append(Float(row.minY))
            maxX.append(Float(row.maxX))
            maxY.append(Float(row.maxY))
            areaMicrons2.append(Float(row.areaMicrons2))
            perimeterMicrons.append(Float(row.perimeterMicrons))
            circularity.append(Float(row.circularity))
            solidity.append(Float(row.solidity))
            eccentricity.append(Float(row.eccentricity))
            majorAxisMicrons.append(Float(row.majorAxisMicrons))
            minorAxisMicrons.append(Float(row.minorAxisMicrons))
            for k in 0..<stainStatistics.count {
                stainStatistics[k].append(k < row.stainStatistics.count ? Float(row.stainStatistics[k]) : .nan)
            }
            contourPoints.append(contentsOf: row.contour.map(Float.init))
            contourStart.append(UInt32(contourPoints.count / 2))
            if let name = row.className {
                let index: Int16
                if let known = classLookup[name] {
                    index = known
                } else {
                    index = Int16(classNames.count)
                    classLookup[name] = index
                    classNames.append(name)
                }
                classIndex.append(index)
            } else {
                classIndex.append(-1)
            }
            classProbability.append(Float(row.classProbability))
            // Rounded to half precision here, as the index stores them, so a table reads back exactly as it was built.
            embeddings.append(contentsOf: row.embedding.map { Float(Float16($0)) })
        }
    }
}
