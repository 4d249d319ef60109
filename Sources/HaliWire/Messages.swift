public import HaliCore

/// Swift values for every message of protocol v1 (`Proto/hali.proto`).
///
/// These are plain values: the rest of HALI never touches protobuf-c structs. `WireCodec` converts an
/// `Envelope` to and from its protobuf-c bytes. Coordinates are level-0 pixels, x = column, y = row.

/// The version of `Proto/hali.proto` this build speaks. See docs/protocol.md, "Versioning".
public let protocolVersion: UInt32 = 1

/// Default and hard ceiling for one frame's body, in bytes.
public let defaultMaxFrameBytes = 16 << 20

public struct Envelope: Sendable, Equatable {
    public var requestID: UInt64
    public var body: Body

    public init(requestID: UInt64 = 0, _ body: Body) {
        self.requestID = requestID
        self.body = body
    }
}

/// One case per `oneof body` member of `Envelope`.
public enum Body: Sendable, Equatable {
    // client -> daemon
    case hello(Hello)
    case listSlides
    case openSession(OpenSession)
    case getPatch(GetPatch)
    case labelEvent(LabelEvent)
    case undo(Undo)
    case nextPatch(NextPatch)
    case bye(Bye)
    case ping(Ping)
    case getStatus
    case exportRequest(ExportRequest)
    case getGallery(GetGallery)
    case getCellPicks(GetCellPicks)
    // daemon -> client
    case welcome(Welcome)
    case slideList([SlideInfo])
    case sessionState(SessionState)
    case patch(Patch)
    case labelAck(LabelAck)
    case predictions(Predictions)
    case nextPatchPick(NextPatchPick)
    case error(ErrorReply)
    case pong(Pong)
    case serverStatus(ServerStatus)
    case exportedFile(ExportedFile)
    case gallery(Gallery)

    /// The proto field name, for logs and error messages.
    public var name: String {
        switch self {
        case .hello: "hello"
        case .listSlides: "list_slides"
        case .openSession: "open_session"
        case .getPatch: "get_patch"
        case .labelEvent: "label_event"
        case .undo: "undo"
        case .nextPatch: "next_patch"
        case .bye: "bye"
        case .ping: "ping"
        case .getStatus: "get_status"
        case .exportRequest: "export_request"
        case .getGallery: "get_gallery"
        case .getCellPicks: "get_cell_picks"
        case .welcome: "welcome"
        case .slideList: "slide_list"
        case .sessionState: "session_state"
        case .patch: "patch"
        case .labelAck: "label_ack"
        case .predictions: "predictions"
        case .nextPatchPick: "next_patch_pick"
        case .error: "error"
        case .pong: "pong"
        case .serverStatus: "server_status"
        case .exportedFile: "exported_file"
        case .gallery: "gallery"
        }
    }
}

// MARK: - Shared values

// Region and Point are the domain's (HaliCore), carried as they are.

/// Open enumerations: a value this build does not know decodes to `.unspecified` rather than failing,
/// so a newer peer's additions never break an older one.
public enum LabelSource: UInt32, Sendable, Equatable, CaseIterable {
    case unspecified = 0
    case manual = 1
    case acceptedSuggestion = 2
    case correctedSuggestion = 3
    case imported = 4
}

public enum Strategy: UInt32, Sendable, Equatable, CaseIterable {
    case `default` = 0
    case coreset = 1
    case entropy = 2
    case margin = 3
    case random = 4
}

public enum PixelFormat: UInt32, Sendable, Equatable, CaseIterable {
    case none = 0
    case rgb8 = 1
    case jpeg = 2
}

public enum GalleryOrder: UInt32, Sendable, Equatable, CaseIterable {
    case leastConfident = 0
    case mostConfident = 1
}

public enum CellPickStrategy: UInt32, Sendable, Equatable, CaseIterable {
    case `default` = 0
    case coreset = 1
    case typiclust = 2
    case probcover = 3
    case margin = 4
    case entropy = 5
    case random = 6
    case typiclustMargin = 7
}

