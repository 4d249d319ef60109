import ArgumentParser
import Foundation
import HaliCore
import HaliEngine
import HaliInterop

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Apply an annotator's model to every cell of a slide: per-class counts and ratios, per region, and a class map.",
        discussion: """
            Reads the slide's index and the labels of TASK from DATA_DIR (as the daemon stores them), fits the fast head \
            on them (CNN embeddings when the index has them), classifies every cell, and writes OUT/<slide>-<task>.json, \
            OUT/<slide>-<task>-regions.csv (a grid of --region-um squares) and OUT/<slide>-<task>-map.png.
            """)

    @Argument(help: "The slide (its index must be in DATA_DIR/index).")
    var slide: String

    @Option(help: "Task whose labels to learn from.")
    var task: String

    @Option(help: "Use this annotator's labels (default: the majority over all annotators).")
    var annotator: String?

    @Option(help: "The daemon's data directory.")
    var dataDir: String = "hali-data"

    @Option(help: "Output directory.")
    var out: String = "hali-data/predictions"

    @Option(help: "Side of the region grid, in microns.")
    var regionUm: Double = 1000

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let report = try PredictionReport.make(slidePath: slide, dataDirectory: dataDir, task: task, annotator: annotator)
            for line in report.summaryLines() { print(line) }
            let paths = try report.write(to: out, regionMicrons: regionUm)
            print("wrote \(paths.joined(separator: ", ")) (\(String(format: "%.2f", (clock.now - start).seconds)) s in all)")
        } catch let error as EngineError {
            FileHandle.standardError.write(Data("hali predict: \(error.message)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("hali predict: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
