import Foundation
import HaliCore
import HaliJPEG
import HaliLearning
import HaliSlide
import HaliStore
import Testing

@testable import HaliEngine

/// The review gallery and the encoded pixels it and GetPatch share: which cells a page holds (checked against the
/// session's own suggestions, sorted by brute force), the crops' pixels, JPEG, and the cache of rendered pixels.
struct GalleryTests {
    typealias Fixture = EngineSessionTests

    /// Fits for these tests only. The process-wide `ThreadExecutor.shared` is also used by other suites running in
    /// parallel; on a two-core CI machine a fit queued behind their work waited past any sane deadline.
    static let fits = ThreadExecutor(threads: 1, name: "gallery-tests")

    /// A session whose model trains after 2 labels, with a real fit executor, and a cache to watch.
    static func trainedSession(store: LabelStore, cache: RenderedPixelCache = RenderedPixelCache()) async throws -> LabellingSession {
        var settings = SessionSettings()
        settings.policy = OnlinePolicy(retrainEvery: 1, minLabels: 2)
        let registry = SessionRegistry(
            store: store, tasks: [Fixture.task], settings: settings, pool: TrainingPool(width: 1, fits: fits, picks: fits),
            pixelCache: cache)
        await registry.add(try Fixture.servedSlide())
        let session = try await registry.open(annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
        // The grid's areas grow with the cell id: small cells negative, large ones positive.
        let labels: [(UInt64, String)] = [(1, "negative"), (2, "negative"), (3, "negative"), (46, "positive"), (47, "positive"), (48, "positive")]
        for (seq, (cell, name)) in labels.enumerated() { _ = try await session.label(Fixture.label(UInt64(seq + 1), cell, name)) }
        try await settle(session, labels: labels.count)
        return session
    }

    /// Waits until the model has been fitted on `labels` labels. The deadline only stops a hang: a loaded machine
    /// may take seconds for a fit that takes milliseconds here.
    static func settle(_ session: LabellingSession, labels: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while await session.labelsAtLastFit != labels {
            guard ContinuousClock.now < deadline else {
                Issue.record("no fit on \(labels) labels")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The brute-force answer: every unlabelled cell the session suggests as `className`, least (or most) confident
    /// first, ties by id.
    static func expectedOrder(_ session: LabellingSession, className: String, ascending: Bool = true) async throws -> [UInt64] {
        let whole = Region(x: 0, y: 0, width: session.slide.slide.width, height: session.slide.slide.height)
        let (cells, _) = try await session.cells(in: whole, includeContours: false, remember: false)
        return cells.filter { $0.label == nil && $0.suggestion?.className == className }
            .sorted { a, b in
                let (ca, cb) = (a.suggestion!.confidence, b.suggestion!.confidence)
                return ca != cb ? (ascending ? ca < cb : ca > cb) : a.id < b.id
            }
            .map(\.id)
    }

    @Test func aPageHoldsTheLeastConfidentSuggestionsOfTheClassAndSkipsLabelledCells() async throws {
        try await Fixture.withStore { store in
            let session = try await Self.trainedSession(store: store)
            let expected = try await Self.expectedOrder(session, className: "positive")
            try #require(expected.count >= 6, "the model suggests too few positives to page through: \(expected)")
            let page = try await session.gallery(GalleryRequest(className: "positive", maxCells: 4))
            #expect(page.modelVersion > 0)
            #expect(page.cellIDs == Array(expected.prefix(4)))
            #expect(page.total == expected.count)
            let second = try await session.gallery(GalleryRequest(className: "positive", maxCells: 4, offset: 2))
            #expect(second.cellIDs == Array(expected.dropFirst(2).prefix(4)))
            let confident = try await session.gallery(GalleryRequest(className: "positive", maxCells: 3, leastConfidentFirst: false))
            #expect(confident.cellIDs == Array(try await Self.expectedOrder(session, className: "positive", ascending: false).prefix(3)))
            // Labelling the first cell takes it out of the gallery at once, before any refit.
            _ = try await session.label(Fixture.label(7, expected[0], "positive"))
            let after = try await session.gallery(GalleryRequest(className: "positive", maxCells: 4))
            #expect(after.cellIDs.first != expected[0])
            #expect(!after.cellIDs.contains(expected[0]))
        }
    }

    @Test func eachCropIsTheSlidesPixelsCentredOnItsCell() async throws {
        try await Fixture.withStore { store in
            let session = try await Self.trainedSession(store: store)
            let page = try await session.gallery(GalleryRequest(className: "negative", maxCells: 3, cropMicrons: 24))
            try #require(!page.crops.isEmpty)
            let slide = try Slide(path: session.slide.slide.path)
            for (crop, id) in zip(page.crops, page.cellIDs) {
                // 24 µm at 0.5 µm per pixel.
                #expect(crop.width == 48 && crop.height == 48 && crop.region.width == 48)
                let row = try #require(session.slide.table.row(ofID: id))
                let (cx, cy) = (Double(session.slide.table.centroidX[row]), Double(session.slide.table.centroidY[row]))
                #expect(abs(Double(crop.region.x) + 24 - cx) <= 1 && abs(Double(crop.region.y) + 24 - cy) <= 1)
                #expect(crop.cells.contains { $0.id == id })
                #expect(crop.pixels == (try slide.readRegion(x: crop.region.x, y: crop.region.y, level: 0, width: 48, height: 48)))
            }
        }
    }

    @Test func noModelNoCropsAndBadRequestsAreRefused() async throws {
        try await Fixture.withStore { store in
            let session = try await PatchTests.session(store)  // minLabels 1,000: never trains
            let empty = try await session.gallery(GalleryRequest(className: "positive"))
            #expect(empty.modelVersion == 0 && empty.crops.isEmpty && empty.total == 0)
            let refused = [
                GalleryRequest(className: "mitosis"), GalleryRequest(className: "positive", maxCells: 0),
                GalleryRequest(className: "positive", maxCells: 65), GalleryRequest(className: "positive", cropMicrons: 0),
                GalleryRequest(className: "positive", cropMicrons: .nan), GalleryRequest(className: "positive", cropMicrons: 201),
                GalleryRequest(className: "positive", offset: -1),
            ]
            for request in refused {
                await Fixture().expectRefusal(.invalidArgument) { _ = try await session.gallery(request) }
            }
        }
    }

    @Test func jpegPixelsDecodeToThePatchAndASecondRequestComesFromTheCache() async throws {
        try await Fixture.withStore { store in
            let cache = RenderedPixelCache()
            let session = try await Self.trainedSession(store: store, cache: cache)
            let region = Region(x: 300, y: 200, width: 160, height: 120)
            let raw = try await session.patch(PatchRequest(target: .region(region), includePixels: true))
            let jpeg = try await session.patch(PatchRequest(target: .region(region), includePixels: true, encoding: .jpeg(quality: 90)))
            let rawBytes = try #require(raw.pixels), jpegBytes = try #require(jpeg.pixels)
            #expect(jpeg.encoding == .jpeg(quality: 90) && jpegBytes.count * 4 < rawBytes.count)
            let decoded = try JPEG.decode(jpegBytes)
            #expect(decoded.width == 160 && decoded.height == 120)
            var squared = 0.0
            for (a, b) in zip(decoded.rgb, rawBytes) { squared += Double((Int(a) - Int(b)) * (Int(a) - Int(b))) }
            let psnr = 10 * log10(255.0 * 255.0 / (squared / Double(rawBytes.count)))
            #expect(psnr > 30, "PSNR \(psnr) dB")
            let before = cache.counts
            let again = try await session.patch(PatchRequest(target: .region(region), includePixels: true, encoding: .jpeg(quality: 90)))
            #expect(again.pixels == jpegBytes)
            #expect(cache.counts.hits == before.hits + 1 && cache.counts.misses == before.misses)
        }
    }

    @Test func theCacheEvictsTheLeastRecentlyUsedAndKeepsNoGiant() {
        let cache = RenderedPixelCache(capacityBytes: 400)
        func key(_ x: Int64) -> RenderedPixelCache.Key {
            .init(slide: "s", region: Region(x: x, y: 0, width: 1, height: 1), level: 0, encoding: .rgb8)
        }
        cache.insert([UInt8](repeating: 1, count: 100), for: key(1))
        cache.insert([UInt8](repeating: 2, count: 100), for: key(2))
        cache.insert([UInt8](repeating: 3, count: 100), for: key(3))
        #expect(cache.bytes(for: key(1)) != nil)  // 1 is now more recent than 2
        cache.insert([UInt8](repeating: 4, count: 100), for: key(4))  // 400: still fits
        cache.insert([UInt8](repeating: 5, count: 60), for: key(5))  // 460: 2 goes
        #expect(cache.bytes(for: key(2)) == nil)
        #expect(cache.bytes(for: key(1)) == [UInt8](repeating: 1, count: 100))
        #expect(cache.bytes(for: key(3)) != nil && cache.bytes(for: key(4)) != nil && cache.bytes(for: key(5)) != nil)
        cache.insert([UInt8](repeating: 6, count: 101), for: key(6))  // over a quarter of the capacity: not kept
        #expect(cache.bytes(for: key(6)) == nil)
    }
}
