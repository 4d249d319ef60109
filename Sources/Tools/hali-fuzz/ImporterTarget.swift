import Foundation
import HaliCore
import HaliIndex
import HaliInterop
import HaliStore

/// The `importers` target: label files from other viewers, as `hali import` reads them. The first byte picks the
/// format (GeoJSON, CSV, ASAP XML, SlideRunner SQLite), the rest is the file. Each is read and validated against a
/// real slide's index and matched to its cells; a refusal (FileError, StoreError) is fine, a trap is not.
enum ImporterTarget {
    static let formats = InteropFormat.allCases.filter(\.canImport)

    static let slide: InteropSlide = {
        do { return try InteropSlide.load(dataDirectory: Fixture.indexedDirectory, slide: Fixture.slidePath) } catch {
            fatalError("hali-fuzz: cannot load the fixture index: \(error)")
        }
    }()

    static let store: LabelStore = {
        let directory = NSTemporaryDirectory() + "hali-fuzz-import-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do { return try LabelStore(path: directory + "/labels.sqlite") } catch { fatalError("hali-fuzz: label store: \(error)") }
    }()

    static let scratch = NSTemporaryDirectory() + "hali-fuzz-import-\(getpid())-input"

    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        let format = formats[Int(first) % formats.count]
        let file = scratch + "." + format.rawValue
        guard FileManager.default.createFile(atPath: file, contents: Data(bytes.dropFirst())) else { fatalError("cannot write \(file)") }
        defer { unlink(file) }
        let task = TaskDefinition.builtIn.first { $0.name == "ki67" }!
        guard let entries = try? Importer.read(file, format: format, slide: slide, task: task, annotator: "fuzzer") else { return }
        guard let plan = try? Importer.plan(entries, slide: slide, task: task, annotator: "fuzzer", store: store) else { return }
        // Every planned event names a cell of the slide and a class of the task: what `apply` would store.
        for record in plan.records {
            guard slide.table.row(ofID: record.cellID) != nil else { fatalError("planned a label for cell \(record.cellID), not in the index") }
            guard let className = record.className, task.hasClass(className) else { fatalError("planned class \(record.className ?? "nil")") }
        }
    }

    /// One seed per format: a small valid file of each, as `hali export` writes it, labelling two cells.
    static func seeds() -> [[UInt8]] {
        let (first, second) = (CellTable.id(ofRow: 0), CellTable.id(ofRow: 7))
        var out: [[UInt8]] = []
        for (index, format) in formats.enumerated() {
            let file = scratch + "-seed." + format.rawValue
            defer { unlink(file) }
            let labels = ExportLabels(
                name: "fuzzer", classOfCell: [first: "positive", second: "negative"],
                votes: [first: ["fuzzer": "positive"], second: ["fuzzer": "negative"]])
            let task = TaskDefinition.builtIn.first { $0.name == "ki67" }!
            guard (try? Exporter.write(labels, format: format, slide: slide, task: task, to: file)) != nil,
                let data = FileManager.default.contents(atPath: file)
            else { continue }
            out.append([UInt8(index)] + Array(data))
        }
        return out
    }
}
