// Many slides through `hali ingest` on a cluster: which slides a batch holds, which of them still need work, and
// what a failed task leaves behind. The scheduler's side (a Slurm array script, a Kubernetes Indexed Job) is in
// BatchScripts.swift; `hali batch` ties them together.
//
// Every task is idempotent: the index is written by rename (`IndexFile.write`), a slide whose index is current is
// skipped, and a failure leaves only `<stem>.failed.txt` beside where the index would be, with the reason and the
// file's fingerprint; a later success removes it. So a rerun of the same batch does only what is missing, a bad slide
// costs nothing else, and it is tried again only once its file changed (or with `--retry-failed`).

public import Foundation
import HaliCore
import HaliIndex

public enum BatchSlides {
    /// File name extensions of the slide formats OpenSlide reads (a folder's other files are not slides).
    public static let slideExtensions: Set<String> = [
        "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "dcm", "isyntax",
    ]

    /// The slides named by `inputs`, in order, each once: a slide file; a folder (its slide files, by name, not
    /// recursive); or a manifest (a `.txt` or `.list` file: one path per line, relative to the manifest's folder;
    /// blank lines and `#` comments skipped). Paths are made absolute, so that a task on another node finds them on
    /// shared storage.
    public static func expand(_ inputs: [String], workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> [String] {
        var seen = Set<String>()
        var slides: [String] = []
        func add(_ path: String) {
            let absolute = absolutePath(path, relativeTo: workingDirectory)
            if seen.insert(absolute).inserted { slides.append(absolute) }
        }
        for input in inputs {
            let path = absolutePath(input, relativeTo: workingDirectory)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw FileError(path: input, message: "no such file or folder")
            }
            let ext = (path as NSString).pathExtension.lowercased()
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                for name in names where slideExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    add((path as NSString).appendingPathComponent(name))
                }
            } else if ext == "txt" || ext == "list" {
                let text: String
                do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw FileError(path: input, message: "cannot read the manifest as UTF-8 text")
                }
                let folder = (path as NSString).deletingLastPathComponent
                for line in text.split(whereSeparator: \.isNewline) {
                    let entry = line.trimmingCharacters(in: .whitespaces)
                    guard !entry.isEmpty, !entry.hasPrefix("#") else { continue }
                    guard !entry.contains("\0") else { throw FileError(path: input, message: "a line holds a NUL byte") }
                    add(absolutePath(entry, relativeTo: folder))
                }
            } else {
                add(path)
            }
        }
        return slides
    }

    public static func absolutePath(_ path: String, relativeTo folder: String = FileManager.default.currentDirectoryPath) -> String {
        let joined = path.hasPrefix("/") ? path : (folder as NSString).appendingPathComponent(path)
        return (joined as NSString).standardizingPath
    }
}

/// What a failed batch task leaves: `<stem>.failed.txt` in the index folder, holding why and which file failed.
public enum BatchFailure {
    public static func path(slidePath: String, outputDirectory: String) -> String {
        (outputDirectory as NSString).appendingPathComponent(IndexBuilder.slideStem(slidePath) + ".failed.txt")
    }

    /// Records why `slidePath` failed (atomically): the slide's path, its file's fingerprint, the reason on one line.
    public static func record(slidePath: String, outputDirectory: String, reason: String) throws {
        let fingerprint = (try? SlideFingerprint.compute(path: slidePath).fingerprint) ?? "unreadable"
        let text = "slide: \(slidePath)\nfingerprint: \(fingerprint)\nreason: \(reason.replacingOccurrences(of: "\n", with: " "))\n"
        try IndexFile.writeAtomically(Array(text.utf8), to: path(slidePath: slidePath, outputDirectory: outputDirectory))
    }

    /// The recorded failure of `slidePath`, if its last task failed: the reason, and whether the file is still the
    /// one that failed.
    public static func recorded(slidePath: String, outputDirectory: String) -> (reason: String, sameFile: Bool)? {
        guard let record = read(path(slidePath: slidePath, outputDirectory: outputDirectory)) else { return nil }
        let now = (try? SlideFingerprint.compute(path: slidePath).fingerprint) ?? "unreadable"
        return (record.reason, record.fingerprint == now)
    }

    /// Every failure recorded in `outputDirectory`, by file name: the slide (as recorded) and the reason.
    public static func records(in outputDirectory: String) -> [(slide: String, reason: String)] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: outputDirectory)) ?? []).sorted()
        return names.filter { $0.hasSuffix(".failed.txt") }.compactMap { name in
            read((outputDirectory as NSString).appendingPathComponent(name)).map { ($0.slide ?? name, $0.reason) }
        }
    }

    /// A record's fields (`key: value` lines); a file without a reason line is its own reason.
    private static func read(_ file: String) -> (slide: String?, fingerprint: String?, reason: String)? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        func field(_ name: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
        }
        return (field("slide"), field("fingerprint"), field("reason") ?? text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public static func clear(slidePath: String, outputDirectory: String) {
        try? FileManager.default.removeItem(atPath: path(slidePath: slidePath, outputDirectory: outputDirectory))
    }
}

/// Where each slide of a batch stands: what `hali batch status` lists and what a submission leaves out.
public struct BatchPlan: Sendable {
    public enum State: Sendable, Equatable {
        /// Indexed from this file with these settings: nothing to do.
        case current(cells: Int)
        case missing
        case stale(String)
        /// The last task on this very file failed (the recorded reason): run again only when asked to.
        case failed(String)
        /// The slide cannot be opened here and no task has tried it yet (a task records why).
        case unreadable(String)

        public func needsWork(retryFailed: Bool) -> Bool {
            switch self {
            case .current: false
            case .failed: retryFailed
            case .missing, .stale, .unreadable: true
            }
        }
    }

    public var slides: [(path: String, state: State)]

    /// Looks at every slide's index in `outputDirectory` (opening each slide: its size, fingerprint and µm/px).
    public init(slides: [String], options: IngestOptions, outputDirectory: String) {
        self.slides = slides.map { path in
            let current: IndexBuilder.IndexState
            do { current = try IndexBuilder.state(slidePath: path, options: options, outputDirectory: outputDirectory) } catch {
                if let failure = BatchFailure.recorded(slidePath: path, outputDirectory: outputDirectory), failure.sameFile {
                    return (path, .failed(failure.reason))
                }
                return (path, .unreadable("\(error)"))
            }
            switch current {
            case .current(let manifest): return (path, .current(cells: manifest.cellCount))
            case .stale(let why): return (path, .stale(why))
            case .missing:
                if let failure = BatchFailure.recorded(slidePath: path, outputDirectory: outputDirectory), failure.sameFile {
                    return (path, .failed(failure.reason))
                }
                return (path, .missing)
            }
        }
    }

    /// The slides a submission runs.
    public func toRun(retryFailed: Bool = false) -> [String] {
        slides.filter { $0.state.needsWork(retryFailed: retryFailed) }.map(\.path)
    }

    /// Two slides with one file name would write one index: refused before anything is submitted.
    public func clashingStems() -> [String] {
        let stems = Dictionary(grouping: slides.map(\.path), by: IndexBuilder.slideStem)
        return stems.filter { $0.value.count > 1 }.keys.sorted()
    }
}
