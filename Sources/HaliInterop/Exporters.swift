import Foundation
public import HaliCore
import HaliIndex
import HaliStore

/// Writers of labels in each viewer's format. Every writer puts one object per labelled cell, at the cell's outline
/// (when the index has one and the format takes polygons) or its centroid, in level-0 pixels.
public enum Exporter {
    /// Writes `labels` to `path`; returns the number of cells written. Cells not in the index are skipped.
    @discardableResult
    public static func write(
        _ labels: ExportLabels, format: InteropFormat, slide: InteropSlide, task: TaskDefinition, to path: String
    ) throws -> Int {
        let cells = labels.cellIDs.filter { slide.table.row(ofID: $0) != nil }
        switch format {
        case .geojson: try writeAtomically(geojson(labels, cells: cells, slide: slide, task: task), to: path)
        case .csv: try writeAtomically(Data(csv(labels, cells: cells, slide: slide).utf8), to: path)
        case .asap: try writeAtomically(Data(asap(labels, cells: cells, slide: slide, task: task).utf8), to: path)
        case .dsa: try writeAtomically(dsa(labels, cells: cells, slide: slide, task: task), to: path)
        case .sliderunner: try sliderunner(labels, cells: cells, slide: slide, task: task, path: path)
        }
        return cells.count
    }

    static func rounded(_ value: Float) -> Double { (Double(value) * 100).rounded() / 100 }

    /// The closed outline of a cell (first vertex repeated), a simple polygon, or nil when the index has none.
    static func ring(_ slide: InteropSlide, row: Int) -> [[Double]]? {
        let contour = slide.table.contour(ofRow: row)
        guard contour.count >= 6 else { return nil }
        var points: [[Double]] = []
        var i = contour.startIndex
        while i + 1 < contour.endIndex {
            points.append([rounded(contour[i]), rounded(contour[i + 1])])
            i += 2
        }
        points = simpleRing(points)
        guard points.count >= 3 else { return nil }
        points.append(points[0])
        return points
    }

    /// The largest loop of `ring` (open: first vertex not repeated at the end) when it passes more than once through a
    /// vertex, else `ring` without repeated consecutive vertices.
    ///
    /// The tracer (`Contour.traceOuter`) follows 4-connected pixels, so where a nucleus's own pixels meet only at a
    /// diagonal corner its outline passes twice through that corner; the loop between the two passes walks round the
    /// background pocket that the touch closes off (its area subtracted). Viewers and shapely call such a ring invalid
    /// (8.7 % of CMU-1's outlines). Keeping the largest loop fills the pocket, as the tracer already fills true holes
    /// (QuPath's Wand does too). Done here, not in the tracer: the traced outline also gives the perimeter and solidity
    /// the classifier learns from, indexes already written keep theirs, and imported detections can be pinched too.
    static func simpleRing(_ ring: [[Double]]) -> [[Double]] {
        var loops: [[[Double]]] = []
        var path: [[Double]] = []
        var position: [[Double]: Int] = [:]  // vertex → its index in `path`
        for point in ring where point != path.last {
            if let i = position[point] {  // back at a vertex of the path: what lies between is a loop of its own
                loops.append(Array(path[i...]))
                for later in path[(i + 1)...] { position[later] = nil }
                path.removeSubrange((i + 1)...)
            } else {
                position[point] = path.count
                path.append(point)
            }
        }
        loops.append(path)  // what is left closes back to the first vertex
        return loops.max { abs(signedArea($0)) < abs(signedArea($1)) }!
    }

    /// Shoelace area of an open ring.
    static func signedArea(_ ring: [[Double]]) -> Double {
        guard ring.count >= 3 else { return 0 }
        var twice = 0.0
        for (k, a) in ring.enumerated() {
            let b = ring[(k + 1) % ring.count]
            twice += a[0] * b[1] - b[0] * a[1]
        }
        return twice / 2
    }

    // MARK: QuPath GeoJSON

