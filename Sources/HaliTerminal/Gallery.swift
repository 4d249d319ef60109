import HaliCore
import HaliJPEG
public import HaliWire

/// The review gallery (`g`): the cells the model suggests as one class, least confident first, as a grid of crops
/// around each centroid. The annotator flips the wrong ones with a class key and accepts the rest of the page with
/// Enter. Every decision is an ordinary LabelEvent — accepted when it keeps the suggestion, corrected when it does
/// not, manual where there was none — so undo, the audit trail, retraining and the exports treat it like any other
/// label.
///
/// The same grid shows the learner's cell picks (`p`, `GetCellPicks`): the cells that teach the model most, anywhere
/// on the slide, each with its own suggestion (none before the first model).
public struct GalleryState: Sendable, Equatable {
    /// The suggested class the page reviews; "" for the learner's picks.
    public var className: String
    /// The learner's picks rather than one class's suggestions.
    public var isPicks = false
    /// Picks passed over (skipped, or left undecided by `n`): sent back so the learner picks others (the newest
    /// `maxPassedOver`).
    public var passedOver: [UInt64] = []
    /// The page as the daemon sent it, pixels decoded to RGB8; nil while the first page is on its way.
    public var page: Gallery?
    /// Cells decided on this page: cell id → the class given.
    public var decided: [UInt64: String] = [:]
    /// Cells passed over with `x` (left unlabelled; the next page starts after them).
    public var skipped: Set<UInt64> = []
    /// Index of the selected crop.
    public var selected = 0
    /// Cells of the order skipped so far (GetGallery.offset).
    public var offset: UInt32 = 0
    /// Columns and rows of crops, and each crop's side in picture pixels (pixel protocols) or half-block pixels.
    public var grid = GalleryGrid(columns: 1, rows: 1, tile: 1)
    /// The crops scaled to tiles, without overlays.
    var tiles: [Picture] = []

    /// Crops on the page, in order.
    public var cellIDs: [UInt64] { page?.cellIDs ?? [] }

    /// The learner's picks, before the first page.
    public static func picks() -> GalleryState {
        var state = GalleryState(className: "")
        state.isPicks = true
        return state
    }

    /// The protocol's limit on `GetCellPicks.skip_cell_ids`.
    static let maxPassedOver = 4096

    mutating func passOver(_ ids: [UInt64]) {
        passedOver += ids.filter { !passedOver.contains($0) }
        if passedOver.count > Self.maxPassedOver { passedOver.removeFirst(passedOver.count - Self.maxPassedOver) }
    }
}

/// How the gallery fills the image area: as many tiles of about `targetTile` pixels as fit, at most 64.
public struct GalleryGrid: Sendable, Equatable {
    public var columns: Int
    public var rows: Int
    public var tile: Int
    /// Pixels between tiles: room for the selection frame.
    public static let gap = 4

    public var capacity: Int { columns * rows }

    /// - Parameters:
    ///   - box: the area in pixels (screen pixels, or half-block pixels: one column by half a row each).
    ///   - targetTile: the tile side aimed at; tiles grow to use the area once the counts are fixed.
    public static func fitting(_ box: PixelSize, targetTile: Int) -> GalleryGrid {
        let g = gap
        var columns = max(1, (box.width + g) / (targetTile + g))
        var rows = max(1, (box.height + g) / (targetTile + g))
        while columns * rows > GalleryDefaults.maxCells {
            if rows >= columns { rows -= 1 } else { columns -= 1 }
        }
        let tile = max(1, min((box.width - (columns - 1) * g) / columns, (box.height - (rows - 1) * g) / rows))
        return GalleryGrid(columns: columns, rows: rows, tile: tile)
    }

    /// Top-left pixel of tile `index` (row-major).
    public func origin(of index: Int) -> (x: Int, y: Int) {
        ((index % columns) * (tile + Self.gap), (index / columns) * (tile + Self.gap))
    }

    public var pixelWidth: Int { columns * tile + (columns - 1) * Self.gap }
    public var pixelHeight: Int { rows * tile + (rows - 1) * Self.gap }
}

