public import HaliCore
public import HaliWire

/// Where the client stands with the daemon, as the status line shows it.
public enum ConnectionStatus: Sendable, Equatable {
    /// Trying to connect (attempt 1 is the first).
    case connecting(attempt: Int)
    /// Welcome received; the session is being opened or is open.
    case connected
    /// The connection dropped or failed. `retryInSeconds` nil: the client will not retry (e.g. the token was refused).
    case disconnected(reason: String, retryInSeconds: Int?)
}

/// Everything that drives the client. The I/O shell turns terminal input, signals and network traffic into these.
public enum ClientEvent: Sendable {
    case key(Key)
    case received(Envelope)
    case resize(columns: Int, rows: Int)
    /// A character cell's size in screen pixels changed (font size, or the first report of it).
    case cellPixels(PixelSize)
    case connecting(attempt: Int)
    case connected(Welcome)
    case disconnected(reason: String, retryInSeconds: Int?)
    /// Time passed (the shell sends one a second so rates and countdowns refresh).
    case tick
}

/// A label event or undo that has been issued and whose durable LabelAck has not arrived yet.
public struct PendingLabel: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case label(LabelEvent)
        case undo(Undo)
    }
    public var kind: Kind
    /// Change to the session's labels-done count once the daemon stores it (+1 new label, 0 relabel, −1 undo).
    public var labelsDelta: Int
    /// Sent on the current connection.
    public var sent: Bool
    /// A LabelAck came with durable = false: the daemon has it but has not committed it, so it is kept for
    /// resending after a reconnect unless SessionState.last_acked_seq covers it.
    public var ackedNotDurable: Bool

    public var clientSeq: UInt64 {
        switch kind {
        case .label(let e): e.clientSeq
        case .undo(let u): u.clientSeq
        }
    }

    public var envelopeBody: Body {
        switch kind {
        case .label(let e): .labelEvent(e)
        case .undo(let u): .undo(u)
        }
    }
}

/// The terminal labelling client's state machine: pure (no I/O, no clock of its own).
///
/// Feed it `ClientEvent`s with `handle(_:nowMs:)`; it returns the envelopes to send on the current connection.
/// `screen()` draws the current state into a `ScreenGrid`.
public struct LabelClient: Sendable {
    // MARK: Configuration
    public let slideID: String
    public let task: String
    public var colorMode: ColorMode
    public var strategy: Strategy
    /// NextPatch.patch_size_um: 0 lets the daemon choose.
    public var patchSizeUm: Double
    public private(set) var columns: Int
    public private(set) var rows: Int
    /// How the patch is drawn (see `GraphicsProtocol`); the pixel protocols draw `picture()`, not the grid.
    public let graphics: GraphicsProtocol
    /// A character cell in screen pixels (the pixel protocols size the picture with it).
    public private(set) var cellPixels: PixelSize
    /// The largest picture the terminal accepts (sixel geometry), if it said.
    public let maxPicturePixels: PixelSize?
    /// How pixels should come: JPEG (about a tenth of the bytes) when the daemon offers it, else raw RGB8.
    public let preferredPixels: PixelFormat

    // MARK: Connection and session
    public private(set) var connection: ConnectionStatus = .connecting(attempt: 1)
    public private(set) var welcome: Welcome?
    public private(set) var session: SessionState?
    /// The session is open on the current connection (SessionState received).
    public private(set) var sessionOpen = false
    public private(set) var classes: [ClassDef] = []

    // MARK: Model
    public private(set) var modelVersion: UInt32 = 0
    public private(set) var validationAccuracy: Double = .nan

    // MARK: View
    public private(set) var patch: Patch?
    /// The current patch's cells with this client's labels applied.
    public private(set) var cells: [Cell] = []
    /// Model version of each shown suggestion (Patch.model_version, or a later Predictions).
    public private(set) var suggestionModel: [UInt64: UInt32] = [:]
    public private(set) var selectedCellID: UInt64?
    public private(set) var pick: NextPatchPick?
    /// The region and level the client wants shown (the last GetPatch asked for).
    public private(set) var wantedRegion: Region?
    public private(set) var wantedLevel: UInt32 = 0
    public internal(set) var showHelp = false
    public private(set) var message: String = ""
    public private(set) var messageIsError = false
    public private(set) var thumbnail: Thumbnail?
    /// The patch scaled to the picture area, without overlays (pixel protocols).
    private(set) var basePicture: Picture?
    var pictureGeneration = 0
    /// The review gallery, while it is open (`g`).
    public internal(set) var gallery: GalleryState?
    var galleryRequestID: UInt64?

