import Foundation
import HaliCore
import HaliEngine
import HaliLearning
import HaliWire

// The one place where the engine's types meet the protocol's messages, in both directions. The engine knows
// nothing of protobuf; what a field means on the wire (0 = none, open enumerations) is settled here.

extension ErrorCode {
    init(_ code: EngineError.Code) {
        switch code {
        case .invalidArgument: self = .invalidArgument
        case .notFound: self = .notFound
        case .permissionDenied: self = .permissionDenied
        case .resourceExhausted: self = .resourceExhausted
        case .internal: self = .internal
        }
    }
}

extension SlideInfo {
    init(_ slide: ServedSlide) {
        self.init(
            id: slide.id, name: (slide.slide.path as NSString).lastPathComponent, width: slide.slide.width, height: slide.slide.height,
            mppX: slide.micronsPerPixel, mppY: slide.micronsPerPixel, levelCount: UInt32(slide.slide.levelCount), vendor: slide.slide.vendor,
            cellCount: UInt64(slide.table.count), ingested: true, levelDownsamples: slide.slide.levelDownsamples)
    }
}

extension SessionState {
    init(_ snapshot: SessionSnapshot, slide: ServedSlide) {
        self.init(
            sessionID: snapshot.sessionID, slide: SlideInfo(slide), task: snapshot.task.name,
            classes: snapshot.task.classes.map { ClassDef(name: $0.name, color: $0.color, key: $0.key) },
            labelsDone: UInt32(clamping: snapshot.labelsDone), modelVersion: snapshot.modelVersion,
            validationAccuracy: snapshot.validationAccuracy, currentRegion: snapshot.currentRegion, lastAckedSeq: snapshot.lastClientSeq)
    }
}

extension Cell {
    init(_ view: CellView, annotator: String) {
        self.init(
            id: view.id, centroid: view.centroid, bbox: view.bbox, contour: view.contour,
            label: view.label.map { CellLabel(className: $0, source: .manual, annotator: annotator) },
            suggestion: view.suggestion.map { Suggestion(className: $0.className, confidence: $0.confidence) }, areaUm2: view.areaMicrons2)
    }
}

extension LabelCommand {
    init(_ event: LabelEvent) {
        let origin: LabelOrigin =
            switch event.source {
            case .acceptedSuggestion: .accepted
            case .correctedSuggestion: .corrected
            case .imported: .imported
            case .manual, .unspecified: .manual
            }
        self.init(
            clientSeq: event.clientSeq, cellID: event.cellID, className: event.className, origin: origin, clientTimeMs: event.clientTimeMs,
            modelVersionShown: event.modelVersionShown)
    }
}

extension UndoCommand {
    /// `cell_id` 0 on the wire: the session's most recent labelled cell.
    init(_ undo: Undo) { self.init(clientSeq: undo.clientSeq, cellID: undo.cellID == 0 ? nil : undo.cellID) }
}

extension LabelAck {
    /// Every receipt is durable: the engine returns one only after the store's commit.
    init(_ receipt: LabelReceipt) {
        self.init(clientSeq: receipt.clientSeq, cellID: receipt.cellID, durable: true, eventID: receipt.eventID, serverTimeMs: receipt.serverTimeMs)
    }
}

/// The protocol's strategies and the engine's, one pair each: one table serves both directions.
private let strategyPairs: [(wire: Strategy, engine: PickStrategy)] = [
    (.default, .default), (.coreset, .coreset), (.entropy, .entropy), (.margin, .margin), (.random, .random),
]

extension PickStrategy {
    init(_ strategy: Strategy) { self = strategyPairs.first { $0.wire == strategy }!.engine }
}

extension Strategy {
    init(_ strategy: PickStrategy) { self = strategyPairs.first { $0.engine == strategy }!.wire }
}

extension NextPatchPick {
    init(_ pick: PatchPick) {
        self.init(
            patchID: pick.patchID, region: pick.region, strategy: Strategy(pick.strategy), reason: pick.reason,
            subsetCells: UInt32(clamping: pick.subsetCells), cellsInRegion: UInt32(clamping: pick.cellsInRegion))
    }
}

extension Envelope {
    /// A session's push as the message sent to each subscriber.
    init(_ push: SessionPush) {
        switch push {
        case .predictions(let update):
            self.init(
                .predictions(
                    Predictions(
                        modelVersion: update.modelVersion, validationAccuracy: update.validationAccuracy,
                        labelsUsed: UInt32(clamping: update.labelsUsed),
                        region: update.region,
                        predictions: update.suggestions.map { CellPrediction(cellID: $0.cellID, className: $0.className, confidence: $0.confidence) })
                ))
        case .pick(let pick):
            self.init(.nextPatchPick(NextPatchPick(pick)))
        }
    }
}

