// A dataset made ready for the experiments: labelling pool and held-aside test cells, their features, labels,
// and the patch grid over the pool.

import Foundation
import HaliDatasets
public import HaliLearning
public import HaliMath

public struct PreparedData: Sendable {
    public var pool: CellData
    public var poolX: Matrix
    public var poolLabels: [Int]
    public var test: CellData
    public var testX: Matrix
    public var testLabels: [Int]
    public var classNames: [String]
    public var grid: PatchGrid
    public var features: FeatureKind
    public var patchMicrons: Double
    /// How the test part was chosen.
    public var testDescription: String

    public var classCount: Int { classNames.count }

    public init(
        pool: CellData, poolX: Matrix, poolLabels: [Int], test: CellData, testX: Matrix, testLabels: [Int],
        classNames: [String], grid: PatchGrid, features: FeatureKind, patchMicrons: Double, testDescription: String
    ) {
        self.pool = pool; self.poolX = poolX; self.poolLabels = poolLabels
        self.test = test; self.testX = testX; self.testLabels = testLabels
        self.classNames = classNames; self.grid = grid; self.features = features
        self.patchMicrons = patchMicrons; self.testDescription = testDescription
    }

    /// - Parameters:
    ///   - testDirectory: a separate held-aside set (e.g. consep/test); else every 4th image (sorted by name,
    ///     indices 3, 7, …) of `directory` is held aside (with < 4 images: the last one).
    ///   - featureProvider: computes raw features for a cell table (cheap by default; the CNN embedding when given).
    ///   - imageRange: only these images of `directory` (1-based positions in name order), e.g. 71...100.
    public static func make(
        directory: String, testDirectory: String?, useCase: UseCase, features: FeatureKind,
        patchMicrons: Double, cacheDirectory: String? = nil, imageRange: ClosedRange<Int>? = nil,
        featureProvider: ((CellData) throws -> Matrix)? = nil
    ) throws -> PreparedData {
        var all = try CellData.load(directory: directory)
        if let r = imageRange {
            guard let keep = ImageRange.select(Array(all.imageNames.indices), r) else {
                throw ExperimentError.invalid("images \(r.lowerBound)-\(r.upperBound) reach outside 1…\(all.imageNames.count) of \(directory)")
            }
            all = all.subset(images: keep)
        }
        let range = imageRange.map { " \($0.lowerBound)–\($0.upperBound)" } ?? ""
        return try make(
            cells: all, testDirectory: testDirectory, useCase: useCase, features: features,
            patchMicrons: patchMicrons, cacheDirectory: cacheDirectory, describedAs: "\(range) of \(directory)",
            featureProvider: featureProvider)
    }

    /// The same from cells already loaded (a directory dataset or a slide's blocks, `CellData.load(slidePath:…)`):
    /// without `testDirectory`, every 4th of its images or blocks is held aside.
    public static func make(
        cells all: CellData, testDirectory: String?, useCase: UseCase, features: FeatureKind,
        patchMicrons: Double, cacheDirectory: String? = nil, describedAs source: String? = nil,
        featureProvider: ((CellData) throws -> Matrix)? = nil
    ) throws -> PreparedData {
        let pool: CellData, test: CellData, desc: String
        if let t = testDirectory {
            pool = all
            test = try CellData.load(directory: t)
            desc = "all images of \(t)"
        } else {
            let n = all.imageNames.count, kind = all.imageKind
            let source = source ?? " of \(all.directory)"
            // Every 4th (of the images, or of the blocks holding cells), so the test part spreads over the set.
            let testImages = n >= 4 ? (0..<n).filter { $0 % 4 == 3 } : [n - 1]
            pool = all.subset(images: (0..<n).filter { !testImages.contains($0) })
            test = all.subset(images: testImages)
            let order = all.slide == nil ? "sorted by name" : "row by row"
            desc =
                n >= 4
                ? "\(testImages.count) of the \(n) \(kind)\(source) (\(order), every 4th from the 4th)"
                : "the last of the \(n) \(kind)\(source) (\(order))"
        }
        guard pool.count > 0, test.count > 0 else {
            let hint = all.slide == nil ? "" : "; a smaller --block-um cuts the region into more blocks"
            throw ExperimentError.invalid("empty pool or test set (\(all.imageNames.count) \(all.imageKind) with cells\(hint))")
        }
        let provider: (CellData) throws -> Matrix = featureProvider ?? { try CheapFeatures.extract($0) }
        let px = try FeatureCache.load(pool, kind: features, cacheDirectory: cacheDirectory) { try provider(pool) }
        let tx = try FeatureCache.load(test, kind: features, cacheDirectory: cacheDirectory) { try provider(test) }
        // z-score all cells together (unsupervised).
        var joint = Matrix(rows: px.rows + tx.rows, columns: px.columns, values: px.values + tx.values)
        standardize(&joint)
        let d = px.columns
        let poolX = Matrix(rows: px.rows, columns: d, values: Array(joint.values[0..<(px.rows * d)]))
        let testX = Matrix(rows: tx.rows, columns: d, values: Array(joint.values[(px.rows * d)...]))
        let mpp = pool.micronsPerPixel
        let grid = PatchGrid(
            image: pool.image, x: pool.x.map { $0 * mpp }, y: pool.y.map { $0 * mpp },
            extents: pool.imageSizes.map { (Double($0.width) * mpp, Double($0.height) * mpp) },
            side: patchMicrons)
        var names = useCase.classNames(pool)
        if useCase.positive == nil { names = Array(Set(pool.classNames + test.classNames)).sorted() }
        let idx = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        func labels(_ c: CellData) throws -> [Int] {
            if useCase.positive != nil { return try useCase.labels(c) }
            return c.className.map { idx[$0]! }
        }
        return PreparedData(
            pool: pool, poolX: poolX, poolLabels: try labels(pool), test: test, testX: testX,
            testLabels: try labels(test), classNames: names, grid: grid, features: features,
            patchMicrons: patchMicrons, testDescription: desc)
    }
}