    // MARK: Labels
    /// The next client_seq to use (strictly increasing per session).
    public private(set) var nextSeq: UInt64 = 1
    /// Issued and not yet durably acknowledged, in client_seq order.
    public private(set) var pending: [PendingLabel] = []
    /// Labels done as of the latest SessionState, plus those acknowledged since.
    public private(set) var labelsDoneBase = 0
    /// This client's labels, newest last, for local undo.
    private var history: [(seq: UInt64, cellID: UInt64, previous: CellLabel?)] = []
    /// Times (ms) of label events made here, for cells per minute.
    private var labelTimes: [Int64] = []
    private var sessionStartMs: Int64?
    public private(set) var nowMs: Int64 = 0

    // MARK: Requests
    private var nextRequestID: UInt64 = 100
    private var openRequestID: UInt64?
    private var patchRequestID: UInt64?
    private var nextPatchRequestID: UInt64?
    /// Request id → client_seq of the LabelEvent/Undo it carried.
    private var seqByRequest: [UInt64: UInt64] = [:]
    private var lastPatchTarget: GetPatch.Target?
    private var retriedCoarser = false
    /// Downsample of each pyramid level, as patches reported them.
    private var downsampleByLevel: [UInt32: Double] = [0: 1]

    // MARK: Quitting
    public private(set) var quitRequested = false
    public private(set) var shouldQuit = false

    public init(
        slideID: String, task: String, columns: Int = 80, rows: Int = 24, colorMode: ColorMode = .trueColor,
        strategy: Strategy = .default, patchSizeUm: Double = 0, graphics: GraphicsProtocol = .blocks,
        cellPixels: PixelSize = PixelSize(width: 8, height: 16), maxPicturePixels: PixelSize? = nil, preferredPixels: PixelFormat = .jpeg
    ) {
        self.preferredPixels = preferredPixels
        self.graphics = graphics
        self.cellPixels = PixelSize(width: max(1, cellPixels.width), height: max(1, cellPixels.height))
        self.maxPicturePixels = maxPicturePixels
        self.slideID = slideID
        self.task = task
        self.columns = columns
        self.rows = rows
        self.colorMode = colorMode
        self.strategy = strategy
        self.patchSizeUm = patchSizeUm
    }

    // MARK: - Derived values

    /// Labels done in the session as the status line shows it (acknowledged plus still pending).
    public var labelsDone: Int { max(0, labelsDoneBase + pending.filter { !$0.ackedNotDurable }.reduce(0) { $0 + $1.labelsDelta }) }

    /// Issued events without any LabelAck yet.
    public var unackedCount: Int { pending.filter { !$0.ackedNotDurable }.count }

    public var isConnected: Bool { connection == .connected }

    /// Cells labelled per minute: labels made here in the last five minutes (or since the session opened, if
    /// sooner; at least half a minute) per minute.
    public var cellsPerMinute: Double {
        guard let start = sessionStartMs else { return 0 }
        let windowMs = Double(min(5 * 60_000, max(30_000, nowMs - start)))
        let since = nowMs - Int64(windowMs)
        let n = labelTimes.reduce(0) { $0 + ($1 >= since ? 1 : 0) }
        return Double(n) / (windowMs / 60_000)
    }

    public var selectedCell: Cell? { selectedCellID.flatMap { id in cells.first { $0.id == id } } }

    /// Cells whose centroid lies in the patch region (those on screen).
    public var cellsInView: [Cell] {
        guard let region = patch?.region else { return [] }
        return cells.filter { Self.contains(region, $0.centroid) }
    }

    /// The suggestion on screen for `cell`: only an unlabelled cell shows its suggestion.
    public func shownSuggestion(_ cell: Cell) -> Suggestion? { cell.label == nil ? cell.suggestion : nil }

    public func classDef(named name: String) -> ClassDef? { classes.first { $0.name == name } }

