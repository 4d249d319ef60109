public import Foundation
public import HaliCore
import HaliIndex
import HaliIngest
public import HaliStore

#if canImport(FoundationXML)
import FoundationXML
#endif

/// One labelled point read from a file, before it is matched to a cell.
public struct ImportEntry: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var className: String
    /// Where in the file it came from ("feature 3", "line 7", "Annotation 2 (line 14)", "Annotations uid 5").
    public var place: String
}

/// What an import will do (or did): the events to append, and the entries no cell was found for.
public struct ImportPlan: Sendable {
    public var records: [LabelRecord]
    /// Entries that matched a cell already carrying that class (nothing to append).
    public var unchanged: Int
    /// Entries with no indexed cell within the tolerance: their places.
    public var unmatched: [String]
    /// Entries that matched a cell another entry of the file had already matched (the later one wins).
    public var duplicates: Int
}

/// Readers of labels from other viewers into a task's labels. All-or-nothing: `read` parses and validates the
/// whole file (shape, classes of the task, coordinates inside the slide) before anything is appended, and refuses
/// with a message naming the offending place.
public enum Importer {
    /// Default match radius: an entry is given to the nearest indexed cell centroid within this distance.
    public static let defaultToleranceMicrons = 4.0

    /// Reads, validates, matches and appends; returns what was done. Nothing is appended when anything is wrong.
    public static func importFile(
        _ path: String, format: InteropFormat, slide: InteropSlide, task: TaskDefinition, annotator: String, store: LabelStore,
        toleranceMicrons: Double = defaultToleranceMicrons, nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) async throws -> ImportPlan {
        let entries = try read(path, format: format, slide: slide, task: task, annotator: annotator)
        let plan = try self.plan(
            entries, slide: slide, task: task, annotator: annotator, store: store, toleranceMicrons: toleranceMicrons, nowMs: nowMs)
        try await apply(plan, to: store)
        return plan
    }

    /// Parses and validates a file: every entry has a class of the task and lies inside the slide.
    public static func read(_ path: String, format: InteropFormat, slide: InteropSlide, task: TaskDefinition, annotator: String) throws
        -> [ImportEntry]
    {
        let entries: [ImportEntry]
        switch format {
        case .geojson: entries = try geojson(path, slide: slide)
        case .csv: entries = try csv(path, slide: slide)
        case .asap: entries = try asap(path)
        case .sliderunner: entries = try sliderunner(path, slide: slide, annotator: annotator)
        case .dsa: throw FileError(path: path, message: "importing DSA annotation JSON is not supported; export it from DSA as GeoJSON")
        }
        for entry in entries {
            guard task.hasClass(entry.className) else {
                throw FileError(
                    path: path,
                    message:
                        "\(entry.place): class \"\(entry.className)\" is not a class of task \(task.name) (\(task.classes.map(\.name).joined(separator: ", ")))"
                )
            }
            guard entry.x.isFinite, entry.y.isFinite, entry.x >= -0.5, entry.y >= -0.5, entry.x < Double(slide.width) - 0.5,
                entry.y < Double(slide.height) - 0.5
            else {
                throw FileError(
                    path: path, message: "\(entry.place): (\(entry.x), \(entry.y)) lies outside the \(slide.width)×\(slide.height) slide")
            }
        }
        return entries
    }

    /// Matches entries to cells and builds the events (source "imported"), numbered after the annotator's last one.
    public static func plan(
        _ entries: [ImportEntry], slide: InteropSlide, task: TaskDefinition, annotator: String, store: LabelStore,
        toleranceMicrons: Double = defaultToleranceMicrons, nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) throws -> ImportPlan {
        let mpp = slide.micronsPerPixel > 0 ? slide.micronsPerPixel : 0.25
        let radius = max(toleranceMicrons / mpp, 1)
        let grid = CellGrid(table: slide.table, cellSize: radius)
        var chosen: [UInt64: String] = [:]
        var order: [UInt64] = []
        var unmatched: [String] = []
        var duplicates = 0
        for entry in entries {
            guard let cell = grid.nearest(x: entry.x, y: entry.y, within: radius) else {
                unmatched.append(entry.place)
                continue
            }
            if chosen[cell] == nil { order.append(cell) } else { duplicates += 1 }
            chosen[cell] = entry.className
        }
        let state = LabelState(replaying: try store.events(annotator: annotator, slide: slide.id, task: task.name))
        var seq = state.lastClientSeq
        var records: [LabelRecord] = []
        var unchanged = 0
        for cell in order {
            let className = chosen[cell]!
            let previous = state.classOfCell[cell]
            if previous == className {
                unchanged += 1
                continue
            }
            seq += 1
            records.append(
                LabelRecord(
                    annotator: annotator, slide: slide.id, task: task.name, cellID: cell, kind: .label, className: className, source: .imported,
                    modelVersion: 0, clientSeq: seq, clientTimeMs: nowMs, serverTimeMs: nowMs, previousClass: previous))
        }
        return ImportPlan(records: records, unchanged: unchanged, unmatched: unmatched, duplicates: duplicates)
    }

