import Foundation
public import HaliCore
public import HaliImaging
public import HaliIndex
public import HaliInference
import HaliMath
public import HaliSlide

/// Settings of a whole-slide ingest. Lengths in microns unless named otherwise.
public struct IngestOptions: Sendable {
    public var stain: SlideStain = .he
    /// Microns per level-0 pixel when the slide records none (or to override it).
    public var micronsPerPixel: Double?
    public var detector = NucleusDetectionParameters()
    /// Tile edge in pixels of the level that is read (default 1024).
    public var tileSize = 1024
    /// Context added around each tile so nuclei on its edge are seen whole and the background estimate near the
    /// edge is the slide's: ≥ the detector's background radius + reconstruction radius + 3σ + a nucleus radius
    /// (8 + 16 + 4 + 10 µm by default).
    public var overlapMicrons = 48.0
    /// Context for the learned detector (its network sees ±21 working pixels, ±10.5 µm at 0.5 µm/px, plus a nucleus
    /// radius; at least 24 working pixels + 12 µm is used); instead of `overlapMicrons` when `learnedDetector` is set.
    public var learnedOverlapMicrons = 24.0
    /// Tiles detected at once (each on its own core).
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Skip tiles with no tissue in the low-resolution tissue mask.
    public var skipGlass = true
    /// When set, every cell also gets its CNN embedding (the backbone's penultimate layer) in the index.
    public var embedder: Embedder?
    /// Names the weights in the manifest and index (e.g. their file name).
    public var embeddingSource = ""
    /// When set, nuclei come from the learned detector (`hali train-detector` weights) instead of the watershed
    /// detector; its working pixel size replaces `detector.workingPixelSizeMicrons`.
    public var learnedDetector: LearnedNucleusDetector?
    /// Restrict the ingest to this level-0 rectangle (x, y, width, height); nil = the whole slide.
    public var region: (x: Int64, y: Int64, width: Int64, height: Int64)?
    /// Only share `index` of `count` of the tile grid's rows (contiguous, in order): a batch shard. The shards' cells,
    /// concatenated in shard order, are the whole slide's, bit for bit (`IndexBuilder.merge`). Not a setting: a
    /// shard computes exactly what the whole ingest computes for its rows.
    public var shard: (index: Int, count: Int)?

    public init() {}

    /// The pixel size the detector works at (µm/px).
    public var workingPixelSizeMicrons: Double {
        learnedDetector?.detector.parameters.workingPixelSizeMicrons ?? detector.workingPixelSizeMicrons
    }

    /// The manifest's `source` for an ingest with these options: which built-in detector found the nuclei.
    public var sourceName: String { learnedDetector == nil ? "hali-watershed" : "hali-learned" }

    /// What decides the cells, as stored in the manifest; equal settings on the same slide make re-ingest a no-op.
    /// Tile size and threads are left out on purpose: they do not change the result beyond border order.
    public func settings(micronsPerPixel: Double) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let learned = learnedDetector {
            let parameters = (try? encoder.encode(learned.maps)).flatMap { String(data: $0, encoding: .utf8) } ?? ""
            return [
                "detector": "hali-learned", "detector_version": "1", "detector_weights": learned.source, "stain": stain.rawValue,
                "parameters": parameters, "working_mpp": String(workingPixelSizeMicrons),
                "mpp": String(micronsPerPixel), "overlap_um": String(learnedOverlapMicrons), "skip_glass": String(skipGlass),
                "embedding": embedder == nil ? "none" : embeddingSource,
            ]
        }
        let parameters = (try? encoder.encode(detector)).flatMap { String(data: $0, encoding: .utf8) } ?? ""
        return [
            "detector": "hali-watershed", "detector_version": "1", "stain": stain.rawValue, "parameters": parameters,
            "mpp": String(micronsPerPixel), "overlap_um": String(overlapMicrons), "skip_glass": String(skipGlass),
            "embedding": embedder == nil ? "none" : embeddingSource,
        ]
    }
}

public enum SlideStain: String, Sendable, CaseIterable {
    case he
    case hdab
    public var matrix: StainMatrix { self == .he ? .hematoxylinEosin : .hematoxylinDAB }
    public var stainNames: [String] { self == .he ? ["hematoxylin", "eosin"] : ["hematoxylin", "dab"] }
}