    public var layout: Layout {
        let aspect = graphics.isPixelProtocol ? Double(cellPixels.height) / Double(cellPixels.width) : 2
        // The gallery's grid is square-ish: laid out as a square patch would be.
        return Layout(columns: columns, rows: rows, patch: gallery == nil ? patch : nil, cellAspect: aspect)
    }

    /// The screen pixels the picture may fill: the image area's cells (pixel protocols), capped by what the
    /// terminal accepts.
    public var pictureBox: PixelSize {
        let l = layout
        var box = PixelSize(width: l.image.width * cellPixels.width, height: l.image.height * cellPixels.height)
        if let cap = maxPicturePixels {
            box.width = min(box.width, cap.width)
            box.height = min(box.height, cap.height)
        }
        return box
    }

    // MARK: - Events

    /// Applies one event at time `nowMs` (Unix epoch ms) and returns the envelopes to send, in order.
    public mutating func handle(_ event: ClientEvent, nowMs: Int64) -> [Envelope] {
        self.nowMs = nowMs
        switch event {
        case .key(let key): return handleKey(key)
        case .received(let envelope): return handleReceived(envelope)
        case .resize(let c, let r):
            columns = max(1, c)
            rows = max(1, r)
            let capacity = gallery?.grid.capacity
            rebuildThumbnail()
            rebuildGalleryMosaic()
            return refitToWindow(galleryCapacityBefore: capacity)
        case .cellPixels(let size):
            guard size.width > 0, size.height > 0, size != cellPixels else { return [] }
            cellPixels = size
            let capacity = gallery?.grid.capacity
            rebuildThumbnail()
            rebuildGalleryMosaic()
            return refitToWindow(galleryCapacityBefore: capacity)
        case .connecting(let attempt):
            connection = .connecting(attempt: attempt)
            return []
        case .connected(let w): return handleConnected(w)
        case .disconnected(let reason, let retry):
            connection = .disconnected(reason: reason, retryInSeconds: retry)
            // A quit waiting for acks keeps waiting: the labels are resent after reconnecting (q again forces it).
            resetConnection()
            return []
        case .tick:
            return []
        }
    }

    /// Nothing is in flight on a new or lost connection; every pending label must go again.
    private mutating func resetConnection() {
        sessionOpen = false
        openRequestID = nil
        patchRequestID = nil
        nextPatchRequestID = nil
        galleryRequestID = nil
        seqByRequest.removeAll()
        for i in pending.indices { pending[i].sent = false }
    }

    private mutating func handleConnected(_ w: Welcome) -> [Envelope] {
        connection = .connected
        welcome = w
        resetConnection()
        guard w.capabilities.contains("labels") else {
            setError("the daemon does not offer labelling sessions (capabilities: \(w.capabilities.joined(separator: ", ")))")
            return []
        }
        let id = takeRequestID()
        openRequestID = id
        return [Envelope(requestID: id, .openSession(OpenSession(slideID: slideID, task: task)))]
    }

    mutating func takeRequestID() -> UInt64 {
        defer { nextRequestID += 1 }
        return nextRequestID
    }

    // MARK: Received

    private mutating func handleReceived(_ envelope: Envelope) -> [Envelope] {
        switch envelope.body {
        case .sessionState(let state):
            guard envelope.requestID == openRequestID || envelope.requestID == 0 else { return [] }
            return sessionOpened(state)
        case .patch(let p):
            guard envelope.requestID == patchRequestID else { return [] }
            patchRequestID = nil
            do {
                install(try Self.decodedPixels(p))
            } catch {
                setError("patch pixels unreadable: \(error)")
            }
            return []
        case .gallery(let page):
            guard envelope.requestID == galleryRequestID else { return [] }
            galleryRequestID = nil
            installGallery(page)
            return []
        case .nextPatchPick(let p):
            // The daemon also streams a pick after each retrain (request id 0): shown as advice, the view stays.
            pick = p
            guard envelope.requestID != 0, envelope.requestID == nextPatchRequestID else { return [] }
            nextPatchRequestID = nil
            if message.hasPrefix("asking for the next patch") { message = "" }
            let target: GetPatch.Target = p.patchID.isEmpty ? .region(p.region) : .patchID(p.patchID)
            wantedRegion = p.region
            wantedLevel = level(for: p.region)
            return [requestPatch(target)]
        case .labelAck(let ack):
            seqByRequest[envelope.requestID] = nil
            acknowledge(ack)
            return drainQuit()
        case .predictions(let p):
            applyPredictions(p)
            return []
        case .error(let e):
            return handleError(e, requestID: envelope.requestID)
        case .welcome, .pong, .serverStatus, .slideList:
            return []
        default:
            return []
        }
    }

