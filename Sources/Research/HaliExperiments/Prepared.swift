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
