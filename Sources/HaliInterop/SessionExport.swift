// An ExportRequest's answer: a session's labels (or the consensus of every annotator) as one viewer file, made by the
// same writers as `hali export`, in memory and under the frame limit. Here rather than in the engine, which knows no
// file formats; the daemon only runs it on its blocking pool and sends the bytes.

import Foundation
public import HaliCore
public import HaliEngine
public import HaliStore

public enum SessionExport {
    public struct File: Sendable, Equatable {
        public var format: InteropFormat
        public var fileName: String
        public var data: [UInt8]
        /// Cells written.
        public var cells: Int
    }

    /// - Parameters:
    ///   - formatName: an `InteropFormat` raw value, as the client sent it.
    ///   - annotator: whose labels, unless `consensus`.
    ///   - byteLimit: the largest file that fits a frame; a larger one is refused with what to do instead.
    /// - Throws: `EngineError` (invalid argument, resource exhausted) for what the client can fix; others for I/O.
    public static func file(
        formatName: String, consensus: Bool, includeSuggestions: Bool, slide: ServedSlide, task: TaskDefinition, annotator: String,
        store: LabelStore, byteLimit: Int
    ) throws -> File {
        guard let format = InteropFormat(rawValue: formatName) else {
            throw EngineError(
                .invalidArgument, "unknown export format \"\(formatName)\" (\(InteropFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if includeSuggestions, format != .geojson {
            throw EngineError(.invalidArgument, "include_suggestions is for the geojson format")
        }
        let fileName = "\(slide.id)-\(task.name).\(format == .sliderunner ? "sqlite" : format == .asap ? "xml" : format == .csv ? "csv" : "json")"
        var labels =
            consensus
            ? try ExportLabels.consensus(store: store, slide: slide.id, task: task.name)
            : try ExportLabels.annotator(annotator, store: store, slide: slide.id, task: task.name)
        if includeSuggestions { labels.suggestions = try Suggestions.forUnlabelled(labels, table: slide.table, task: task) }
        // The writers write files (SQLite above all); a private temporary one is read back and removed.
        let path = NSTemporaryDirectory() + "halid-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-" + fileName
        defer { unlink(path) }
        let cells = try Exporter.write(
            labels, format: format, slide: InteropSlide(id: slide.id, table: slide.table, manifest: slide.manifest), task: task, to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count <= byteLimit else {
            throw EngineError(
                .resourceExhausted, "the export is \(data.count) bytes, over the \(byteLimit)-byte frame limit: use `hali export` on the server")
        }
        return File(format: format, fileName: fileName, data: Array(data), cells: cells)
    }
}