    private mutating func sessionOpened(_ state: SessionState) -> [Envelope] {
        openRequestID = nil
        session = state
        sessionOpen = true
        if sessionStartMs == nil { sessionStartMs = nowMs }
        if !state.classes.isEmpty { classes = state.classes }
        modelVersion = state.modelVersion
        validationAccuracy = state.validationAccuracy
        labelsDoneBase = Int(state.labelsDone)
        // What the daemon stored needs no resending; everything else goes again, same client_seq, in order.
        pending.removeAll { $0.clientSeq <= state.lastAckedSeq }
        nextSeq = max(nextSeq, state.lastAckedSeq + 1)
        var out: [Envelope] = []
        for i in pending.indices {
            pending[i].ackedNotDurable = false
            out.append(sendPending(at: i))
        }
        // Where to look: where this client was, else where the session was left, else the daemon's next pick.
        if let region = wantedRegion {
            out.append(requestPatch(.region(region)))
        } else if let region = state.currentRegion, region.width > 0, region.height > 0 {
            wantedRegion = region
            wantedLevel = level(for: region)
            out.append(requestPatch(.region(region)))
        } else {
            out.append(requestNextPatch())
        }
        if !pending.isEmpty { setInfo("resending \(pending.count) unacknowledged label(s)") }
        return out
    }

    private mutating func sendPending(at i: Int) -> Envelope {
        let id = takeRequestID()
        pending[i].sent = true
        seqByRequest[id] = pending[i].clientSeq
        return Envelope(requestID: id, pending[i].envelopeBody)
    }

    private mutating func acknowledge(_ ack: LabelAck) {
        guard let i = pending.firstIndex(where: { $0.clientSeq == ack.clientSeq }) else { return }
        if ack.durable {
            if !pending[i].ackedNotDurable { labelsDoneBase += pending[i].labelsDelta }
            pending.remove(at: i)
        } else if !pending[i].ackedNotDurable {
            labelsDoneBase += pending[i].labelsDelta
            pending[i].ackedNotDurable = true
        }
    }

    private mutating func handleError(_ e: ErrorReply, requestID: UInt64) -> [Envelope] {
        let seq = e.clientSeq != 0 ? e.clientSeq : seqByRequest[requestID]
        seqByRequest[requestID] = nil
        if let seq, let i = pending.firstIndex(where: { $0.clientSeq == seq }) {
            // The daemon refused this label: drop it and take back what it did on screen.
            let item = pending.remove(at: i)
            if case .label = item.kind, let h = history.lastIndex(where: { $0.seq == seq }) {
                let entry = history.remove(at: h)
                setLabel(entry.previous, of: entry.cellID)
            }
            setError("label refused (\(e.code)): \(e.message)")
            return drainQuit()
        }
        if requestID != 0 && requestID == openRequestID {
            openRequestID = nil
            setError("cannot open session \(slideID)/\(task): \(e.code): \(e.message)")
        } else if requestID != 0 && requestID == patchRequestID {
            patchRequestID = nil
            // Too many pixels at that level (the daemon caps a patch's side): try the next coarser level once.
            if e.code == .invalidArgument, !retriedCoarser, let target = lastPatchTarget, wantedLevel + 1 < levelCount {
                retriedCoarser = true
                wantedLevel += 1
                return [requestPatch(target, isRetry: true)]
            }
            setError("patch refused (\(e.code)): \(e.message)")
        } else if requestID != 0 && requestID == galleryRequestID {
            galleryRequestID = nil
            setError("gallery refused (\(e.code)): \(e.message)")
        } else if requestID != 0 && requestID == nextPatchRequestID {
            nextPatchRequestID = nil
            setError("no next patch (\(e.code)): \(e.message)")
        } else {
            setError("daemon: \(e.code): \(e.message)")
        }
        return []
    }

