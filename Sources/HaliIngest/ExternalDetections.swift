import Foundation
public import HaliCore
import HaliIndex

/// Nuclei found by another tool, brought into a slide index so labelling can start from them.
///
/// Formats (coordinates in level-0 pixels of the slide, x = column, y = row):
/// - **QuPath GeoJSON**: a `FeatureCollection` (or a bare array of features) of `detection`/`cell` objects. For a
///   cell the `nucleusGeometry` is used, else `geometry`; `Polygon` (outer ring), `MultiPolygon` (largest part) or
///   `Point`. `properties.classification.name` (or a bare string) becomes the class. Annotations are skipped.
/// - **HoVer-Net JSON**: `{"nuc": {"<id>": {"bbox": [[rmin, cmin], [rmax, cmax]], "centroid": [x, y],
///   "contour": [[x, y], …], "type": t, "type_prob": p}}}`; `type` t becomes class `type_<t>` (or a name from
///   `typeNames`).
/// - **CSV**: a header naming `x` and `y` columns, and optionally `class`; one nucleus per line.
public enum ExternalDetections {
    public enum Format: String, Sendable, CaseIterable {
        case geojson
        case hovernet
        case csv

        public static func guess(path: String) -> Format? {
            let lower = path.lowercased()
            if lower.hasSuffix(".geojson") { return .geojson }
            if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") { return .csv }
            if lower.hasSuffix(".json") {
                // HoVer-Net writes .json with a "nuc" key; QuPath exports may also be .json.
                if let head = FileHandle(forReadingAtPath: path).flatMap({ try? $0.read(upToCount: 4096) }),
                    let text = String(data: head, encoding: .utf8), text.contains("\"nuc\"")
                {
                    return .hovernet
                }
                return .geojson
            }
            return nil
        }

        public var sourceName: String {
            switch self {
            case .geojson: "qupath-geojson"
            case .hovernet: "hovernet-json"
            case .csv: "csv"
            }
        }
    }

