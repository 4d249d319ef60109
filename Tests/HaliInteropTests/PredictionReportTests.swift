import Foundation
import HaliCore
import HaliImaging
import HaliIndex
import Testing

@testable import HaliEngine
@testable import HaliInterop

/// `hali predict`'s files from a known prediction: six cells on a 2,000 × 1,000 px slide at 0.5 µm/px, three in each
/// half, so that 500 µm regions are the two halves.
struct PredictionReportTests {
    static func report() throws -> PredictionReport {
        let task = TaskDefinition.builtIn.first { $0.name == "ki67" }!  // positive #a52a2a, negative #3cb4e6
        let xs: [Double] = [100, 200, 300, 1100, 1200, 1900]
        let rows = xs.map { x in CellTable.Row(centroidX: x, centroidY: 500, minX: x - 5, minY: 495, maxX: x + 5, maxY: 505) }
        let table = CellTable(rows: rows, stainNames: [])
        let identity = IndexManifest.SlideIdentity(
            path: "/slides/s.svs", sizeBytes: 0, modified: 0, fingerprint: "test", vendor: "test", width: 2000, height: 1000,
            micronsPerPixel: 0.5, micronsPerPixelSource: "test")
        let manifest = IndexManifest(
            slide: identity, source: "test", settings: [:], cellCount: 6, tissueAreaMicrons2: 0, tiles: 0, seconds: 0, created: "")
        let prediction = SlidePrediction(
            classNames: ["positive", "negative"], classOfRow: [1, 0, 0, 1, 1, 1], confidence: Array(repeating: 0.9, count: 6), labelsUsed: 4,
            validationAccuracy: nil, featureKind: "measurements")
        return PredictionReport(
            slideStem: "s", task: task, annotator: "alice", manifest: manifest, table: table, prediction: prediction, seconds: 0.5)
    }

    @Test func regionsAreCountedPerSquare() throws {
        let csv = try Self.report().regionsCSV(regionMicrons: 500)
        #expect(
            csv == """
                region_x,region_y,region_width,region_height,cells,positive,positive_fraction,negative,negative_fraction
                0,0,1000,1000,3,2,0.6667,1,0.3333
                1000,0,1000,1000,3,0,0.0000,3,1.0000

                """)
    }

    @Test func theSummaryCountsEveryClass() throws {
        let summary = try Self.report().summary()
        #expect(summary["counts"] as? [String: Int] == ["positive": 2, "negative": 4])
        #expect(summary["annotator"] as? String == "alice" && summary["cells"] as? Int == 6 && summary["labels_used"] as? Int == 4)
        #expect(try Self.report().summaryLines().last == "  negative              4   66.7 %")
    }

    @Test func theMapDrawsEachCellInItsClassColour() throws {
        let canvas = try Self.report().map()
        #expect(canvas.width == 1024 && canvas.height == 512)
        func pixel(_ x: Double, _ y: Double) -> [UInt8] {
            let (px, py) = (Int(x * 1024 / 2000), Int(y * 1024 / 2000))
            let o = (py * canvas.width + px) * 3
            return Array(canvas.rgb[o..<(o + 3)])
        }
        #expect(pixel(200, 500) == [0xa5, 0x2a, 0x2a])  // positive
        #expect(pixel(100, 500) == [0x3c, 0xb4, 0xe6])  // negative
        #expect(pixel(700, 500) == [255, 255, 255])  // no cell
    }

    @Test func theThreeFilesAreWritten() throws {
        let directory = NSTemporaryDirectory() + "hali-predict-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = try Self.report().write(to: directory, regionMicrons: 500)
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["s-ki67.json", "s-ki67-regions.csv", "s-ki67-map.png"])
        for path in paths { #expect(FileManager.default.fileExists(atPath: path)) }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: paths[0]))) as? [String: Any]
        #expect(json?["task"] as? String == "ki67")
    }
}
