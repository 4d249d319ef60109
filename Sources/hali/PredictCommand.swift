import ArgumentParser
import Foundation
import HaliCore
import HaliEngine
import HaliImaging
import HaliIndex
import HaliIngest
import HaliPNG
import HaliStore

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
        let stem = IndexBuilder.slideStem(slide)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let (manifest, table) = try IndexFile.read(path: IndexBuilder.indexPath(slidePath: slide, outputDirectory: dataDir + "/index"))
            let store = try LabelStore(path: dataDir + "/labels.sqlite")
            defer { store.close() }
            let labels = try SlidePrediction.labels(store: store, slide: stem, task: task, annotator: annotator)
            let definition =
                try TaskDefinition.builtIn.first { $0.name == task }
                ?? (TaskDefinition(
                    name: task, classes: Set(labels.values).sorted().enumerated().map { LabelClass(name: $1, color: "", key: String($0 + 1)) }))
            let fitStart = clock.now
            let prediction = try SlidePrediction.run(table: table, task: definition, labels: labels)
            let seconds = (clock.now - fitStart).secondsValue
            let counts = prediction.counts()
            let total = max(1, table.count)
            print(
                "\(stem) · \(task) · \(annotator ?? "consensus of all annotators"): \(prediction.labelsUsed) labels, features \(prediction.featureKind)"
            )
            print(String(format: "%d cells classified in %.2f s (%.0f cells/s)", table.count, seconds, Double(table.count) / max(seconds, 1e-9)))
            for (name, n) in zip(prediction.classNames, counts) {
                print(
                    "  " + name.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + String(format: " %8d  %5.1f %%", n, 100 * Double(n) / Double(total)))
            }

            try Directories.ensure(out, purpose: "--out")
            let base = (out as NSString).appendingPathComponent("\(stem)-\(task)")
            var summary: [String: Any] = [
                "slide": stem, "task": task, "annotator": annotator ?? "consensus", "cells": table.count, "labels_used": prediction.labelsUsed,
                "features": prediction.featureKind, "seconds": seconds,
                "counts": Dictionary(uniqueKeysWithValues: zip(prediction.classNames, counts)),
                "fractions": Dictionary(uniqueKeysWithValues: zip(prediction.classNames, counts.map { Double($0) / Double(total) })),
            ]
            if let accuracy = prediction.validationAccuracy { summary["validation_accuracy"] = accuracy }
            if manifest.tissueAreaMicrons2 > 0 { summary["tissue_mm2"] = manifest.tissueAreaMicrons2 / 1e6 }
            try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys]).write(
                to: URL(fileURLWithPath: base + ".json"))

            // Regions: a grid of regionUm squares; counts per class and fractions.
            let side = regionUm / manifest.slide.micronsPerPixel
            let columns = Int((Double(manifest.slide.width) / side).rounded(.up)),
                rowsCount = Int((Double(manifest.slide.height) / side).rounded(.up))
            var grid = [[Int]](repeating: [Int](repeating: 0, count: prediction.classNames.count), count: max(1, columns * rowsCount))
            for r in 0..<table.count {
                let gx = min(columns - 1, Int(Double(table.centroidX[r]) / side)), gy = min(rowsCount - 1, Int(Double(table.centroidY[r]) / side))
                grid[gy * columns + gx][prediction.classOfRow[r]] += 1
            }
            var csv =
                "region_x,region_y,region_width,region_height,cells," + prediction.classNames.map { "\($0),\($0)_fraction" }.joined(separator: ",")
                + "\n"
            for gy in 0..<rowsCount {
                for gx in 0..<columns {
                    let cell = grid[gy * columns + gx]
                    let n = cell.reduce(0, +)
                    guard n > 0 else { continue }
                    csv += "\(Int(Double(gx) * side)),\(Int(Double(gy) * side)),\(Int(side)),\(Int(side)),\(n),"
                    csv += cell.map { String(format: "%d,%.4f", $0, Double($0) / Double(n)) }.joined(separator: ",") + "\n"
                }
            }
            try csv.write(toFile: base + "-regions.csv", atomically: true, encoding: .utf8)

            // Map: each cell a dot in its class colour on a ≤ 1024-px canvas.
            let scale = 1024 / Double(max(manifest.slide.width, manifest.slide.height))
            var canvas = Canvas(width: max(1, Int(Double(manifest.slide.width) * scale)), height: max(1, Int(Double(manifest.slide.height) * scale)))
            let colours = definition.classes.map { c -> (UInt8, UInt8, UInt8) in
                let colour = HexColor(c.color) ?? .grey
                return (colour.r, colour.g, colour.b)
            }
            for r in 0..<table.count {
                let x = Int(Double(table.centroidX[r]) * scale), y = Int(Double(table.centroidY[r]) * scale)
                canvas.fillRect(x - 1, y - 1, x + 1, y + 1, colours[prediction.classOfRow[r] % colours.count])
            }
            try Data(canvas.png()).write(to: URL(fileURLWithPath: base + "-map.png"))
            print("wrote \(base).json, \(base)-regions.csv, \(base)-map.png (\(String(format: "%.2f", (clock.now - start).secondsValue)) s in all)")
        } catch let error as EngineError {
            FileHandle.standardError.write(Data("hali predict: \(error.message)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("hali predict: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

}

extension Duration {
    var secondsValue: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
