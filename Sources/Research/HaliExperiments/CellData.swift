// Cell tables from the shared layouts (../shared/data/README.md): DIR/images/*.png + DIR/cells.csv
// (image,x,y,class[,instance]) + DIR/meta.json (approx_mpp), or a whole-slide image + a cells CSV in level-0 pixels
// (SlideCells.swift). Positions are kept in pixels of their image.

import Foundation
import HaliDatasets
public import HaliImaging
import HaliPNG

public enum ExperimentError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String { if case .invalid(let m) = self { return m }; return "" }
}

/// Reads a level-0 region (x, y, width, height in pixels) of a whole-slide image as RGB.
public typealias SlideRegionReader = @Sendable (_ x: Int, _ y: Int, _ width: Int, _ height: Int) throws -> RGBImage

/// The whole-slide image behind a slide-layout `CellData` (HaliExperiments does not open slides itself; the
/// caller passes a reader, e.g. over OpenSlide).
public struct SlidePixels: Sendable {
    public var width: Int, height: Int
    /// The largest region (width × height) `read` accepts.
    public var maxReadPixels: Int
    public var read: SlideRegionReader
    public init(width: Int, height: Int, maxReadPixels: Int = .max, read: @escaping SlideRegionReader) {
        self.width = width; self.height = height; self.maxReadPixels = maxReadPixels; self.read = read
    }
}

/// All labelled cells of a dataset with their image, position and class name. An "image" is a PNG file of a
/// directory dataset, or a block of a slide (its level-0 origin in `imageOrigins`).
public struct CellData: Sendable {
    /// The dataset directory, or the slide's path.
    public var directory: String
    public var imageNames: [String]
    public var imagePaths: [String]
    /// Image sizes in pixels.
    public var imageSizes: [(width: Int, height: Int)]
    public var micronsPerPixel: Double
    /// Slide layout: the slide and each block's level-0 origin; nil and empty for PNG datasets.
    public var slide: SlidePixels?
    public var imageOrigins: [(x: Int, y: Int)] = []
    public var image: [Int] = []
    public var x: [Double] = []
    public var y: [Double] = []
    public var className: [String] = []

    public var count: Int { image.count }

    public init(
        directory: String, imageNames: [String], imagePaths: [String], imageSizes: [(width: Int, height: Int)],
        micronsPerPixel: Double
    ) {
        self.directory = directory; self.imageNames = imageNames; self.imagePaths = imagePaths
        self.imageSizes = imageSizes; self.micronsPerPixel = micronsPerPixel
    }
    public var classNames: [String] { Array(Set(className)).sorted() }

    /// What one image is, for messages: "images" or "blocks".
    public var imageKind: String { slide == nil ? "images" : "blocks" }

    /// Slide around a block that feature extractors may read: cheap features reach 14 µm from a centroid, a CNN
    /// patch half its side (16 µm for hali-nuclei-v2); CNN features refuse weights whose patch needs more.
    public static let contextMicrons = 32.0

    /// The pixels of image `i`, and the offset (dx, dy) to add to a cell's x, y in that image to address them. A slide
    /// block comes with `contextMicrons` of surrounding slide on every side (where the slide has any), so that cells
    /// near a block's edge see their real neighbourhood; a PNG has nothing around it (offset 0).
    public func pixels(ofImage i: Int) throws -> (image: RGBImage, dx: Double, dy: Double) {
        guard let slide else { return (try PNGReader.readRGB(path: imagePaths[i]), 0, 0) }
        let context = Int((Self.contextMicrons / micronsPerPixel).rounded(.up))
        let origin = imageOrigins[i], size = imageSizes[i]
        let x0 = max(0, origin.x - context), y0 = max(0, origin.y - context)
        let x1 = min(slide.width, origin.x + size.width + context), y1 = min(slide.height, origin.y + size.height + context)
        return (try slide.read(x0, y0, x1 - x0, y1 - y0), Double(origin.x - x0), Double(origin.y - y0))
    }