/// Progress of a running ingest, reported after every tile.
public struct IngestProgress: Sendable {
    public var tilesDone: Int
    public var tilesTotal: Int
    public var nuclei: Int
    public var megapixels: Double
    public var elapsed: Duration
}

/// What an ingest did, without its cells (they went to an index, `IndexBuilder`).
public struct IngestSummary: Sendable {
    public var manifest: IndexManifest
    public var tissueTiles: Int
    public var totalTiles: Int
    public var megapixelsProcessed: Double
}

public struct IngestResult: Sendable {
    public var table: CellTable
    public var manifest: IndexManifest
    public var tissueTiles: Int
    public var totalTiles: Int
    public var megapixelsProcessed: Double
}

/// Finds every nucleus of a whole-slide image.
///
/// 1. Tissue: a thumbnail (≈2048 px on its long side) is thresholded on colour saturation and brightness and
///    dilated; tiles with no tissue pixel are skipped (glass, in a typical biopsy 50–80 % of the slide).
/// 2. Tiles: the read level is the coarsest whose pixels are no larger than the detector's working pixel size, cut
///    into `tileSize` squares on a grid anchored at (0, 0); each is read with `overlapMicrons` of context on every
///    side (clipped at the slide's edge).
/// 3. Each tile runs the detector (`HaliImaging.NucleusDetector`) concurrently on `threads` cores. A nucleus
///    belongs to the tile whose core (the square without its context) holds its centroid, so each nucleus is
///    reported exactly once: the overlap lets it be seen whole, the ownership rule removes its duplicate.
/// 4. Rows are sorted by centroid (y, x) into a `CellTable`, so ids do not depend on threads or tile order.
///
/// Complexity: O(tissue pixels) for detection; memory O(threads × tile² + cells).
public enum SlideIngest {
    /// The whole slide's cells in memory (`IngestResult.table`): for tests and small slides. `IndexBuilder` streams
    /// them to the index instead (`run(slidePath:options:progress:emit:)`).
    public static func run(
        slidePath: String, options: IngestOptions, progress: (@Sendable (IngestProgress) -> Void)? = nil
    ) async throws -> IngestResult {
        var rows: [CellTable.Row] = []
        let summary = try await run(slidePath: slidePath, options: options, progress: progress) { band in rows += band }
        return IngestResult(
            table: CellTable(rows: rows, stainNames: options.stain.stainNames, embeddingSource: options.embeddingSource),
            manifest: summary.manifest, tissueTiles: summary.tissueTiles, totalTiles: summary.totalTiles,
            megapixelsProcessed: summary.megapixelsProcessed)
    }

