// What `hali predict` writes for a slide: a JSON summary (counts and fractions per class), a CSV of counts per
// square region, and a PNG map with each cell a dot in its class colour. Column names and JSON keys are documented in
// docs/user-guide.md; spreadsheets and scripts read them.

import Foundation
public import HaliCore
public import HaliEngine
public import HaliImaging
public import HaliIndex
import HaliIngest
import HaliPNG
import HaliStore

/// An annotator's model (or the annotators' consensus) applied to every cell of an ingested slide.
public struct PredictionReport {
    public var slideStem: String
    public var task: TaskDefinition
    /// nil: the consensus of all annotators.
    public var annotator: String?
    public var manifest: IndexManifest
    public var table: CellTable
    public var prediction: SlidePrediction
    /// Time to fit and classify, in seconds.
    public var seconds: Double

    /// Reads the slide's index and the labels of `task` from a daemon's data directory (`index/`, `labels.sqlite`),
    /// fits the fast head and classifies every cell. A task that is not built in takes its classes from the labels.
    public static func make(slidePath: String, dataDirectory: String, task taskName: String, annotator: String?) throws -> PredictionReport {
        let stem = IndexBuilder.slideStem(slidePath)
        let (manifest, table) = try IndexFile.read(
            path: IndexBuilder.indexPath(slidePath: slidePath, outputDirectory: dataDirectory + "/index"))
        let store = try LabelStore(path: dataDirectory + "/labels.sqlite")
        defer { store.close() }
        let labels = try SlidePrediction.labels(store: store, slide: stem, task: taskName, annotator: annotator)
        let task =
            try TaskDefinition.builtIn.first { $0.name == taskName }
            ?? TaskDefinition(
                name: taskName, classes: Set(labels.values).sorted().enumerated().map { LabelClass(name: $1, color: "", key: String($0 + 1)) })
        let clock = ContinuousClock()
        let start = clock.now
        let prediction = try SlidePrediction.run(table: table, task: task, labels: labels)
        let seconds = (clock.now - start).seconds
        return PredictionReport(
            slideStem: stem, task: task, annotator: annotator, manifest: manifest, table: table, prediction: prediction, seconds: seconds)
    }

    /// The lines `hali predict` prints: what was learned from, the speed, and each class's count and share.
    public func summaryLines() -> [String] {
        let counts = prediction.counts()
        let total = max(1, table.count)
        var lines = [
            "\(slideStem) · \(task.name) · \(annotator ?? "consensus of all annotators"): \(prediction.labelsUsed) labels, features \(prediction.featureKind)",
            String(format: "%d cells classified in %.2f s (%.0f cells/s)", table.count, seconds, Double(table.count) / max(seconds, 1e-9)),
        ]
        for (name, n) in zip(prediction.classNames, counts) {
            lines.append(
                "  " + name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: " %8d  %5.1f %%", n, 100 * Double(n) / Double(total)))
        }
        return lines
    }

    /// The JSON summary's object.
    public func summary() -> [String: Any] {
        let counts = prediction.counts()
        let total = max(1, table.count)
        var summary: [String: Any] = [
            "slide": slideStem, "task": task.name, "annotator": annotator ?? "consensus", "cells": table.count,
            "labels_used": prediction.labelsUsed, "features": prediction.featureKind, "seconds": seconds,
            "counts": Dictionary(uniqueKeysWithValues: zip(prediction.classNames, counts)),
            "fractions": Dictionary(uniqueKeysWithValues: zip(prediction.classNames, counts.map { Double($0) / Double(total) })),
        ]
        if let accuracy = prediction.validationAccuracy { summary["validation_accuracy"] = accuracy }
        if manifest.tissueAreaMicrons2 > 0 { summary["tissue_mm2"] = manifest.tissueAreaMicrons2 / 1e6 }
        return summary
    }

    /// Counts per class in squares of `regionMicrons` (level-0 pixels in the columns), row by row; squares without
    /// cells are left out. Cells on the slide's last partial square count in it.
    public func regionsCSV(regionMicrons: Double) -> String {
        let side = regionMicrons / manifest.slide.micronsPerPixel
        let columns = max(1, Int((Double(manifest.slide.width) / side).rounded(.up)))
        let rows = max(1, Int((Double(manifest.slide.height) / side).rounded(.up)))
        var grid = [[Int]](repeating: [Int](repeating: 0, count: prediction.classNames.count), count: columns * rows)
        for r in 0..<table.count {
            let gx = min(columns - 1, max(0, Int(Double(table.centroidX[r]) / side)))
            let gy = min(rows - 1, max(0, Int(Double(table.centroidY[r]) / side)))
            grid[gy * columns + gx][prediction.classOfRow[r]] += 1
        }
        var csv =
            CSV.line(
                ["region_x", "region_y", "region_width", "region_height", "cells"] + prediction.classNames.flatMap { [$0, $0 + "_fraction"] })
        for gy in 0..<rows {
            for gx in 0..<columns {
                let counts = grid[gy * columns + gx]
                let n = counts.reduce(0, +)
                guard n > 0 else { continue }
                csv += "\(Int(Double(gx) * side)),\(Int(Double(gy) * side)),\(Int(side)),\(Int(side)),\(n),"
                csv += counts.map { String(format: "%d,%.4f", $0, Double($0) / Double(n)) }.joined(separator: ",") + "\n"
            }
        }
        return csv
    }

    /// Each cell a 3×3 dot in its class colour on a canvas whose longer side is 1,024 px.
    public func map() -> Canvas {
        let scale = 1024 / Double(max(manifest.slide.width, manifest.slide.height, 1))
        var canvas = Canvas(
            width: max(1, Int(Double(manifest.slide.width) * scale)), height: max(1, Int(Double(manifest.slide.height) * scale)))
        let colours = task.classes.map { c -> (UInt8, UInt8, UInt8) in
            let colour = HexColor(c.color) ?? .grey
            return (colour.r, colour.g, colour.b)
        }
        guard !colours.isEmpty else { return canvas }
        for r in 0..<table.count {
            let x = Int(Double(table.centroidX[r]) * scale), y = Int(Double(table.centroidY[r]) * scale)
            canvas.fillRect(x - 1, y - 1, x + 1, y + 1, colours[prediction.classOfRow[r] % colours.count])
        }
        return canvas
    }

    /// Writes OUT/<slide>-<task>.json, -regions.csv and -map.png; returns the three paths.
    public func write(to directory: String, regionMicrons: Double) throws -> [String] {
        try Directories.ensure(directory, purpose: "--out")
        let base = (directory as NSString).appendingPathComponent("\(slideStem)-\(task.name)")
        let paths = [base + ".json", base + "-regions.csv", base + "-map.png"]
        try JSONSerialization.data(withJSONObject: summary(), options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: paths[0]))
        try regionsCSV(regionMicrons: regionMicrons).write(toFile: paths[1], atomically: true, encoding: .utf8)
        try Data(map().png()).write(to: URL(fileURLWithPath: paths[2]))
        return paths
    }
}