enum GalleryDefaults {
    /// The protocol's limit per page.
    static let maxCells = 64
    /// Microns around each centroid (the issue's "about 24 µm": a nucleus and its neighbours' edges).
    static let cropMicrons = 24.0
}

extension LabelClient {
    /// Tile sides aimed at: ~180 screen pixels (a 48-pixel crop enlarged ~4x), or 24 half-block pixels (the
    /// largest crops that leave several on screen).
    static let galleryTargetTile = (pixels: 180, blocks: 24)

    /// The pixel format to ask for: JPEG only where the daemon says it speaks it; else the field left unset, which
    /// every daemon reads as RGB8.
    var pixelFormatToAsk: PixelFormat {
        preferredPixels == .jpeg && (welcome?.capabilities.contains("jpeg") ?? false) ? .jpeg : .none
    }

    /// `patch` with RGB8 pixels: JPEG decoded (and checked to be the size the patch claims), RGB8 as it came.
    static func decodedPixels(_ patch: Patch) throws -> Patch {
        guard patch.pixelFormat == .jpeg else { return patch }
        let image = try JPEG.decode(patch.pixels, maxPixels: 4096 * 4096)
        guard image.width == Int(patch.width), image.height == Int(patch.height) else {
            throw JPEGError("a \(image.width)×\(image.height) JPEG for a \(patch.width)×\(patch.height) patch")
        }
        var p = patch
        p.pixels = image.rgb
        p.pixelFormat = .rgb8
        return p
    }

    /// The grid for the current window size.
    var galleryGrid: GalleryGrid {
        let l = layout
        if graphics.isPixelProtocol {
            return .fitting(pictureBox, targetTile: Self.galleryTargetTile.pixels)
        }
        return .fitting(PixelSize(width: l.image.width, height: 2 * l.image.height), targetTile: Self.galleryTargetTile.blocks)
    }

    // MARK: Opening, pages

    /// Opens the gallery on the selected cell's suggested class (else the first class).
    mutating func openGallery() -> [Envelope] {
        guard isConnected && sessionOpen else {
            setError("not connected")
            return []
        }
        guard welcome?.capabilities.contains("gallery") ?? false else {
            setError("this daemon has no review gallery (it predates 0.2.0)")
            return []
        }
        guard let first = classes.first else { return [] }
        let className = selectedCell.flatMap { shownSuggestion($0)?.className } ?? first.name
        gallery = GalleryState(className: className)
        return [requestGalleryPage()]
    }

    /// Opens the gallery on the learner's cell picks.
    mutating func openPicks() -> [Envelope] {
        guard isConnected && sessionOpen else {
            setError("not connected")
            return []
        }
        guard welcome?.capabilities.contains("cell_picks") ?? false else {
            setError("this daemon has no cell picks (it predates 0.3.0)")
            return []
        }
        gallery = .picks()
        return [requestGalleryPage()]
    }

    mutating func requestGalleryPage() -> Envelope {
        let id = takeRequestID()
        galleryRequestID = id
        let grid = galleryGrid
        gallery?.grid = grid
        if let state = gallery, state.isPicks {
            let request = GetCellPicks(
                maxCells: UInt32(grid.capacity), cropMicrons: GalleryDefaults.cropMicrons, pixelFormat: pixelFormatToAsk, includeContours: true,
                skipCellIDs: state.passedOver)
            setInfo("asking the learner for its next cells…")
            return Envelope(requestID: id, .getCellPicks(request))
        }
        let request = GetGallery(
            className: gallery?.className ?? "", maxCells: UInt32(gallery?.grid.capacity ?? 24), offset: gallery?.offset ?? 0,
            order: .leastConfident, cropMicrons: GalleryDefaults.cropMicrons, pixelFormat: pixelFormatToAsk,
            includeContours: true)
        setInfo("asking for the \(gallery?.className ?? "") gallery…")
        return Envelope(requestID: id, .getGallery(request))
    }

