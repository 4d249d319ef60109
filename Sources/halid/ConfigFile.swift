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
    var strict: Bool?
    var max_connections: Int?
    var max_unauthenticated: Int?
    var max_unauthenticated_per_peer: Int?
    var hello_timeout_s: Double?
    var idle_timeout_s: Double?
    var frame_timeout_s: Double?
    var tls_cert: String?
    var tls_key: String?

    /// Every key the file may hold, by where it appears: a misspelt key ("annotator", "max_frame_byte") is refused
    /// by name instead of being ignored, which would leave the setting at its default without a word.
    static let knownKeys: [String: Set<String>] = [
        "": [
            "listen", "data_dir", "max_frame_bytes", "mpp", "slides", "tasks", "annotators", "log_level", "weights", "detector_weights",
            "strict", "max_connections", "max_unauthenticated", "max_unauthenticated_per_peer", "hello_timeout_s", "idle_timeout_s",
            "frame_timeout_s", "tls_cert", "tls_key",
        ],
        "tasks": ["name", "classes"],
        "tasks.classes": ["name", "color", "key"],
        "annotators": ["name", "token_sha256", "tasks", "slides"],
    ]

    /// The first key not in `knownKeys`, with its place (e.g. `annotators[1].token`), or nil.
    static func unknownKey(in json: Any) -> String? {
        func check(_ object: Any, schema: String, place: String) -> String? {
            guard let dictionary = object as? [String: Any], let known = knownKeys[schema] else { return nil }
            for key in dictionary.keys.sorted() {
                let here = place.isEmpty ? key : "\(place).\(key)"
                guard known.contains(key) else { return here }
                let nested = schema.isEmpty ? key : "\(schema).\(key)"
                guard knownKeys[nested] != nil, let items = dictionary[key] as? [Any] else { continue }
                for (i, item) in items.enumerated() {
                    if let found = check(item, schema: nested, place: "\(here)[\(i)]") { return found }
                }
            }
            return nil
        }
        return check(json, schema: "", place: "")
    }

    static func load(path: String) throws -> DaemonConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError("cannot read --config \(path)") }
        if let json = try? JSONSerialization.jsonObject(with: data), let key = unknownKey(in: json) {
            let name = key.split(separator: ".").last.map { String($0.split(separator: "[").first ?? $0) } ?? key
            let all = knownKeys.values.flatMap { $0 }
            let near = all.filter { editDistance($0, name) <= 2 }.sorted().first
            throw ConfigurationError("\(path): unknown key \"\(key)\"\(near.map { " (did you mean \"\($0)\"?)" } ?? "")")
        }
        do {
            return try JSONDecoder().decode(DaemonConfigFile.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw ConfigurationError("\(path): missing \"\(key.stringValue)\" at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ConfigurationError(
                "\(path): wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
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

/// Levenshtein distance, for "did you mean" (keys are short: O(|a|·|b|) is nothing).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...max(1, b.count) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}