extension PatchRequest {
    init(_ request: GetPatch) throws(EngineError) {
        let target: Target
        switch request.target {
        case .region(let region): target = .region(region)
        case .patchID(let id): target = .window(id)
        case nil: throw EngineError(.invalidArgument, "get_patch needs a region or a patch_id")
        }
        self.init(
            target: target, level: Int(request.level), includePixels: request.includePixels, includeContours: request.includeContours,
            encoding: try PixelEncoding(request.pixelFormat, quality: request.jpegQuality))
    }
}

extension PixelEncoding {
    /// The client's choice of pixel format; NONE means RGB8, as it did before JPEG existed.
    init(_ format: PixelFormat, quality: UInt32) throws(EngineError) {
        switch format {
        case .none, .rgb8: self = .rgb8
        case .jpeg:
            guard quality <= 100 else { throw EngineError(.invalidArgument, "jpeg_quality \(quality) is outside 1…100 (0 = default)") }
            self = .jpeg(quality: quality == 0 ? PixelEncoding.defaultJPEGQuality : Int(quality))
        }
    }

    var pixelFormat: PixelFormat {
        switch self {
        case .rgb8: .rgb8
        case .jpeg: .jpeg
        }
    }
}

extension GalleryRequest {
    init(_ request: GetGallery) throws(EngineError) {
        self.init(
            className: request.className, maxCells: request.maxCells == 0 ? GalleryRequest.defaultCells : Int(request.maxCells),
            offset: Int(request.offset), leastConfidentFirst: request.order == .leastConfident,
            cropMicrons: request.cropMicrons == 0 ? GalleryRequest.defaultCropMicrons : request.cropMicrons,
            encoding: try PixelEncoding(request.pixelFormat, quality: request.jpegQuality), includeContours: request.includeContours)
    }
}

extension Gallery {
    init(_ view: GalleryView, annotator: String) {
        self.init(
            className: view.className, modelVersion: view.modelVersion, total: UInt64(view.total), offset: UInt32(clamping: view.offset),
            crops: view.crops.map { Patch($0, annotator: annotator) }, cellIDs: view.cellIDs,
            pickStrategy: view.pickStrategy.map(CellPickStrategy.init) ?? .default)
    }
}

extension CellPicksRequest {
    init(_ request: GetCellPicks) throws(EngineError) {
        self.init(
            strategy: CellStrategy(request.strategy), maxCells: request.maxCells == 0 ? GalleryRequest.defaultCells : Int(request.maxCells),
            cropMicrons: request.cropMicrons == 0 ? GalleryRequest.defaultCropMicrons : request.cropMicrons,
            encoding: try PixelEncoding(request.pixelFormat, quality: request.jpegQuality), includeContours: request.includeContours,
            skip: request.skipCellIDs)
    }
}

/// The protocol's cell-pick strategies and the learner's, one pair each (DEFAULT has none: the session's own).
private let cellStrategyPairs: [(wire: CellPickStrategy, learner: CellStrategy)] = [
    (.coreset, .coreset), (.typiclust, .typiclust), (.probcover, .probcover), (.margin, .margin), (.entropy, .entropy), (.random, .random),
    (.typiclustMargin, .typiclustThenMargin),
]

extension CellStrategy {
    /// nil for DEFAULT: the session's own.
    init?(_ wire: CellPickStrategy) {
        guard let pair = cellStrategyPairs.first(where: { $0.wire == wire }) else { return nil }
        self = pair.learner
    }
}

extension CellPickStrategy {
    init(_ strategy: CellStrategy) { self = cellStrategyPairs.first { $0.learner == strategy }!.wire }
}

extension Patch {
    init(_ view: PatchView, annotator: String) {
        self.init(
            patchID: view.windowID, region: view.region, level: UInt32(view.level), downsample: view.downsample, mpp: view.micronsPerPixel,
            width: UInt32(view.width), height: UInt32(view.height), pixelFormat: view.pixels == nil ? .none : view.encoding.pixelFormat,
            pixels: view.pixels ?? [],
            cells: view.cells.map { Cell($0, annotator: annotator) }, modelVersion: view.modelVersion)
    }
}
