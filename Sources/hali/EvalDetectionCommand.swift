// `hali eval detection`: runs the nucleus detector over a labelled dataset directory and reports
// per-image and overall precision / recall / F1 of centroid detection.
import ArgumentParser
import Foundation
import HaliDatasets
import HaliImaging

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

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .customLong("reconstruction-radius-um"), help: "Geodesic reach of the background reconstruction in µm (0 = unbounded, as QuPath).")
    var reconstructionRadiusMicrons: Double?

    func validate() throws {
        guard radiusMicrons > 0 else { throw ValidationError("--radius-um must be positive") }
        if let m = mpp, !(m > 0) { throw ValidationError("--mpp must be positive") }
        if let l = limit, l <= 0 { throw ValidationError("--limit must be at least 1") }
        if let s = stain, StainKind(rawValue: s.lowercased()) == nil { throw ValidationError("--stain must be he or hdab") }
    }

    func run() throws {
        var parameters = NucleusDetectionParameters()
        if let r = reconstructionRadiusMicrons { parameters.reconstructionRadiusMicrons = r }
        let report: DetectionReport
        do {
            report = try DetectionEvaluation.run(
                datasetDirectory: dataset, radiusMicrons: radiusMicrons, mpp: mpp,
                stain: stain.flatMap { StainKind(rawValue: $0.lowercased()) }, limit: limit, parameters: parameters)
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
