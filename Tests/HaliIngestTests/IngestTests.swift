import Foundation
import HaliCore
import HaliIndex
@testable import HaliIngest
import HaliInference
import HaliSlide
import HaliTestFixtures
import Testing

let sharedData = SharedData.rootURL
let svs = SharedData.cmu1SmallRegion
let pyramidWithoutMPP = SharedData.cmu1SmallRegionPyramid

func temporaryDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "hali-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func files(in directory: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] }

/// A 768×768 level-0 window of CMU-1 with tissue and a few hundred nuclei: small enough for debug builds.
func smallRegionOptions(tileSize: Int, threads: Int) -> IngestOptions {
    var options = IngestOptions()
    options.region = (x: 900, y: 1200, width: 768, height: 768)
    options.tileSize = tileSize
    options.threads = threads
    return options
}

@Suite struct IngestTests {
    @Test func sameCellsFromOneAndTwoThreads() async throws {
        let one = try await SlideIngest.run(slidePath: svs, options: smallRegionOptions(tileSize: 256, threads: 1))
        let two = try await SlideIngest.run(slidePath: svs, options: smallRegionOptions(tileSize: 256, threads: 2))
        #expect(one.table.count > 50, "the window holds nuclei")
        #expect(one.table == two.table, "thread count must not change the cells")
        #expect(one.tissueTiles == 9)
    }

    /// Every step of the detector depends on a bounded neighbourhood and tiles share the slide's resampling grid,
    /// so with enough context the tile size cannot change a single cell.
    @Test func sameCellsFromTwoTileSizes() async throws {
        // With the committed backbone, so the embeddings are checked for tile independence too.
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Deploy/models/hali-nuclei-v2.safetensors").path
        let (net, metadata) = try WeightsFile.load(path: weights)
        var smallOptions = smallRegionOptions(tileSize: 256, threads: 2)
        smallOptions.embedder = Embedder(net: net.folded(), metadata: metadata)
        var largeOptions = smallRegionOptions(tileSize: 384, threads: 1)
        largeOptions.embedder = smallOptions.embedder
        let small = try await SlideIngest.run(slidePath: svs, options: smallOptions).table
        let large = try await SlideIngest.run(slidePath: svs, options: largeOptions).table
        #expect(small.count > 50)
        #expect(small.embeddingDimension == net.config.featureDimension)
        #expect(small.embeddings.count == small.count * small.embeddingDimension)
        // Cells exactly; embeddings to rounding: a tile's cells go through the network as one batch, and OpenBLAS
        // sums a different batch size in a different order (differences of order 1e-6 before half precision).
        var (cellsSmall, cellsLarge) = (small, large)
        (cellsSmall.embeddings, cellsLarge.embeddings) = ([], [])
        #expect(cellsSmall == cellsLarge, "tile size changed the cells: \(small.count) vs \(large.count)")
        let largest = zip(small.embeddings, large.embeddings).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? .infinity
        #expect(largest < 1e-2, "embeddings differ by up to \(largest)")
        // No duplicates across tile borders: no two cells closer than 2 px.
        for i in 0..<small.count {
            for j in (i + 1)..<small.count where abs(small.centroidY[j] - small.centroidY[i]) < 2 {
                #expect(abs(small.centroidX[j] - small.centroidX[i]) >= 2)
            }
        }
    }

    /// The learned detector's tiles start on its 4-pixel pooling grid and its network runs in fixed-size chunks, so the
    /// tile size and the thread count cannot change a single cell either.
    @Test func learnedDetectorSameCellsFromTwoTileSizesAndThreads() async throws {
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Deploy/models/hali-detector-v1.safetensors").path
        let detector = try LearnedNucleusDetector.load(path: weights)
        var smallOptions = smallRegionOptions(tileSize: 256, threads: 2)
        smallOptions.learnedDetector = detector
        var largeOptions = smallRegionOptions(tileSize: 384, threads: 1)
        largeOptions.learnedDetector = detector
        let small = try await SlideIngest.run(slidePath: svs, options: smallOptions)
        let large = try await SlideIngest.run(slidePath: svs, options: largeOptions)
        #expect(small.table.count > 50)
        #expect(small.table == large.table, "tile size changed the cells: \(small.table.count) vs \(large.table.count)")
        #expect(small.manifest.source == "hali-learned" && small.manifest.settings["detector_weights"] == "hali-detector-v1.safetensors")
    }

