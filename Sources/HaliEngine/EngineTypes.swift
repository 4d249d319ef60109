public import HaliCore
public import HaliLearning

// What the engine takes and gives: its own types, so it knows nothing of the wire protocol. HaliServer maps them
// to and from protobuf messages (WireMapping.swift); a test or a tool can drive a session with them directly.

/// Why the engine refused a request. The codes are the engine's; the server maps them onto the protocol's.
public struct EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The request names something malformed or out of range.
        case invalidArgument
        /// The request names a slide, task, cell or patch that does not exist.
        case notFound
        /// The annotator may not open this slide or task.
        case permissionDenied
        /// The answer would be larger than allowed.
        case resourceExhausted
        /// A bug or a broken store: never the client's fault.
        case `internal`
    }

    public var code: Code
    public var message: String
    public var description: String { message }
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// One cell as a session shows it: where it is, its outline, the annotator's label and the model's suggestion.
public struct CellView: Sendable, Equatable {
    public var id: UInt64
    public var centroid: Point
    public var bbox: Region
    /// Outline as x0, y0, x1, y1, … in level-0 pixels; empty when not asked for.
    public var contour: [Float]
    /// This annotator's class for the cell, if labelled.
    public var label: String?
    public var suggestion: Suggestion?
    public var areaMicrons2: Float

    public struct Suggestion: Sendable, Equatable {
        public var className: String
        public var confidence: Float
    }
}

/// An annotator's label for one cell.
public struct LabelCommand: Sendable, Equatable {
    /// The client's sequence number: strictly increasing per session, from 1 (resends are acknowledged again).
    public var clientSeq: UInt64
    public var cellID: UInt64
    public var className: String
    public var origin: LabelOrigin
    public var clientTimeMs: Int64
    /// The model version whose suggestion the annotator saw (0: none).
    public var modelVersionShown: UInt32
    public init(clientSeq: UInt64, cellID: UInt64, className: String, origin: LabelOrigin, clientTimeMs: Int64, modelVersionShown: UInt32 = 0) {
        self.clientSeq = clientSeq
        self.cellID = cellID
        self.className = className
        self.origin = origin
        self.clientTimeMs = clientTimeMs
        self.modelVersionShown = modelVersionShown
    }
}

/// Reverts a cell's latest label; `cellID` nil: the session's most recent labelled cell.
public struct UndoCommand: Sendable, Equatable {
    public var clientSeq: UInt64
    public var cellID: UInt64?
    public init(clientSeq: UInt64, cellID: UInt64? = nil) {
        self.clientSeq = clientSeq
        self.cellID = cellID
    }
}

/// A label or undo stored durably (returned only after the store's commit).
public struct LabelReceipt: Sendable, Equatable {
    public var clientSeq: UInt64
    public var cellID: UInt64
    public var eventID: UInt64
    public var serverTimeMs: Int64
}

/// Where a session stands.
public struct SessionSnapshot: Sendable, Equatable {
    public var sessionID: String
    public var task: TaskDefinition
    public var labelsDone: Int
    public var modelVersion: UInt32
    /// NaN until a model with a validation split exists.
    public var validationAccuracy: Double
    public var currentRegion: Region?
    public var lastClientSeq: UInt64

    public static func == (a: Self, b: Self) -> Bool {
        a.sessionID == b.sessionID && a.task.name == b.task.name && a.labelsDone == b.labelsDone && a.modelVersion == b.modelVersion
            && a.validationAccuracy.bitPattern == b.validationAccuracy.bitPattern && a.currentRegion == b.currentRegion
            && a.lastClientSeq == b.lastClientSeq
    }
}

/// How the next patch is chosen.
public enum PickStrategy: Sendable, Equatable, CaseIterable {
    /// The session's default (Coreset).
    case `default`
    /// The window holding most of the k-center greedy subset (the paper's).
    case coreset
    /// The window holding most of the highest-entropy cells.
    case entropy
    /// The window holding most of the smallest-margin cells.
    case margin
    /// A random window not yet done.
    case random
}

/// The next patch to label, and why.
public struct PatchPick: Sendable, Equatable {
    /// `p<index>`: names the window for GetPatch.
    public var patchID: String
    public var region: Region
    public var strategy: PickStrategy
    public var reason: String
    /// How many of the strategy's picked cells lie in the window.
    public var subsetCells: Int
    public var cellsInRegion: Int
}

/// The model's suggestions for the annotator's current region, after a refit.
public struct PredictionUpdate: Sendable, Equatable {
    public var modelVersion: UInt32
    public var validationAccuracy: Double
    public var labelsUsed: Int
    public var region: Region
    public var suggestions: [(cellID: UInt64, className: String, confidence: Float)]

    public static func == (a: Self, b: Self) -> Bool {
        a.modelVersion == b.modelVersion && a.validationAccuracy.bitPattern == b.validationAccuracy.bitPattern && a.labelsUsed == b.labelsUsed
            && a.region == b.region && a.suggestions.elementsEqual(b.suggestions) { $0 == $1 }
    }
}

