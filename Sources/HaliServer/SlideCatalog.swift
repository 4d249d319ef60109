import Foundation
import HaliCore
import HaliEngine
import HaliIndex
import HaliIngest
import HaliSlide
import HaliWire
import Logging
import NIOPosix

/// The slides a daemon serves, each with its cell index. Opening a slide and reading or building its index block,
/// so they run on NIO's blocking thread pool (or, for a missing index, in an ingest before the daemon listens).
actor SlideCatalog {
    private var served: [String: ServedSlide] = [:]
    private var order: [String] = []
    private let logger: Logger
    /// Index files a rescan has looked at, with the size and modification time it saw, so that the next one reads
    /// only what is new or changed; and the index behind each served slide.
    private var seenIndexes: [String: IndexStamp] = [:]
    private var servedIndexes = Set<String>()

    struct IndexStamp: Equatable {
        var size: Int64
        var modified: Double

        init?(path: String) {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        }
    }

    /// What a rescan of the index folder found.
    struct Rescan {
        var added: [ServedSlide] = []
        /// "PATH: REASON" of indexes that cannot be served and of slides whose batch task failed.
        var notServed: [String] = []
        /// "PATH: WHY" of indexes seen and not served yet.
        var pending: [String] = []
    }

    init(logger: Logger) { self.logger = logger }

    /// Opens every slide and its index (`indexDirectory/<stem>.hidx`), ingesting it first when missing and
    /// `ingestMissing` is set. A slide that fails is logged with the reason and left out, so one corrupt file does not
    /// stop the daemon serving the others. Returns the failures.
    @discardableResult
    func load(
        paths: [String], indexDirectory: String, ingestMissing: Bool, micronsPerPixel: Double?, weightsPath: String?,
        detectorWeightsPath: String? = nil
    ) async -> [String] {
        var failures: [String] = []
        for path in paths {
            do {
                let slide = try await NIOThreadPool.singleton.runIfActive { () throws -> Slide in try Slide(path: path) }
                let indexPath = IndexBuilder.indexPath(slidePath: path, outputDirectory: indexDirectory)
                if !FileManager.default.fileExists(atPath: indexPath) {
                    guard ingestMissing else {
                        throw FileError(path: path, message: "no index at \(indexPath): run `hali ingest \(path) --out \(indexDirectory)`")
                    }
                    logger.info("ingesting (first use)", metadata: ["path": "\(path)"])
                    var options = IngestOptions()
                    options.micronsPerPixel = slide.micronsPerPixel == nil ? micronsPerPixel : nil
                    try options.loadNetworks(weights: weightsPath, detectorWeights: detectorWeightsPath)
                    let log = logger
                    let decile = LockedValue(-1)
                    _ = try await IndexBuilder.build(slidePath: path, options: options, outputDirectory: indexDirectory) { p in
                        let d = p.tilesTotal == 0 ? 10 : p.tilesDone * 10 / p.tilesTotal
                        if decile.withLock({ last in
                            defer { last = max(last, d) }; return d > last
                        }) {
                            log.info(
                                "ingest progress", metadata: ["path": "\(path)", "tiles": "\(p.tilesDone)/\(p.tilesTotal)", "nuclei": "\(p.nuclei)"])
                        }
                    }
                }
                let (manifest, table) = try await NIOThreadPool.singleton.runIfActive { try IndexFile.read(path: indexPath) }
                // An index is served only for the file it was built from (slides are identified by file name).
                let (size, _, fingerprint) = try SlideFingerprint.compute(path: path)
                guard manifest.slide.fingerprint == fingerprint, manifest.slide.sizeBytes == size else {
                    throw FileError(
                        path: path,
                        message:
                            "\(indexPath) was built from another file (\(manifest.slide.path)); run `hali ingest --force` or give slides distinct file names"
                    )
                }
                let id = Self.identifier(for: path, taken: Set(order))
                served[id] = ServedSlide(id: id, slide: slide, table: table, manifest: manifest)
                order.append(id)
                servedIndexes.insert(indexPath)
                seenIndexes[indexPath] = IndexStamp(path: indexPath)
                logger.info(
                    "slide ready", metadata: ["id": "\(id)", "path": "\(path)", "size": "\(slide.width)x\(slide.height)", "cells": "\(table.count)"])
            } catch {
                let message = (error as? SlideError)?.message ?? (error as? FileError)?.message ?? (error as? FileError)?.message ?? "\(error)"
                failures.append("\(path): \(message)")
                logger.error("slide not served", metadata: ["path": "\(path)", "error": "\(message)"])
            }
        }
        return failures
    }

    /// Serves the slides whose index appeared in `indexDirectory` since the last look (a batch on a cluster, a
    /// `hali ingest` beside the daemon): each index names its slide file (absolute path), which must be there and be
    /// the file the index was built from. An index that changed while its slide is served is left pending (open
    /// sessions hold the old cells; a restart serves the new ones). `<stem>.failed.txt` records of `hali batch task`
    /// are reported as not served. Reads only new or changed files: O(indexes) `stat`s per call.
    func rescan(indexDirectory: String) async -> Rescan {
        var found = Rescan()
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: indexDirectory)) ?? []).sorted()
        for record in BatchFailure.records(in: indexDirectory) {
            found.notServed.append("\(record.slide): batch task failed: \(record.reason)")
        }
        for name in names where name.hasSuffix(".hidx") {
            let indexPath = (indexDirectory as NSString).appendingPathComponent(name)
            guard let stamp = IndexStamp(path: indexPath) else { continue }
            if servedIndexes.contains(indexPath) {
                if seenIndexes[indexPath] != stamp { found.pending.append("\(indexPath): changed on disk; a restart serves the new index") }
                continue
            }
            if seenIndexes[indexPath] == stamp, let earlier = failedIndexes[indexPath] {
                found.notServed.append(earlier)
                continue
            }
            seenIndexes[indexPath] = stamp
            do {
                let (manifest, table) = try await NIOThreadPool.singleton.runIfActive { try IndexFile.read(path: indexPath) }
                let path = manifest.slide.path
                guard path.hasPrefix("/") else {
                    throw FileError(path: indexPath, message: "names its slide by a relative path (\(path)); ingest with an absolute path")
                }
                let slide = try await NIOThreadPool.singleton.runIfActive { () throws -> Slide in try Slide(path: path) }
                let (size, _, fingerprint) = try SlideFingerprint.compute(path: path)
                guard manifest.slide.fingerprint == fingerprint, manifest.slide.sizeBytes == size else {
                    throw FileError(path: indexPath, message: "was built from another version of \(path)")
                }
                let id = Self.identifier(for: path, taken: Set(order))
                let servedSlide = ServedSlide(id: id, slide: slide, table: table, manifest: manifest)
                served[id] = servedSlide
                order.append(id)
                servedIndexes.insert(indexPath)
                failedIndexes[indexPath] = nil
                found.added.append(servedSlide)
                logger.info("slide ready (new index)", metadata: ["id": "\(id)", "path": "\(path)", "cells": "\(table.count)"])
            } catch {
                let message = "\(indexPath): \((error as? SlideError)?.message ?? (error as? FileError)?.message ?? "\(error)")"
                failedIndexes[indexPath] = message
                found.notServed.append(message)
                logger.error("index not served", metadata: ["index": "\(indexPath)", "error": "\(message)"])
            }
        }
        return found
    }

    /// Why an index seen by a rescan is not served (kept until the file changes).
    private var failedIndexes: [String: String] = [:]

    var count: Int { order.count }
    var all: [ServedSlide] { order.compactMap { served[$0] } }

    func list() -> [SlideInfo] {
        all.map { SlideInfo($0) }
    }

    /// The file name without its extension, made unique with a numeric suffix.
    static func identifier(for path: String, taken: Set<String>) -> String {
        let stem = IndexBuilder.slideStem(path)
        var candidate = stem.isEmpty ? "slide" : stem
        var n = 2
        while taken.contains(candidate) {
            candidate = "\(stem)-\(n)"
            n += 1
        }
        return candidate
    }
}