    /// An index the learned detector built is current for the same options: a rerun (and a batch) does nothing.
    @Test func aLearnedDetectorIndexIsCurrentForItsOptions() async throws {
        let out = temporaryDirectory("learned-current")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Deploy/models/hali-detector-v1.safetensors").path
        var options = smallRegionOptions(tileSize: 256, threads: 2)
        options.learnedDetector = try LearnedNucleusDetector.load(path: weights)
        guard case .built = try await IndexBuilder.build(slidePath: svs, options: options, outputDirectory: out) else {
            Issue.record("expected a build")
            return
        }
        guard case .upToDate = try await IndexBuilder.build(slidePath: svs, options: options, outputDirectory: out) else {
            Issue.record("rebuilt an index that was current")
            return
        }
    }

    @Test func indexRoundTripsAndRefusesDamage() async throws {
        let out = temporaryDirectory("index")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var options = smallRegionOptions(tileSize: 512, threads: 2)
        let weights = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Deploy/models/hali-nuclei-v2.safetensors").path
        let (net, metadata) = try WeightsFile.load(path: weights)
        options.embedder = Embedder(net: net.folded(), metadata: metadata)
        options.embeddingSource = "hali-nuclei-v2.safetensors"
        let outcome = try await IndexBuilder.build(slidePath: svs, options: options, outputDirectory: out)
        guard case .built(let path, _) = outcome else {
            Issue.record("expected a build")
            return
        }
        let (manifest, table) = try IndexFile.read(path: path)
        #expect(table == (try await SlideIngest.run(slidePath: svs, options: options).table))
        #expect(manifest.cellCount == table.count)
        #expect(manifest.slide.micronsPerPixelSource == "slide")
        #expect(abs(manifest.slide.micronsPerPixel - 0.499) < 0.001)
        #expect(table.contour(ofRow: 0).count >= 6)
        #expect(table.embeddingDimension > 0 && table.embeddingSource == "hali-nuclei-v2.safetensors")
        #expect(files(in: out).sorted() == ["CMU-1-Small-Region.hidx", "CMU-1-Small-Region.manifest.json"])

        // Same slide, same settings: a no-op.
        options.threads = 1
        if case .built = try await IndexBuilder.build(slidePath: svs, options: options, outputDirectory: out) {
            Issue.record("re-ingest with the same settings rebuilt the index")
        }

        // A truncated or altered file never loads.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let damaged = out + "/damaged.hidx"
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: FileError.self) { try IndexFile.read(path: damaged) }
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0xff
        try flipped.write(to: URL(fileURLWithPath: damaged))
        #expect(throws: FileError.self) { try IndexFile.read(path: damaged) }
        try Data("HALIIDX\0 not really".utf8).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: FileError.self) { try IndexFile.read(path: damaged) }
    }

    @Test func badSlidesGiveClearErrorsAndWriteNothing() async throws {
        let out = temporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let text = out + "/notes.svs"
        try "not a slide".write(toFile: text, atomically: true, encoding: .utf8)
        let empty = out + "/empty.svs"
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        let truncated = out + "/truncated.svs"
        try Data(contentsOf: URL(fileURLWithPath: svs)).prefix(4096).write(to: URL(fileURLWithPath: truncated))
        let index = out + "/index"

        for (path, expected) in [(text, "not a slide"), (empty, "not a slide"), (truncated, "OpenSlide")] {
            do {
                _ = try await IndexBuilder.build(slidePath: path, options: IngestOptions(), outputDirectory: index)
                Issue.record("\(path) ingested")
            } catch let error as FileError {
                #expect(error.path == path)
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
        // No pixel size in the slide and none given.
        do {
            _ = try await IndexBuilder.build(slidePath: pyramidWithoutMPP, options: IngestOptions(), outputDirectory: index)
            Issue.record("a slide without mpp ingested")
        } catch let error as FileError {
            #expect(error.message.contains("--mpp"))
        }
        // A region outside the slide.
        var outside = IngestOptions()
        outside.region = (x: 2000, y: 0, width: 500, height: 500)
        do {
            _ = try await IndexBuilder.build(slidePath: svs, options: outside, outputDirectory: index)
            Issue.record("a region outside the slide ingested")
        } catch let error as FileError {
            #expect(error.message.contains("outside"))
        }
        #expect(files(in: index).isEmpty, "no index may be written for bad input")
    }

    @Test func slideWithoutMPPIngestsWithTheOption() async throws {
        var options = smallRegionOptions(tileSize: 512, threads: 2)
        options.micronsPerPixel = 0.499
        let result = try await SlideIngest.run(slidePath: pyramidWithoutMPP, options: options)
        #expect(result.manifest.slide.micronsPerPixelSource == "option")
        #expect(result.table.count > 50)
    }
}

@Suite struct ExternalDetectionTests {
    func write(_ text: String, _ name: String) throws -> String {
        let path = temporaryDirectory("ext") + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func qupathGeoJSON() throws {
        let path = try write(
            """
            {"type":"FeatureCollection","features":[
             {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[10,10],[20,10],[20,20],[10,20],[10,10]]]},
              "properties":{"objectType":"detection","classification":{"name":"Tumor","color":[200,0,0]}}},
             {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[500,0],[500,500],[0,0]]]},
              "properties":{"objectType":"annotation"}},
             {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[100,100],[140,100],[140,140],[100,140],[100,100]]]},
              "nucleusGeometry":{"type":"Polygon","coordinates":[[[110,110],[120,110],[120,130],[110,130],[110,110]]]},
              "properties":{"objectType":"cell"}},
             {"type":"Feature","geometry":{"type":"Point","coordinates":[300.5,40]},"properties":{"classification":"Immune cells"}}
            ]}
            """, "d.geojson")
        let rows = try ExternalDetections.read(path: path, format: .geojson, slideWidth: 1000, slideHeight: 1000, micronsPerPixel: 0.5)
        #expect(rows.count == 3)
        #expect(rows[0].centroidX == 15 && rows[0].centroidY == 15)
        #expect(rows[0].className == "Tumor")
        #expect(abs(rows[0].areaMicrons2 - 25) < 1e-9)  // 10×10 px at 0.5 µm
        #expect(rows[1].centroidX == 115 && rows[1].centroidY == 120, "the nucleus, not the cell outline")
        #expect(rows[2].className == "Immune cells" && rows[2].centroidX == 300.5)
    }

    @Test func hovernetJSON() throws {
        let path = try write(
            """
            {"mag": 40, "nuc": {
              "2": {"bbox": [[50, 60], [58, 70]], "centroid": [65.0, 54.0], "contour": [[60,50],[70,50],[70,58],[60,58]], "type": 1, "type_prob": 0.9},
              "1": {"bbox": [[0, 0], [4, 4]], "centroid": [2.0, 2.0], "contour": [[0,0],[4,0],[4,4],[0,4]], "type": 2, "type_prob": 0.6}
            }}
            """, "h.json")
        #expect(ExternalDetections.Format.guess(path: path) == .hovernet)
        let rows = try ExternalDetections.read(path: path, format: .hovernet, slideWidth: 100, slideHeight: 100, micronsPerPixel: 0.25)
        #expect(rows.count == 2)
        #expect(rows[0].centroidX == 2 && rows[0].className == "type_2")
        #expect(rows[1].centroidX == 65 && rows[1].centroidY == 54)
        #expect(rows[1].minX == 59.5 && rows[1].maxY == 57.5)
        #expect(abs(rows[1].classProbability - 0.9) < 1e-9)
    }

    @Test func csvAndBadInput() throws {
        let good = try write("x,y,class\n10.5,20,positive\n30,40,negative\n", "c.csv")
        let rows = try ExternalDetections.read(path: good, format: .csv, slideWidth: 100, slideHeight: 100, micronsPerPixel: 0.5)
        #expect(rows.map(\.className) == ["positive", "negative"])

        let outside = try write("x,y\n10,20\n150,40\n", "o.csv")
        #expect { try ExternalDetections.read(path: outside, format: .csv, slideWidth: 100, slideHeight: 100, micronsPerPixel: 0.5) } throws: {
            ($0 as? FileError)?.message.contains("detection 2") == true
        }
        let noHeader = try write("1,2\n3,4\n", "n.csv")
        #expect(throws: FileError.self) {
            try ExternalDetections.read(path: noHeader, format: .csv, slideWidth: 100, slideHeight: 100, micronsPerPixel: 0.5)
        }
        let malformed = try write(
            "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[1,\"a\"]]]}}]}",
            "m.geojson")
        #expect { try ExternalDetections.read(path: malformed, format: .geojson, slideWidth: 100, slideHeight: 100, micronsPerPixel: 0.5) } throws: {
            ($0 as? FileError)?.message.contains("feature 1") == true
        }
        let notJSON = try write("{\"type\": ", "x.geojson")
        #expect(throws: FileError.self) {
            try ExternalDetections.read(path: notJSON, format: .geojson, slideWidth: 100, slideHeight: 100, micronsPerPixel: 0.5)
        }
    }

    @Test func importedDetectionsBecomeAnIndex() async throws {
        let out = temporaryDirectory("import")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let csv = try write("x,y,class\n1000,1000,positive\n1200.5,900,negative\n", "cells.csv")
        let outcome = try await IndexBuilder.build(slidePath: svs, options: IngestOptions(), detections: (csv, .csv), outputDirectory: out)
        guard case .built(let path, _) = outcome else {
            Issue.record("expected a build")
            return
        }
        let (manifest, table) = try IndexFile.read(path: path)
        #expect(manifest.source == "csv")
        #expect(table.count == 2)
        #expect(table.centroidY == [900, 1000], "rows sorted by y")
        #expect(table.classNames == ["negative", "positive"])
    }

    @Test func tissueMaskDilationIsASquareAndStopsAtTheBorder() {
        // 6×4 mask, two pixels set; radius 1 grows each into the 3×3 square around it, clipped at the edges.
        let mask: [Bool] = [
            true, false, false, false, false, false,
            false, false, false, false, false, false,
            false, false, false, false, true, false,
            false, false, false, false, false, false,
        ]
        let expected: [Bool] = [
            true, true, false, false, false, false,
            true, true, false, true, true, true,
            false, false, false, true, true, true,
            false, false, false, true, true, true,
        ]
        #expect(TissueMask.dilate(mask, width: 6, height: 4, radius: 1) == expected)
        #expect(TissueMask.dilate(mask, width: 6, height: 4, radius: 0) == mask)
    }
}