    static func geojson(_ labels: ExportLabels, cells: [UInt64], slide: InteropSlide, task: TaskDefinition) throws -> Data {
        var features: [[String: Any]] = []
        for cell in cells {
            let row = slide.table.row(ofID: cell)!
            let className = labels.classOfCell[cell]!
            let geometry: [String: Any]
            if let ring = ring(slide, row: row) {
                geometry = ["type": "Polygon", "coordinates": [ring]]
            } else {
                geometry = ["type": "Point", "coordinates": [rounded(slide.table.centroidX[row]), rounded(slide.table.centroidY[row])]]
            }
            var measurements: [String: Any] = [:]
            let area = slide.table.areaMicrons2[row]
            if area.isFinite { measurements["Area µm^2"] = Double(area) }
            let properties: [String: Any] = [
                "objectType": "detection",
                "classification": ["name": className, "color": rgb(task.color(of: className))],
                "measurements": measurements,
                "metadata": ["hali_cell_id": String(cell), "hali_annotator": labels.name, "hali_task": task.name, "hali_source": "label"],
            ]
            features.append(["type": "Feature", "id": uuid(slide: slide.id, cell: cell), "geometry": geometry, "properties": properties])
        }
        // Suggestions for the unlabelled cells: the class the model proposes and its probability, as QuPath measurements.
        for cell in labels.suggestions.keys.sorted() where labels.classOfCell[cell] == nil {
            guard let row = slide.table.row(ofID: cell), let suggestion = labels.suggestions[cell] else { continue }
            let geometry: [String: Any] =
                if let ring = ring(slide, row: row) { ["type": "Polygon", "coordinates": [ring]] } else {
                    ["type": "Point", "coordinates": [rounded(slide.table.centroidX[row]), rounded(slide.table.centroidY[row])]]
                }
            var measurements: [String: Any] = ["HALI confidence": (Double(suggestion.confidence) * 10_000).rounded() / 10_000]
            let area = slide.table.areaMicrons2[row]
            if area.isFinite { measurements["Area µm^2"] = Double(area) }
            let properties: [String: Any] = [
                "objectType": "detection",
                "classification": ["name": suggestion.className, "color": rgb(task.color(of: suggestion.className))],
                "measurements": measurements,
                "metadata": ["hali_cell_id": String(cell), "hali_annotator": labels.name, "hali_task": task.name, "hali_source": "suggestion"],
            ]
            features.append(["type": "Feature", "id": uuid(slide: slide.id, cell: cell), "geometry": geometry, "properties": properties])
        }
        return try JSONSerialization.data(
            withJSONObject: ["type": "FeatureCollection", "features": features], options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// A stable UUID-shaped id per (slide, cell), so re-exports give the same ids.
    static func uuid(slide: String, cell: UInt64) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in slide.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let a = String(format: "%08x", UInt32(truncatingIfNeeded: hash >> 32))
        let b = String(format: "%04x", UInt16(truncatingIfNeeded: hash >> 16))
        let c = String(format: "%04x", UInt16(truncatingIfNeeded: hash) & 0x0fff | 0x4000)
        let d = String(format: "%04x", UInt16(truncatingIfNeeded: cell >> 48) & 0x3fff | 0x8000)
        let e = String(format: "%012llx", cell & 0xffff_ffff_ffff)
        return "\(a)-\(b)-\(c)-\(d)-\(e)"
    }

    // MARK: CSV

    static func csv(_ labels: ExportLabels, cells: [UInt64], slide: InteropSlide) -> String {
        var out = "x,y,class,cell_id,annotator\n"
        for cell in cells {
            let row = slide.table.row(ofID: cell)!
            out +=
                "\(rounded(slide.table.centroidX[row])),\(rounded(slide.table.centroidY[row])),\(CSV.field(labels.classOfCell[cell]!)),\(cell),\(CSV.field(labels.name))\n"
        }
        return out
    }

    // MARK: ASAP XML

    static func xmlEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func asap(_ labels: ExportLabels, cells: [UInt64], slide: InteropSlide, task: TaskDefinition) -> String {
        var out = "<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n\t<Annotations>\n"
        for cell in cells {
            let row = slide.table.row(ofID: cell)!
            let className = labels.classOfCell[cell]!
            var points: [[Double]]
            let type: String
            if var ring = ring(slide, row: row) {
                ring.removeLast()  // ASAP closes polygons itself
                points = ring
                type = "Polygon"
            } else {
                points = [[rounded(slide.table.centroidX[row]), rounded(slide.table.centroidY[row])]]
                type = "Dot"
            }
            out +=
                "\t\t<Annotation Name=\"cell \(cell)\" Type=\"\(type)\" PartOfGroup=\"\(xmlEscape(className))\" Color=\"\(task.color(of: className))\">\n\t\t\t<Coordinates>\n"
            for (order, point) in points.enumerated() {
                out += "\t\t\t\t<Coordinate Order=\"\(order)\" X=\"\(point[0])\" Y=\"\(point[1])\" />\n"
            }
            out += "\t\t\t</Coordinates>\n\t\t</Annotation>\n"
        }
        out += "\t</Annotations>\n\t<AnnotationGroups>\n"
        for labelClass in task.classes {
            out +=
                "\t\t<Group Name=\"\(xmlEscape(labelClass.name))\" PartOfGroup=\"None\" Color=\"\(labelClass.color)\">\n\t\t\t<Attributes />\n\t\t</Group>\n"
        }
        out += "\t</AnnotationGroups>\n</ASAP_Annotations>\n"
        return out
    }

    // MARK: DSA annotation JSON

    static func dsa(_ labels: ExportLabels, cells: [UInt64], slide: InteropSlide, task: TaskDefinition) throws -> Data {
        var elements: [[String: Any]] = []
        for cell in cells {
            let row = slide.table.row(ofID: cell)!
            let className = labels.classOfCell[cell]!
            elements.append([
                "type": "point",
                "center": [rounded(slide.table.centroidX[row]), rounded(slide.table.centroidY[row]), 0],
                "group": className,
                "label": ["value": className],
                "lineColor": task.color(of: className),
                "user": ["hali_cell_id": Int(cell)],
            ])
        }
        let document: [String: Any] = [
            "name": "HALI \(task.name) (\(labels.name))",
            "description":
                "HALI labels for task \(task.name) on slide \(slide.id), \(labels.name == "consensus" ? "majority consensus" : "annotator \(labels.name)")",
            "elements": elements,
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    // MARK: SlideRunner

    static func sliderunner(_ labels: ExportLabels, cells: [UInt64], slide: InteropSlide, task: TaskDefinition, path: String) throws {
        let spots = cells.map { cell -> SlideRunnerFile.Spot in
            let row = slide.table.row(ofID: cell)!
            let votes = (labels.votes[cell] ?? [labels.name: labels.classOfCell[cell]!]).sorted { $0.key < $1.key }
            return SlideRunnerFile.Spot(
                x: Int64(Double(slide.table.centroidX[row]).rounded()), y: Int64(Double(slide.table.centroidY[row]).rounded()),
                labels: votes.map { SlideRunnerFile.SpotLabel(person: $0.key, className: $0.value) },
                agreedClass: labels.classOfCell[cell], description: "hali cell \(cell)")
        }
        var classes = task.classes.map { SlideRunnerFile.ClassEntry(name: $0.name, color: $0.color) }
        for name in Set(spots.flatMap { $0.labels.map(\.className) }).sorted() where !task.hasClass(name) {
            classes.append(SlideRunnerFile.ClassEntry(name: name, color: "#808080"))
        }
        let directory = (slide.manifest.slide.path as NSString).deletingLastPathComponent
        do {
            try SlideRunnerFile.write(
                path: path,
                slide: SlideRunnerFile.SlideEntry(filename: slide.fileName, width: slide.width, height: slide.height, directory: directory),
                classes: classes, spots: spots)
        } catch let error as StoreError {
            throw FileError(path: path, message: error.message)
        }
    }
}