    mutating func installGallery(_ page: Gallery) {
        guard gallery != nil else { return }
        var decoded = page
        do {
            decoded.crops = try page.crops.map(Self.decodedPixels)
        } catch {
            setError("gallery pixels unreadable: \(error)")
            return
        }
        gallery?.page = decoded
        gallery?.decided = [:]
        gallery?.skipped = []
        gallery?.selected = 0
        rebuildGalleryMosaic()
        if page.isCellPicks {
            let model = page.modelVersion == 0 ? "no model yet" : "model v\(page.modelVersion)"
            setInfo("\(page.crops.count) cells the learner picked (\(page.pickStrategy.name), \(model)): a class key labels, Enter accepts")
        } else if page.modelVersion == 0 {
            setInfo("no model yet: label a few cells of each class first (g or Esc goes back)")
        } else if page.crops.isEmpty {
            setInfo("no unlabelled cells suggested as \(page.className)")
        } else {
            let first = Int(page.offset) + 1
            setInfo("\(page.className): cells \(first)–\(first + page.crops.count - 1) of \(page.total), least confident first")
        }
    }

    /// Scales every crop to the grid's tile size (done once per page or resize; overlays are drawn per frame).
    mutating func rebuildGalleryMosaic() {
        guard var state = gallery else { return }
        state.grid = galleryGrid
        pictureGeneration += 1
        let side = PixelSize(width: state.grid.tile, height: state.grid.tile)
        state.tiles = (state.page?.crops ?? []).map { Picture(patch: $0, fitting: side, generation: pictureGeneration) }
        gallery = state
    }

    // MARK: Keys

    mutating func handleGalleryKey(_ key: Key) -> [Envelope] {
        guard var state = gallery else { return [] }
        let ids = state.cellIDs
        if case .char(let ch) = key, let cls = classes.first(where: { $0.key == String(ch) }) {
            guard state.selected < ids.count else { return [] }
            let out = decideGalleryCell(at: state.selected, as: cls.name)
            moveToNextUndecided()
            return out
        }
        switch key {
        case .char("q"), .ctrl("c"): return quit()
        case .char("g"), .escape: return closeGallery()
        case .char("p") where !state.isPicks: return openPicks()
        case .char("?"): showHelp = true
        case .left, .char("h"): state.selected = max(0, state.selected - 1)
        case .right, .char("l"): state.selected = min(max(0, ids.count - 1), state.selected + 1)
        case .up, .char("k"): state.selected = max(0, state.selected - state.grid.columns)
        case .down, .char("j"): state.selected = min(max(0, ids.count - 1), state.selected + state.grid.columns)
        case .char("x"):
            guard state.selected < ids.count else { return [] }
            state.skipped.insert(ids[state.selected])
            state.decided[ids[state.selected]] = nil
            gallery = state
            moveToNextUndecided()
            return []
        case .enter, .space: return acceptGalleryPage()
        case .char("n"):
            // Next page without deciding the rest: they are passed over like skipped ones.
            let undecided = ids.filter { state.decided[$0] == nil }
            state.offset += UInt32(undecided.count)
            state.passOver(undecided)
            gallery = state
            return [requestGalleryPage()]
        case .tab:
            // Picks → the first class's suggestions → the next class …
            let i = classes.firstIndex(where: { $0.name == state.className }).map { $0 + 1 } ?? 0
            guard !classes.isEmpty else { return [] }
            gallery = GalleryState(className: classes[i % classes.count].name)
            return [requestGalleryPage()]
        case .char("u"): return undo()
        default: break
        }
        gallery = state
        return []
    }

    /// Back to the patch, fetched again so that the gallery's labels show.
    mutating func closeGallery() -> [Envelope] {
        gallery = nil
        galleryRequestID = nil
        pictureGeneration += 1
        rebuildThumbnail()
        setInfo("")
        guard isConnected && sessionOpen, let region = wantedRegion ?? patch?.region else { return [] }
        return [requestPatch(.region(region))]
    }

    private mutating func decideGalleryCell(at index: Int, as className: String) -> [Envelope] {
        guard let state = gallery, let page = state.page, index < page.crops.count else { return [] }
        let id = page.cellIDs[index]
        guard let cell = page.crops[index].cells.first(where: { $0.id == id }) else { return [] }
        var shown = cell
        // The crop shows the cell as the page came; what this client decided since is in `decided`.
        shown.label = state.decided[id].map { CellLabel(className: $0, source: .correctedSuggestion, annotator: welcome?.annotator ?? "") }
        let source: LabelSource =
            switch cell.suggestion?.className {
            case nil: .manual
            case className: .acceptedSuggestion
            default: .correctedSuggestion
            }
        gallery?.decided[id] = className
        gallery?.skipped.remove(id)
        return issueLabel(cell: shown, className: className, source: source, modelVersionShown: source == .manual ? 0 : page.modelVersion)
    }