    private mutating func applyPredictions(_ p: Predictions) {
        modelVersion = max(modelVersion, p.modelVersion)
        validationAccuracy = p.validationAccuracy
        let byCell = Dictionary(p.predictions.map { ($0.cellID, $0) }, uniquingKeysWith: { a, _ in a })
        var changed = 0
        for i in cells.indices {
            guard let prediction = byCell[cells[i].id] else { continue }
            cells[i].suggestion = Suggestion(className: prediction.className, confidence: prediction.confidence)
            suggestionModel[cells[i].id] = p.modelVersion
            changed += 1
        }
        setInfo("model v\(p.modelVersion) trained on \(p.labelsUsed) labels; \(changed) suggestions updated")
    }

    private mutating func install(_ p: Patch) {
        patch = p
        if p.downsample > 0 { downsampleByLevel[p.level] = p.downsample }
        cells = p.cells
        wantedRegion = p.region
        wantedLevel = p.level
        suggestionModel = [:]
        for c in p.cells where c.suggestion != nil { suggestionModel[c.id] = p.modelVersion }
        if p.modelVersion > modelVersion { modelVersion = p.modelVersion }
        // Labels issued here and not yet stored may be missing from the daemon's reply: show them anyway.
        for item in pending {
            if case .label(let e) = item.kind, let i = cells.firstIndex(where: { $0.id == e.cellID }) {
                cells[i].label = CellLabel(className: e.className, source: e.source, annotator: welcome?.annotator ?? "")
            }
        }
        if let id = selectedCellID, cellsInView.contains(where: { $0.id == id }) {
            // keep the selection
        } else {
            selectedCellID =
                nearestCell(
                    to: Point(
                        x: Double(p.region.x) + Double(p.region.width) / 2,
                        y: Double(p.region.y) + Double(p.region.height) / 2),
                    preferUnlabelled: true)?.id
        }
        rebuildThumbnail()
    }

    mutating func rebuildThumbnail() {
        guard let patch else {
            thumbnail = nil
            basePicture = nil
            return
        }
        let l = layout
        if graphics.isPixelProtocol {
            thumbnail = nil
            pictureGeneration += 1
            basePicture = Picture(patch: patch, fitting: pictureBox, generation: pictureGeneration)
        } else {
            thumbnail = Thumbnail(patch: patch, columns: l.image.width, rows: l.image.height)
        }
    }

    // MARK: Keys

    private mutating func handleKey(_ key: Key) -> [Envelope] {
        if showHelp {
            // Any key closes the help overlay; q still quits.
            showHelp = false
            if key == .char("q") { return quit() }
            return []
        }
        if gallery != nil { return handleGalleryKey(key) }
        if case .char(let ch) = key, let cls = classes.first(where: { $0.key == String(ch) }) {
            return labelSelected(as: cls.name)
        }
        switch key {
        case .char("g"): return openGallery()
        case .char("p"): return openPicks()
        case .char("q"), .ctrl("c"): return quit()
        case .char("?"):
            showHelp = true
        case .up, .char("k"): moveSelection(dx: 0, dy: -1)
        case .down, .char("j"): moveSelection(dx: 0, dy: 1)
        case .left, .char("h"): moveSelection(dx: -1, dy: 0)
        case .right, .char("l"): moveSelection(dx: 1, dy: 0)
        case .enter, .space: return acceptSelected()
        case .char("A"): return acceptAllInView()
        case .char("u"): return undo()
        case .char("n"): return nextPatch()
        case .shiftUp, .char("w"), .char("W"): return pan(dx: 0, dy: -1)
        case .shiftDown, .char("s"), .char("S"): return pan(dx: 0, dy: 1)
        case .shiftLeft, .char("a"): return pan(dx: -1, dy: 0)
        case .shiftRight, .char("d"), .char("D"): return pan(dx: 1, dy: 0)
        case .char("+"), .char("="): return zoom(in: true)
        case .char("-"), .char("_"): return zoom(in: false)
        case .tab: moveSelectionToNextUnlabelled()
        case .ctrl("l"): break  // redraw: the shell repaints everything after any event
        case .escape: message = ""
        default: break
        }
        return []
    }

    mutating func quit() -> [Envelope] {
        if quitRequested || pending.allSatisfy(\.ackedNotDurable) {
            shouldQuit = true
        } else {
            quitRequested = true
            setInfo("waiting for \(pending.count) label ack(s) before quitting; q again quits now")
        }
        return []
    }