    /// Reads detections; every coordinate must lie inside the slide (`width` × `height`), else the whole file is
    /// refused with the offending entry named (nothing is half-imported).
    public static func read(
        path: String, format: Format, slideWidth: Int64, slideHeight: Int64, micronsPerPixel: Double, typeNames: [Int: String] = [:],
        skipSuggestions: Bool = false
    ) throws -> [CellTable.Row] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FileError(path: path, message: "cannot read: \((error as NSError).localizedDescription)")
        }
        let rows: [CellTable.Row]
        switch format {
        case .geojson: rows = try geojson(data, path: path, skipSuggestions: skipSuggestions)
        case .hovernet: rows = try hovernet(data, path: path, typeNames: typeNames)
        case .csv: rows = try csv(data, path: path)
        }
        let area = micronsPerPixel * micronsPerPixel
        return try rows.enumerated().map { index, row in
            guard row.centroidX >= -0.5, row.centroidY >= -0.5, row.centroidX < Double(slideWidth) - 0.5,
                row.centroidY < Double(slideHeight) - 0.5
            else {
                throw FileError(
                    path: path,
                    message: "detection \(index + 1) at (\(row.centroidX), \(row.centroidY)) lies outside the \(slideWidth)×\(slideHeight) slide")
            }
            var row = row
            if row.contour.count >= 6 {
                row.areaMicrons2 = polygonArea(row.contour) * area
                row.perimeterMicrons = polygonPerimeter(row.contour) * micronsPerPixel
                if row.perimeterMicrons > 0 { row.circularity = min(1, 4 * .pi * row.areaMicrons2 / (row.perimeterMicrons * row.perimeterMicrons)) }
            }
            return row
        }
    }

    // MARK: GeoJSON

    /// HALI's own GeoJSON exports mark model suggestions with `properties.metadata.hali_source = "suggestion"`; a
    /// label import skips them (`skipSuggestions`), a detection import keeps them (they are cells all the same).
    public static func isSuggestion(_ properties: [String: Any]) -> Bool {
        (properties["metadata"] as? [String: Any])?["hali_source"] as? String == "suggestion"
    }

    static func geojson(_ data: Data, path: String, skipSuggestions: Bool = false) throws -> [CellTable.Row] {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw FileError(path: path, message: "not valid JSON: \((error as NSError).localizedDescription)")
        }
        let features: [Any]
        if let object = root as? [String: Any] {
            if object["type"] as? String == "FeatureCollection", let list = object["features"] as? [Any] {
                features = list
            } else if object["type"] as? String == "Feature" {
                features = [object]
            } else {
                throw FileError(path: path, message: "expected a GeoJSON FeatureCollection, Feature, or array of features")
            }
        } else if let list = root as? [Any] {
            features = list
        } else {
            throw FileError(path: path, message: "expected a GeoJSON FeatureCollection, Feature, or array of features")
        }
        var rows: [CellTable.Row] = []
        for (index, item) in features.enumerated() {
            let place = "feature \(index + 1)"
            guard let feature = item as? [String: Any] else { throw FileError(path: path, message: "\(place) is not an object") }
            let properties = feature["properties"] as? [String: Any] ?? [:]
            let objectType = (properties["objectType"] ?? properties["object_type"] ?? properties["type"]) as? String ?? "detection"
            if ["annotation", "tile", "tmaCore", "root", "PathAnnotationObject"].contains(objectType) { continue }
            if skipSuggestions && isSuggestion(properties) { continue }
            let geometry = (feature["nucleusGeometry"] ?? feature["geometry"]) as? [String: Any]
            guard let geometry else { throw FileError(path: path, message: "\(place) has no geometry") }
            var row = try geometryRow(geometry, path: path, place: place)
            if let classification = properties["classification"] as? [String: Any] {
                row.className = (classification["name"] as? String) ?? (classification["names"] as? [String])?.joined(separator: ": ")
            } else if let name = properties["classification"] as? String {
                row.className = name
            }
            rows.append(row)
        }
        return rows
    }

    static func geometryRow(_ geometry: [String: Any], path: String, place: String) throws -> CellTable.Row {
        let type = geometry["type"] as? String ?? ""
        func point(_ any: Any) throws -> (Double, Double) {
            guard let pair = any as? [Any], pair.count >= 2, let x = number(pair[0]), let y = number(pair[1]), x.isFinite, y.isFinite else {
                throw FileError(path: path, message: "\(place): coordinates must be [x, y] numbers")
            }
            return (x, y)
        }
        switch type {
        case "Point":
            let (x, y) = try point(geometry["coordinates"] as Any)
            return CellTable.Row(centroidX: x, centroidY: y, minX: x - 0.5, minY: y - 0.5, maxX: x + 0.5, maxY: y + 0.5)
        case "Polygon", "MultiPolygon":
            var rings: [[(Double, Double)]] = []
            if type == "Polygon" {
                guard let polygon = geometry["coordinates"] as? [Any], let outer = polygon.first as? [Any] else {
                    throw FileError(path: path, message: "\(place): Polygon needs an outer ring")
                }
                rings = [try outer.map(point)]
            } else {
                guard let parts = geometry["coordinates"] as? [Any] else { throw FileError(path: path, message: "\(place): bad MultiPolygon") }
                for part in parts {
                    guard let polygon = part as? [Any], let outer = polygon.first as? [Any] else { continue }
                    rings.append(try outer.map(point))
                }
            }
            guard let ring = rings.max(by: { abs(polygonArea($0.flatMap { [$0.0, $0.1] })) < abs(polygonArea($1.flatMap { [$0.0, $0.1] })) }),
                ring.count >= 3
            else {
                throw FileError(path: path, message: "\(place): polygon has fewer than 3 vertices")
            }
            var flat = ring.flatMap { [$0.0, $0.1] }
            if ring.count > 3, ring.first! == ring.last! { flat.removeLast(2) }  // GeoJSON repeats the first vertex
            return polygonRow(flat)
        default:
            throw FileError(path: path, message: "\(place): geometry type \"\(type)\" is not a nucleus (Polygon, MultiPolygon or Point)")
        }
    }

    // MARK: HoVer-Net

    static func hovernet(_ data: Data, path: String, typeNames: [Int: String]) throws -> [CellTable.Row] {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FileError(path: path, message: "not a JSON object")
        }
        guard let nuclei = root["nuc"] as? [String: Any] else { throw FileError(path: path, message: "no \"nuc\" object (HoVer-Net output)") }
        // Keys are instance ids; order rows by them numerically for a reproducible import.
        let keys = nuclei.keys.sorted { (Int($0) ?? .max, $0) < (Int($1) ?? .max, $1) }
        var rows: [CellTable.Row] = []
        for key in keys {
            let place = "nuc[\(key)]"
            guard let entry = nuclei[key] as? [String: Any] else { throw FileError(path: path, message: "\(place) is not an object") }
            var row: CellTable.Row
            if let contour = entry["contour"] as? [Any], contour.count >= 3 {
                let points = try contour.map { item -> [Double] in
                    guard let pair = item as? [Any], pair.count >= 2, let x = number(pair[0]), let y = number(pair[1]) else {
                        throw FileError(path: path, message: "\(place).contour: expected [x, y] pairs")
                    }
                    return [x, y]
                }
                row = polygonRow(points.flatMap { $0 })
            } else if let centroid = entry["centroid"] as? [Any], centroid.count >= 2, let x = number(centroid[0]), let y = number(centroid[1]) {
                row = CellTable.Row(centroidX: x, centroidY: y, minX: x - 0.5, minY: y - 0.5, maxX: x + 0.5, maxY: y + 0.5)
            } else {
                throw FileError(path: path, message: "\(place) has neither contour nor centroid")
            }
            if let centroid = entry["centroid"] as? [Any], centroid.count >= 2, let x = number(centroid[0]), let y = number(centroid[1]) {
                row.centroidX = x
                row.centroidY = y
            }
            if let box = entry["bbox"] as? [[Any]], box.count == 2, box[0].count == 2, box[1].count == 2,
                let rmin = number(box[0][0]), let cmin = number(box[0][1]), let rmax = number(box[1][0]), let cmax = number(box[1][1])
            {
                row.minX = cmin - 0.5
                row.minY = rmin - 0.5
                row.maxX = cmax - 0.5
                row.maxY = rmax - 0.5
            }
            if let type = entry["type"].flatMap(number) {
                row.className = typeNames[Int(type)] ?? "type_\(Int(type))"
                row.classProbability = entry["type_prob"].flatMap(number) ?? .nan
            }
            rows.append(row)
        }
        return rows
    }

    // MARK: CSV

    static func csv(_ data: Data, path: String) throws -> [CellTable.Row] {
        guard let text = String(data: data, encoding: .utf8) else { throw FileError(path: path, message: "not UTF-8 text") }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !lines.isEmpty else { throw FileError(path: path, message: "empty CSV") }
        let separator: Character = lines[0].contains("\t") ? "\t" : ","
        let header = lines.removeFirst().split(separator: separator, omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard let xColumn = header.firstIndex(of: "x"), let yColumn = header.firstIndex(of: "y") else {
            throw FileError(path: path, message: "line 1: the header must name x and y columns (got \(header.joined(separator: ",")))")
        }
        let classColumn = header.firstIndex(of: "class")
        return try lines.enumerated().map { index, line in
            let fields = line.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count > max(xColumn, yColumn), let x = Double(fields[xColumn]), let y = Double(fields[yColumn]), x.isFinite, y.isFinite
            else {
                throw FileError(path: path, message: "line \(index + 2): expected numbers in the x and y columns")
            }
            var row = CellTable.Row(centroidX: x, centroidY: y, minX: x - 0.5, minY: y - 0.5, maxX: x + 0.5, maxY: y + 0.5)
            if let classColumn, classColumn < fields.count, !fields[classColumn].isEmpty { row.className = fields[classColumn] }
            return row
        }
    }

    // MARK: Geometry

    private static func number(_ any: Any) -> Double? {
        if let n = any as? NSNumber { return n.doubleValue }
        if let s = any as? String { return Double(s) }
        return nil
    }

    /// A row from a closed polygon x0 y0 x1 y1 … (vertices on pixel edges): area-weighted centroid, bounding box.
    static func polygonRow(_ flat: [Double]) -> CellTable.Row {
        let n = flat.count / 2
        var twiceArea = 0.0, cx = 0.0, cy = 0.0
        var minX = Double.infinity, minY = Double.infinity, maxX = -Double.infinity, maxY = -Double.infinity
        for i in 0..<n {
            let (x0, y0) = (flat[2 * i], flat[2 * i + 1])
            let (x1, y1) = (flat[2 * ((i + 1) % n)], flat[2 * ((i + 1) % n) + 1])
            let cross = x0 * y1 - x1 * y0
            twiceArea += cross
            cx += (x0 + x1) * cross
            cy += (y0 + y1) * cross
            minX = min(minX, x0)
            minY = min(minY, y0)
            maxX = max(maxX, x0)
            maxY = max(maxY, y0)
        }
        var row: CellTable.Row
        if abs(twiceArea) > 1e-9 {
            row = CellTable.Row(centroidX: cx / (3 * twiceArea), centroidY: cy / (3 * twiceArea), minX: minX, minY: minY, maxX: maxX, maxY: maxY)
        } else {
            let mx = stride(from: 0, to: flat.count, by: 2).map { flat[$0] }.reduce(0, +) / Double(n)
            let my = stride(from: 1, to: flat.count, by: 2).map { flat[$0] }.reduce(0, +) / Double(n)
            row = CellTable.Row(centroidX: mx, centroidY: my, minX: minX, minY: minY, maxX: maxX, maxY: maxY)
        }
        row.contour = flat
        return row
    }

    static func polygonArea(_ flat: [Double]) -> Double {
        let n = flat.count / 2
        var twice = 0.0
        for i in 0..<n {
            let j = (i + 1) % n
            twice += flat[2 * i] * flat[2 * j + 1] - flat[2 * j] * flat[2 * i + 1]
        }
        return abs(twice) / 2
    }

    static func polygonPerimeter(_ flat: [Double]) -> Double {
        let n = flat.count / 2
        var length = 0.0
        for i in 0..<n {
            let j = (i + 1) % n
            let dx = flat[2 * j] - flat[2 * i], dy = flat[2 * j + 1] - flat[2 * i + 1]
            length += (dx * dx + dy * dy).squareRoot()
        }
        return length
    }
}