    /// Appends the plan's events (all handed to the store at once, so they share group commits).
    public static func apply(_ plan: ImportPlan, to store: LabelStore) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for record in plan.records { group.addTask { _ = try await store.append(record) } }
            try await group.waitForAll()
        }
    }

    // MARK: Formats

    /// QuPath GeoJSON, read by `ExternalDetections` (same tolerances as `hali ingest --detections`); each feature
    /// must carry a classification.
    static func geojson(_ path: String, slide: InteropSlide) throws -> [ImportEntry] {
        // Which features ExternalDetections keeps (it skips annotations, tiles, TMA cores), to name them by index.
        var kept: [Int] = []
        if let data = FileManager.default.contents(atPath: path), let root = try? JSONSerialization.jsonObject(with: data) {
            let features =
                (root as? [String: Any]).flatMap { object -> [Any]? in
                    object["type"] as? String == "Feature" ? [object] : object["features"] as? [Any]
                } ?? (root as? [Any]) ?? []
            for (index, item) in features.enumerated() {
                let properties = (item as? [String: Any])?["properties"] as? [String: Any] ?? [:]
                let type = (properties["objectType"] ?? properties["object_type"] ?? properties["type"]) as? String ?? "detection"
                if !["annotation", "tile", "tmaCore", "root", "PathAnnotationObject"].contains(type), !ExternalDetections.isSuggestion(properties) {
                    kept.append(index)
                }
            }
        }
        let place = { (index: Int) in "feature \(index < kept.count ? kept[index] + 1 : index + 1)" }
        let rows = try external(path, format: .geojson, slide: slide, place: place)
        return try rows.enumerated().map { index, row in
            let place = place(index)
            guard let className = row.className, !className.isEmpty else {
                throw FileError(path: path, message: "\(place) has no classification")
            }
            return ImportEntry(x: row.centroidX, y: row.centroidY, className: className, place: place)
        }
    }

    /// CSV with x, y and class columns (others, such as cell_id and annotator, are ignored).
    static func csv(_ path: String, slide: InteropSlide) throws -> [ImportEntry] {
        let rows = try external(path, format: .csv, slide: slide) { "line \($0 + 2)" }
        return try rows.enumerated().map { index, row in
            let place = "line \(index + 2)"
            guard let className = row.className, !className.isEmpty else {
                throw FileError(path: path, message: "\(place) has no class (the header must name a class column)")
            }
            return ImportEntry(x: row.centroidX, y: row.centroidY, className: className, place: place)
        }
    }

    /// Parses with ExternalDetections; the slide bounds are checked afterwards, by `read`, so messages name places
    /// of the file rather than detection numbers.
    private static func external(
        _ path: String, format: ExternalDetections.Format, slide: InteropSlide, place: (Int) -> String
    ) throws -> [CellTable.Row] {
        do {
            return try ExternalDetections.read(
                path: path, format: format, slideWidth: Int64(Int32.max), slideHeight: Int64(Int32.max), micronsPerPixel: slide.micronsPerPixel,
                skipSuggestions: true)
        } catch let error as FileError {
            // "detection N at (x, y) lies outside …" (negative coordinates): name the place in the file instead.
            if error.message.hasPrefix("detection "), let number = Int(error.message.dropFirst(10).prefix { $0.isNumber }),
                let at = error.message.range(of: " at (")
            {
                let point = error.message[at.upperBound...].prefix { $0 != ")" }
                throw FileError(path: path, message: "\(place(number - 1)): (\(point)) lies outside the \(slide.width)×\(slide.height) slide")
            }
            throw FileError(path: path, message: error.message)
        }
    }

    static func sliderunner(_ path: String, slide: InteropSlide, annotator: String) throws -> [ImportEntry] {
        let contents: SlideRunnerFile.Contents
        do { contents = try SlideRunnerFile.read(path: path) } catch let error as StoreError {
            throw FileError(path: path, message: error.message)
        }
        let key: String
        if let exact = contents.slides.first(where: { $0.filename == slide.fileName || IndexBuilder.slideStem($0.filename) == slide.id }) {
            key = exact.filename
        } else if contents.slides.count == 1 {
            key = contents.slides[0].filename
        } else {
            throw FileError(
                path: path, message: "none of the file's slides (\(contents.slides.map(\.filename).joined(separator: ", "))) is \(slide.fileName)")
        }
        var entries: [ImportEntry] = []
        for (uid, spot) in contents.spotsBySlide[key] ?? [] {
            let place = "Annotations uid \(uid)"
            // The annotator's own label if the file has one, else the class SlideRunner shows (agreedClass).
            let className = spot.labels.last(where: { $0.person == annotator })?.className ?? spot.agreedClass
            guard let className else {
                throw FileError(path: path, message: "\(place): no label by \(annotator) and no agreed class")
            }
            entries.append(ImportEntry(x: Double(spot.x), y: Double(spot.y), className: className, place: place))
        }
        return entries
    }

    static func asap(_ path: String) throws -> [ImportEntry] {
        guard let data = FileManager.default.contents(atPath: path) else { throw FileError(path: path, message: "cannot read") }
        // Foundation's XMLParser traps on an element name that is not UTF-8 (found by fuzzing: libxml2 passes the
        // bytes on). ASAP writes UTF-8, and XML without an encoding declaration is UTF-8, so anything else is refused.
        guard String(validating: data, as: UTF8.self) != nil else {
            throw FileError(path: path, message: "not UTF-8 text (ASAP writes its XML as UTF-8; save the file as UTF-8)")
        }
        // It also dereferences NULL for a processing instruction without data (`<?name?>`, found by fuzzing). ASAP
        // writes none besides the XML declaration, so any other is refused before parsing.
        if let instruction = Self.processingInstructionOffset(in: data) {
            throw FileError(
                path: path, message: "a processing instruction (\"<?\") at byte \(instruction): ASAP files hold only the XML declaration")
        }
        let reader = ASAPReader()
        let parser = XMLParser(data: data)
        parser.delegate = reader
        guard parser.parse(), reader.failure == nil else {
            let message = reader.failure ?? "malformed XML at line \(parser.lineNumber): \(parser.parserError.map { "\($0)" } ?? "parse error")"
            throw FileError(path: path, message: message)
        }
        if let open = reader.open.last {
            throw FileError(path: path, message: "malformed XML: the file ends inside <\(open)> (truncated?)")
        }
        guard reader.sawRoot else { throw FileError(path: path, message: "not an ASAP file: no <ASAP_Annotations> element") }
        var entries: [ImportEntry] = []
        for annotation in reader.annotations {
            let place = "Annotation \(annotation.index) \"\(annotation.name)\" (line \(annotation.line))"
            guard let group = annotation.group, group != "None", !group.isEmpty else {
                throw FileError(path: path, message: "\(place) belongs to no group (its class)")
            }
            guard reader.groups.contains(group) else {
                throw FileError(path: path, message: "\(place): PartOfGroup \"\(group)\" is not defined in <AnnotationGroups>")
            }
            let points = annotation.points.sorted { $0.order < $1.order }
            guard !points.isEmpty else { throw FileError(path: path, message: "\(place) has no coordinates") }
            switch annotation.type {
            case "Dot":
                entries.append(ImportEntry(x: points[0].x, y: points[0].y, className: group, place: place))
            case "PointSet":
                for (k, point) in points.enumerated() {
                    entries.append(ImportEntry(x: point.x, y: point.y, className: group, place: "\(place) point \(k + 1)"))
                }
            case "Polygon", "Spline", "Rectangle":
                let (x, y) = centroid(points.map { ($0.x, $0.y) })
                entries.append(ImportEntry(x: x, y: y, className: group, place: place))
            default:
                throw FileError(path: path, message: "\(place): type \"\(annotation.type)\" is not a cell (Dot, PointSet, Polygon)")
            }
        }
        return entries
    }

    /// Area-weighted centroid of a polygon (vertex mean when degenerate).
    /// The offset of the first `<?` that is not the XML declaration at the start (after an optional byte-order mark).
    static func processingInstructionOffset(in data: Data) -> Int? {
        let bytes = [UInt8](data)
        var start = 0
        if bytes.starts(with: [0xef, 0xbb, 0xbf]) { start = 3 }
        let declaration = Array("<?xml".utf8)
        var from = start
        if bytes[start...].starts(with: declaration), bytes.count > start + 5, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[start + 5]) {
            // The declaration ends at its first ">", which must be "?>"; a "<" before it starts something else (found
            // by fuzzing: `<?xml a="b">` followed by `<?x?>` hid the second instruction inside the first).
            guard let close = (start + 5..<bytes.count).first(where: { bytes[$0] == 0x3e || bytes[$0] == 0x3c }),
                bytes[close] == 0x3e, bytes[close - 1] == 0x3f
            else { return start }
            from = close + 1
        }
        guard from < bytes.count - 1 else { return nil }
        return (from..<bytes.count - 1).first { bytes[$0] == 0x3c && bytes[$0 + 1] == 0x3f }
    }

    static func centroid(_ points: [(Double, Double)]) -> (Double, Double) {
        var twice = 0.0, cx = 0.0, cy = 0.0
        for i in points.indices {
            let (x0, y0) = points[i]
            let (x1, y1) = points[(i + 1) % points.count]
            let cross = x0 * y1 - x1 * y0
            twice += cross
            cx += (x0 + x1) * cross
            cy += (y0 + y1) * cross
        }
        if abs(twice) > 1e-9 { return (cx / (3 * twice), cy / (3 * twice)) }
        let n = Double(points.count)
        return (points.map(\.0).reduce(0, +) / n, points.map(\.1).reduce(0, +) / n)
    }
}