    private mutating func drainQuit() -> [Envelope] {
        if quitRequested && pending.allSatisfy(\.ackedNotDurable) { shouldQuit = true }
        return []
    }

    // MARK: Labelling

    private mutating func labelSelected(as className: String) -> [Envelope] {
        guard let cell = selectedCell else {
            setError("no cell selected")
            return []
        }
        let source: LabelSource
        var shownVersion: UInt32 = 0
        if let s = shownSuggestion(cell) {
            source = s.className == className ? .acceptedSuggestion : .correctedSuggestion
            shownVersion = suggestionModel[cell.id] ?? patch?.modelVersion ?? 0
        } else {
            source = .manual
        }
        let out = issueLabel(cell: cell, className: className, source: source, modelVersionShown: shownVersion)
        moveSelectionToNextUnlabelled()
        return out
    }

    private mutating func acceptSelected() -> [Envelope] {
        guard let cell = selectedCell else {
            setError("no cell selected")
            return []
        }
        guard let s = shownSuggestion(cell) else {
            setError(cell.label != nil ? "cell already labelled (press a class key to change it)" : "no suggestion for this cell")
            return []
        }
        let out = issueLabel(
            cell: cell, className: s.className, source: .acceptedSuggestion,
            modelVersionShown: suggestionModel[cell.id] ?? patch?.modelVersion ?? 0)
        moveSelectionToNextUnlabelled()
        return out
    }

    private mutating func acceptAllInView() -> [Envelope] {
        var out: [Envelope] = []
        var accepted = 0
        for cell in cellsInView {
            guard let s = shownSuggestion(cell) else { continue }
            out += issueLabel(
                cell: cell, className: s.className, source: .acceptedSuggestion,
                modelVersionShown: suggestionModel[cell.id] ?? patch?.modelVersion ?? 0)
            accepted += 1
        }
        if accepted == 0 { setError("no suggestions in view") } else { setInfo("accepted \(accepted) suggestion(s)") }
        return out
    }

    mutating func issueLabel(cell: Cell, className: String, source: LabelSource, modelVersionShown: UInt32) -> [Envelope] {
        let seq = nextSeq
        nextSeq += 1
        let event = LabelEvent(
            clientSeq: seq, cellID: cell.id, className: className, source: source,
            clientTimeMs: nowMs, modelVersionShown: modelVersionShown)
        history.append((seq, cell.id, cell.label))
        setLabel(CellLabel(className: className, source: source, annotator: welcome?.annotator ?? ""), of: cell.id)
        labelTimes.append(nowMs)
        if labelTimes.count > 4096 { labelTimes.removeFirst(labelTimes.count - 2048) }
        pending.append(PendingLabel(kind: .label(event), labelsDelta: cell.label == nil ? 1 : 0, sent: false, ackedNotDurable: false))
        if !message.isEmpty && !messageIsError { message = "" }
        return sendIfOpen(pending.count - 1)
    }

    mutating func undo() -> [Envelope] {
        guard let last = history.popLast() else {
            setError("nothing to undo")
            return []
        }
        let seq = nextSeq
        nextSeq += 1
        setLabel(last.previous, of: last.cellID)
        gallery?.decided[last.cellID] = last.previous?.className
        pending.append(
            PendingLabel(
                kind: .undo(Undo(clientSeq: seq, cellID: last.cellID)),
                labelsDelta: last.previous == nil ? -1 : 0, sent: false, ackedNotDurable: false))
        if cells.contains(where: { $0.id == last.cellID }) { selectedCellID = last.cellID }
        setInfo("undone: cell \(last.cellID)")
        return sendIfOpen(pending.count - 1)
    }

    private mutating func sendIfOpen(_ i: Int) -> [Envelope] {
        guard isConnected && sessionOpen else { return [] }
        return [sendPending(at: i)]
    }

    private mutating func setLabel(_ label: CellLabel?, of cellID: UInt64) {
        guard let i = cells.firstIndex(where: { $0.id == cellID }) else { return }
        cells[i].label = label
    }

    // MARK: Navigation

