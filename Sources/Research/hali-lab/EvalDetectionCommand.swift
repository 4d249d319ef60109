// `hali eval detection`: runs the nucleus detector over a labelled dataset directory and reports
// per-image and overall precision / recall / F1 of centroid detection.
import ArgumentParser
import Foundation
import HaliDatasets
import HaliImaging
import HaliInference
import HaliPNG
import HaliTraining

struct EvalDetectionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detection",
        abstract: "Evaluate the nucleus detector against labelled centroids (precision, recall, F1).",
        discussion: """
            DIR holds images/*.png and labels: cells.csv (image,x,y,...), else annotations/*.xml (Aperio polygons), \
            else instances/*.png (16-bit instance maps); meta.json gives stain and approx_mpp. \
            Matching: \(CentroidMatching.rule).
            """
    )

    @Option(name: .long, help: "Dataset directory (images/ + cells.csv | annotations/ | instances/).")
    var dataset: String

    @Option(name: .customLong("radius-um"), help: "Match radius in microns.")
    var radiusMicrons: Double = 3

    @Option(name: .long, help: "Input pixel size in µm/px (default: meta.json approx_mpp or the XML's MicronsPerPixel).")
    var mpp: Double?

    @Option(name: .long, help: "Stain: he (H&E) or hdab (hematoxylin-DAB). Default: from meta.json, else he.")
    var stain: String?

    @Option(name: .long, help: "Evaluate only the first N images (sorted by name).")
    var limit: Int?

    @Option(name: .long, help: "Evaluate only images FIRST-LAST (1-based, sorted by name), e.g. the fold a model did not see.")
    var images: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .customLong("reconstruction-radius-um"), help: "Geodesic reach of the background reconstruction in µm (0 = unbounded, as QuPath).")
    var reconstructionRadiusMicrons: Double?

    @Option(
        name: .customLong("detector-weights"),
        help: "Use the learned detector with these weights (hali train-detector) instead of the watershed detector.")
    var detectorWeights: String?

    @Option(name: .customLong("seed-threshold"), help: "With --detector-weights: minimum centre probability of a seed (default: from the weights).")
    var seedThreshold: Double?

    @Option(
        name: .customLong("foreground-threshold"),
        help: "With --detector-weights: minimum foreground probability of a nucleus pixel (default: from the weights).")
    var foregroundThreshold: Double?

    func imageRange() throws -> ClosedRange<Int>? {
        guard let images, let r = ImageRange.parse(images[...]), r.lowerBound >= 1 else { return nil }
        return r
    }

    private func detectClosure(_ learned: LearnedNucleusDetector?) -> (@Sendable (RGBImage, Double) -> [Nucleus])? {
        guard let learned else { return nil }
        return { image, mpp in learned.detect(image, micronsPerPixel: mpp) }
    }

    func validate() throws {
        guard radiusMicrons > 0 else { throw ValidationError("--radius-um must be positive") }
        if let m = mpp, !(m > 0) { throw ValidationError("--mpp must be positive") }
        if let l = limit, l <= 0 { throw ValidationError("--limit must be at least 1") }
        if images != nil, try imageRange() == nil { throw ValidationError("--images must be FIRST-LAST, 1 ≤ FIRST ≤ LAST") }
        if let s = stain, StainKind(rawValue: s.lowercased()) == nil { throw ValidationError("--stain must be he or hdab") }
    }

    func run() throws {
        var parameters = NucleusDetectionParameters()
        if let r = reconstructionRadiusMicrons { parameters.reconstructionRadiusMicrons = r }
        let report: DetectionReport
        var learned: LearnedNucleusDetector?
        if let path = detectorWeights {
            do {
                learned = try LearnedNucleusDetector.load(path: path, stains: (stain.flatMap { StainKind(rawValue: $0.lowercased()) } ?? .he).matrix)
                if let seedThreshold { learned?.maps.seedThreshold = seedThreshold }
                if let foregroundThreshold { learned?.maps.foregroundThreshold = foregroundThreshold }
                // The report's speed is per thread (as the watershed detector's); one OpenBLAS thread, as ingest runs it.
                HaliTrainingSetup.blasThreads(1)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        do {
            report = try DetectionEvaluation.run(
                datasetDirectory: dataset, radiusMicrons: radiusMicrons, mpp: mpp,
                stain: stain.flatMap { StainKind(rawValue: $0.lowercased()) }, limit: limit, range: try imageRange(), parameters: parameters,
                detect: detectClosure(learned),
                detectorName: learned.map { "learned (\($0.source))" } ?? "hali-watershed")
        } catch let e as DatasetError {
            FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
            throw ExitCode(2)
        } catch let e as PNGError {
            FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
            throw ExitCode(2)
        }
        print(json ? report.renderJSON() : report.renderTable(), terminator: json ? "\n" : "")
    }
}