/// Cell centroids bucketed on a square grid, for nearest-cell lookups.
struct CellGrid {
    let table: CellTable
    let cellSize: Double
    var buckets: [Int64: [Int]] = [:]

    init(table: CellTable, cellSize: Double) {
        self.table = table
        self.cellSize = cellSize
        for row in 0..<table.count {
            buckets[
                key(Int64((Double(table.centroidX[row]) / cellSize).rounded(.down)), Int64((Double(table.centroidY[row]) / cellSize).rounded(.down))),
                default: []
            ]
            .append(row)
        }
    }

    func key(_ i: Int64, _ j: Int64) -> Int64 { (i << 32) ^ (j & 0xffff_ffff) }

    func nearest(x: Double, y: Double, within radius: Double) -> UInt64? {
        let i = Int64((x / cellSize).rounded(.down)), j = Int64((y / cellSize).rounded(.down))
        let reach = Int64((radius / cellSize).rounded(.up))
        var best: (row: Int, distance: Double)?
        for di in -reach...reach {
            for dj in -reach...reach {
                for row in buckets[key(i + di, j + dj)] ?? [] {
                    let dx = Double(table.centroidX[row]) - x, dy = Double(table.centroidY[row]) - y
                    let d = (dx * dx + dy * dy).squareRoot()
                    if d <= radius, best == nil || d < best!.distance || (d == best!.distance && row < best!.row) { best = (row, d) }
                }
            }
        }
        return best.map { CellTable.id(ofRow: $0.row) }
    }
}