    /// Detects every nucleus and hands the cells to `emit` one band of tiles at a time (a row of tiles), in id order:
    /// a nucleus belongs to the tile whose core holds its centroid, so the bands split the slide by centroid y and
    /// each band's rows sorted by (y, x) follow the previous band's. A band is emitted as soon as all its tiles and all
    /// earlier bands are done, so memory holds the tiles in flight and the bands waiting for them, not the slide.
    /// The summary's manifest counts every cell.
    public static func run(
        slidePath: String, options: IngestOptions, progress: (@Sendable (IngestProgress) -> Void)? = nil,
        emit: ([CellTable.Row]) throws -> Void
    ) async throws -> IngestSummary {
        let clock = ContinuousClock()
        let start = clock.now
        let slide: Slide
        do { slide = try Slide(path: slidePath) } catch { throw FileError(path: slidePath, message: error.message) }
        let identity = try identify(slide: slide, options: options)
        let mpp = identity.micronsPerPixel

        // Read level: coarsest with pixels no larger than the working size (the detector never upsamples).
        var level = 0
        for l in 0..<slide.levelCount where slide.levelDownsamples[l] * mpp <= options.workingPixelSizeMicrons * 1.05 {
            level = l
        }
        let downsample = slide.levelDownsamples[level]
        let levelMpp = mpp * downsample
        let (levelWidth, levelHeight) = slide.levelDimensions[level]
        // With an integer resampling factor k, tile origins, sizes and context are multiples of k, so every tile is
        // resampled on the slide's own k×k grid.
        let factor = NucleusDetector.resamplingFactor(working: options.workingPixelSizeMicrons, input: levelMpp)
        // The learned detector's network pools 2×2 twice: its tiles and their context start on multiples of 4 working
        // pixels, so every tile shares the slide's pooling grid; its 16×16 convolution blocks are placed on the
        // slide's grid from the tile's origin (with single-threaded OpenBLAS a shared pixel is computed bit for bit
        // alike).
        let integerFactor = factor == factor.rounded() ? Int(factor) : nil
        let k = (integerFactor ?? 1) * (options.learnedDetector == nil ? 1 : 4)
        func multipleOfK(_ value: Int) -> Int { (value + k - 1) / k * k }
        let tile = multipleOfK(max(64, options.tileSize))
        // The network sees ±21 working pixels; a nucleus reaches ≈ 12 µm from its centroid.
        let overlapMicrons =
            options.learnedDetector == nil
            ? options.overlapMicrons
            : max(options.learnedOverlapMicrons, 24 * options.workingPixelSizeMicrons + 12)
        let overlap = multipleOfK(Int((overlapMicrons / levelMpp).rounded(.up)))

        let tissue = try TissueMask.compute(slide: slide)
        // The area covered, in read-level pixels: [areaX0, areaX1) × [areaY0, areaY1).
        var areaX0 = 0, areaY0 = 0, areaX1 = Int(levelWidth), areaY1 = Int(levelHeight)
        if let r = options.region {
            guard r.width > 0, r.height > 0, r.x >= 0, r.y >= 0, r.x + r.width <= slide.width, r.y + r.height <= slide.height else {
                throw FileError(path: slidePath, message: "region \(r) lies outside the \(slide.width)×\(slide.height) slide")
            }
            areaX0 = Int(Double(r.x) / downsample) / k * k
            areaY0 = Int(Double(r.y) / downsample) / k * k
            areaX1 = min(Int(levelWidth), Int((Double(r.x + r.width) / downsample).rounded(.up)))
            areaY1 = min(Int(levelHeight), Int((Double(r.y + r.height) / downsample).rounded(.up)))
        }
        var tiles: [(x: Int, y: Int, width: Int, height: Int)] = []
        var totalTiles = 0
        let gridRows = (areaY1 - areaY0 + tile - 1) / tile
        let rowsOfShard = options.shard.map { s in (gridRows * s.index / s.count)..<(gridRows * (s.index + 1) / s.count) } ?? 0..<gridRows
        for (row, ty) in stride(from: areaY0, to: areaY1, by: tile).enumerated() where rowsOfShard.contains(row) {
            for tx in stride(from: areaX0, to: areaX1, by: tile) {
                totalTiles += 1
                let tw = min(tile, areaX1 - tx), th = min(tile, areaY1 - ty)
                let x0 = Double(tx) * downsample, y0 = Double(ty) * downsample
                let x1 = Double(tx + tw) * downsample
                let y1 = Double(ty + th) * downsample
                if !options.skipGlass || tissue.containsTissue(x0: x0, y0: y0, x1: x1, y1: y1) { tiles.append((tx, ty, tw, th)) }
            }
        }

        // Fix the detector's adaptive threshold once for the slide, from sample windows on a grid that does not
        // depend on the tile size, so every tile applies the same threshold.
        var detectorParameters = options.detector
        let calibration = try calibrateThreshold(
            slide: slide, slidePath: slidePath, level: level, downsample: downsample, levelMpp: levelMpp,
            area: (areaX0, areaY0, areaX1, areaY1), tissue: tissue, skipGlass: options.skipGlass, options: options)
        if let calibration {
            detectorParameters.threshold = max(detectorParameters.threshold, calibration)
            detectorParameters.otsuFactor = 0
        }

        let job = TileJob(
            slide: slide, slidePath: slidePath, level: level, downsample: downsample, levelMpp: levelMpp,
            levelWidth: Int(levelWidth), levelHeight: Int(levelHeight), tile: tile, overlap: overlap,
            detector: NucleusDetector(parameters: detectorParameters, stains: options.stain.matrix),
            learnedDetector: options.learnedDetector, embedder: options.embedder, workingFactor: integerFactor)
        let plannedTiles = tiles
        // Bands: runs of tiles with one y (tiles are planned row by row); each band's rows wait for all its tiles.
        var bandOfTile: [Int] = []
        var tilesLeftInBand: [Int] = []
        for (i, t) in tiles.enumerated() {
            if i == 0 || t.y != tiles[i - 1].y { tilesLeftInBand.append(0) }
            bandOfTile.append(tilesLeftInBand.count - 1)
            tilesLeftInBand[tilesLeftInBand.count - 1] += 1
        }
        var rowsOfBand = [[CellTable.Row]](repeating: [], count: tilesLeftInBand.count)
        var nextBand = 0
        var cellCount = 0
        func emitFinishedBands() throws {
            while nextBand < tilesLeftInBand.count, tilesLeftInBand[nextBand] == 0 {
                let band = rowsOfBand[nextBand].sorted(by: CellTable.idOrder)
                rowsOfBand[nextBand] = []
                cellCount += band.count
                try emit(band)
                nextBand += 1
            }
        }
        var done = 0
        var nuclei = 0
        var megapixels = 0.0

        // Tiles already run on every core: one OpenBLAS thread each, not two competing pools.
        let tilesUseBLAS = options.embedder != nil || options.learnedDetector != nil
        try await BLAS.withOneThreadPerCaller(when: tilesUseBLAS) {
            try await withThrowingTaskGroup(of: (Int, [CellTable.Row], Double).self) { group in
                var next = 0
                while next < min(max(1, options.threads), plannedTiles.count) {
                    let index = next
                    group.addTask { try job.run(index: index, tile: plannedTiles[index]) }
                    next += 1
                }
                while let (index, rows, mp) = try await group.next() {
                    rowsOfBand[bandOfTile[index]] += rows
                    tilesLeftInBand[bandOfTile[index]] -= 1
                    try emitFinishedBands()
                    done += 1
                    nuclei += rows.count
                    megapixels += mp
                    progress?(
                        IngestProgress(
                            tilesDone: done, tilesTotal: plannedTiles.count, nuclei: nuclei, megapixels: megapixels, elapsed: clock.now - start))
                    if next < plannedTiles.count {
                        let index = next
                        group.addTask { try job.run(index: index, tile: plannedTiles[index]) }
                        next += 1
                    }
                }
            }
        }

        try emitFinishedBands()
        let elapsed = clock.now - start
        var manifest = IndexManifest(
            slide: identity, source: options.sourceName,
            settings: options.settings(micronsPerPixel: mpp), cellCount: cellCount,
            tissueAreaMicrons2: tissue.tissueAreaMicrons2(micronsPerPixel: mpp), tiles: tiles.count, seconds: elapsed.seconds,
            created: ISO8601DateFormatter().string(from: Date()))
        manifest.detectorThreshold = detectorParameters.threshold
        return IngestSummary(manifest: manifest, tissueTiles: tiles.count, totalTiles: totalTiles, megapixelsProcessed: megapixels)
    }