    /// Moves to the nearest cell in a direction: among cells ahead along the axis, the one minimising the distance
    /// along it plus twice the sideways offset.
    public mutating func moveSelection(dx: Int, dy: Int) {
        let visible = cellsInView
        guard let current = selectedCell ?? visible.first else { return }
        if selectedCell == nil {
            selectedCellID = current.id
            return
        }
        var best: (Double, UInt64)?
        for c in visible where c.id != current.id {
            let ox = c.centroid.x - current.centroid.x
            let oy = c.centroid.y - current.centroid.y
            let along = ox * Double(dx) + oy * Double(dy)
            let side = abs(ox * Double(dy)) + abs(oy * Double(dx))
            guard along > 0 else { continue }
            let score = along + 2 * side
            if best == nil || score < best!.0 { best = (score, c.id) }
        }
        if let best { selectedCellID = best.1 }
    }

    private mutating func moveSelectionToNextUnlabelled() {
        guard let current = selectedCell else { return }
        if let next = nearestCell(to: current.centroid, preferUnlabelled: true, excluding: current.id), next.label == nil {
            selectedCellID = next.id
        }
    }

    private func nearestCell(to point: Point, preferUnlabelled: Bool, excluding: UInt64? = nil) -> Cell? {
        let visible = cellsInView.filter { $0.id != excluding }
        let pool = preferUnlabelled && visible.contains(where: { $0.label == nil }) ? visible.filter { $0.label == nil } : visible
        return pool.min { a, b in
            let da = (a.centroid.x - point.x) * (a.centroid.x - point.x) + (a.centroid.y - point.y) * (a.centroid.y - point.y)
            let db = (b.centroid.x - point.x) * (b.centroid.x - point.x) + (b.centroid.y - point.y) * (b.centroid.y - point.y)
            return da != db ? da < db : a.id < b.id
        }
    }

    // MARK: Pan, zoom, next patch

    mutating func requestPatch(_ target: GetPatch.Target, isRetry: Bool = false) -> Envelope {
        let id = takeRequestID()
        patchRequestID = id
        lastPatchTarget = target
        if !isRetry { retriedCoarser = false }
        // Outlines need the contours; half-blocks draw boxes, so they do without.
        let getPatch = GetPatch(
            target: target, level: wantedLevel, includePixels: true, includeContours: graphics.isPixelProtocol, pixelFormat: pixelFormatToAsk)
        return Envelope(requestID: id, .getPatch(getPatch))
    }

    private mutating func requestNextPatch() -> Envelope {
        let id = takeRequestID()
        nextPatchRequestID = id
        return Envelope(requestID: id, .nextPatch(NextPatch(strategy: strategy, patchSizeUm: patchSizeUm)))
    }

    private mutating func nextPatch() -> [Envelope] {
        guard isConnected && sessionOpen else {
            setError("not connected")
            return []
        }
        setInfo("asking for the next patch…")
        return [requestNextPatch()]
    }

    /// Pans by half the region in a direction.
    private mutating func pan(dx: Int, dy: Int) -> [Envelope] {
        guard let base = wantedRegion ?? patch?.region else { return [] }
        var r = base
        r.x += Int64(dx) * max(1, r.width / 2)
        r.y += Int64(dy) * max(1, r.height / 2)
        r = clampToSlide(r)
        guard r != base else {
            setInfo("at the edge of the slide")
            return []
        }
        return show(region: r, level: wantedLevel)
    }

    /// Zooming in halves the region (centre kept), zooming out doubles it; the pyramid level follows (see
    /// `level(for:)`).
    private mutating func zoom(in zoomIn: Bool) -> [Envelope] {
        guard let base = wantedRegion ?? patch?.region else { return [] }
        let cx = base.x + base.width / 2
        let cy = base.y + base.height / 2
        var w = zoomIn ? base.width / 2 : base.width * 2
        var h = zoomIn ? base.height / 2 : base.height * 2
        if let slide = session?.slide, slide.width > 0, slide.height > 0 {
            // Never wider than the slide; keep the aspect ratio.
            let f = min(1, Double(slide.width) / Double(w), Double(slide.height) / Double(h))
            w = Int64(Double(w) * f)
            h = Int64(Double(h) * f)
        }
        guard w >= 32, h >= 32 else {
            setInfo("zoomed in as far as it goes")
            return []
        }
        let r = clampToSlide(Region(x: cx - w / 2, y: cy - h / 2, width: w, height: h))
        let level = level(for: r)
        guard r != base || level != wantedLevel else { return [] }
        return show(region: r, level: level)
    }