public enum ErrorCode: UInt32, Sendable, Equatable, CaseIterable {
    case unspecified = 0
    case malformedFrame = 1
    case frameTooLarge = 2
    case unsupportedVersion = 3
    case unauthenticated = 4
    case permissionDenied = 5
    case notFound = 6
    case invalidArgument = 7
    case noSession = 8
    case unsupportedMessage = 9
    case `internal` = 10
    case unavailable = 11
    case resourceExhausted = 12
}

public struct ClassDef: Sendable, Equatable {
    public var name: String
    public var color: String
    public var key: String
    public init(name: String, color: String = "", key: String = "") {
        self.name = name
        self.color = color
        self.key = key
    }
}

public struct CellLabel: Sendable, Equatable {
    public var className: String
    public var source: LabelSource
    public var annotator: String
    public init(className: String, source: LabelSource, annotator: String = "") {
        self.className = className
        self.source = source
        self.annotator = annotator
    }
}

public struct Suggestion: Sendable, Equatable {
    public var className: String
    public var confidence: Float
    public init(className: String, confidence: Float) {
        self.className = className
        self.confidence = confidence
    }
}

public struct Cell: Sendable, Equatable {
    public var id: UInt64
    public var centroid: Point
    public var bbox: Region
    /// Outline as x0, y0, x1, y1, … in level-0 pixels; empty when not requested.
    public var contour: [Float]
    public var label: CellLabel?
    public var suggestion: Suggestion?
    public var areaUm2: Float
    public init(
        id: UInt64, centroid: Point, bbox: Region, contour: [Float] = [], label: CellLabel? = nil,
        suggestion: Suggestion? = nil, areaUm2: Float = 0
    ) {
        self.id = id
        self.centroid = centroid
        self.bbox = bbox
        self.contour = contour
        self.label = label
        self.suggestion = suggestion
        self.areaUm2 = areaUm2
    }
}

// MARK: - client -> daemon

public struct Hello: Sendable, Equatable {
    public var protocolVersion: UInt32
    public var clientName: String
    public var clientVersion: String
    public var token: String
    public init(protocolVersion: UInt32 = HaliWire.protocolVersion, clientName: String, clientVersion: String = "", token: String) {
        self.protocolVersion = protocolVersion
        self.clientName = clientName
        self.clientVersion = clientVersion
        self.token = token
    }
}

public struct OpenSession: Sendable, Equatable {
    public var slideID: String
    public var task: String
    public init(slideID: String, task: String) {
        self.slideID = slideID
        self.task = task
    }
}

public struct GetPatch: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case region(Region)
        case patchID(String)
    }
    public var target: Target?
    public var level: UInt32
    public var includePixels: Bool
    public var includeContours: Bool
    /// `.none` or `.rgb8`: raw pixels; `.jpeg`: compressed.
    public var pixelFormat: PixelFormat
    /// 1…100; 0 = the daemon's default.
    public var jpegQuality: UInt32
    public init(
        target: Target?, level: UInt32 = 0, includePixels: Bool = false, includeContours: Bool = false, pixelFormat: PixelFormat = .none,
        jpegQuality: UInt32 = 0
    ) {
        self.target = target
        self.level = level
        self.includePixels = includePixels
        self.includeContours = includeContours
        self.pixelFormat = pixelFormat
        self.jpegQuality = jpegQuality
    }
}

public struct LabelEvent: Sendable, Equatable {
    public var clientSeq: UInt64
    public var cellID: UInt64
    public var className: String
    public var source: LabelSource
    public var clientTimeMs: Int64
    public var modelVersionShown: UInt32
    public init(
        clientSeq: UInt64, cellID: UInt64, className: String, source: LabelSource, clientTimeMs: Int64,
        modelVersionShown: UInt32 = 0
    ) {
        self.clientSeq = clientSeq
        self.cellID = cellID
        self.className = className
        self.source = source
        self.clientTimeMs = clientTimeMs
        self.modelVersionShown = modelVersionShown
    }
}

public struct Undo: Sendable, Equatable {
    public var clientSeq: UInt64
    public var cellID: UInt64
    public init(clientSeq: UInt64, cellID: UInt64 = 0) {
        self.clientSeq = clientSeq
        self.cellID = cellID
    }
}

