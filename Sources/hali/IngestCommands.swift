import ArgumentParser
import Foundation
import HaliCore
import HaliIndex
import HaliIngest

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Find every nucleus of a whole-slide image and write the slide's index.",
        discussion: """
            Writes OUT/<slide name>.hidx (cells, outlines and measurements; zstd-compressed columns) and \
            OUT/<slide name>.manifest.json. Re-running with the same slide and settings does nothing unless --force. \
            With --detections, nuclei come from a QuPath GeoJSON, HoVer-Net JSON or CSV (x,y[,class]) file instead \
            of the built-in detector.
            """)

    @Argument(help: "The slide (anything OpenSlide reads).")
    var slide: String

    @OptionGroup var settings: IngestSettingsOptions

    @Option(help: "Import nuclei from this file instead of detecting them (.geojson, HoVer-Net .json, .csv).")
    var detections: String?

    @Option(help: "Output directory.")
    var out: String = "hali-data/index"

    @Flag(help: "Rebuild even if an up-to-date index exists.")
    var force = false

    func run() async throws {
        // Before minutes of work, not after: an --out that cannot be written is said at once.
        do { try Directories.ensure(out, purpose: "--out") } catch { throw ValidationError(error.description) }
        let options: IngestOptions
        do {
            options = try settings.ingestOptions()
        } catch {
            FileHandle.standardError.write(Data("hali ingest: \(error)\n".utf8))
            throw ExitCode(1)
        }
        var external: (path: String, format: ExternalDetections.Format)?
        if let detections {
            guard let format = ExternalDetections.Format.guess(path: detections) else {
                throw ValidationError("--detections: cannot tell the format of \(detections) (.geojson, .json or .csv)")
            }
            external = (detections, format)
        }
        let bar = ProgressBar(label: "ingest")
        do {
            let outcome = try await IndexBuilder.build(
                slidePath: slide, options: options, detections: external, outputDirectory: out, force: force
            ) { p in
                let seconds = p.elapsed.seconds
                let rate = seconds > 0 ? p.megapixels / seconds : 0
                bar.update(
                    done: p.tilesDone, total: p.tilesTotal, detail: "\(p.nuclei) nuclei, \(String(format: "%.1f", rate)) MP/s",
                    elapsed: seconds)
            }
            switch outcome {
            case .upToDate(let path, let manifest):
                print("\(path) is up to date (\(manifest.cellCount) cells); --force rebuilds it")
            case .built(let path, let result):
                let m = result.manifest
                let rate = m.seconds > 0 ? result.megapixelsProcessed / m.seconds : 0
                print("\(path): \(m.cellCount) cells from \(m.source)")
                if result.totalTiles > 0 {
                    print(
                        String(
                            format: "  %d of %d tiles held tissue; %.1f Mpx in %.2f s (%.1f MP/s, %.0f nuclei/s); tissue %.2f mm²",
                            result.tissueTiles, result.totalTiles, result.megapixelsProcessed, m.seconds, rate,
                            Double(m.cellCount) / max(m.seconds, 1e-9), m.tissueAreaMicrons2 / 1e6))
                }
                print(String(format: "  %.4f µm/px (%@)", m.slide.micronsPerPixel, m.slide.micronsPerPixelSource))
            }
        } catch let error as FileError {
            FileHandle.standardError.write(Data("hali ingest: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// What decides an ingest's result and speed, shared by `hali ingest` and `hali batch`.
struct IngestSettingsOptions: ParsableArguments {
    @Option(help: "Stain: he (H&E) or hdab (hematoxylin-DAB, e.g. Ki-67).")
    var stain: String = "he"

    @Option(help: "Microns per level-0 pixel, when the slide does not record it (or to override it).")
    var mpp: Double?

    @Option(help: "Tiles detected in parallel (default: all cores).")
    var threads: Int?

    @Option(help: "Tile edge in pixels of the level read.")
    var tileSize: Int = 1024

    @Option(help: "Backbone weights (.safetensors): store every cell's CNN embedding in the index, for the models and the active learner.")
    var weights: String?

    @Option(
        name: .customLong("detector-weights"),
        help:
            "Find nuclei with the learned detector (hali train-detector weights, e.g. Deploy/models/hali-detector-v1.safetensors) instead of the watershed detector."
    )
    var detectorWeights: String?

    func validate() throws {
        guard SlideStain(rawValue: stain) != nil else { throw ValidationError("--stain must be he or hdab") }
        guard (threads ?? 1) >= 1, tileSize >= 64 else { throw ValidationError("--threads ≥ 1 and --tile-size ≥ 64") }
        if let mpp, !(mpp > 0 && mpp.isFinite) { throw ValidationError("--mpp must be a positive number") }
    }

    /// The options, with the networks loaded (throws when a weights file cannot be read).
    func ingestOptions() throws -> IngestOptions {
        let stainKind = SlideStain(rawValue: stain) ?? .he
        var options = IngestOptions()
        options.stain = stainKind
        options.micronsPerPixel = mpp
        options.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        options.tileSize = tileSize
        try options.loadNetworks(weights: weights, detectorWeights: detectorWeights, stains: stainKind.matrix)
        return options
    }

    /// The options that decide the result, as arguments for a batch task (weights as absolute paths: the task runs
    /// elsewhere). Threads are the task's own.
    var taskArguments: [String] {
        var out = ["--stain", stain, "--tile-size", String(tileSize)]
        if let mpp { out += ["--mpp", String(mpp)] }
        if let weights { out += ["--weights", BatchSlides.absolutePath(weights)] }
        if let detectorWeights { out += ["--detector-weights", BatchSlides.absolutePath(detectorWeights)] }
        return out
    }
}

struct CellsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cells", abstract: "Summarise a slide's index: counts, density, sizes, shapes, classes.")

    @Argument(help: "An index file (.hidx), or a slide whose index is in --index-dir.")
    var slideOrIndex: String

    @Option(help: "Where `hali ingest` wrote indexes.")
    var indexDir: String = "hali-data/index"

    @Option(help: "Also write every cell to this CSV file: cell id (1-based row), centroid and box in level-0 pixels, area, class.")
    var csv: String?

    func run() throws {
        let path = slideOrIndex.hasSuffix(".hidx") ? slideOrIndex : IndexBuilder.indexPath(slidePath: slideOrIndex, outputDirectory: indexDir)
        let manifest: IndexManifest
        let table: CellTable
        do {
            (manifest, table) = try IndexFile.read(path: path)
        } catch {
            FileHandle.standardError.write(Data("hali cells: \(error)\n(run `hali ingest` on the slide first)\n".utf8))
            throw ExitCode(1)
        }
        if let csv { try Self.writeCSV(table, to: csv) }
        print("index     \(path)")
        print("slide     \(manifest.slide.path) (\(manifest.slide.width)×\(manifest.slide.height), \(manifest.slide.vendor))")
        print("source    \(manifest.source), \(manifest.created)")
        print("cells     \(table.count)")
        if let digest = try? IndexFile.cellsDigest(path: path) { print("digest    \(digest) (the cells' values, not the manifest)") }
        print(
            "features  \(table.embeddingDimension > 0 ? "CNN embeddings, \(table.embeddingDimension)-d, from \(table.embeddingSource)" : "measurements only (ingest with --weights for CNN embeddings)")"
        )
        if manifest.tissueAreaMicrons2 > 0 {
            print(
                String(
                    format: "tissue    %.3f mm², %.0f cells/mm²", manifest.tissueAreaMicrons2 / 1e6,
                    Double(table.count) / (manifest.tissueAreaMicrons2 / 1e6)))
        }
        func describe(_ name: String, _ values: [Float], unit: String) {
            let finite = values.filter(\.isFinite).sorted()
            guard !finite.isEmpty else { return }
            func q(_ p: Double) -> Float { finite[min(finite.count - 1, Int(Double(finite.count - 1) * p))] }
            print(
                String(
                    format: "%@ p5 %.2f, p25 %.2f, median %.2f, p75 %.2f, p95 %.2f %@", name.padding(toLength: 12, withPad: " ", startingAt: 0),
                    q(0.05), q(0.25), q(0.5), q(0.75), q(0.95), unit))
        }
        describe("area", table.areaMicrons2, unit: "µm²")
        describe("circularity", table.circularity, unit: "")
        describe("eccentricity", table.eccentricity, unit: "")
        if let i = table.stainNames.firstIndex(of: "hematoxylin") { describe("hema. OD", table.stainStatistics[i * 4], unit: "(mean per nucleus)") }
        if !table.classNames.isEmpty {
            var counts = [Int](repeating: 0, count: table.classNames.count)
            var none = 0
            for c in table.classIndex { if c >= 0 { counts[Int(c)] += 1 } else { none += 1 } }
            for (name, n) in zip(table.classNames, counts) { print("class     \(name): \(n)") }
            if none > 0 { print("class     (none): \(none)") }
        }
    }

    /// One line per cell, for a spreadsheet or a viewer's point import (QuPath, ASAP): positions in level-0 pixels.
    static func writeCSV(_ table: CellTable, to path: String) throws {
        var text = "cell,x,y,min_x,min_y,max_x,max_y,area_um2,class\n"
        // RFC 4180: a class name from an imported file may hold a comma, a quote or a line break.
        func field(_ s: String) -> String {
            s.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        for i in 0..<table.count {
            let c = i < table.classIndex.count && table.classIndex[i] >= 0 ? table.classNames[Int(table.classIndex[i])] : ""
            // Box corners lie on pixel edges (x.5 in level-0 pixel-centre coordinates): one decimal keeps them exact.
            text +=
                String(
                    format: "%d,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.2f,", i + 1, table.centroidX[i], table.centroidY[i], table.minX[i],
                    table.minY[i], table.maxX[i], table.maxY[i], table.areaMicrons2[i]) + field(c) + "\n"
        }
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            FileHandle.standardError.write(Data("hali cells: cannot write \(path): \(error.localizedDescription)\n".utf8))
            throw ExitCode(1)
        }
    }
}