/// Headers whose numbers would overflow or ask for absurd memory are refused before any arithmetic on them (the
/// reader trapped on `offset + bytes` and `count * size` with hostile values). Built from a real three-cell index
/// (the fuzz corpus's seed) by rewriting one header field.
@Suite struct HostileIndexHeaderTests {
    static let seed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/corpus/index/seed-three-cells.hidx").path

    /// The seed with its JSON header passed through `edit`, and the trailer's length fixed up.
    func rewritten(_ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.seed)))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        var header = try JSONSerialization.jsonObject(with: Data(bytes[12..<(12 + headerLength)])) as! [String: Any]
        edit(&header)
        let json = Array(try JSONSerialization.data(withJSONObject: header))
        var out = Array(bytes[0..<8])
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { out += $0 }
        out += json + bytes[(12 + headerLength)..<(bytes.count - 8)]
        withUnsafeBytes(of: UInt64(out.count + 8).littleEndian) { out += $0 }
        return out
    }

    @Test func theSeedReads() throws {
        let (_, table) = try IndexFile.read(bytes: try rewritten { _ in }, path: "seed")
        #expect(table.count == 3)
    }

    @Test func hostileNumbersAreRefused() throws {
        func column(_ field: String, _ value: Any) -> (inout [String: Any]) -> Void {
            { header in
                var columns = header["columns"] as! [[String: Any]]
                columns[0][field] = value
                header["columns"] = columns
            }
        }
        let edits: [(String, (inout [String: Any]) -> Void)] = [
            ("bytes Int.max", column("bytes", Int.max)), ("bytes negative", column("bytes", -5)),
            ("count Int.max", column("count", Int.max)), ("count 2^40", column("count", 1 << 40)),
            ("rows negative", { $0["rows"] = -1 }), ("rows Int.max", { $0["rows"] = Int.max }),
            ("embedding dimension Int.max", { $0["embeddingDimension"] = Int.max }),
        ]
        for (name, edit) in edits {
            #expect(throws: FileError.self, "\(name)") { try IndexFile.read(bytes: try rewritten(edit), path: name) }
        }
    }
}