    /// Side of the calibration windows, in read-level pixels, and how many are used at most.
    static let calibrationWindow = 512
    static let calibrationSamples = 16

    /// The median of `NucleusDetector.adaptiveThreshold` over up to 16 tissue windows spread evenly over the
    /// area (nil when the detector has no adaptive threshold). O(16 windows) of extra work.
    static func calibrateThreshold(
        slide: Slide, slidePath: String, level: Int, downsample: Double, levelMpp: Double,
        area: (x0: Int, y0: Int, x1: Int, y1: Int), tissue: TissueMask, skipGlass: Bool, options: IngestOptions
    ) throws -> Double? {
        guard options.detector.otsuFactor > 0, options.learnedDetector == nil else { return nil }
        let w = calibrationWindow
        var candidates: [(Int, Int, Int, Int)] = []
        for y in stride(from: area.y0, to: area.y1, by: w) {
            for x in stride(from: area.x0, to: area.x1, by: w) {
                let cw = min(w, area.x1 - x), ch = min(w, area.y1 - y)
                guard cw >= w / 4, ch >= w / 4 else { continue }
                if skipGlass,
                    !tissue.containsTissue(
                        x0: Double(x) * downsample, y0: Double(y) * downsample, x1: Double(x + cw) * downsample, y1: Double(y + ch) * downsample)
                {
                    continue
                }
                candidates.append((x, y, cw, ch))
            }
        }
        guard !candidates.isEmpty else { return nil }
        let step = max(1, candidates.count / calibrationSamples)
        let detector = NucleusDetector(parameters: options.detector, stains: options.stain.matrix)
        var values: [Double] = []
        for (x, y, cw, ch) in stride(from: 0, to: candidates.count, by: step).prefix(calibrationSamples).map({ candidates[$0] }) {
            let pixels: [UInt8]
            do {
                pixels = try slide.readRegion(
                    x: Int64((Double(x) * downsample).rounded()), y: Int64((Double(y) * downsample).rounded()), level: level, width: cw, height: ch)
            } catch {
                throw FileError(path: slidePath, message: "calibration window at level-\(level) (\(x), \(y)): \(error.message)")
            }
            values.append(detector.adaptiveThreshold(RGBImage(width: cw, height: ch, pixels: pixels), micronsPerPixel: levelMpp))
        }
        values.sort()
        return values[values.count / 2]
    }