public struct NextPatch: Sendable, Equatable {
    public var strategy: Strategy
    public var patchSizeUm: Double
    public init(strategy: Strategy = .default, patchSizeUm: Double = 0) {
        self.strategy = strategy
        self.patchSizeUm = patchSizeUm
    }
}

public struct Bye: Sendable, Equatable {
    public var reason: String
    public init(reason: String = "") { self.reason = reason }
}

public struct Ping: Sendable, Equatable {
    public var nonce: UInt64
    public var clientTimeNs: Int64
    public init(nonce: UInt64, clientTimeNs: Int64) {
        self.nonce = nonce
        self.clientTimeNs = clientTimeNs
    }
}

// MARK: - daemon -> client

public struct Welcome: Sendable, Equatable {
    public var serverVersion: String
    public var protocolVersion: UInt32
    public var annotator: String
    public var capabilities: [String]
    public var maxFrameBytes: UInt32
    public var serverName: String
    public init(
        serverVersion: String, protocolVersion: UInt32 = HaliWire.protocolVersion, annotator: String,
        capabilities: [String], maxFrameBytes: UInt32, serverName: String
    ) {
        self.serverVersion = serverVersion
        self.protocolVersion = protocolVersion
        self.annotator = annotator
        self.capabilities = capabilities
        self.maxFrameBytes = maxFrameBytes
        self.serverName = serverName
    }
}

public struct SlideInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    public var width: Int64
    public var height: Int64
    public var mppX: Double
    public var mppY: Double
    public var levelCount: UInt32
    public var vendor: String
    public var cellCount: UInt64
    public var ingested: Bool
    /// Level-0 pixels per pixel of each pyramid level; empty when the daemon did not say.
    public var levelDownsamples: [Double]
    public init(
        id: String, name: String, width: Int64, height: Int64, mppX: Double, mppY: Double, levelCount: UInt32,
        vendor: String, cellCount: UInt64 = 0, ingested: Bool = false, levelDownsamples: [Double] = []
    ) {
        self.levelDownsamples = levelDownsamples
        self.id = id
        self.name = name
        self.width = width
        self.height = height
        self.mppX = mppX
        self.mppY = mppY
        self.levelCount = levelCount
        self.vendor = vendor
        self.cellCount = cellCount
        self.ingested = ingested
    }
}

public struct SessionState: Sendable, Equatable {
    public var sessionID: String
    public var slide: SlideInfo?
    public var task: String
    public var classes: [ClassDef]
    public var labelsDone: UInt32
    public var modelVersion: UInt32
    /// NaN when unknown. Compared bitwise in `==` so NaN round trips compare equal.
    public var validationAccuracy: Double
    public var currentRegion: Region?
    public var lastAckedSeq: UInt64
    public init(
        sessionID: String, slide: SlideInfo?, task: String, classes: [ClassDef], labelsDone: UInt32,
        modelVersion: UInt32, validationAccuracy: Double, currentRegion: Region?, lastAckedSeq: UInt64
    ) {
        self.sessionID = sessionID
        self.slide = slide
        self.task = task
        self.classes = classes
        self.labelsDone = labelsDone
        self.modelVersion = modelVersion
        self.validationAccuracy = validationAccuracy
        self.currentRegion = currentRegion
        self.lastAckedSeq = lastAckedSeq
    }
    public static func == (a: SessionState, b: SessionState) -> Bool {
        a.sessionID == b.sessionID && a.slide == b.slide && a.task == b.task && a.classes == b.classes
            && a.labelsDone == b.labelsDone && a.modelVersion == b.modelVersion
            && a.validationAccuracy.bitPattern == b.validationAccuracy.bitPattern
            && a.currentRegion == b.currentRegion && a.lastAckedSeq == b.lastAckedSeq
    }
}

public struct Patch: Sendable, Equatable {
    public var patchID: String
    public var region: Region
    public var level: UInt32
    public var downsample: Double
    public var mpp: Double
    public var width: UInt32
    public var height: UInt32
    public var pixelFormat: PixelFormat
    public var pixels: [UInt8]
    public var cells: [Cell]
    public var modelVersion: UInt32
    public init(
        patchID: String, region: Region, level: UInt32, downsample: Double, mpp: Double, width: UInt32,
        height: UInt32, pixelFormat: PixelFormat, pixels: [UInt8], cells: [Cell], modelVersion: UInt32
    ) {
        self.patchID = patchID
        self.region = region
        self.level = level
        self.downsample = downsample
        self.mpp = mpp
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.pixels = pixels
        self.cells = cells
        self.modelVersion = modelVersion
    }
}