extension PreparedData {
    /// Several prepared sets as one labelling pool and one held-aside part (e.g. the three Ki-67 sets, which differ in
    /// µm per pixel, stain and scanner). Each part keeps its own split and its own z-scored features (each set was
    /// standardised over its own cells, an unsupervised per-set normalisation); positions and image sizes are
    /// converted to µm (the pooled tables have 1 µm per pixel), so patches of `patchMicrons` mean the same tissue
    /// area in every set. Images keep their names, prefixed by the set's folder name.
    ///
    /// Throws when the parts disagree on classes or feature width.
    public static func pooled(_ parts: [PreparedData], patchMicrons: Double, describedAs name: String) throws -> PreparedData {
        guard let first = parts.first else { throw ExperimentError.invalid("nothing to pool") }
        for p in parts.dropFirst() {
            guard p.classNames == first.classNames else {
                throw ExperimentError.invalid("cannot pool classes \(p.classNames) with \(first.classNames)")
            }
            guard p.poolX.columns == first.poolX.columns, p.features == first.features else {
                throw ExperimentError.invalid("cannot pool \(p.poolX.columns) features of kind \(p.features) with \(first.poolX.columns)")
            }
        }
        func inMicrons(_ tables: [CellData]) -> CellData {
            var out = CellData(directory: name, imageNames: [], imagePaths: [], imageSizes: [], micronsPerPixel: 1)
            for t in tables {
                let mpp = t.micronsPerPixel, offset = out.imageNames.count
                let set = (t.directory as NSString).lastPathComponent
                out.imageNames += t.imageNames.map { "\(set)/\($0)" }
                out.imagePaths += t.imagePaths
                out.imageSizes += t.imageSizes.map { (Int((Double($0.width) * mpp).rounded()), Int((Double($0.height) * mpp).rounded())) }
                out.image += t.image.map { $0 + offset }
                out.x += t.x.map { $0 * mpp }
                out.y += t.y.map { $0 * mpp }
                out.className += t.className
            }
            return out
        }
        func stacked(_ ms: [Matrix]) -> Matrix {
            Matrix(rows: ms.map(\.rows).reduce(0, +), columns: first.poolX.columns, values: ms.flatMap(\.values))
        }
        let pool = inMicrons(parts.map(\.pool)), test = inMicrons(parts.map(\.test))
        let grid = PatchGrid(
            image: pool.image, x: pool.x, y: pool.y, extents: pool.imageSizes.map { (Double($0.width), Double($0.height)) },
            side: patchMicrons)
        return PreparedData(
            pool: pool, poolX: stacked(parts.map(\.poolX)), poolLabels: parts.flatMap(\.poolLabels), test: test,
            testX: stacked(parts.map(\.testX)), testLabels: parts.flatMap(\.testLabels), classNames: first.classNames, grid: grid,
            features: first.features, patchMicrons: patchMicrons,
            testDescription: parts.map(\.testDescription).joined(separator: "; "))
    }
}
