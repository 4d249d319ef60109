import ArgumentParser
import Foundation
import HaliCore
import HaliEngine
import HaliIndex
import HaliInterop
import HaliStore

/// Options shared by `hali export` and `hali import`: where the slide's index and the label store are.
struct InteropLocation: ParsableArguments {
    @Argument(help: "The slide (its path or its id, the file name without extension).")
    var slide: String

    @Option(help: "Labelling task (a built-in task: \(TaskDefinition.builtIn.map(\.name).joined(separator: ", "))).")
    var task: String

    @Option(help: "The daemon's data directory (labels.sqlite, index/<slide>.hidx).")
    var dataDir: String = "hali-data"

    func taskDefinition() throws -> TaskDefinition {
        guard let definition = TaskDefinition.builtIn.first(where: { $0.name == task }) else {
            throw ValidationError("unknown task \(task) (known: \(TaskDefinition.builtIn.map(\.name).joined(separator: ", ")))")
        }
        return definition
    }

    func format(_ text: String, importing: Bool) throws -> InteropFormat {
        guard let format = InteropFormat(rawValue: text.lowercased()), !importing || format.canImport else {
            let known = InteropFormat.allCases.filter { !importing || $0.canImport }.map(\.rawValue)
            throw ValidationError("--format must be one of \(known.joined(separator: ", "))")
        }
        return format
    }

    /// The slide's index and the label store (created when `create`, as an import into a fresh data dir needs).
    func open(create: Bool) throws -> (InteropSlide, LabelStore) {
        let storePath = (dataDir as NSString).appendingPathComponent("labels.sqlite")
        guard create || FileManager.default.fileExists(atPath: storePath) else { throw FileError(path: storePath, message: "no label store") }
        return (try InteropSlide.load(dataDirectory: dataDir, slide: slide), try LabelStore(path: storePath))
    }
}

private func fail(_ command: String, _ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("hali \(command): \(error)\n".utf8))
    return ExitCode(1)
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a slide's labels for another viewer: QuPath GeoJSON, CSV, ASAP XML, DSA JSON or SlideRunner SQLite.",
        discussion: """
            Exports one annotator's labels (--annotator) or the majority over all annotators (--consensus; a tie gives \
            no label), one object per labelled cell in level-0 pixels: the cell outline where the index has one and the \
            format takes polygons (geojson, asap), else its centroid. See docs/viewers.md for loading the file in each viewer.
            """)

    @OptionGroup var location: InteropLocation

    @Option(help: "Export this annotator's labels.")
    var annotator: String?

    @Flag(help: "Export the majority label over all annotators.")
    var consensus = false

    @Option(help: "geojson (QuPath), csv, asap (ASAP XML), dsa (Digital Slide Archive JSON) or sliderunner (SQLite).")
    var format: String

    @Option(help: "Output file.")
    var out: String

    @Flag(help: "Also write the model's suggestion and its confidence for every unlabelled cell (GeoJSON only).")
    var suggestions = false

    func validate() throws {
        guard (annotator != nil) != consensus else { throw ValidationError("give exactly one of --annotator and --consensus") }
        guard !suggestions || format == "geojson" else { throw ValidationError("--suggestions is for --format geojson") }
    }

    func run() async throws {
        let format = try location.format(format, importing: false)
        let task = try location.taskDefinition()
        do {
            let (slide, store) = try location.open(create: false)
            defer { store.close() }
            let labels =
                if let annotator { try ExportLabels.annotator(annotator, store: store, slide: slide.id, task: task.name) } else {
                    try ExportLabels.consensus(store: store, slide: slide.id, task: task.name)
                }
            var labelsToWrite = labels
            if suggestions { labelsToWrite.suggestions = try Suggestions.forUnlabelled(labels, table: slide.table, task: task) }
            let count = try Exporter.write(labelsToWrite, format: format, slide: slide, task: task, to: out)
            print(
                "\(out): \(count) labelled cells of \(slide.id), task \(task.name), \(labels.name) (\(format.rawValue))"
                    + (suggestions ? ", and \(labelsToWrite.suggestions.count) suggestions" : ""))
        } catch {
            throw fail("export", error)
        }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read labels made in another viewer (QuPath GeoJSON, CSV, ASAP XML, SlideRunner SQLite) into a task.",
        discussion: """
            Each labelled point or outline is given to the nearest indexed cell within --tolerance µm and stored as the \
            annotator's label (source "imported"). The whole file is checked first (shape, classes of the task, \
            coordinates inside the slide); if anything is wrong nothing is imported and the offending entry is named. \
            Entries with no cell nearby are listed. Importing the same file twice changes nothing.
            """)

    @OptionGroup var location: InteropLocation

    @Option(help: "The annotator the labels are stored under.")
    var annotator: String

    @Option(help: "geojson, csv, asap or sliderunner.")
    var format: String

    @Option(help: "Match radius in µm between an imported point and a cell centroid.")
    var tolerance: Double = Importer.defaultToleranceMicrons

    @Argument(help: "The file to import.")
    var file: String

    func run() async throws {
        let format = try location.format(format, importing: true)
        let task = try location.taskDefinition()
        guard tolerance > 0 else { throw ValidationError("--tolerance must be positive") }
        do {
            let (slide, store) = try location.open(create: true)
            defer { store.close() }
            let plan = try await Importer.importFile(
                file, format: format, slide: slide, task: task, annotator: annotator, store: store, toleranceMicrons: tolerance)
            print(
                "\(file): \(plan.records.count) labels imported for \(annotator) on \(slide.id), task \(task.name); "
                    + "\(plan.unchanged) unchanged, \(plan.unmatched.count) unmatched, \(plan.duplicates) duplicates")
            if !plan.unmatched.isEmpty {
                let shown = plan.unmatched.prefix(20).joined(separator: "; ")
                print("  no cell within \(tolerance) µm: \(shown)\(plan.unmatched.count > 20 ? "; …" : "")")
            }
        } catch {
            throw fail("import", error)
        }
    }
}
