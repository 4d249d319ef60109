// Readers for the shared data layouts (see ../shared/data/README.md):
//   DIR/images/*.png                 the images
//   DIR/cells.csv                    image,x,y,class[,instance] — one labelled nucleus centroid per row
//   DIR/annotations/<stem>.xml       Aperio ImageScope XML polygons (MoNuSeg) → polygon centroids
//   DIR/instances/<image>.png        16-bit instance maps (CoNSeP) → pixel-mean centroids
//   DIR/meta.json                    stain, magnification, approx_mpp
// Centroids use pixel-centre coordinates (pixel (x, y) is the point (x, y)), x = column, y = row.

import Foundation
public import HaliImaging
public import HaliPNG

public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .notFound(let m): return "dataset not found: \(m)"
        case .malformed(let m): return "malformed dataset: \(m)"
        }
    }
}

/// The stain of a dataset, choosing the stain matrix of the detector.
public enum StainKind: String, Sendable, Codable, CaseIterable {
    case he
    case hdab

    public var matrix: StainMatrix { self == .he ? .hematoxylinEosin : .hematoxylinDAB }
}

/// One image and its labelled nucleus centroids.
public struct LabelledImage: Sendable {
    public var name: String
    public var path: String
    public var centroids: [Point]
}

/// Where the labels of a dataset came from.
public enum LabelSource: String, Sendable, Codable {
    case cellsCSV = "cells.csv"
    case aperioXML = "annotations/*.xml"
    case instanceMaps = "instances/*.png"
}

public struct LabelledDataset: Sendable {
    public var directory: String
    public var images: [LabelledImage]
    public var labelSource: LabelSource
    /// From meta.json `approx_mpp`, else the Aperio XML `MicronsPerPixel`, else 10/magnification.
    public var micronsPerPixel: Double?
    public var stain: StainKind?
}

/// "FIRST-LAST" image ranges of the commands (1-based, inclusive, over the images in name order).
public enum ImageRange {
    /// `a...b` for "a-b" with integers a ≤ b; nil for anything else.
    public static func parse(_ text: Substring) -> ClosedRange<Int>? {
        let r = text.split(separator: "-")
        guard r.count == 2, let a = Int(r[0]), let b = Int(r[1]), a <= b else { return nil }
        return a...b
    }

    /// Items FIRST…LAST, or nil when the range reaches outside 1…count.
    public static func select<T>(_ items: [T], _ range: ClosedRange<Int>) -> [T]? {
        guard range.lowerBound >= 1, range.upperBound <= items.count else { return nil }
        return Array(items[(range.lowerBound - 1)..<range.upperBound])
    }
}

public enum DatasetReader {
    /// Loads a dataset directory: image list, labels (cells.csv, else annotations/, else instances/), meta.
    public static func load(directory: String) throws -> LabelledDataset {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw DatasetError.notFound("\(directory) is not a directory")
        }
        let imagesDir = directory + "/images"
        guard let names = try? fm.contentsOfDirectory(atPath: imagesDir) else {
            throw DatasetError.notFound("\(imagesDir) is missing (expected DIR/images/*.png)")
        }
        let pngs = names.filter { $0.lowercased().hasSuffix(".png") }.sorted()
        guard !pngs.isEmpty else { throw DatasetError.malformed("no .png images in \(imagesDir)") }

