import Foundation
public import HaliCore
public import HaliIndex
import HaliIngest
public import HaliStore

/// Label exchange with the viewers pathologists use: QuPath (GeoJSON), ASAP (XML), SlideRunner (SQLite), Digital
/// Slide Archive (annotation JSON), and plain CSV. Coordinates are always level-0 pixels of the slide.
public enum InteropFormat: String, Sendable, CaseIterable {
    case geojson, csv, asap, dsa, sliderunner

    /// Formats `Importer` reads (DSA is export-only).
    public var canImport: Bool { self != .dsa }
}

/// A slide as the exporters and importers see it: its id (file stem), its cells, and its size and pixel size.
public struct InteropSlide: Sendable {
    public var id: String
    public var table: CellTable
    public var manifest: IndexManifest

    public init(id: String, table: CellTable, manifest: IndexManifest) {
        self.id = id
        self.table = table
        self.manifest = manifest
    }

    public var width: Int64 { manifest.slide.width }
    public var height: Int64 { manifest.slide.height }
    public var micronsPerPixel: Double { manifest.slide.micronsPerPixel }
    /// The slide's file name (no folder), as viewers that key annotations by file name (ASAP, SlideRunner) expect.
    public var fileName: String { (manifest.slide.path as NSString).lastPathComponent }

    /// Loads `DATA_DIR/index/<stem>.hidx` for a slide given by path or id.
    public static func load(dataDirectory: String, slide: String) throws -> InteropSlide {
        let id = IndexBuilder.slideStem(slide)
        let path = (dataDirectory as NSString).appendingPathComponent("index/\(id).hidx")
        guard FileManager.default.fileExists(atPath: path) else {
            throw FileError(path: path, message: "no index for slide \"\(id)\": run `hali ingest` first")
        }
        let (manifest, table) = try IndexFile.read(path: path)
        return InteropSlide(id: id, table: table, manifest: manifest)
    }

    func centroid(ofCell id: UInt64) -> (x: Double, y: Double)? {
        guard let row = table.row(ofID: id) else { return nil }
        return (Double(table.centroidX[row]), Double(table.centroidY[row]))
    }
}

/// The labels to export: one class per cell, and, per cell, each annotator's class (for SlideRunner's per-person
/// labels).
public struct ExportLabels: Sendable, Equatable {
    /// The annotator's name, or "consensus".
    public var name: String
    public var classOfCell: [UInt64: String]
    public var votes: [UInt64: [String: String]]
    /// Model suggestions for unlabelled cells (GeoJSON exports only), with their confidence.
    public var suggestions: [UInt64: Suggested] = [:]

    public struct Suggested: Sendable, Equatable {
        public var className: String
        public var confidence: Float
        public init(className: String, confidence: Float) {
            self.className = className
            self.confidence = confidence
        }
    }

    public init(name: String, classOfCell: [UInt64: String], votes: [UInt64: [String: String]]) {
        self.name = name
        self.classOfCell = classOfCell
        self.votes = votes
    }

    /// The cells in id order.
    public var cellIDs: [UInt64] { classOfCell.keys.sorted() }

    /// The labels in force for one annotator.
    public static func annotator(_ annotator: String, store: LabelStore, slide: String, task: String) throws -> ExportLabels {
        let state = LabelState(replaying: try store.events(annotator: annotator, slide: slide, task: task))
        return ExportLabels(
            name: annotator, classOfCell: state.classOfCell, votes: state.classOfCell.mapValues { [annotator: $0] })
    }

    /// Majority over annotators per cell (each annotator's labels in force); a tie for first place gives no label.
    public static func consensus(store: LabelStore, slide: String, task: String) throws -> ExportLabels {
        let consensus = Consensus(events: try store.events(slide: slide, task: task))
        return ExportLabels(name: "consensus", classOfCell: consensus.classOfCell, votes: consensus.votes)
    }
}

extension TaskDefinition {
    func color(of className: String) -> String { classes.first { $0.name == className }?.color ?? "#808080" }
}

/// "#rrggbb" → [r, g, b] (grey for anything else).
func rgb(_ hex: String) -> [Int] {
    let colour = HexColor(hex) ?? .grey
    return [Int(colour.r), Int(colour.g), Int(colour.b)]
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
func writeAtomically(_ data: Data, to path: String) throws {
    do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw FileError(path: path, message: "cannot write: \((error as NSError).localizedDescription)")
    }
}