    /// After the window changed size: the patch again where the new size wants another pyramid level (a larger
    /// window must not show a coarser level stretched), and a gallery page that fills the new grid. A page larger
    /// than the new grid is cut to it at once, so that Enter never accepts a crop that is not on screen.
    private mutating func refitToWindow(galleryCapacityBefore: Int?) -> [Envelope] {
        if var state = gallery {
            guard let page = state.page, state.grid.capacity != galleryCapacityBefore else { return [] }
            if page.cellIDs.count > state.grid.capacity {
                state.page?.cellIDs = Array(page.cellIDs.prefix(state.grid.capacity))
                state.page?.crops = Array(page.crops.prefix(state.grid.capacity))
                state.tiles = Array(state.tiles.prefix(state.grid.capacity))
                state.selected = min(state.selected, max(0, state.grid.capacity - 1))
                gallery = state
            }
            guard isConnected && sessionOpen, galleryRequestID == nil else { return [] }
            return [requestGalleryPage()]
        }
        guard graphics.isPixelProtocol, isConnected && sessionOpen, patchRequestID == nil,
            let region = wantedRegion ?? patch?.region
        else { return [] }
        let level = level(for: region)
        guard level != wantedLevel else { return [] }
        return show(region: region, level: level)
    }

    private mutating func show(region: Region, level: UInt32) -> [Envelope] {
        wantedRegion = region
        wantedLevel = level
        guard isConnected && sessionOpen else {
            setError("not connected")
            return []
        }
        return [requestPatch(.region(region))]
    }

    private var levelCount: UInt32 { max(1, session?.slide?.levelCount ?? 1) }

    /// Level-0 pixels per pixel at `level`: as the daemon reported it in a patch, else 4× per level above the
    /// nearest level known (the usual pyramid step).
    public func estimatedDownsample(_ level: UInt32) -> Double {
        if let d = downsampleByLevel[level] { return d }
        let below = downsampleByLevel.keys.filter { $0 < level }.max() ?? 0
        var d = downsampleByLevel[below] ?? 1
        for _ in below..<level { d *= 4 }
        return d
    }

    /// The pyramid level to fetch `region` at: the coarsest one that still gives at least `minPatchPixels` (or
    /// twice the picture's width in columns, or its width in screen pixels for the pixel protocols, if more) across
    /// (so at the default zoom one slide pixel covers at least one screen pixel), so that box averaging has material without sending
    /// megabytes the terminal cannot show; never one whose side would exceed `maxPatchPixels` if a coarser exists.
    public func level(for region: Region) -> UInt32 {
        let across = graphics.isPixelProtocol ? pictureBox.width : 2 * layout.image.width
        let target = Double(max(Self.minPatchPixels, across))
        var chosen: UInt32 = 0
        while chosen + 1 < levelCount, Double(max(region.width, region.height)) / estimatedDownsample(chosen + 1) >= target {
            chosen += 1
        }
        while chosen + 1 < levelCount, Double(max(region.width, region.height)) / estimatedDownsample(chosen) > Double(Self.maxPatchPixels) {
            chosen += 1
        }
        return chosen
    }

    public static let minPatchPixels = 256
    public static let maxPatchPixels = 2048

    private func clampToSlide(_ region: Region) -> Region {
        guard let slide = session?.slide, slide.width > 0, slide.height > 0 else { return region }
        var r = region
        r.width = min(r.width, slide.width)
        r.height = min(r.height, slide.height)
        r.x = min(max(0, r.x), slide.width - r.width)
        r.y = min(max(0, r.y), slide.height - r.height)
        return r
    }

    // MARK: Messages

    mutating func setInfo(_ text: String) {
        message = text
        messageIsError = false
    }

    mutating func setError(_ text: String) {
        message = text
        messageIsError = true
    }

    static func contains(_ r: Region, _ p: Point) -> Bool {
        p.x >= Double(r.x) && p.y >= Double(r.y) && p.x < Double(r.x + r.width) && p.y < Double(r.y + r.height)
    }
}
