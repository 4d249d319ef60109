import Foundation
import HaliCore
public import HaliIndex
import HaliSlide

/// Builds (or finds up to date) the index of one slide: `<out>/<slide stem>.hidx` plus `<stem>.manifest.json`.
public enum IndexBuilder {
    public enum Outcome: Sendable {
        /// An index with the same slide identity and settings already exists; nothing was done.
        case upToDate(path: String, manifest: IndexManifest)
        case built(path: String, result: IngestSummary)
    }

    /// A slide's name without folder and extension: its index file's name and, in the daemon, its id.
    public static func slideStem(_ slidePath: String) -> String {
        ((slidePath as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    public static func indexPath(slidePath: String, outputDirectory: String) -> String {
        (outputDirectory as NSString).appendingPathComponent(slideStem(slidePath) + ".hidx")
    }

    /// Whether a slide's index is there and was built from this very file with these settings.
    public enum IndexState: Sendable {
        case current(IndexManifest)
        case missing
        /// There is an index, but of another file or other settings (the reason says which).
        case stale(String)
    }

    /// The state of `slidePath`'s index in `outputDirectory` for a built-in detector run with `options` (what
    /// `build` would skip). Opens the slide (its size, fingerprint and µm/px): throws when it cannot be read.
    public static func state(slidePath: String, options: IngestOptions, outputDirectory: String) throws -> IndexState {
        let (_, identity) = try open(slidePath, options: options)
        return state(ofIndexAt: indexPath(slidePath: slidePath, outputDirectory: outputDirectory), identity: identity, options: options)
    }

    /// The slide and its identity for the manifest (size, fingerprint, µm/px); a slide OpenSlide cannot read is a
    /// `FileError` naming it.
    static func open(_ slidePath: String, options: IngestOptions) throws -> (Slide, IndexManifest.SlideIdentity) {
        let slide: Slide
        do { slide = try Slide(path: slidePath) } catch { throw FileError(path: slidePath, message: error.message) }
        return (slide, try SlideIngest.identify(slide: slide, options: options))
    }

    /// The state of the index at `path` for a built-in detector run with `options` on the slide `identity` names.
    static func state(ofIndexAt path: String, identity: IndexManifest.SlideIdentity, options: IngestOptions) -> IndexState {
        state(ofIndexAt: path, identity: identity, source: options.sourceName, settings: options.settings(micronsPerPixel: identity.micronsPerPixel))
    }

    static func state(ofIndexAt path: String, identity: IndexManifest.SlideIdentity, source: String, settings: [String: String]) -> IndexState {
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        guard let existing = try? IndexFile.readManifest(path: path) else { return .stale("the index cannot be read") }
        guard existing.slide.fingerprint == identity.fingerprint, existing.slide.sizeBytes == identity.sizeBytes else {
            return .stale("built from another file (\(existing.slide.path))")
        }
        guard existing.source == source, existing.settings == settings else { return .stale("built with other settings") }
        return .current(existing)
    }

    /// Detects nuclei (or imports `detections`) and writes the index atomically. Nothing is written on error.
    public static func build(
        slidePath: String, options: IngestOptions, detections: (path: String, format: ExternalDetections.Format)? = nil,
        outputDirectory: String, force: Bool = false, progress: (@Sendable (IngestProgress) -> Void)? = nil
    ) async throws -> Outcome {
        let (slide, identity) = try open(slidePath, options: options)
        let path = indexPath(slidePath: slidePath, outputDirectory: outputDirectory)

        let source: String
        let settings: [String: String]
        if let detections {
            let (_, _, fingerprint) = try SlideFingerprint.compute(path: detections.path)
            source = detections.format.sourceName
            settings = ["file": detections.path, "file_fingerprint": fingerprint, "mpp": String(identity.micronsPerPixel)]
        } else {
            source = options.sourceName
            settings = options.settings(micronsPerPixel: identity.micronsPerPixel)
        }

        if !force, case .current(let existing) = state(ofIndexAt: path, identity: identity, source: source, settings: settings) {
            return .upToDate(path: path, manifest: existing)
        }

        let result: IngestSummary
        if let detections {
            let start = ContinuousClock.now
            let rows = try ExternalDetections.read(
                path: detections.path, format: detections.format, slideWidth: slide.width, slideHeight: slide.height,
                micronsPerPixel: identity.micronsPerPixel)
            let table = CellTable(rows: rows, stainNames: [])
            let manifest = IndexManifest(
                slide: identity, source: source, settings: settings, cellCount: table.count, tissueAreaMicrons2: 0, tiles: 0,
                seconds: (ContinuousClock.now - start).seconds, created: ISO8601DateFormatter().string(from: Date()))
            result = IngestSummary(manifest: manifest, tissueTiles: 0, totalTiles: 0, megapixelsProcessed: 0)
            try IndexFile.write(table, manifest: manifest, to: path)
        } else {
            // Each band of tiles goes to the index's spill files as it is finished: the slide's cells are never all
            // in memory.
            let writer = try IndexStreamWriter(path: path, stainNames: options.stain.stainNames, embeddingSource: options.embeddingSource)
            result = try await SlideIngest.run(slidePath: slidePath, options: options, progress: progress) { band in
                try writer.append(CellTable(rows: band, stainNames: options.stain.stainNames, embeddingSource: options.embeddingSource))
            }
            try writer.finish(manifest: result.manifest)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let json = try? encoder.encode(result.manifest) {
            try IndexFile.writeAtomically(Array(json) + [10], to: (path as NSString).deletingPathExtension + ".manifest.json")
        }
        return .built(path: path, result: result)
    }

    // MARK: Shards

    /// Where shard `index` of `count` of a slide's index goes: `<out>/shards/<stem>.<index>-of-<count>.hidx`.
    public static func shardPath(slidePath: String, outputDirectory: String, index: Int, count: Int) -> String {
        (outputDirectory as NSString).appendingPathComponent("shards/\(slideStem(slidePath)).\(index)-of-\(count).hidx")
    }

    /// Ingests one shard of the slide (`IngestOptions.shard`: its share of the tile rows) into `shardPath`, unless the
    /// whole index or this shard is already current. Returns the shard's path and whether it was built.
    public static func buildShard(
        slidePath: String, options: IngestOptions, index: Int, count: Int, outputDirectory: String,
        progress: (@Sendable (IngestProgress) -> Void)? = nil
    ) async throws -> (path: String, built: Bool) {
        precondition(count >= 1 && (0..<count).contains(index), "shard \(index) of \(count)")
        let path = shardPath(slidePath: slidePath, outputDirectory: outputDirectory, index: index, count: count)
        // The slide is opened once: its identity decides whether the whole index or this shard is current.
        let (_, identity) = try open(slidePath, options: options)
        if case .current = state(ofIndexAt: indexPath(slidePath: slidePath, outputDirectory: outputDirectory), identity: identity, options: options) {
            return (path, false)
        }
        if case .current = state(ofIndexAt: path, identity: identity, options: options) { return (path, false) }
        var shardOptions = options
        shardOptions.shard = (index, count)
        let writer = try IndexStreamWriter(path: path, stainNames: options.stain.stainNames, embeddingSource: options.embeddingSource)
        let summary = try await SlideIngest.run(slidePath: slidePath, options: shardOptions, progress: progress) { band in
            try writer.append(CellTable(rows: band, stainNames: options.stain.stainNames, embeddingSource: options.embeddingSource))
        }
        try writer.finish(manifest: summary.manifest)
        return (path, true)
    }

    /// Joins the `count` shards of a slide, in order, into its index (the cells of a whole ingest, bit for bit), then
    /// removes them. Throws, naming what is missing, when a shard is absent or was built from another file or other
    /// settings. Memory: one shard's cells at a time.
    public static func merge(slidePath: String, options: IngestOptions, count: Int, outputDirectory: String) throws -> Outcome {
        let (_, identity) = try open(slidePath, options: options)
        let path = indexPath(slidePath: slidePath, outputDirectory: outputDirectory)
        if case .current(let manifest) = state(ofIndexAt: path, identity: identity, options: options) {
            return .upToDate(path: path, manifest: manifest)
        }
        let shards = (0..<count).map { shardPath(slidePath: slidePath, outputDirectory: outputDirectory, index: $0, count: count) }
        for shard in shards {
            guard case .current = state(ofIndexAt: shard, identity: identity, options: options) else {
                throw FileError(path: shard, message: "shard missing or not of this slide and settings: its task failed or has not run")
            }
        }
        let writer = try IndexStreamWriter(path: path, stainNames: options.stain.stainNames, embeddingSource: options.embeddingSource)
        var merged: IndexManifest?
        var tissueTiles = 0
        for shard in shards {
            let (manifest, table) = try IndexFile.read(path: shard)
            try writer.append(table)
            tissueTiles += manifest.tiles
            if merged == nil {
                merged = manifest
            } else {
                merged!.cellCount += manifest.cellCount
                merged!.tiles += manifest.tiles
                merged!.seconds += manifest.seconds
            }
        }
        merged!.created = ISO8601DateFormatter().string(from: Date())
        try writer.finish(manifest: merged!)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let json = try? encoder.encode(merged!) {
            try IndexFile.writeAtomically(Array(json) + [10], to: (path as NSString).deletingPathExtension + ".manifest.json")
        }
        for shard in shards { try? FileManager.default.removeItem(atPath: shard) }
        return .built(path: path, result: IngestSummary(manifest: merged!, tissueTiles: tissueTiles, totalTiles: 0, megapixelsProcessed: 0))
    }
}