public struct LabelAck: Sendable, Equatable {
    public var clientSeq: UInt64
    public var cellID: UInt64
    public var durable: Bool
    public var eventID: UInt64
    public var serverTimeMs: Int64
    public init(clientSeq: UInt64, cellID: UInt64, durable: Bool, eventID: UInt64, serverTimeMs: Int64) {
        self.clientSeq = clientSeq
        self.cellID = cellID
        self.durable = durable
        self.eventID = eventID
        self.serverTimeMs = serverTimeMs
    }
}

public struct CellPrediction: Sendable, Equatable {
    public var cellID: UInt64
    public var className: String
    public var confidence: Float
    public init(cellID: UInt64, className: String, confidence: Float) {
        self.cellID = cellID
        self.className = className
        self.confidence = confidence
    }
}

public struct Predictions: Sendable, Equatable {
    public var modelVersion: UInt32
    public var validationAccuracy: Double
    public var labelsUsed: UInt32
    public var region: Region?
    public var predictions: [CellPrediction]
    public init(
        modelVersion: UInt32, validationAccuracy: Double, labelsUsed: UInt32, region: Region?,
        predictions: [CellPrediction]
    ) {
        self.modelVersion = modelVersion
        self.validationAccuracy = validationAccuracy
        self.labelsUsed = labelsUsed
        self.region = region
        self.predictions = predictions
    }
    public static func == (a: Predictions, b: Predictions) -> Bool {
        a.modelVersion == b.modelVersion && a.validationAccuracy.bitPattern == b.validationAccuracy.bitPattern
            && a.labelsUsed == b.labelsUsed && a.region == b.region && a.predictions == b.predictions
    }
}

public struct NextPatchPick: Sendable, Equatable {
    public var patchID: String
    public var region: Region
    public var strategy: Strategy
    public var reason: String
    public var subsetCells: UInt32
    public var cellsInRegion: UInt32
    public init(
        patchID: String, region: Region, strategy: Strategy, reason: String, subsetCells: UInt32,
        cellsInRegion: UInt32
    ) {
        self.patchID = patchID
        self.region = region
        self.strategy = strategy
        self.reason = reason
        self.subsetCells = subsetCells
        self.cellsInRegion = cellsInRegion
    }
}

/// The `Error` message of the protocol (named so it does not shadow Swift's `Error`).
public struct ErrorReply: Sendable, Equatable {
    public var code: ErrorCode
    public var message: String
    public var clientSeq: UInt64
    public var fatal: Bool
    public init(code: ErrorCode, message: String, clientSeq: UInt64 = 0, fatal: Bool = false) {
        self.code = code
        self.message = message
        self.clientSeq = clientSeq
        self.fatal = fatal
    }
}

public struct Pong: Sendable, Equatable {
    public var nonce: UInt64
    public var clientTimeNs: Int64
    public var serverTimeNs: Int64
    public init(nonce: UInt64, clientTimeNs: Int64, serverTimeNs: Int64) {
        self.nonce = nonce
        self.clientTimeNs = clientTimeNs
        self.serverTimeNs = serverTimeNs
    }
}