        var (mpp, stain) = try readMeta(directory + "/meta.json")
        var images: [LabelledImage] = []
        let source: LabelSource
        if fm.fileExists(atPath: directory + "/cells.csv") {
            source = .cellsCSV
            let table = try readCellsCSV(path: directory + "/cells.csv")
            images = pngs.map { LabelledImage(name: $0, path: imagesDir + "/" + $0, centroids: table[$0] ?? []) }
        } else if fm.fileExists(atPath: directory + "/annotations") {
            source = .aperioXML
            for name in pngs {
                let stem = String(name.dropLast(4))
                let xml = directory + "/annotations/" + stem + ".xml"
                guard fm.fileExists(atPath: xml) else { throw DatasetError.malformed("missing annotation \(xml)") }
                let ann = try AperioXML.read(path: xml)
                if mpp == nil, let m = ann.micronsPerPixel, m > 0 { mpp = m }
                images.append(LabelledImage(name: name, path: imagesDir + "/" + name, centroids: ann.polygons.map(polygonCentroid)))
            }
        } else if fm.fileExists(atPath: directory + "/instances") {
            source = .instanceMaps
            for name in pngs {
                let inst = directory + "/instances/" + name
                guard fm.fileExists(atPath: inst) else { throw DatasetError.malformed("missing instance map \(inst)") }
                images.append(
                    LabelledImage(
                        name: name, path: imagesDir + "/" + name,
                        centroids: try instanceCentroids(PNGReader.readGray16(path: inst))))
            }
        } else {
            throw DatasetError.malformed("\(directory) has no labels (cells.csv, annotations/ or instances/)")
        }
        if stain == nil { stain = .he }
        return LabelledDataset(directory: directory, images: images, labelSource: source, micronsPerPixel: mpp, stain: stain)
    }

    /// Reads meta.json: `approx_mpp` (or 10 / magnification "40x"), stain ("H&E" → he, "DAB" → hdab).
    static func readMeta(_ path: String) throws -> (Double?, StainKind?) {
        guard let data = FileManager.default.contents(atPath: path) else { return (nil, nil) }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw DatasetError.malformed("\(path) is not a JSON object")
        }
        var mpp = (obj["approx_mpp"] as? NSNumber)?.doubleValue
        if mpp == nil, let mag = obj["magnification"] as? String,
            let m = Double(mag.lowercased().replacingOccurrences(of: "x", with: "")), m > 0
        {
            mpp = 10 / m
        }
        var stain: StainKind?
        if let s = (obj["stain"] as? String)?.uppercased() {
            stain = s.contains("DAB") ? .hdab : (s.contains("H&E") || s.contains("HE") ? .he : nil)
        }
        return (mpp, stain)
    }

    /// Parses cells.csv into image name → centroids. Needs columns `image`, `x`, `y`.
    public static func readCellsCSV(path: String) throws -> [String: [Point]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.notFound(path) }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(whereSeparator: \.isNewline).makeIterator()
        guard let header = lines.next() else { throw DatasetError.malformed("\(path) is empty") }
        let cols = header.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let ci = cols.firstIndex(of: "image"), let cx = cols.firstIndex(of: "x"), let cy = cols.firstIndex(of: "y") else {
            throw DatasetError.malformed("\(path): header must contain image,x,y (got \(header))")
        }
        var out: [String: [Point]] = [:]
        var row = 1
        while let line = lines.next() {
            row += 1
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count > max(ci, cx, cy), let x = Double(f[cx].trimmingCharacters(in: .whitespaces)),
                let y = Double(f[cy].trimmingCharacters(in: .whitespaces))
            else {
                throw DatasetError.malformed("\(path) line \(row): cannot parse \(line)")
            }
            out[String(f[ci]), default: []].append(Point(x: x, y: y))
        }
        return out
    }

    /// Area centroid of a polygon (shoelace); the vertex mean for degenerate polygons.
    public static func polygonCentroid(_ p: [Point]) -> Point {
        guard !p.isEmpty else { return Point(x: 0, y: 0) }
        var a = 0.0, cx = 0.0, cy = 0.0
        for i in 0..<p.count {
            let u = p[i], v = p[(i + 1) % p.count]
            let c = u.x * v.y - v.x * u.y
            a += c; cx += (u.x + v.x) * c; cy += (u.y + v.y) * c
        }
        if abs(a) < 1e-9 {
            return Point(x: p.map(\.x).reduce(0, +) / Double(p.count), y: p.map(\.y).reduce(0, +) / Double(p.count))
        }
        return Point(x: cx / (3 * a), y: cy / (3 * a))
    }

    /// An instance map from polygons (vertices in pixel coordinates, pixel centres at integers): pixel (x, y) gets
    /// id i + 1 when its centre lies inside polygon i by the even-odd rule; later polygons overwrite earlier ones.
    /// Scanline fill, O(Σ polygon bounding-box rows × vertices + filled pixels). At most 65,535 polygons.
    public static func instanceMap(polygons: [[Point]], width: Int, height: Int) -> Gray16Image {
        var samples = [UInt16](repeating: 0, count: width * height)
        for (index, polygon) in polygons.prefix(65_535).enumerated() where polygon.count >= 3 {
            let ys = polygon.map(\.y)
            let y0 = max(0, Int(ys.min()!.rounded(.up))), y1 = min(height - 1, Int(ys.max()!.rounded(.down)))
            guard y0 <= y1 else { continue }
            var crossings: [Double] = []
            for y in y0...y1 {
                let fy = Double(y)
                crossings.removeAll(keepingCapacity: true)
                for i in 0..<polygon.count {
                    let a = polygon[i], b = polygon[(i + 1) % polygon.count]
                    // Half-open rule on y so a vertex on the scanline is counted once.
                    if (a.y <= fy && b.y > fy) || (b.y <= fy && a.y > fy) {
                        crossings.append(a.x + (fy - a.y) / (b.y - a.y) * (b.x - a.x))
                    }
                }
                crossings.sort()
                var k = 0
                while k + 1 < crossings.count {
                    let x0 = max(0, Int(crossings[k].rounded(.up))), x1 = min(width - 1, Int(crossings[k + 1].rounded(.down)))
                    if x0 <= x1 { for x in x0...x1 { samples[y * width + x] = UInt16(index + 1) } }
                    k += 2
                }
            }
        }
        return Gray16Image(width: width, height: height, samples: samples)
    }

    /// Centroids (pixel means) of every non-zero id of an instance map, in increasing id order.
    public static func instanceCentroids(_ map: Gray16Image) -> [Point] {
        var sx = [Double](repeating: 0, count: 65536), sy = sx
        var n = [Int](repeating: 0, count: 65536)
        for y in 0..<map.height {
            for x in 0..<map.width {
                let id = Int(map.samples[y * map.width + x])
                if id == 0 { continue }
                sx[id] += Double(x); sy[id] += Double(y); n[id] += 1
            }
        }
        return (1..<65536).compactMap { n[$0] > 0 ? Point(x: sx[$0] / Double(n[$0]), y: sy[$0] / Double(n[$0])) : nil }
    }
}

