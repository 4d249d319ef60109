// Cell tables from the shared layouts (../shared/data/README.md): DIR/images/*.png + DIR/cells.csv
// (image,x,y,class[,instance]) + DIR/meta.json (approx_mpp). Positions are kept in pixels and µm.

import Foundation
import HaliDatasets
import HaliImaging

public enum ExperimentError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String { if case .invalid(let m) = self { return m }; return "" }
}

/// All labelled cells of a dataset with their image, position and class name.
public struct CellData: Sendable {
    public var directory: String
    public var imageNames: [String]
    public var imagePaths: [String]
    /// Image sizes in pixels.
    public var imageSizes: [(width: Int, height: Int)]
    public var micronsPerPixel: Double
    public var image: [Int] = []
    public var x: [Double] = []
    public var y: [Double] = []
    public var className: [String] = []

    public var count: Int { image.count }

    public init(directory: String, imageNames: [String], imagePaths: [String], imageSizes: [(width: Int, height: Int)],
                micronsPerPixel: Double) {
        self.directory = directory; self.imageNames = imageNames; self.imagePaths = imagePaths
        self.imageSizes = imageSizes; self.micronsPerPixel = micronsPerPixel
    }
    public var classNames: [String] { Array(Set(className)).sorted() }

    /// Loads DIR (images/ + cells.csv with a class column + meta.json).
    public static func load(directory: String) throws -> CellData {
        let ds = try DatasetReader.load(directory: directory)
        guard ds.labelSource == .cellsCSV else { throw ExperimentError.invalid("\(directory): needs cells.csv with a class column") }
        let mpp = ds.micronsPerPixel ?? 0.5
        guard let text = try? String(contentsOfFile: directory + "/cells.csv", encoding: .utf8) else {
            throw ExperimentError.invalid("cannot read \(directory)/cells.csv")
        }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !lines.isEmpty else { throw ExperimentError.invalid("empty cells.csv") }
        let header = lines.removeFirst().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let ci = header.firstIndex(of: "image"), let xi = header.firstIndex(of: "x"),
              let yi = header.firstIndex(of: "y"), let ki = header.firstIndex(of: "class") else {
            throw ExperimentError.invalid("cells.csv needs columns image,x,y,class")
        }
        var data = CellData(directory: directory, imageNames: ds.images.map(\.name), imagePaths: ds.images.map(\.path),
                            imageSizes: [], micronsPerPixel: mpp)
        data.imageSizes = try ds.images.map { img in
            let d = try PNGReader.dimensions(path: img.path)
            return (d.width, d.height)
        }
        let index = Dictionary(uniqueKeysWithValues: data.imageNames.enumerated().map { ($1, $0) })
        for line in lines {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count > max(ci, xi, yi, ki), let im = index[f[ci]], let x = Double(f[xi]), let y = Double(f[yi]) else { continue }
            data.image.append(im); data.x.append(x); data.y.append(y)
            data.className.append(f[ki].trimmingCharacters(in: .whitespaces))
        }
        // Keep cells in a stable order: by image, then as listed.
        let order = data.image.indices.sorted { data.image[$0] != data.image[$1] ? data.image[$0] < data.image[$1] : $0 < $1 }
        data.image = order.map { data.image[$0] }
        data.x = order.map { data.x[$0] }
        data.y = order.map { data.y[$0] }
        data.className = order.map { data.className[$0] }
        return data
    }

    /// The cells of some images only (positions unchanged; image indices renumbered).
    public func subset(images keep: [Int]) -> CellData {
        var out = self
        let remap = Dictionary(uniqueKeysWithValues: keep.enumerated().map { ($1, $0) })
        out.imageNames = keep.map { imageNames[$0] }
        out.imagePaths = keep.map { imagePaths[$0] }
        out.imageSizes = keep.map { imageSizes[$0] }
        out.image = []; out.x = []; out.y = []; out.className = []
        for c in 0..<count {
            guard let m = remap[image[c]] else { continue }
            out.image.append(m); out.x.append(x[c]); out.y.append(y[c]); out.className.append(className[c])
        }
        return out
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