    /// Loads DIR (images/ + cells.csv with a class column + meta.json).
    public static func load(directory: String) throws -> CellData {
        let ds = try DatasetReader.load(directory: directory)
        guard ds.labelSource == .cellsCSV else { throw ExperimentError.invalid("\(directory): needs cells.csv with a class column") }
        let mpp = ds.micronsPerPixel ?? 0.5
        let rows = try CellRow.read(csv: directory + "/cells.csv")
        var data = CellData(
            directory: directory, imageNames: ds.images.map(\.name), imagePaths: ds.images.map(\.path),
            imageSizes: [], micronsPerPixel: mpp)
        data.imageSizes = try ds.images.map { img in
            let d = try PNGReader.dimensions(path: img.path)
            return (d.width, d.height)
        }
        let index = Dictionary(uniqueKeysWithValues: data.imageNames.enumerated().map { ($1, $0) })
        for row in rows {
            guard let im = index[row.image] else { continue }
            data.image.append(im); data.x.append(row.x); data.y.append(row.y); data.className.append(row.className)
        }
        data.sortByImage()
        return data
    }

    /// Keeps cells in a stable order: by image, then as listed (feature extraction reads each image once).
    mutating func sortByImage() {
        let (oldImage, oldX, oldY, oldClass) = (image, x, y, className)
        let order = oldImage.indices.sorted { oldImage[$0] != oldImage[$1] ? oldImage[$0] < oldImage[$1] : $0 < $1 }
        image = order.map { oldImage[$0] }
        x = order.map { oldX[$0] }
        y = order.map { oldY[$0] }
        className = order.map { oldClass[$0] }
    }

    /// The cells of some images only (positions unchanged; image indices renumbered).
    public func subset(images keep: [Int]) -> CellData {
        var out = self
        let remap = Dictionary(uniqueKeysWithValues: keep.enumerated().map { ($1, $0) })
        out.imageNames = keep.map { imageNames[$0] }
        out.imagePaths = keep.map { imagePaths[$0] }
        out.imageSizes = keep.map { imageSizes[$0] }
        if !imageOrigins.isEmpty { out.imageOrigins = keep.map { imageOrigins[$0] } }
        out.image = []; out.x = []; out.y = []; out.className = []
        for c in 0..<count {
            guard let m = remap[image[c]] else { continue }
            out.image.append(m); out.x.append(x[c]); out.y.append(y[c]); out.className.append(className[c])
        }
        return out
    }
}

/// One row of a cells CSV (`image,x,y,class`, any column order, more columns ignored).
struct CellRow {
    var image: String, x: Double, y: Double, className: String

    /// Rows with a number in x and y; others (blank lines, "nan") are skipped.
    static func read(csv path: String) throws -> [CellRow] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ExperimentError.invalid("cannot read \(path)")
        }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !lines.isEmpty else { throw ExperimentError.invalid("\(path) is empty") }
        let header = lines.removeFirst().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let ci = header.firstIndex(of: "image"), let xi = header.firstIndex(of: "x"),
            let yi = header.firstIndex(of: "y"), let ki = header.firstIndex(of: "class")
        else {
            throw ExperimentError.invalid("\(path) needs columns image,x,y,class (has \(header.joined(separator: ",")))")
        }
        return lines.compactMap { line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count > max(ci, xi, yi, ki), let x = Double(f[xi]), let y = Double(f[yi]), x.isFinite, y.isFinite else { return nil }
            return CellRow(image: f[ci], x: x, y: y, className: f[ki].trimmingCharacters(in: .whitespaces))
        }
    }
}

/// A labelling task: binary (`positive` vs everything else) or all classes.
public struct UseCase: Sendable, Codable {
    public var positive: String?
    public init(positive: String?) { self.positive = positive }

    /// Class names in label order (binary: ["rest", positive]).
    public func classNames(_ data: CellData) -> [String] {
        if let p = positive { return ["not-" + p, p] }
        return data.classNames
    }

    public func labels(_ data: CellData) throws -> [Int] {
        if let p = positive {
            guard data.className.contains(p) else {
                throw ExperimentError.invalid("class \(p) not in dataset (has \(data.classNames.joined(separator: ", ")))")
            }
            return data.className.map { $0 == p ? 1 : 0 }
        }
        let names = data.classNames
        let idx = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        return data.className.map { idx[$0]! }
    }
}