/// What a session pushes to its subscribers without being asked.
public enum SessionPush: Sendable, Equatable {
    case predictions(PredictionUpdate)
    case pick(PatchPick)
}

/// Where a session's pushes go (in the daemon, a connection's outbound side).
public protocol SessionSubscriber: AnyObject, Sendable {
    func push(_ update: SessionPush) async
}

/// What a GetPatch asks of a session: a region of the slide or a window the learner picked, the pyramid level to read
/// pixels at, and whether to read pixels and outlines.
public struct PatchRequest: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case region(Region)
        /// A window's id as a pick named it (`p<index>`); seeing it marks the window visited.
        case window(String)
    }
    public var target: Target
    public var level: Int
    public var includePixels: Bool
    public var includeContours: Bool
    public var encoding: PixelEncoding

    public init(target: Target, level: Int = 0, includePixels: Bool = false, includeContours: Bool = false, encoding: PixelEncoding = .rgb8) {
        self.target = target
        self.level = level
        self.includePixels = includePixels
        self.includeContours = includeContours
        self.encoding = encoding
    }
}

/// A patch as a session shows it: the region, its pixels when asked, and its cells with labels and suggestions.
public struct PatchView: Sendable {
    /// The window's id when the request named one, else "".
    public var windowID: String
    /// Level-0 pixels.
    public var region: Region
    public var level: Int
    public var downsample: Double
    /// Microns per pixel of `pixels`.
    public var micronsPerPixel: Double
    /// `width` × `height` pixels in `encoding` (RGB8: row-major, 3 bytes each); nil when not asked for.
    public var pixels: [UInt8]?
    public var encoding: PixelEncoding
    public var width: Int
    public var height: Int
    public var cells: [CellView]
    public var modelVersion: UInt32
}

/// What the review gallery asks of a session: unlabelled cells the model suggests as one class, each as a crop.
public struct GalleryRequest: Sendable, Equatable {
    public var className: String
    /// Crops per page, 1…`GalleryRequest.maxCellsLimit`.
    public var maxCells: Int
    /// Cells of the order to skip (left undecided on earlier pages).
    public var offset: Int
    /// Least confident first (the cells most likely wrong), else most confident first.
    public var leastConfidentFirst: Bool
    /// Side of each square crop in microns.
    public var cropMicrons: Double
    public var encoding: PixelEncoding
    public var includeContours: Bool

    public static let maxCellsLimit = 64
    public static let defaultCells = 24
    public static let defaultCropMicrons = 24.0
    public static let maxCropMicrons = 200.0

    public init(
        className: String, maxCells: Int = GalleryRequest.defaultCells, offset: Int = 0, leastConfidentFirst: Bool = true,
        cropMicrons: Double = GalleryRequest.defaultCropMicrons, encoding: PixelEncoding = .rgb8, includeContours: Bool = false
    ) {
        self.className = className
        self.maxCells = maxCells
        self.offset = offset
        self.leastConfidentFirst = leastConfidentFirst
        self.cropMicrons = cropMicrons
        self.encoding = encoding
        self.includeContours = includeContours
    }
}

/// What a request for the learner's cell picks asks of a session: the next cells to label anywhere on the slide, each
/// as a crop like the gallery's.
public struct CellPicksRequest: Sendable, Equatable {
    /// nil: the session's default (`SessionSettings.cellStrategy`).
    public var strategy: CellStrategy?
    /// Crops, 1…`GalleryRequest.maxCellsLimit`.
    public var maxCells: Int
    /// Side of each square crop in microns.
    public var cropMicrons: Double
    public var encoding: PixelEncoding
    public var includeContours: Bool
    /// Cells the annotator passed over: not picked this time (at most `maxSkipped`).
    public var skip: [UInt64]

    public static let maxSkipped = 4096

    public init(
        strategy: CellStrategy? = nil, maxCells: Int = GalleryRequest.defaultCells, cropMicrons: Double = GalleryRequest.defaultCropMicrons,
        encoding: PixelEncoding = .rgb8, includeContours: Bool = false, skip: [UInt64] = []
    ) {
        self.strategy = strategy
        self.maxCells = maxCells
        self.cropMicrons = cropMicrons
        self.encoding = encoding
        self.includeContours = includeContours
        self.skip = skip
    }
}

/// One page of the review gallery, or of the learner's cell picks.
public struct GalleryView: Sendable {
    /// The suggested class the page reviews; "" for cell picks.
    public var className: String
    /// For cell picks: the strategy that chose them, after fallbacks (nil for a class page).
    public var pickStrategy: CellStrategy?
    /// The model whose suggestions the crops carry; 0: no model yet (a class page then has no crops).
    public var modelVersion: UInt32
    /// Unlabelled cells the model suggests as `className`; for cell picks, unlabelled cells.
    public var total: Int
    public var offset: Int
    /// Level-0 pixels around each cell, with the cells each covers.
    public var crops: [PatchView]
    /// `crops[i]` is centred on cell `cellIDs[i]`.
    public var cellIDs: [UInt64]
}