    /// The slide's identity for the manifest; throws when its pixel size is unknown and none was given.
    public static func identify(slide: Slide, options: IngestOptions) throws -> IndexManifest.SlideIdentity {
        let mpp: Double
        let source: String
        if let given = options.micronsPerPixel {
            guard given > 0, given < 100 else { throw FileError(path: slide.path, message: "--mpp \(given) is not a plausible pixel size") }
            mpp = given
            source = "option"
        } else if let recorded = slide.micronsPerPixel {
            mpp = (recorded.x * recorded.y).squareRoot()
            source = "slide"
        } else {
            throw FileError(
                path: slide.path,
                message: "the slide records no pixel size (openslide.mpp-x); pass --mpp, e.g. --mpp 0.25 for 40x or 0.5 for 20x")
        }
        let (size, modified, fingerprint) = try SlideFingerprint.compute(path: slide.path)
        return IndexManifest.SlideIdentity(
            path: slide.path, sizeBytes: size, modified: modified, fingerprint: fingerprint, vendor: slide.vendor, width: slide.width,
            height: slide.height, micronsPerPixel: mpp, micronsPerPixelSource: source)
    }

    static func row(for nucleus: Nucleus, originX: Double, originY: Double, downsample: Double) -> CellTable.Row {
        // Read-level pixel centre i maps to level-0 coordinate (origin + i + ½) · downsample − ½.
        func lx(_ x: Double) -> Double { (originX + x + 0.5) * downsample - 0.5 }
        func ly(_ y: Double) -> Double { (originY + y + 0.5) * downsample - 0.5 }
        var row = CellTable.Row(
            centroidX: lx(nucleus.centroid.x), centroidY: ly(nucleus.centroid.y), minX: lx(nucleus.boundingBox.minX),
            minY: ly(nucleus.boundingBox.minY), maxX: lx(nucleus.boundingBox.maxX), maxY: ly(nucleus.boundingBox.maxY))
        row.areaMicrons2 = nucleus.areaMicrons2
        row.perimeterMicrons = nucleus.perimeterMicrons
        row.circularity = nucleus.circularity
        row.solidity = nucleus.solidity
        row.eccentricity = nucleus.eccentricity
        row.majorAxisMicrons = nucleus.majorAxisMicrons
        row.minorAxisMicrons = nucleus.minorAxisMicrons
        row.stainStatistics = nucleus.stains.prefix(2).flatMap { [$0.mean, $0.std, $0.min, $0.max] }
        row.contour = nucleus.contour.flatMap { [lx($0.x), ly($0.y)] }
        return row
    }
}

/// Reads one tile with its context, detects, and keeps the nuclei the tile owns. All constants, so it can run on
/// any thread.
struct TileJob: Sendable {
    let slide: Slide
    let slidePath: String
    let level: Int
    let downsample: Double
    let levelMpp: Double
    let levelWidth: Int
    let levelHeight: Int
    let tile: Int
    let overlap: Int
    let detector: NucleusDetector
    let learnedDetector: LearnedNucleusDetector?
    let embedder: Embedder?
    /// Read-level pixels per working pixel when that is an integer (then tiles sit on the working grid).
    let workingFactor: Int?