    private mutating func moveToNextUndecided() {
        guard let state = gallery else { return }
        let ids = state.cellIDs
        guard !ids.isEmpty else { return }
        for step in 1...ids.count {
            let i = (state.selected + step) % ids.count
            if state.decided[ids[i]] == nil && !state.skipped.contains(ids[i]) {
                gallery?.selected = i
                return
            }
        }
    }

    /// Every crop not yet decided nor skipped takes its suggested class (accepted); then the next page. A pick with no
    /// suggestion (before the first model) is left for a class key: it is passed over, like a skipped one.
    private mutating func acceptGalleryPage() -> [Envelope] {
        guard let state = gallery, let page = state.page else { return [] }
        var out: [Envelope] = []
        var accepted = 0
        var unsuggested: [UInt64] = []
        for (i, id) in page.cellIDs.enumerated() where state.decided[id] == nil && !state.skipped.contains(id) {
            guard let suggested = suggestedClass(at: i, of: page) else {
                unsuggested.append(id)
                continue
            }
            out += decideGalleryCell(at: i, as: suggested)
            accepted += 1
        }
        let corrected = page.cellIDs.indices.filter { i in
            state.decided[page.cellIDs[i]].map { $0 != suggestedClass(at: i, of: page) } ?? false
        }.count
        // Labelled cells leave the order; the skipped ones stay in it, so the next page starts after them.
        gallery?.offset = state.offset + UInt32(state.skipped.count)
        gallery?.passOver(Array(state.skipped) + unsuggested)
        out.append(requestGalleryPage())
        let left = unsuggested.isEmpty ? "" : ", \(unsuggested.count) without a suggestion left"
        setInfo("page done: \(accepted) accepted, \(corrected) corrected, \(state.skipped.count) skipped\(left)")
        return out
    }

    /// The class crop `index` is suggested as: the page's class, or for picks the crop's own suggestion (nil before
    /// the first model).
    func suggestedClass(at index: Int, of page: Gallery) -> String? {
        guard page.isCellPicks else { return page.className }
        let id = page.cellIDs[index]
        return page.crops[index].cells.first { $0.id == id }?.suggestion?.className
    }

    // MARK: Drawing

    /// The gallery as one picture: each crop in its tile with the centre cell outlined and framed — muted in the
    /// suggested class's colour while undecided, bright in the decided class's colour once decided, grey when
    /// skipped — and the selected tile framed in yellow in the gap around it.
    public func galleryPicture() -> Picture? {
        guard let state = gallery, let page = state.page, !state.tiles.isEmpty else { return nil }
        let grid = state.grid
        let (w, h) = (max(1, grid.pixelWidth), max(1, grid.pixelHeight))
        var mosaic = Picture(
            width: w, height: h, rgb: [UInt8](repeating: Self.canvas.r, count: w * h * 3), region: Region(x: 0, y: 0, width: 0, height: 0),
            level0PerPixel: 1, generation: state.tiles.first?.generation ?? 0)
        for (i, base) in state.tiles.enumerated() where i < grid.capacity {
            var tile = base
            let id = page.cellIDs[i]
            let colour = galleryColour(of: i, in: state, page: page)
            let strong = graphics.isPixelProtocol ? 2 : 1
            if let cell = page.crops[i].cells.first(where: { $0.id == id }) {
                if cell.contour.count >= 6 {
                    tile.outline(level0: cell.contour, colour, thickness: strong)
                } else {
                    tile.box(level0: cell.bbox, colour, thickness: strong)
                }
            }
            let (ox, oy) = grid.origin(of: i)
            let (dx, dy) = (ox + (grid.tile - tile.width) / 2, oy + (grid.tile - tile.height) / 2)
            for y in 0..<tile.height where dy + y < h {
                let from = y * tile.width * 3
                let to = ((dy + y) * w + dx) * 3
                let n = min(tile.width, w - dx) * 3
                guard n > 0 else { continue }
                mosaic.rgb.replaceSubrange(to..<(to + n), with: tile.rgb[from..<(from + n)])
            }
            // A frame inside the tile's edge says the state at a glance, even where the outline is small.
            mosaic.square(x: Double(ox), y: Double(oy), side: Double(grid.tile - 1), colour, thickness: 1)
        }
        if state.selected < min(grid.capacity, state.tiles.count) {
            let (ox, oy) = grid.origin(of: state.selected)
            mosaic.square(
                x: Double(ox - 2), y: Double(oy - 2), side: Double(grid.tile + 3), Self.selection, thickness: graphics.isPixelProtocol ? 2 : 1)
        }
        return mosaic
    }

