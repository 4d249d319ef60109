import Foundation
import HaliCore

/// `halid --config FILE`: the daemon's settings as JSON (see Deploy/halid.example.json and docs/admin-guide.md).
/// Every key is optional; flags given on the command line are added to (lists) or override (values) the file.
struct DaemonConfigFile: Decodable {
    init() {}
    struct TaskEntry: Decodable {
        struct ClassEntry: Decodable {
            var name: String
            var color: String?
            var key: String?
        }
        var name: String
        var classes: [ClassEntry]
    }

    struct AnnotatorEntry: Decodable {
        var name: String
        var token_sha256: String
        var tasks: [String]?
        var slides: [String]?
    }

    var listen: [String]?
    var data_dir: String?
    var max_frame_bytes: Int?
    var mpp: Double?
    var slides: [String]?
    var tasks: [TaskEntry]?
    var annotators: [AnnotatorEntry]?
    var log_level: String?
    var weights: String?
    var detector_weights: String?

    static func load(path: String) throws -> DaemonConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError("cannot read --config \(path)") }
        do {
            return try JSONDecoder().decode(DaemonConfigFile.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw ConfigurationError("\(path): missing \"\(key.stringValue)\" at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ConfigurationError("\(path): wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
        } catch {
            throw ConfigurationError("\(path): not valid JSON for halid: \(error)")
        }
    }

    func taskDefinitions() throws -> [TaskDefinition]? {
        guard let tasks else { return nil }
        let palette = ["#e6194b", "#4363d8", "#3cb44b", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#9a6324"]
        return try tasks.map { task in
            try TaskDefinition(
                name: task.name,
                classes: task.classes.enumerated().map { i, c in
                    LabelClass(name: c.name, color: c.color ?? palette[i % palette.count], key: c.key ?? (i < 9 ? String(i + 1) : ""))
                })
        }
    }

    func annotatorList() -> [Annotator] {
        (annotators ?? []).map { Annotator(name: $0.name, tokenDigest: $0.token_sha256, tasks: $0.tasks ?? [], slides: $0.slides ?? []) }
    }
}
