import ArgumentParser
import Foundation
import HaliInterop
import HaliStore

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Measure the annotators from the label store's audit trail: pace, suggestions accepted, time saved, agreement.",
        discussion: """
            Per annotator, slide and task: labels per active minute by source (manual, accepted, corrected), the \
            acceptance rate, the model's accuracy over each quarter of the session, and the time the suggestions saved \
            against the annotator's own median manual pace (with the speed-up). Active time is the sum of the gaps \
            between consecutive labels of a session; a gap longer than --break-seconds is a break and is not counted as \
            work. Agreement on shared cells (labels in force after undo): Cohen's kappa per pair of annotators and \
            Fleiss' kappa over the cells every one of three or more annotators labelled. Writes CSV tables and PNG \
            charts to --out (columns: docs/user-guide.md) and prints a summary. The store is opened read-only.
            """)

    @Option(help: "The label store (default: the daemon's data directory's labels.sqlite).")
    var store: String = "hali-data/labels.sqlite"

    @Option(help: "Only this slide (its id, the file name without extension).")
    var slide: String?

    @Option(help: "Only this task.")
    var task: String?

    @Option(help: "Only this annotator (agreement then has no one to compare with).")
    var annotator: String?

    @Option(help: "Gaps between labels longer than this many seconds are breaks, not work.")
    var breakSeconds: Double = AuditReport.defaultBreakSeconds

    @Option(help: "Directory for the CSV tables and PNG charts (created if needed).")
    var out: String = "hali-report"

    func validate() throws {
        guard breakSeconds.isFinite, breakSeconds > 0 else { throw ValidationError("--break-seconds must be a positive number") }
        for (name, value) in [("--slide", slide), ("--task", task), ("--annotator", annotator)] where value?.isEmpty == true {
            throw ValidationError("\(name) must not be empty")
        }
    }

    func run() throws {
        do {
            let events = try LabelStore.auditTrail(path: store, annotator: annotator, slide: slide, task: task)
            guard !events.isEmpty else {
                let filtered = slide != nil || task != nil || annotator != nil
                throw StoreError(
                    path: store, message: filtered ? "no label events match --slide/--task/--annotator" : "the store holds no label events")
            }
            let report = AuditReport(events: events, breakSeconds: breakSeconds)
            let paths = try report.write(to: out)
            for line in report.summaryLines() { print(line) }
            print("wrote " + paths.joined(separator: ", "))
        } catch {
            FileHandle.standardError.write(Data("hali report: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
