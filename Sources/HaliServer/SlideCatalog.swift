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