/// Aperio ImageScope XML (Annotations/Annotation/Regions/Region/Vertices/Vertex X Y). A small byte scanner:
/// only `<Region `, `</Region>`, `<Vertex X=".." Y=".."/>` and the root `MicronsPerPixel` attribute matter.
public enum AperioXML {
    public struct Document: Sendable {
        public var micronsPerPixel: Double?
        public var polygons: [[Point]]
    }

    public static func read(path: String) throws -> Document {
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.notFound(path) }
        return try parse([UInt8](data), name: path)
    }

    public static func parse(_ b: [UInt8], name: String = "XML") throws -> Document {
        var polygons: [[Point]] = []
        var current: [Point]? = nil
        var mpp: Double? = nil
        var i = 0
        let n = b.count
        func startsWith(_ s: StaticString, at k: Int) -> Bool {
            let len = s.utf8CodeUnitCount
            if k + len > n { return false }
            return s.withUTF8Buffer { u in
                for j in 0..<len where b[k + j] != u[j] { return false }
                return true
            }
        }
        /// Value of attribute `name` in the tag starting at k (up to '>').
        func attribute(_ name: StaticString, from k: Int) -> Double? {
            var j = k
            while j < n && b[j] != UInt8(ascii: ">") {
                if (b[j] == 0x20 || b[j] == 0x09 || b[j] == 0x0A || b[j] == 0x0D) && startsWith(name, at: j + 1) {
                    var q = j + 1 + name.utf8CodeUnitCount
                    if q < n && b[q] == UInt8(ascii: "=") && q + 1 < n && (b[q + 1] == 0x22 || b[q + 1] == 0x27) {
                        let quote = b[q + 1]
                        q += 2
                        let s = q
                        while q < n && b[q] != quote { q += 1 }
                        return Double(String(decoding: b[s..<q], as: UTF8.self))
                    }
                }
                j += 1
            }
            return nil
        }
        while i < n {
            if b[i] != UInt8(ascii: "<") { i += 1; continue }
            if startsWith("<Annotations", at: i), mpp == nil {
                mpp = attribute("MicronsPerPixel", from: i + 1)
            } else if startsWith("<Region ", at: i) || startsWith("<Region>", at: i) {
                current = []
            } else if startsWith("</Region>", at: i) {
                if let c = current, c.count >= 1 { polygons.append(c) }
                current = nil
            } else if startsWith("<Vertex ", at: i) {
                guard let x = attribute("X", from: i + 1), let y = attribute("Y", from: i + 1) else {
                    throw DatasetError.malformed("\(name): Vertex without numeric X/Y at byte \(i)")
                }
                current?.append(Point(x: x, y: y))
            }
            i += 1
        }
        return Document(micronsPerPixel: mpp, polygons: polygons)
    }
}