    func run(index: Int, tile t: (x: Int, y: Int, width: Int, height: Int)) throws -> (Int, [CellTable.Row], Double) {
        let rx = max(0, t.x - overlap), ry = max(0, t.y - overlap)
        let rw = min(levelWidth, t.x + tile + overlap) - rx
        let rh = min(levelHeight, t.y + tile + overlap) - ry
        let pixels: [UInt8]
        do {
            pixels = try slide.readRegion(
                x: Int64((Double(rx) * downsample).rounded()), y: Int64((Double(ry) * downsample).rounded()), level: level,
                width: rw, height: rh)
        } catch {
            throw FileError(path: slidePath, message: "tile at level-\(level) (\(t.x), \(t.y)): \(error.message)")
        }
        let image = RGBImage(width: rw, height: rh, pixels: pixels)
        let workingOrigin = workingFactor.map { (rx / $0, ry / $0) } ?? (0, 0)
        let found =
            learnedDetector?.detect(image, micronsPerPixel: levelMpp, workingOrigin: workingOrigin)
            ?? detector.detect(image, micronsPerPixel: levelMpp)
        // Ownership: the centroid must fall inside this tile's core (pixels t.x ..< t.x + width), read-level pixels.
        let coreX = Double(t.x) - 0.5, coreY = Double(t.y) - 0.5
        var rows: [CellTable.Row] = []
        var owned: [Nucleus] = []
        for nucleus in found {
            let cx = nucleus.centroid.x + Double(rx), cy = nucleus.centroid.y + Double(ry)
            guard cx >= coreX, cx < coreX + Double(t.width), cy >= coreY, cy < coreY + Double(t.height) else { continue }
            rows.append(SlideIngest.row(for: nucleus, originX: Double(rx), originY: Double(ry), downsample: downsample))
            owned.append(nucleus)
        }
        if let embedder, !owned.isEmpty {
            // Patches of the network's size in microns around each centroid, cut from this tile's pixels (the
            // context is wider than half a patch, so they are the slide's pixels whatever the tiling).
            let side = embedder.metadata.patchPixels
            let scale = embedder.metadata.micronsPerPixel / levelMpp
            var patches: [UInt8] = []
            patches.reserveCapacity(owned.count * side * side * 3)
            for nucleus in owned {  // appends side × side × 3 bytes per nucleus
                PatchExtractor.patch(image, cx: nucleus.centroid.x, cy: nucleus.centroid.y, side: side, scale: scale, into: &patches)
            }
            let features = embedder.features(pixels: patches, count: owned.count, height: side, width: side, threads: 1)
            let dimension = features.count / owned.count
            for i in rows.indices { rows[i].embedding = Array(features[(i * dimension)..<((i + 1) * dimension)]) }
        }
        return (index, rows, Double(rw * rh) / 1e6)
    }
}

/// Cheap identity of a slide file: size, modification time, and SHA-256 over the size and the first and last MiB.
public enum SlideFingerprint {
    public static func compute(path: String) throws -> (size: Int64, modified: Double, fingerprint: String) {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw FileError(path: path, message: "cannot stat: \((error as NSError).localizedDescription)")
        }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        guard let handle = FileHandle(forReadingAtPath: path) else { throw FileError(path: path, message: "cannot open") }
        defer { try? handle.close() }
        let window = 1 << 20
        var sample = Array(String(size).utf8)
        sample += Array((try? handle.read(upToCount: window)) ?? Data())
        if size > Int64(window) {
            try? handle.seek(toOffset: UInt64(size - Int64(window)))
            sample += Array((try? handle.read(upToCount: window)) ?? Data())
        }
        return (size, modified, SHA256.hexDigest(bytes: sample))
    }
}

extension IngestOptions {
    /// Loads the networks named by their weight files: the backbone whose features each cell gets, and the learned
    /// detector (with the stain it reads). One place for `hali ingest` and the daemon's first-use ingest; an error
    /// names the file.
    public mutating func loadNetworks(weights: String?, detectorWeights: String?, stains: StainMatrix = .hematoxylinEosin) throws {
        if let weights {
            do {
                let (net, metadata) = try WeightsFile.load(path: weights)
                embedder = Embedder(net: net.folded(), metadata: metadata)
                embeddingSource = (weights as NSString).lastPathComponent
            } catch {
                throw FileError(path: weights, message: "backbone weights: \(error)")
            }
        }
        if let detectorWeights {
            do {
                learnedDetector = try LearnedNucleusDetector.load(path: detectorWeights, stains: stains)
            } catch {
                throw FileError(path: detectorWeights, message: "detector weights: \(error)")
            }
        }
    }
}