/// SAX reader of ASAP XML; records where each annotation started for error messages.
final class ASAPReader: NSObject, XMLParserDelegate {
    struct Point {
        var order: Int
        var x: Double
        var y: Double
    }

    struct Annotation {
        var index: Int
        var line: Int
        var name: String
        var type: String
        var group: String?
        var points: [Point] = []
    }

    var sawRoot = false
    var annotations: [Annotation] = []
    var groups: Set<String> = []
    var failure: String?
    /// Elements opened and not yet closed (non-empty at the end: a truncated file).
    var open: [String] = []
    private var current: Annotation?

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes: [String: String] = [:]
    ) {
        open.append(elementName)
        switch elementName {
        case "ASAP_Annotations": sawRoot = true
        case "Annotation":
            current = Annotation(
                index: annotations.count + 1, line: parser.lineNumber, name: attributes["Name"] ?? "", type: attributes["Type"] ?? "",
                group: attributes["PartOfGroup"])
        case "Coordinate":
            guard current != nil else {
                fail(parser, "line \(parser.lineNumber): <Coordinate> outside an <Annotation>")
                return
            }
            guard let xText = attributes["X"], let yText = attributes["Y"], let x = Double(xText.replacingOccurrences(of: ",", with: ".")),
                let y = Double(yText.replacingOccurrences(of: ",", with: "."))
            else {
                fail(
                    parser,
                    "Annotation \(current!.index) \"\(current!.name)\" (line \(current!.line)): <Coordinate> at line \(parser.lineNumber) needs numeric X and Y"
                )
                return
            }
            current!.points.append(Point(order: Int(attributes["Order"] ?? "") ?? current!.points.count, x: x, y: y))
        case "Group":
            if let name = attributes["Name"] { groups.insert(name) }
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        if !open.isEmpty { open.removeLast() }
        if elementName == "Annotation", let current {
            annotations.append(current)
            self.current = nil
        }
    }

    private func fail(_ parser: XMLParser, _ message: String) {
        if failure == nil { failure = message }
        parser.abortParsing()
    }
}
