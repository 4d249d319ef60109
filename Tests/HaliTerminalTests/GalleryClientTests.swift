import HaliCore
import HaliJPEG
import HaliWire
import Testing

@testable import HaliTerminal

/// The review gallery in the client's state machine: what it asks for, the label events its keys make (accepted or
/// corrected, with the model version shown), paging with skips, undo, and how a tile looks; and JPEG pixels decoded.
@Suite struct GalleryClientTests {
    let now: Int64 = 3_000_000

    static let galleryWelcome: Welcome = {
        var w = Fixtures.welcome
        w.capabilities += ["gallery", "jpeg"]
        return w
    }()

    /// A page of `ids.count` crops of 8×8 grey pixels, each centred on its cell, suggested tumour by model 7.
    static func page(_ ids: [UInt64], className: String = "tumour", offset: UInt32 = 0, total: UInt64 = 100) -> Gallery {
        let crops = ids.map { id -> Patch in
            let x = Int64(id) * 100
            let cell = Cell(
                id: id, centroid: Point(x: Double(x) + 4, y: 4), bbox: Region(x: x + 2, y: 2, width: 4, height: 4),
                contour: [Float(x + 2), 2, Float(x + 6), 2, Float(x + 6), 6, Float(x + 2), 6],
                suggestion: Suggestion(className: className, confidence: 0.55))
            return Patch(
                patchID: "", region: Region(x: x, y: 0, width: 8, height: 8), level: 0, downsample: 1, mpp: 0.5, width: 8, height: 8,
                pixelFormat: .rgb8, pixels: [UInt8](repeating: 128, count: 8 * 8 * 3), cells: [cell], modelVersion: 7)
        }
        return Gallery(className: className, modelVersion: 7, total: total, offset: offset, crops: crops, cellIDs: ids)
    }

    /// A client with the gallery open on tumour and `ids` on the page.
    static func openGallery(_ ids: [UInt64], graphics: GraphicsProtocol = .blocks) -> (LabelClient, GetGallery) {
        var c = Fixtures.openClient(
            patch: Fixtures.gridPatch(suggestions: [14: "tumour"]), columns: 120, rows: 40, graphics: graphics, welcome: galleryWelcome)
        let out = c.handle(.key(.char("g")), nowMs: 3_000_000)
        guard out.count == 1, case .getGallery(let request) = out[0].body else { preconditionFailure("expected get_gallery, got \(out)") }
        _ = c.handle(.received(Envelope(requestID: out[0].requestID, .gallery(page(ids)))), nowMs: 3_000_000)
        return (c, request)
    }

    @Test func asksForTheSelectedCellsSuggestedClassSizedToTheWindow() {
        let (c, request) = Self.openGallery([1, 2, 3])
        #expect(request.className == "tumour" && request.offset == 0 && request.order == .leastConfident)
        #expect(request.cropMicrons == 24 && request.pixelFormat == .jpeg && request.includeContours)
        // 120×40 terminal, half-blocks: the image area is 80 columns × 38 rows = 80 × 76 pixels; 24-pixel tiles
        // with 4-pixel gaps: 2 columns ((80 + 4) / 28 = 3), 2 rows ((76 + 4) / 28 = 2) -> 3 × 2 = 6.
        #expect(request.maxCells == UInt32(c.gallery!.grid.capacity))
        #expect(c.gallery!.grid == GalleryGrid.fitting(PixelSize(width: c.layout.image.width, height: 2 * c.layout.image.height), targetTile: 24))
        #expect(c.gallery?.cellIDs == [1, 2, 3])
        // The header says what is on screen: the gallery's class and the page's place in its order, not the patch.
        let header = c.screen().text(row: 0)
        #expect(header.contains("review gallery: suggested tumour · cells 1–3 of 100") && !header.contains("patch"))
    }