    func galleryColour(of index: Int, in state: GalleryState, page: Gallery) -> RGB {
        let id = page.cellIDs[index]
        if let decided = state.decided[id] { return brightColor(of: decided) }
        if state.skipped.contains(id) { return Self.neitherOutline }
        return suggestedClass(at: index, of: page).map(mutedColor(of:)) ?? Self.neitherOutline
    }

    /// What the panel says in the gallery.
    func galleryPanelLines() -> [(text: String, colour: RGB?, bold: Bool)] {
        guard let state = gallery else { return [] }
        var lines: [(String, RGB?, Bool)] =
            state.isPicks
            ? [("Learner's picks", nil, true), ("the cells that teach most", Self.dimText, false)]
            : [("Review gallery", nil, true), ("suggested: \(state.className)", brightColor(of: state.className), true)]
        guard let page = state.page else { return lines + [("loading…", Self.dimText, false)] }
        if page.isCellPicks {
            lines.append(("by \(page.pickStrategy.name), \(page.total) unlabelled", nil, false))
            lines.append((page.modelVersion == 0 ? "no model yet: no suggestions" : "model v\(page.modelVersion)", Self.dimText, false))
        } else {
            if page.modelVersion == 0 { return lines + [("no model yet", Self.warnText, false)] }
            let first = Int(page.offset) + 1
            lines.append(("cells \(first)–\(first + max(0, page.crops.count - 1)) of \(page.total)", nil, false))
            lines.append(("least confident first, model v\(page.modelVersion)", Self.dimText, false))
        }
        let corrected = page.cellIDs.indices.filter { i in
            state.decided[page.cellIDs[i]].map { $0 != suggestedClass(at: i, of: page) } ?? false
        }.count
        lines.append(("decided \(state.decided.count) (corrected \(corrected)), skipped \(state.skipped.count)", nil, false))
        if state.selected < page.crops.count {
            let id = page.cellIDs[state.selected]
            let crop = page.crops[state.selected]
            lines.append(("", nil, false))
            lines.append(("cell \(id)", nil, true))
            if let s = crop.cells.first(where: { $0.id == id })?.suggestion {
                lines.append(("model: \(s.className) \(Self.fixed(Double(s.confidence) * 100, 0))%", mutedColor(of: s.className), false))
            }
            if let d = state.decided[id] { lines.append(("you: \(d)", brightColor(of: d), true)) }
        }
        lines.append(("", nil, false))
        for c in classes { lines.append(("\(c.key)  \(c.name)", brightColor(of: c.name), false)) }
        lines += [
            ("Enter  accept the rest of the page", nil, false), ("x  skip   n  next page", nil, false),
            ("Tab  next class   u  undo", nil, false),
            (state.isPicks ? "g, Esc  back to the patch" : "p  picks   g, Esc  back", nil, false),
        ]
        return lines
    }
}

extension CellPickStrategy {
    /// As docs/learning.md names it.
    var name: String {
        switch self {
        case .default: "the daemon's default"
        case .coreset: "coreset"
        case .typiclust: "typiclust"
        case .probcover: "probcover"
        case .margin: "margin"
        case .entropy: "entropy"
        case .random: "random"
        case .typiclustMargin: "typiclust-margin"
        }
    }
}