public struct ServerStatus: Sendable, Equatable {
    public var serverVersion: String
    public var protocolVersion: UInt32
    public var uptimeSeconds: Double
    public var connections: UInt32
    public var sessions: UInt32
    public var slides: UInt32
    public var framesReceived: UInt64
    public var framesRejected: UInt64
    public var maxFrameBytes: UInt32
    public var listen: String
    /// Slides left out, each "PATH: REASON".
    public var slidesNotServed: [String]
    /// Indexes seen in the index folder and not served yet, each "PATH: WHY".
    public var slidesPending: [String]
    public init(
        serverVersion: String, protocolVersion: UInt32 = HaliWire.protocolVersion, uptimeSeconds: Double,
        connections: UInt32, sessions: UInt32, slides: UInt32, framesReceived: UInt64, framesRejected: UInt64,
        maxFrameBytes: UInt32, listen: String, slidesNotServed: [String] = [], slidesPending: [String] = []
    ) {
        self.slidesNotServed = slidesNotServed
        self.slidesPending = slidesPending
        self.serverVersion = serverVersion
        self.protocolVersion = protocolVersion
        self.uptimeSeconds = uptimeSeconds
        self.connections = connections
        self.sessions = sessions
        self.slides = slides
        self.framesReceived = framesReceived
        self.framesRejected = framesRejected
        self.maxFrameBytes = maxFrameBytes
        self.listen = listen
    }
}

public struct ExportRequest: Sendable, Equatable {
    public var format: String
    public var consensus: Bool
    public var includeSuggestions: Bool
    public init(format: String, consensus: Bool = false, includeSuggestions: Bool = false) {
        self.format = format
        self.consensus = consensus
        self.includeSuggestions = includeSuggestions
    }
}

public struct GetGallery: Sendable, Equatable {
    public var className: String
    public var maxCells: UInt32
    public var offset: UInt32
    public var order: GalleryOrder
    public var cropMicrons: Double
    public var pixelFormat: PixelFormat
    public var jpegQuality: UInt32
    public var includeContours: Bool
    public init(
        className: String, maxCells: UInt32 = 0, offset: UInt32 = 0, order: GalleryOrder = .leastConfident, cropMicrons: Double = 0,
        pixelFormat: PixelFormat = .none, jpegQuality: UInt32 = 0, includeContours: Bool = false
    ) {
        self.className = className
        self.maxCells = maxCells
        self.offset = offset
        self.order = order
        self.cropMicrons = cropMicrons
        self.pixelFormat = pixelFormat
        self.jpegQuality = jpegQuality
        self.includeContours = includeContours
    }
}

public struct GetCellPicks: Sendable, Equatable {
    public var maxCells: UInt32
    public var strategy: CellPickStrategy
    public var cropMicrons: Double
    public var pixelFormat: PixelFormat
    public var jpegQuality: UInt32
    public var includeContours: Bool
    public var skipCellIDs: [UInt64]
    public init(
        maxCells: UInt32 = 0, strategy: CellPickStrategy = .default, cropMicrons: Double = 0, pixelFormat: PixelFormat = .none,
        jpegQuality: UInt32 = 0, includeContours: Bool = false, skipCellIDs: [UInt64] = []
    ) {
        self.maxCells = maxCells
        self.strategy = strategy
        self.cropMicrons = cropMicrons
        self.pixelFormat = pixelFormat
        self.jpegQuality = jpegQuality
        self.includeContours = includeContours
        self.skipCellIDs = skipCellIDs
    }
}

/// A page of crops: the cells a model suggests as one class (`GetGallery`), or the learner's cell picks
/// (`GetCellPicks`: `pickStrategy` set, `className` empty).
public struct Gallery: Sendable, Equatable {
    public var className: String
    public var modelVersion: UInt32
    public var total: UInt64
    public var offset: UInt32
    public var crops: [Patch]
    public var cellIDs: [UInt64]
    public var pickStrategy: CellPickStrategy
    public init(
        className: String, modelVersion: UInt32, total: UInt64, offset: UInt32, crops: [Patch], cellIDs: [UInt64],
        pickStrategy: CellPickStrategy = .default
    ) {
        self.className = className
        self.modelVersion = modelVersion
        self.total = total
        self.offset = offset
        self.crops = crops
        self.cellIDs = cellIDs
        self.pickStrategy = pickStrategy
    }

    /// Whether the page answers GetCellPicks rather than GetGallery.
    public var isCellPicks: Bool { pickStrategy != .default }
}

public struct ExportedFile: Sendable, Equatable {
    public var format: String
    public var fileName: String
    public var data: [UInt8]
    public var cells: UInt32
    public init(format: String, fileName: String, data: [UInt8], cells: UInt32) {
        self.format = format
        self.fileName = fileName
        self.data = data
        self.cells = cells
    }
}
