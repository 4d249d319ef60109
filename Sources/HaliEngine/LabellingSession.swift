public import Foundation
public import HaliCore
import HaliIndex
public import HaliLearning
import HaliMath
import HaliStore

#if canImport(Glibc)
import Glibc
#endif

/// Settings every session shares.
public struct SessionSettings: Sendable {
    public var policy = OnlinePolicy(retrainEvery: 5, minLabels: 20)
    public var head: HeadKind = .logistic
    /// Size of the Coreset subset S whose densest patch is picked next.
    public var subsetSize = 200
    /// Side of a next-patch window in microns (the paper's ~200-cell patch at ~30x).
    public var patchSizeMicrons = 250.0
    /// How the learner's cell picks are chosen when a request does not say: margin, TypiClust before the first model
    /// (the best arm of docs/learning.md's nine-use-case experiment).
    public var cellStrategy = CellStrategy.margin
    public var seed: UInt64 = 0
    public init() {}
}

/// One annotator labelling one slide for one task: their labels, their model, their active learner.
///
/// Rebuilt from the label store when first opened (after a restart too): the events are replayed, the head is refitted
/// and the active learner's distances recomputed. Heavy work (fits, k-center passes, full-slide scoring) runs on
/// the training pool's executors (`TrainingPool`), never on a Swift concurrency thread, and one session's training never blocks
/// another session's labels: acknowledgements need only the store.
public actor LabellingSession {
    public nonisolated let annotator: String
    public nonisolated let task: TaskDefinition
    public nonisolated let slide: ServedSlide
    public nonisolated let sessionID: String
    private let store: LabelStore
    private let settings: SessionSettings
    private let pool: TrainingPool
    private let pixelCache: RenderedPixelCache

    private var labels = LabelState()
    private(set) var labelsAtLastFit = 0
    private var labelChangesSinceFit = 0
    private var head: (any Head)?
    private var modelVersion: UInt32 = 0
    private var validationAccuracy = Double.nan
    private var kcenter: IncrementalKCenter
    private var kcenterLabelled = Set<Int>()
    private var patchGrid: PatchGrid
    /// Side of a next-patch window in level-0 pixels.
    private let windowSide: Double
    private var donePatches: [Bool]
    private var currentRegion: Region?
    private var currentPatch: Int?
    private var subscribers: [ObjectIdentifier: any SessionSubscriber] = [:]
    private var rng: SeededRandom
    /// The gallery's order of cells for one model version, class and direction (rows, labelled ones included: they
    /// are skipped when a page is cut, so a label does not cost a new ranking).
    private var galleryRanking: (version: UInt32, classIndex: Int, ascending: Bool, rows: [Int32])?
    /// One cell picker per strategy asked for: what each builds (k-center distances, a ProbCover graph) is kept
    /// between requests and brought up to date with the labels.
    private var cellPickers: [CellStrategy: CellPicker] = [:]

    init(
        annotator: String, task: TaskDefinition, slide: ServedSlide, store: LabelStore, settings: SessionSettings, pool: TrainingPool,
        pixelCache: RenderedPixelCache = RenderedPixelCache(capacityBytes: 0)
    ) throws {
        self.annotator = annotator
        self.task = task
        self.slide = slide
        self.store = store
        self.settings = settings
        self.pool = pool
        self.pixelCache = pixelCache
        self.sessionID = "\(annotator)/\(slide.id)/\(task.name)"
        self.kcenter = IncrementalKCenter(features: slide.features)
        let side = settings.patchSizeMicrons / slide.micronsPerPixel
        self.windowSide = side
        self.patchGrid = PatchGrid(
            image: [Int](repeating: 0, count: slide.table.count), x: slide.table.centroidX.map(Double.init),
            y: slide.table.centroidY.map(Double.init), extents: [(Double(slide.slide.width), Double(slide.slide.height))], side: side,
            rowHeight: 12 / slide.micronsPerPixel)
        self.donePatches = [Bool](repeating: false, count: patchGrid.patches.count)
        self.rng = SeededRandom(seed: settings.seed)
        let events = try store.events(annotator: annotator, slide: slide.id, task: task.name)
        self.labels = LabelState(replaying: events)
        if let r = try store.sessionRegion(annotator: annotator, slide: slide.id, task: task.name) {
            currentRegion = Region(x: r.x, y: r.y, width: r.width, height: r.height)
        }
    }

    /// After a restart: refit the model on the stored labels so suggestions come back at once.
    func restore() async {
        if labels.classOfCell.count >= settings.policy.minLabels { await retrain() }
    }

    // MARK: Subscribers

    public func subscribe(_ subscriber: any SessionSubscriber) { subscribers[ObjectIdentifier(subscriber)] = subscriber }
    public func unsubscribe(_ subscriber: any SessionSubscriber) { subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) }

    // MARK: State

    public func snapshot() -> SessionSnapshot {
        SessionSnapshot(
            sessionID: sessionID, task: task, labelsDone: labels.classOfCell.count, modelVersion: modelVersion,
            validationAccuracy: validationAccuracy, currentRegion: currentRegion, lastClientSeq: labels.lastClientSeq)
    }

    public var labelCount: Int { labels.classOfCell.count }
    public var currentModelVersion: UInt32 { modelVersion }

    // MARK: Patches

    /// The cells of a region with this annotator's labels and the current model's suggestions.
    public func cells(in region: Region, includeContours: Bool, remember: Bool) throws -> (cells: [CellView], modelVersion: UInt32) {
        if remember {
            currentRegion = region
            try? store.saveSessionRegion(
                annotator: annotator, slide: slide.id, task: task.name, region: (region.x, region.y, region.width, region.height),
                timeMs: Self.nowMs())
        }
        let rows = slide.cells(inX: region.x, y: region.y, width: region.width, height: region.height)
        let suggestions = suggestions(for: rows)
        let table = slide.table
        let cells = rows.enumerated().map { index, row -> CellView in
            let id = CellTable.id(ofRow: row)
            return CellView(
                id: id, centroid: Point(x: Double(table.centroidX[row]), y: Double(table.centroidY[row])),
                bbox: Region(
                    x: Int64(table.minX[row].rounded(.down)), y: Int64(table.minY[row].rounded(.down)),
                    width: Int64((table.maxX[row] - table.minX[row]).rounded(.up)), height: Int64((table.maxY[row] - table.minY[row]).rounded(.up))),
                contour: includeContours ? Array(table.contour(ofRow: row)) : [],
                label: labels.classOfCell[id], suggestion: suggestions?[index],
                areaMicrons2: table.areaMicrons2[row].isFinite ? table.areaMicrons2[row] : 0)
        }
        return (cells, modelVersion)
    }

    public func markPatchVisited(_ patchIndex: Int) { currentPatch = patchIndex }

    /// Largest image a patch carries, in pixels per side; coarser levels serve larger regions.
    public static let maxPatchPixels = 4096

    /// A region or a picked window: its cells (remembered as where the annotator is) and, when asked, its pixels at
    /// `level`, read on the pool's blocking executor so that no Swift concurrency thread waits on OpenSlide.
    public func patch(_ request: PatchRequest) async throws -> PatchView {
        let region: Region
        var windowID = ""
        switch request.target {
        case .region(let r):
            region = try slide.validated(r)
        case .window(let id):
            let (r, index) = try self.region(ofPatch: id)
            markPatchVisited(index)
            region = r
            windowID = id
        }
        let (cells, version) = try cells(in: region, includeContours: request.includeContours, remember: true)
        let levels = slide.slide.levelCount
        guard request.level >= 0, request.level < levels else {
            throw EngineError(.invalidArgument, "level \(request.level) does not exist (slide has \(levels))")
        }
        let level = request.level
        let downsample = slide.slide.levelDownsamples[level]
        var pixels: [UInt8]?
        var width = 0, height = 0
        if request.includePixels {
            width = Int((Double(region.width) / downsample).rounded(.up))
            height = Int((Double(region.height) / downsample).rounded(.up))
            guard width <= Self.maxPatchPixels, height <= Self.maxPatchPixels else {
                throw EngineError(
                    .invalidArgument, "\(width)×\(height) pixels at level \(level) is over \(Self.maxPatchPixels) per side: ask a coarser level")
            }
            let (w, h, source, id, cache, encoding) = (width, height, slide.slide, slide.id, pixelCache, request.encoding)
            pixels = try await pool.fits.run {
                try cache.render(slideID: id, slide: source, region: region, level: level, width: w, height: h, encoding: encoding)
            }
        }
        return PatchView(
            windowID: windowID, region: region, level: level, downsample: downsample, micronsPerPixel: slide.micronsPerPixel * downsample,
            pixels: pixels, encoding: request.encoding, width: width, height: height, cells: cells, modelVersion: version)
    }

    // MARK: Review gallery

    /// A page of the review gallery: unlabelled cells the current model suggests as `request.className`, in order of
    /// confidence, each as a square crop of level-0 pixels centred on it (clamped inside the slide).
    ///
    /// The order is computed once per model version, class and direction (one prediction pass over the slide on the
    /// pool, O(N·D·K + N log N)); later pages and pages after labels only skip labelled cells, O(N).
    public func gallery(_ request: GalleryRequest) async throws -> GalleryView {
        guard let classIndex = task.classes.firstIndex(where: { $0.name == request.className }) else {
            throw EngineError(
                .invalidArgument,
                "class \"\(request.className)\" is not in task \(task.name) (\(task.classes.map(\.name).joined(separator: ", ")))")
        }
        guard (1...GalleryRequest.maxCellsLimit).contains(request.maxCells) else {
            throw EngineError(.invalidArgument, "max_cells \(request.maxCells) is outside 1…\(GalleryRequest.maxCellsLimit)")
        }
        guard request.cropMicrons > 0, request.cropMicrons <= GalleryRequest.maxCropMicrons else {
            throw EngineError(.invalidArgument, "crop_um \(request.cropMicrons) is outside (0, \(GalleryRequest.maxCropMicrons)]")
        }
        guard request.offset >= 0 else { throw EngineError(.invalidArgument, "offset \(request.offset) is negative") }
        var view = GalleryView(
            className: request.className, pickStrategy: nil, modelVersion: 0, total: 0, offset: request.offset, crops: [], cellIDs: [])
        guard let head, labels.classOfCell.count >= settings.policy.minLabels else { return view }
        let version = modelVersion
        let ascending = request.leastConfidentFirst
        let ranking: [Int32]
        if let cached = galleryRanking, cached.version == version, cached.classIndex == classIndex, cached.ascending == ascending {
            ranking = cached.rows
        } else {
            let features = slide.features
            ranking = try await pool.fits.run { Self.rank(head: head, features: features, classIndex: classIndex, ascending: ascending) }
            galleryRanking = (version, classIndex, ascending, ranking)
        }
        var rows: [Int] = []
        var skipped = 0
        for row in ranking where labels.classOfCell[CellTable.id(ofRow: Int(row))] == nil {
            view.total += 1
            if skipped < request.offset {
                skipped += 1
            } else if rows.count < request.maxCells {
                rows.append(Int(row))
            }
        }
        view.modelVersion = version
        (view.crops, view.cellIDs) = try await crops(
            around: rows, cropMicrons: request.cropMicrons, encoding: request.encoding, includeContours: request.includeContours)
        return view
    }

    /// Square crops of level-0 pixels centred on `rows` (clamped inside the slide), each with the cells it covers;
    /// the pixels are read on the pool.
    private func crops(around rows: [Int], cropMicrons: Double, encoding: PixelEncoding, includeContours: Bool) async throws -> (
        [PatchView], [UInt64]
    ) {
        let side = Int64(min(Double(Self.maxPatchPixels), max(8, (cropMicrons / slide.micronsPerPixel).rounded())))
        let table = slide.table
        let regions = rows.map { row -> Region in
            let (w, h) = (slide.slide.width, slide.slide.height)
            let x = min(max(0, Int64(Double(table.centroidX[row]).rounded()) - side / 2), max(0, w - side))
            let y = min(max(0, Int64(Double(table.centroidY[row]).rounded()) - side / 2), max(0, h - side))
            return Region(x: x, y: y, width: min(side, w), height: min(side, h))
        }
        let (source, id, cache) = (slide.slide, slide.id, pixelCache)
        let pixels = try await pool.fits.run {
            try regions.map { r in
                try cache.render(slideID: id, slide: source, region: r, level: 0, width: Int(r.width), height: Int(r.height), encoding: encoding)
            }
        }
        var crops: [PatchView] = []
        for (i, region) in regions.enumerated() {
            let (cells, version) = try cells(in: region, includeContours: includeContours, remember: false)
            crops.append(
                PatchView(
                    windowID: "", region: region, level: 0, downsample: 1, micronsPerPixel: slide.micronsPerPixel, pixels: pixels[i],
                    encoding: encoding, width: Int(region.width), height: Int(region.height), cells: cells, modelVersion: version))
        }
        return (crops, rows.map(CellTable.id(ofRow:)))
    }

    // MARK: Cell picks

    /// The learner's next cells to label, anywhere on the slide, as crops like the gallery's: the `CellPicker` of the
    /// asked strategy (default `SessionSettings.cellStrategy`) over the slide's features, brought up to date with
    /// this annotator's labels (rebuilt after an undo or a relabel took a cell out of the labelled set). Margin and
    /// entropy score with the current model and pick by TypiClust before there is one. The pick runs on the pool.
    ///
    /// - Complexity: the strategy's (docs/learning.md; at 10^6 cells a margin pick is one prediction pass, ~0.14 s).
    public func cellPicks(_ request: CellPicksRequest) async throws -> GalleryView {
        guard (1...GalleryRequest.maxCellsLimit).contains(request.maxCells) else {
            throw EngineError(.invalidArgument, "max_cells \(request.maxCells) is outside 1…\(GalleryRequest.maxCellsLimit)")
        }
        guard request.cropMicrons > 0, request.cropMicrons <= GalleryRequest.maxCropMicrons else {
            throw EngineError(.invalidArgument, "crop_um \(request.cropMicrons) is outside (0, \(GalleryRequest.maxCropMicrons)]")
        }
        guard request.skip.count <= CellPicksRequest.maxSkipped else {
            throw EngineError(.invalidArgument, "\(request.skip.count) cells to skip is over \(CellPicksRequest.maxSkipped)")
        }
        var candidate: [Bool]?
        if !request.skip.isEmpty {
            var mask = [Bool](repeating: true, count: slide.table.count)
            for id in request.skip {
                guard let row = slide.table.row(ofID: id) else {
                    throw EngineError(.notFound, "cell \(id) does not exist on slide \(slide.id) (ids 1…\(slide.table.count))")
                }
                mask[row] = false
            }
            candidate = mask
        }
        let strategy = request.strategy ?? settings.cellStrategy
        let labelledRows = labels.classOfCell.keys.compactMap { slide.table.row(ofID: $0) }.sorted()
        let previous = cellPickers[strategy]
        let kept = previous.flatMap { picker in
            // An undo or relabel took a cell out of the labelled set: the picker's distances no longer hold.
            let wanted = Set(labelledRows)
            return picker.labelled.allSatisfy(wanted.contains) ? picker : nil
        }
        let model = labels.classOfCell.count >= settings.policy.minLabels ? head : nil
        let (features, count, allowed, classCount, seed) = (slide.features, request.maxCells, candidate, task.classes.count, settings.seed)
        // Bringing the picker up to date costs an O(N·D) pass per new label for coreset: on the pool, like the pick.
        let (updated, rows) = try await pool.fits.run { () -> (CellPicker, [Int]) in
            var p: CellPicker
            if let kept {
                p = kept
            } else {
                p = CellPicker(features: features, strategy: strategy, classCount: classCount, seed: seed)
                if let previous { p.adoptLabelIndependentState(of: previous) }  // rebuilt after an undo: start warm
            }
            p.addLabelled(labelledRows)
            let probabilities = model.map { head in { @Sendable (rows: [Int]) in head.probabilities(features: features, rows: rows) } }
            let rows = p.pick(count: count, candidate: allowed, probabilities: probabilities)
            return (p, rows)
        }
        cellPickers[strategy] = updated
        var view = GalleryView(
            className: "", pickStrategy: updated.effectiveStrategy(hasModel: model != nil), modelVersion: model == nil ? 0 : modelVersion,
            total: slide.table.count - labels.classOfCell.count, offset: 0, crops: [], cellIDs: [])
        (view.crops, view.cellIDs) = try await crops(
            around: rows, cropMicrons: request.cropMicrons, encoding: request.encoding, includeContours: request.includeContours)
        return view
    }

    /// Rows whose predicted class is `classIndex`, by confidence (ties by row), over every cell of the slide. Pure.
    static func rank(head: any Head, features: Matrix, classIndex: Int, ascending: Bool) -> [Int32] {
        var scored: [(confidence: Float, row: Int32)] = []
        let block = 65_536
        var start = 0
        while start < features.rows {
            let chunk = Array(start..<min(start + block, features.rows))
            for (i, p) in head.predict(features: features, rows: chunk).enumerated() where p.label == classIndex {
                scored.append((p.confidence, Int32(chunk[i])))
            }
            start += block
        }
        scored.sort { a, b in
            a.confidence != b.confidence ? (ascending ? a.confidence < b.confidence : a.confidence > b.confidence) : a.row < b.row
        }
        return scored.map(\.row)
    }

    private func suggestions(for rows: [Int]) -> [CellView.Suggestion]? {
        guard let head, labels.classOfCell.count >= settings.policy.minLabels, !rows.isEmpty else { return nil }
        return head.predict(features: slide.features, rows: rows).map {
            CellView.Suggestion(className: task.classes[$0.label].name, confidence: $0.confidence)
        }
    }

    // MARK: Labels

    /// Validates, stores durably, then applies a label. The returned ack is sent only after the store's commit.
    public func label(_ event: LabelCommand) async throws -> LabelReceipt {
        guard task.hasClass(event.className) else {
            throw EngineError(
                .invalidArgument, "class \"\(event.className)\" is not in task \(task.name) (\(task.classes.map(\.name).joined(separator: ", ")))")
        }
        guard slide.table.row(ofID: event.cellID) != nil else {
            throw EngineError(.notFound, "cell \(event.cellID) does not exist on slide \(slide.id) (ids 1…\(slide.table.count))")
        }
        let record = LabelRecord(
            annotator: annotator, slide: slide.id, task: task.name, cellID: event.cellID, kind: .label, className: event.className,
            source: LabelRecord.Source(event.origin), modelVersion: event.modelVersionShown, clientSeq: event.clientSeq,
            clientTimeMs: event.clientTimeMs,
            serverTimeMs: Self.nowMs(), previousClass: labels.classOfCell[event.cellID])
        if let resent = try resend(seq: event.clientSeq, kind: .label, cellID: event.cellID, className: event.className) { return resent }
        let stored = try await appendCounted(record)
        if !stored.duplicate { apply(record) }
        return LabelReceipt(clientSeq: event.clientSeq, cellID: event.cellID, eventID: UInt64(stored.eventID), serverTimeMs: record.serverTimeMs)
    }

    // MARK: Sequence numbers

    /// Numbers handed to the store and not yet committed (an actor is re-entered while it awaits the store, and
    /// one session may be open on two connections).
    private var clientSeqsInFlight = Set<UInt64>()

    /// The protocol's rule for `client_seq`: strictly increasing per session, from 1. A number at or below the
    /// highest one seen is either a resend of the stored event (acknowledged again, nothing written) or refused:
    /// the same number for a different event, or a number never used that arrives too late, which would reorder
    /// the audit trail. Returns the ack for a resend, nil for a new event; throws INVALID_ARGUMENT otherwise.
    /// - Parameter cellID: nil when the request did not name one (an undo of the latest label).
    private func resend(seq: UInt64, kind: LabelRecord.Kind, cellID: UInt64?, className: String?) throws -> LabelReceipt? {
        guard seq >= 1 else { throw EngineError(.invalidArgument, "client_seq must be 1 or more (got 0)") }
        let highest = max(labels.lastClientSeq, clientSeqsInFlight.max() ?? 0)
        guard seq <= highest else { return nil }
        guard let stored = try store.event(annotator: annotator, slide: slide.id, task: task.name, clientSeq: seq) else {
            throw EngineError(
                .invalidArgument,
                "client_seq \(seq) is not above the session's last one (\(highest)): sequence numbers are strictly increasing")
        }
        guard stored.record.kind == kind, cellID == nil || stored.record.cellID == cellID, stored.record.className == className else {
            throw EngineError(
                .invalidArgument,
                "client_seq \(seq) was already used for another event (cell \(stored.record.cellID)\(stored.record.className.map { ", class \($0)" } ?? ", undo"))"
            )
        }
        return LabelReceipt(clientSeq: seq, cellID: stored.record.cellID, eventID: UInt64(stored.eventID), serverTimeMs: stored.record.serverTimeMs)
    }

    /// Appends durably, with the number counted as seen until the store answers.
    private func appendCounted(_ record: LabelRecord) async throws -> StoredEvent {
        clientSeqsInFlight.insert(record.clientSeq)
        defer { clientSeqsInFlight.remove(record.clientSeq) }
        do {
            return try await store.append(record)
        } catch let error as StoreError where error.kind == .clientSeqConflict {
            throw EngineError(.invalidArgument, error.message)
        }
    }

    /// Reverts the latest label of `cellID` (nil: of the session's most recent labelled cell).
    public func undo(_ request: UndoCommand) async throws -> LabelReceipt {
        // Before finding the target: after the undo was applied, its resend would find nothing left to undo.
        if let resent = try resend(seq: request.clientSeq, kind: .undo, cellID: request.cellID, className: nil) {
            return resent
        }
        let events = try store.events(annotator: annotator, slide: slide.id, task: task.name)
        let target: UInt64
        if let cellID = request.cellID {
            target = cellID
        } else {
            guard let last = Self.lastUndoable(events) else { throw EngineError(.invalidArgument, "nothing to undo in this session") }
            target = last
        }
        guard let current = labels.classOfCell[target] else {
            throw EngineError(.invalidArgument, "cell \(target) has no label to undo")
        }
        let previous = events.last { $0.record.cellID == target && $0.record.kind == .label && $0.record.className == current }?.record.previousClass
        let record = LabelRecord(
            annotator: annotator, slide: slide.id, task: task.name, cellID: target, kind: .undo, className: nil, source: .undo,
            modelVersion: modelVersion, clientSeq: request.clientSeq, clientTimeMs: Self.nowMs(), serverTimeMs: Self.nowMs(),
            previousClass: previous)
        let stored = try await appendCounted(record)
        if !stored.duplicate { apply(record) }
        return LabelReceipt(clientSeq: request.clientSeq, cellID: target, eventID: UInt64(stored.eventID), serverTimeMs: record.serverTimeMs)
    }

    /// The most recent cell whose current label came from a label event (undos pop back through history).
    static func lastUndoable(_ events: [StoredEvent]) -> UInt64? {
        var stack: [UInt64] = []
        for event in events {
            switch event.record.kind {
            case .label: stack.append(event.record.cellID)
            case .undo: if let i = stack.lastIndex(of: event.record.cellID) { stack.remove(at: i) }
            }
        }
        return stack.last
    }

    private func apply(_ record: LabelRecord) {
        labels.apply(record)
        let count = labels.classOfCell.count
        // Labels since the last fit count corrections and undos too: each changes what the model should learn.
        labelChangesSinceFit += 1
        if count >= settings.policy.minLabels, head == nil || labelChangesSinceFit >= settings.policy.retrainEvery {
            labelChangesSinceFit = 0
            pool.request(self)
        }
    }

    // MARK: Training (called by the pool)

    /// Refits the head on the current labels, updates the active learner, then pushes predictions for the current
    /// region and the next-patch pick to every subscriber.
    func retrain() async {
        let snapshot = labels.classOfCell.compactMap { id, name -> (Int, Int)? in
            guard let row = slide.table.row(ofID: id), let cls = task.classes.firstIndex(where: { $0.name == name }) else { return nil }
            return (row, cls)
        }.sorted { $0.0 < $1.0 }
        let rows = snapshot.map(\.0), classes = snapshot.map(\.1)
        let features = slide.features
        let kind = settings.head
        let classCount = task.classes.count
        let seed = settings.seed
        // Distances to the labelled set: incremental when labels were only added, rebuilt after an undo or relabel.
        let previousKC = kcenter
        // The last fit's head starts the next one (LogisticHead's warm start): the labels change by a handful between
        // fits, so L-BFGS starts near the optimum instead of at zero. Made anew each time, the fit's cost grew with
        // the labels until, with 100 annotators at ~150 labels each, suggestions took 40+ ms at the median.
        let previousHead = head
        let wanted = Set(rows)
        let added = wanted.subtracting(kcenterLabelled)
        let removed = !kcenterLabelled.subtracting(wanted).isEmpty
        let result = try? await pool.fits.run { () -> (any Head, FitReport, IncrementalKCenter) in
            var fitRNG = SeededRandom.derived(seed, UInt64(rows.count))
            var head = previousHead ?? kind.make(classCount: classCount, featureCount: features.columns)
            let report = head.fit(features: features, rows: rows, labels: classes, rng: &fitRNG)
            var kc = previousKC
            if removed { kc.reset(labelled: rows) } else { kc.addLabelled(added.sorted()) }
            return (head, report, kc)
        }
        guard let (newHead, report, newKC) = result else { return }
        head = newHead
        kcenter = newKC
        kcenterLabelled = wanted
        labelsAtLastFit = rows.count
        modelVersion += 1
        validationAccuracy = report.validationAccuracy ?? .nan
        guard !subscribers.isEmpty else { return }
        if let region = currentRegion, let (cells, version) = try? cells(in: region, includeContours: false, remember: false) {
            let predictions = SessionPush.predictions(
                PredictionUpdate(
                    modelVersion: version, validationAccuracy: validationAccuracy, labelsUsed: rows.count, region: region,
                    suggestions: cells.compactMap { c in c.suggestion.map { (c.id, $0.className, $0.confidence) } }))
            for subscriber in subscribers.values { await subscriber.push(predictions) }
        }
        // The pick is advice and costs far more than the fit (a k-center pass over the slide): it runs apart, at the
        // lowest priority, so suggestions never queue behind someone's pick.
        pool.requestPick(self)
    }

    /// Pushes the Coreset pick for the current model (the pool calls this, one pick at a time). The k-center pass
    /// runs over snapshots on the pool's pick executor, so the session keeps taking labels meanwhile.
    func pushPick() async {
        guard !subscribers.isEmpty else { return }
        let (kc, grid, done, subsetSize) = (kcenter, patchGrid, donePatches, settings.subsetSize)
        let computed = try? await pool.picks.run {
            Self.coresetPick(kcenter: kc, grid: grid, done: done, subsetSize: subsetSize)
        }
        guard let (subset, chosen) = computed, let index = chosen else { return }
        let pick = SessionPush.pick(makePick(window: index, subset: subset, strategy: .coreset, sizeMicrons: 0))
        for subscriber in subscribers.values { await subscriber.push(pick) }
    }

    /// The Coreset subset S (k-center greedy over unlabelled cells outside windows done) and the window holding
    /// most of it. Pure: runs on snapshots, off the actor.
    static func coresetPick(kcenter: IncrementalKCenter, grid: PatchGrid, done: [Bool], subsetSize: Int) -> (subset: [Int], window: Int?) {
        let candidates = grid.patchOfCell.map { $0 >= 0 && !done[$0] }
        let subset = kcenter.select(count: subsetSize, candidate: candidates)
        return (subset, grid.bestPatch(holding: subset, done: done))
    }

    // MARK: Next patch

    /// The next window to label: by default the one holding most of the Coreset subset S (k-center greedy over the
    /// features, S of `subsetSize` unlabelled cells outside windows already done). The window the annotator was on
    /// is marked done first.
    /// - Parameter sizeMicrons: when > 0, the returned region is a square of this side centred on the picked cells in
    ///   the chosen window (clamped to the slide), e.g. a smaller view for an 80×24 terminal; the patch id still
    ///   names the window.
    public func nextPatch(strategy: PickStrategy, sizeMicrons: Double = 0, markCurrentDone: Bool = true) throws -> PatchPick {
        if markCurrentDone, let p = currentPatch { donePatches[p] = true }
        if markCurrentDone, currentPatch == nil, let region = currentRegion, Self.isWindowSizedView(region, windowSide: windowSide) {
            // The annotator navigated by region: mark every window whose centre lies inside it. An overview (a
            // region much larger than a window, e.g. the whole slide for a thumbnail) is looked at, not labelled,
            // and marks nothing: it would otherwise end the learner's picks for good (the region is persisted).
            for (i, patch) in patchGrid.patches.enumerated() {
                let cx = (patch.minX + patch.maxX) / 2, cy = (patch.minY + patch.maxY) / 2
                if cx >= Double(region.x), cx < Double(region.x + region.width), cy >= Double(region.y), cy < Double(region.y + region.height) {
                    donePatches[i] = true
                }
            }
        }
        let candidates = patchGrid.patchOfCell.map { $0 >= 0 && !donePatches[$0] }
        var chosen: Int?
        var subset: [Int] = []
        var used = strategy == .default ? PickStrategy.coreset : strategy
        switch used {
        case .coreset, .default:
            (subset, chosen) = Self.coresetPick(kcenter: kcenter, grid: patchGrid, done: donePatches, subsetSize: settings.subsetSize)
        case .entropy, .margin:
            if let head {
                let unlabelled = (0..<slide.table.count).filter { candidates[$0] && labels.classOfCell[CellTable.id(ofRow: $0)] == nil }
                let p = head.probabilities(features: slide.features, rows: unlabelled)
                let scores = used == .entropy ? Uncertainty.entropy(p) : Uncertainty.negativeMargin(p)
                subset = Uncertainty.top(settings.subsetSize, scores: scores, candidates: unlabelled)
                chosen = patchGrid.bestPatch(holding: subset, done: donePatches)
            } else {
                used = .coreset
                subset = kcenter.select(count: settings.subsetSize, candidate: candidates)
                chosen = patchGrid.bestPatch(holding: subset, done: donePatches)
            }
        case .random:
            let open = (0..<patchGrid.patches.count).filter { !donePatches[$0] && !patchGrid.cellsOfPatch[$0].isEmpty }
            chosen = open.isEmpty ? nil : open[rng.below(open.count)]
        }
        guard let index = chosen else { throw EngineError(.notFound, "every window of this slide with cells has been done") }
        return makePick(window: index, subset: subset, strategy: used, sizeMicrons: sizeMicrons)
    }

    /// The pick of window `index` as sent: its region (or a square of `sizeMicrons` centred on the picked cells)
    /// and why it was chosen.
    private func makePick(window index: Int, subset: [Int], strategy used: PickStrategy, sizeMicrons: Double) -> PatchPick {
        let patch = patchGrid.patches[index]
        var region = Region(
            x: Int64(patch.minX.rounded(.down)), y: Int64(patch.minY.rounded(.down)), width: Int64((patch.maxX - patch.minX).rounded(.up)),
            height: Int64((patch.maxY - patch.minY).rounded(.up)))
        let picked = subset.filter { patchGrid.patchOfCell[$0] == index }
        let inS = picked.count
        if sizeMicrons > 0 {
            let side = min(Int64((sizeMicrons / slide.micronsPerPixel).rounded()), min(slide.slide.width, slide.slide.height))
            let members = picked.isEmpty ? patchGrid.cellsOfPatch[index] : picked
            let cx = members.map { Double(slide.table.centroidX[$0]) }.reduce(0, +) / Double(max(1, members.count))
            let cy = members.map { Double(slide.table.centroidY[$0]) }.reduce(0, +) / Double(max(1, members.count))
            region = Region(
                x: min(max(0, Int64(cx) - side / 2), slide.slide.width - side), y: min(max(0, Int64(cy) - side / 2), slide.slide.height - side),
                width: side, height: side)
        }
        let reason =
            switch used {
            case .random: "a random window not yet done"
            case .entropy: "holds \(inS) of the \(subset.count) most uncertain cells (entropy)"
            case .margin: "holds \(inS) of the \(subset.count) most uncertain cells (margin)"
            default: "holds \(inS) of the \(subset.count) Coreset picks (k-center greedy)"
            }
        let cellsInRegion =
            sizeMicrons > 0
            ? slide.cells(inX: region.x, y: region.y, width: region.width, height: region.height).count : patchGrid.cellsOfPatch[index].count
        return PatchPick(patchID: "p\(index)", region: region, strategy: used, reason: reason, subsetCells: inS, cellsInRegion: cellsInRegion)
    }

    /// Whether a viewed region is about one window (at most twice its side each way), so that seeing it counts as
    /// having worked on the windows it covers.
    static func isWindowSizedView(_ region: Region, windowSide: Double) -> Bool {
        Double(region.width) <= 2 * windowSide && Double(region.height) <= 2 * windowSide
    }

    /// The window a `p<index>` patch id names.
    public func region(ofPatch id: String) throws -> (Region, Int) {
        guard id.hasPrefix("p"), let index = Int(id.dropFirst()), index >= 0, index < patchGrid.patches.count else {
            throw EngineError(.notFound, "no patch \"\(id)\" on slide \(slide.id)")
        }
        let p = patchGrid.patches[index]
        return (
            Region(
                x: Int64(p.minX.rounded(.down)), y: Int64(p.minY.rounded(.down)), width: Int64((p.maxX - p.minX).rounded(.up)),
                height: Int64((p.maxY - p.minY).rounded(.up))), index
        )
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// Runs retraining for all sessions with bounded concurrency (`width` at a time), first come first served, and
/// at most one pending request per session (a burst of labels costs one retrain, on the latest labels).
public final class TrainingPool: Sendable {
    private let state = LockedValue(PoolState())
    private let width: Int

    struct PoolState {
        var fits = Queue()
        var picks = Queue()
        var running = 0
        var pickRunning = false
    }

    /// First come, first served, one entry per session.
    struct Queue {
        var order: [LabellingSession] = []
        var members = Set<ObjectIdentifier>()
        mutating func add(_ session: LabellingSession) -> Bool {
            guard members.insert(ObjectIdentifier(session)).inserted else { return false }
            order.append(session)
            return true
        }
        mutating func next() -> LabellingSession? {
            guard !order.isEmpty else { return nil }
            let session = order.removeFirst()
            members.remove(ObjectIdentifier(session))
            return session
        }
    }

    /// Where fits run (at most `width` at once).
    let fits: any BlockingExecutor
    /// Where pushed picks run, one at a time.
    let picks: any BlockingExecutor

    /// One thread of its own, at the lowest CPU priority, for the pushed picks: they are advice, and under load
    /// there is always one to compute (a k-center pass per refit), so on the daemon's blocking pool they held one of
    /// its threads for good and the fits queued on the other (measured: label -> suggestions p95 grew to 91 ms
    /// within 5 minutes of 100 annotators). Niced, the pass takes only the CPU that fits and acks leave.
    public static let lowPriorityPicks = ThreadExecutor(threads: 1, nice: 19, name: "hali-picks")

    /// - Parameters:
    ///   - width: fits at once. Picks do not count: they run one at a time on `picks`.
    ///   - fits: the executor for fits (the daemon passes its blocking pool).
    public init(
        width: Int = ProcessInfo.processInfo.activeProcessorCount, fits: any BlockingExecutor = ThreadExecutor.shared,
        picks: any BlockingExecutor = TrainingPool.lowPriorityPicks
    ) {
        self.width = max(1, width)
        self.fits = fits
        self.picks = picks
    }

    /// Asks for a refit (the fit, then Predictions pushed to the session's subscribers).
    func request(_ session: LabellingSession) {
        if state.withLock({ $0.fits.add(session) }) { pump() }
    }

    /// Asks for a next-patch pick to push: advice, coalesced per session.
    func requestPick(_ session: LabellingSession) {
        if state.withLock({ $0.picks.add(session) }) { pump() }
    }

    private func pump() {
        let (fit, pick) = state.withLock { s -> (LabellingSession?, LabellingSession?) in
            var fit: LabellingSession?
            if s.running < width, let session = s.fits.next() {
                s.running += 1
                fit = session
            }
            var pick: LabellingSession?
            if !s.pickRunning, let session = s.picks.next() {
                s.pickRunning = true
                pick = session
            }
            return (fit, pick)
        }
        if let fit {
            Task {
                await fit.retrain()
                self.state.withLock { $0.running -= 1 }
                self.pump()
            }
        }
        if let pick {
            Task {
                await pick.pushPick()
                self.state.withLock { $0.pickRunning = false }
                self.pump()
            }
        }
        if fit != nil { pump() }
    }

    /// Requests waiting or running, for status.
    public var backlog: Int { state.withLock { $0.fits.order.count + $0.picks.order.count + $0.running + ($0.pickRunning ? 1 : 0) } }
}