    @Test func aDaemonWithoutTheGalleryIsToldApart() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "tumour"]))
        #expect(c.handle(.key(.char("g")), nowMs: now).isEmpty)
        #expect(c.gallery == nil && c.messageIsError && c.message.contains("gallery"))
    }

    @Test func aFlipIsACorrectionAndEnterAcceptsTheRestButTheSkipped() {
        var (c, _) = Self.openGallery([1, 2, 3, 4])
        let flip = Fixtures.labelEvents(c.handle(.key(.char("2")), nowMs: now))
        #expect(flip.map(\.cellID) == [1] && flip[0].className == "stroma" && flip[0].source == .correctedSuggestion)
        #expect(flip[0].modelVersionShown == 7)
        #expect(c.gallery?.selected == 1)
        _ = c.handle(.key(.char("x")), nowMs: now)  // skip cell 2
        #expect(c.gallery?.skipped == [2] && c.gallery?.selected == 2)
        let page = c.handle(.key(.enter), nowMs: now)
        let accepted = Fixtures.labelEvents(page)
        #expect(accepted.map(\.cellID) == [3, 4])
        #expect(accepted.allSatisfy { $0.className == "tumour" && $0.source == .acceptedSuggestion && $0.modelVersionShown == 7 })
        // Labelled cells leave the daemon's order; the skipped one stays, so the next page starts one further on.
        guard case .getGallery(let next) = page.last?.body else {
            Issue.record("no next page asked for: \(page)")
            return
        }
        #expect(next.offset == 1 && next.className == "tumour")
        #expect(c.unackedCount == 3)
    }

    /// A smaller window cuts the page to the crops it shows at once (Enter accepts only those) and asks for a page of
    /// the new size at the same place; a resize that keeps the grid asks for nothing.
    @Test func aResizeRefitsThePageToTheGrid() {
        var (c, _) = Self.openGallery([1, 2, 3, 4])
        #expect(c.gallery?.grid.capacity == 4)
        #expect(c.handle(.resize(columns: 120, rows: 40), nowMs: now).isEmpty)
        let out = c.handle(.resize(columns: 70, rows: 20), nowMs: now)
        let capacity = c.gallery!.grid.capacity
        #expect(capacity >= 1 && capacity < 4)
        #expect(c.gallery?.cellIDs == Array([1, 2, 3, 4].prefix(capacity)))
        guard out.count == 1, case .getGallery(let request) = out[0].body else {
            Issue.record("expected get_gallery, got \(out)")
            return
        }
        #expect(request.maxCells == UInt32(capacity) && request.offset == 0 && request.className == "tumour")
        let accepted = Fixtures.labelEvents(c.handle(.key(.enter), nowMs: now))
        #expect(accepted.map(\.cellID) == Array([1, 2, 3, 4].prefix(capacity)))
    }

    @Test func undoTakesBackTheLastDecision() {
        var (c, _) = Self.openGallery([1, 2])
        _ = c.handle(.key(.char("2")), nowMs: now)
        #expect(c.gallery?.decided == [1: "stroma"])
        let out = c.handle(.key(.char("u")), nowMs: now)
        #expect(out.map(\.body) == [.undo(Undo(clientSeq: 2, cellID: 1))])
        #expect(c.gallery?.decided.isEmpty == true)
    }

    @Test func tabSwitchesClassAndEscapeGoesBackToThePatch() {
        var (c, _) = Self.openGallery([1])
        let tab = c.handle(.key(.tab), nowMs: now)
        guard case .getGallery(let request) = tab.first?.body else {
            Issue.record("expected get_gallery, got \(tab)")
            return
        }
        #expect(request.className == "stroma" && request.offset == 0)
        let back = c.handle(.key(.escape), nowMs: now)
        #expect(c.gallery == nil)
        guard case .getPatch(let get) = back.first?.body else {
            Issue.record("expected get_patch, got \(back)")
            return
        }
        #expect(get.target == .region(Fixtures.gridPatch().region))
    }

    @Test func tilesAreFramedByStateAndTheSelectionInTheGap() {
        var (c, _) = Self.openGallery([1, 2], graphics: .sixel)
        let grid = c.gallery!.grid
        var p = c.galleryPicture()!
        let muted = c.mutedColor(of: "tumour")
        #expect(p[0, grid.tile / 2] == muted)  // tile 0's left frame: undecided, suggested tumour
        #expect(p[grid.tile + 1, grid.tile / 2] == LabelClient.selection)  // the gap right of tile 0: selected
        _ = c.handle(.key(.char("2")), nowMs: now)  // tile 0 corrected to stroma; the selection moves on
        p = c.galleryPicture()!
        #expect(p[0, grid.tile / 2] == c.brightColor(of: "stroma"))
        let (x1, _) = grid.origin(of: 1)
        #expect(p[x1 - 2, grid.tile / 2] == LabelClient.selection)
    }

    @Test func jpegPixelsAreDecodedAndBrokenOnesReported() throws {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(), welcome: Self.galleryWelcome)
        let out = c.handle(.key(.char("+")), nowMs: now)
        guard case .getPatch(let get) = out.first?.body else {
            Issue.record("expected get_patch, got \(out)")
            return
        }
        #expect(get.pixelFormat == .jpeg)
        var patch = Fixtures.gridPatch()
        let rgb = patch.pixels
        patch.pixels = try JPEG.encode(rgb: rgb, width: 100, height: 100, quality: 95)
        patch.pixelFormat = .jpeg
        _ = c.handle(.received(Envelope(requestID: out[0].requestID, .patch(patch))), nowMs: now)
        #expect(c.patch?.pixelFormat == .rgb8 && c.patch?.pixels.count == rgb.count)
        let worst = zip(c.patch!.pixels, rgb).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 8, "a flat colour at quality 95 is off by \(worst)")
        let again = c.handle(.key(.char("+")), nowMs: now)
        patch.pixels = Array(patch.pixels.prefix(40))
        _ = c.handle(.received(Envelope(requestID: again[0].requestID, .patch(patch))), nowMs: now)
        #expect(c.messageIsError && c.message.contains("unreadable"))
    }

    // MARK: The learner's picks

    /// A picks page: crops of `ids`, each with its own suggestion (`suggestions[id]`; none where absent).
    static func picksPage(_ ids: [UInt64], suggestions: [UInt64: String], modelVersion: UInt32 = 7) -> Gallery {
        var page = page(ids)
        page.className = ""
        page.modelVersion = modelVersion
        page.pickStrategy = modelVersion == 0 ? .typiclust : .margin
        for i in page.crops.indices {
            page.crops[i].cells[0].suggestion = suggestions[ids[i]].map { Suggestion(className: $0, confidence: 0.51) }
        }
        return page
    }

    static func openPicks(_ page: Gallery) -> (LabelClient, GetCellPicks) {
        var welcome = galleryWelcome
        welcome.capabilities.append("cell_picks")
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(), columns: 120, rows: 40, welcome: welcome)
        let out = c.handle(.key(.char("p")), nowMs: 3_000_000)
        guard out.count == 1, case .getCellPicks(let request) = out[0].body else { preconditionFailure("expected get_cell_picks, got \(out)") }
        _ = c.handle(.received(Envelope(requestID: out[0].requestID, .gallery(page))), nowMs: 3_000_000)
        return (c, request)
    }

    @Test func picksAreAskedForSizedToTheGridAndNamedInTheHeader() {
        let (c, request) = Self.openPicks(Self.picksPage([5, 9], suggestions: [5: "tumour", 9: "stroma"]))
        #expect(request.maxCells == UInt32(c.gallery!.grid.capacity) && request.strategy == .default && request.skipCellIDs.isEmpty)
        #expect(request.cropMicrons == 24 && request.includeContours)
        #expect(c.gallery?.isPicks == true && c.gallery?.cellIDs == [5, 9])
        let header = c.screen().text(row: 0)
        #expect(header.contains("learner's picks (margin) · 2 of 100 unlabelled"), "\(header)")
    }

    @Test func aDaemonWithoutPicksIsToldApart() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(), welcome: Self.galleryWelcome)
        #expect(c.handle(.key(.char("p")), nowMs: now).isEmpty)
        #expect(c.gallery == nil && c.messageIsError && c.message.contains("cell picks"))
    }

    /// Enter accepts each pick's own suggestion; a key that differs is a correction; the skipped pick goes back to the
    /// learner in the next request's skip list.
    @Test func enterAcceptsEachPicksOwnSuggestionAndSkippedOnesAreSentBack() {
        var (c, _) = Self.openPicks(Self.picksPage([5, 9, 11, 12], suggestions: [5: "tumour", 9: "stroma", 11: "tumour", 12: "stroma"]))
        let flip = Fixtures.labelEvents(c.handle(.key(.char("2")), nowMs: now))  // 5: suggested tumour, labelled stroma
        #expect(flip.map(\.cellID) == [5] && flip[0].className == "stroma" && flip[0].source == .correctedSuggestion)
        _ = c.handle(.key(.char("x")), nowMs: now)  // skip 9
        let out = c.handle(.key(.enter), nowMs: now)
        let accepted = Fixtures.labelEvents(out)
        #expect(accepted.map(\.cellID) == [11, 12] && accepted.map(\.className) == ["tumour", "stroma"])
        #expect(accepted.allSatisfy { $0.source == .acceptedSuggestion && $0.modelVersionShown == 7 })
        guard case .getCellPicks(let next) = out.last?.body else {
            Issue.record("no next picks asked for: \(out)")
            return
        }
        #expect(next.skipCellIDs == [9])
        #expect(c.message.contains("2 accepted, 1 corrected, 1 skipped"), "\(c.message)")
    }

    /// Before the first model the picks carry no suggestion: a class key is a manual label, Enter accepts nothing
    /// and passes the rest over.
    @Test func picksWithoutAModelAreLabelledByHand() {
        var (c, _) = Self.openPicks(Self.picksPage([5, 9], suggestions: [:], modelVersion: 0))
        let manual = Fixtures.labelEvents(c.handle(.key(.char("1")), nowMs: now))
        #expect(manual.map(\.cellID) == [5] && manual[0].source == .manual && manual[0].modelVersionShown == 0)
        let out = c.handle(.key(.enter), nowMs: now)
        #expect(Fixtures.labelEvents(out).isEmpty)
        guard case .getCellPicks(let next) = out.last?.body else {
            Issue.record("no next picks asked for: \(out)")
            return
        }
        #expect(next.skipCellIDs == [9])
        // Tab leaves the picks for the first class's suggestions.
        let tab = c.handle(.key(.tab), nowMs: now)
        guard case .getGallery(let request) = tab.first?.body else {
            Issue.record("expected get_gallery, got \(tab)")
            return
        }
        #expect(request.className == "tumour" && c.gallery?.isPicks == false)
    }

    @Test func theSkipListKeepsTheNewestWithinTheProtocolsLimit() {
        var state = GalleryState.picks()
        state.passOver((1...4000).map(UInt64.init))
        state.passOver((3990...4200).map(UInt64.init))
        #expect(state.passedOver.count == GalleryState.maxPassedOver)
        #expect(state.passedOver.first == 105 && state.passedOver.last == 4200 && Set(state.passedOver).count == 4096)
    }

    @Test func aThinLineHasNoHoles() {
        // (x1 - x0) * (s / steps) rounded 25 down to 24 here, leaving pixel 25 (and a few others) unpainted.
        var p = Picture(
            width: 200, height: 1, rgb: [UInt8](repeating: 0, count: 600), region: Region(x: 0, y: 0, width: 0, height: 0), level0PerPixel: 1,
            generation: 0)
        p.line(0, 0, 199, 0, RGB(255, 255, 255), thickness: 1)
        #expect((0..<200).filter { p[$0, 0] != RGB(255, 255, 255) } == [])
    }
}
