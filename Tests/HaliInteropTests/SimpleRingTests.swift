import Foundation
import HaliCore
import HaliIngest
import HaliTestFixtures
import Testing

@testable import HaliInterop

private let slidePath = SharedData.cmu1SmallRegion

/// The ring `Contour.traceOuter` gives for a C of 7 pixels whose tips touch only at the corner (1, 2)
/// (`X X X / X . X / . X X`; HaliImagingTests' `diagonalTouchPassesTwiceThroughTheCorner`): it passes twice through
/// (1, 2), the second loop walking round the pocket pixel (1, 1) the other way (shoelace area 8 − 1 = 7).
private let pinched: [[Double]] = [[0, 0], [3, 0], [3, 3], [1, 3], [1, 2], [2, 2], [2, 1], [1, 1], [1, 2], [0, 2]]
private let pinchedFilled: [[Double]] = [[0, 0], [3, 0], [3, 3], [1, 3], [1, 2], [0, 2]]

@Suite struct SimpleRingTests {
    @Test func ringThroughAVertexTwiceLosesItsPocket() {
        #expect(Exporter.signedArea(pinched) == 7)
        #expect(Exporter.simpleRing(pinched) == pinchedFilled)
        #expect(Exporter.signedArea(pinchedFilled) == 8)
    }

    /// Wherever the ring starts, even at the repeated vertex, the same loop is kept.
    @Test func keptLoopDoesNotDependOnTheStart() {
        for start in 0..<pinched.count {
            let rotated = Array(pinched[start...] + pinched[..<start])
            let kept = Exporter.simpleRing(rotated)
            #expect(kept.count == 6 && Set(kept) == Set(pinchedFilled) && Exporter.signedArea(kept) == 8, "start \(start): \(kept)")
        }
    }

    /// Two squares touching at one corner (a figure eight through (1, 1)): the larger square is kept, whichever comes
    /// first.
    @Test func squaresTouchingAtACornerKeepTheLargerOne() {
        let smallFirst: [[Double]] = [[0, 0], [1, 0], [1, 1], [3, 1], [3, 3], [1, 3], [1, 1], [0, 1]]
        #expect(Exporter.simpleRing(smallFirst) == [[1, 1], [3, 1], [3, 3], [1, 3]])
        let largeFirst: [[Double]] = [[0, 0], [2, 0], [2, 2], [3, 2], [3, 3], [2, 3], [2, 2], [0, 2]]
        #expect(Exporter.simpleRing(largeFirst) == [[0, 0], [2, 0], [2, 2], [0, 2]])
    }

    @Test func simpleRingsAreKept() {
        let square: [[Double]] = [[0, 0], [2, 0], [2, 2], [0, 2]]
        #expect(Exporter.simpleRing(square) == square)
        #expect(Exporter.simpleRing(square + [[0, 0]]) == square)  // closed: the repeated first vertex goes
        #expect(Exporter.simpleRing([[0, 0], [2, 0], [2, 0], [2, 2], [0, 2]]) == square)  // a vertex twice in a row
    }

    /// An index whose outline is pinched (an imported detection, 4 px per pixel of the C above) exports the filled
    /// loop in GeoJSON and ASAP alike.
    @Test func exportedOutlinesAreSimple() async throws {
        let directory = NSTemporaryDirectory() + "hali-ring-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/index", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let place = { (p: [Double]) in [1000 + 4 * p[0], 800 + 4 * p[1]] }
        let ring = (pinched + [pinched[0]]).map(place)
        let detections = directory + "/cells.geojson"
        try
            #"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[\#(ring)]},"properties":{"objectType":"detection"}}]}"#
            .write(toFile: detections, atomically: true, encoding: .utf8)
        _ = try await IndexBuilder.build(
            slidePath: slidePath, options: IngestOptions(), detections: (detections, .geojson), outputDirectory: directory + "/index")
        let slide = try InteropSlide.load(dataDirectory: directory, slide: slidePath)
        let task = TaskDefinition.builtIn.first { $0.name == "phenotype" }!
        let labels = ExportLabels(name: "ann", classOfCell: [1: "other"], votes: [:])
        let expected = (pinchedFilled + [pinchedFilled[0]]).map(place)

        try Exporter.write(labels, format: .geojson, slide: slide, task: task, to: directory + "/a.geojson")
        let root = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/a.geojson"))) as? [String: Any])
        let geometry = try #require(((root["features"] as? [[String: Any]])?.first)?["geometry"] as? [String: Any])
        #expect(geometry["coordinates"] as? [[[Double]]] == [expected])

        try Exporter.write(labels, format: .asap, slide: slide, task: task, to: directory + "/a.xml")
        let xml = try String(contentsOfFile: directory + "/a.xml", encoding: .utf8)
        let coordinates = xml.split(separator: "\n").filter { $0.contains("<Coordinate ") }.map { line in
            ["X", "Y"].map { key in Double(line.split(separator: "\(key)=\"")[1].prefix { $0 != "\"" })! }
        }
        #expect(coordinates == Array(expected.dropLast()))  // ASAP closes polygons itself
    }
}
