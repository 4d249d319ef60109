import HaliCore
import HaliWire
import Testing

@testable import HaliTerminal

@Suite struct RenderingTests {
    @Test func thumbnailKeepsPixelsAtOneToOne() {
        var patch = Fixtures.tinyPatch()
        patch.pixels = (0..<48).map { UInt8($0 * 5) }
        let t = Thumbnail(patch: patch, columns: 4, rows: 2)
        #expect(t.width == 4 && t.height == 4)
        #expect(t[0, 0] == RGB(0, 5, 10))
        #expect(t[3, 3] == RGB(225, 230, 235))
        #expect(t.level0PerPixel == 1)
    }

    @Test func thumbnailBoxAverages() {
        // 4×4: left half black, right half white, bottom-right pixel red.
        var pixels = [UInt8]()
        for y in 0..<4 {
            for x in 0..<4 {
                if x == 3 && y == 3 { pixels += [255, 0, 0] } else { pixels += x < 2 ? [0, 0, 0] : [255, 255, 255] }
            }
        }
        var patch = Fixtures.tinyPatch()
        patch.pixels = pixels
        let t = Thumbnail(patch: patch, columns: 2, rows: 1)  // 2×2 thumbnail pixels, 2×2 blocks averaged
        #expect(t.width == 2 && t.height == 2)
        #expect(t[0, 0] == RGB(0, 0, 0))
        #expect(t[1, 0] == RGB(255, 255, 255))
        #expect(t[1, 1] == RGB(255, 191, 191))  // (3·255 + 255)/4, (3·255 + 0)/4 rounded
        #expect(t.level0PerPixel == 2)
    }

    @Test func thumbnailKeepsTheAspectRatio() {
        var patch = Fixtures.tinyPatch()
        patch.region = Region(x: 0, y: 0, width: 8, height: 4)
        patch.width = 8
        patch.pixels = [UInt8](repeating: 9, count: 8 * 4 * 3)
        let t = Thumbnail(patch: patch, columns: 40, rows: 1)  // height-bound: 2 pixel rows → 4 across
        #expect(t.width == 4 && t.height == 2)
        #expect(t.level0PerPixel == 2)
    }

    /// The tiny 4×4 patch in a 40×10 terminal: the image area is 40×8 characters, so the patch becomes a 16×16
    /// thumbnail (each patch pixel 4×4 thumbnail pixels) in text rows 1…8.
    @Test func tinyPatchBoxesAreColouredByClassBrightForLabelsMutedForSuggestions() {
        let c = Fixtures.openClient(patch: Fixtures.tinyPatch(), columns: 40, rows: 10)
        #expect(c.layout.image == Layout.Rect(x: 0, y: 1, width: 40, height: 8))
        #expect(c.layout.panel.width == 0)
        #expect(c.thumbnail?.width == 16 && c.thumbnail?.height == 16)
        #expect(c.selectedCellID == 2)  // the unlabelled one
        let g = c.screen()
        #expect(g.width == 40 && g.height == 10)
        // Cell 1, labelled tumour: its box (thumbnail pixels 0…7) in bright red.
        #expect(g[0, 1] == ScreenCell("▀", fg: Fixtures.red, bg: Fixtures.red))  // corner + left edge
        #expect(g[3, 1] == ScreenCell("▀", fg: Fixtures.red, bg: Fixtures.gray))  // top edge over the picture
        #expect(g[3, 2] == ScreenCell("▀", fg: Fixtures.gray, bg: Fixtures.gray))  // inside the box
        // Cell 2, suggested stroma: its box (pixels 8…15) in muted blue.
        let mutedBlue = RGB(64, 64, 192)
        #expect(LabelClient.muted(Fixtures.blue) == mutedBlue)
        #expect(g[12, 5] == ScreenCell("▀", fg: mutedBlue, bg: Fixtures.gray))  // top edge at pixel row 8
        #expect(g[15, 7] == ScreenCell("▀", fg: mutedBlue, bg: mutedBlue))  // right edge
        // The selection ring, one pixel outside cell 2's box: pixel row 7 is the lower half of text row 4.
        #expect(g[12, 4] == ScreenCell("▀", fg: Fixtures.gray, bg: LabelClient.selection))
        // Nothing right of the 16-column picture; header and status lines.
        #expect(g[20, 3] == ScreenCell(" ", fg: LabelClient.text, bg: LabelClient.canvas))  // the dark canvas
        #expect(g.text(row: 0).hasPrefix(" HALI  slide-one · tum · patch p-tiny L0"))
        #expect(g.text(row: 9).hasPrefix(" labels 0 │ model v3 acc 87."))
        #expect(g.text(row: 9).hasSuffix("● connected "))
    }

    @Test func noColourModeMarksCellsWithLetters() {
        let c = Fixtures.openClient(patch: Fixtures.tinyPatch(), columns: 40, rows: 10, mode: .none)
        let g = c.screen()
        // Cell 1's centroid (1,1) → thumbnail pixel (4,4) → text (4, 1 + 2): "T", labelled tumour.
        #expect(g[4, 3] == ScreenCell("T", bold: true))
        // Cell 2's centroid (3,3) → pixel (12,12) → text (12, 7): "s", suggested stroma, selected.
        #expect(g[12, 7] == ScreenCell("s", reverse: true))
        #expect(g[11, 7].char == "[" && g[13, 7].char == "]")
        // Grey 200 is a light shade of the ramp; no colour anywhere.
        #expect(g[0, 1].char == ":")
        #expect(g.cells.allSatisfy { $0.fg == nil && $0.bg == nil })
        #expect(c.letter(of: "tumour") == "T" && c.letter(of: "stroma") == "S")
    }

    @Test func ansiTrueColourAnd256() {
        var g = ScreenGrid(width: 2, height: 1)
        g[0, 0] = ScreenCell("▀", fg: Fixtures.red, bg: Fixtures.blue)
        g[1, 0] = ScreenCell("x", bold: true)
        let tc = ANSIRenderer(mode: .trueColor).frame(g)
        #expect(tc.contains("\u{1B}[1;1H\u{1B}[0;38;2;255;0;0;48;2;0;0;255m▀\u{1B}[0;1mx"))
        let p = ANSIRenderer(mode: .palette256).frame(g)
        #expect(p.contains("\u{1B}[0;38;5;196;48;5;21m▀"))
        let none = ANSIRenderer(mode: .none).frame(g)
        #expect(none.contains("\u{1B}[1;1H▀\u{1B}[0;1mx"))
        #expect(!none.contains("38;"))
        #expect(ANSIRenderer.xterm256(RGB(128, 128, 128)) == 244)
        #expect(ANSIRenderer.xterm256(RGB(255, 255, 255)) == 231)
        #expect(ANSIRenderer.xterm256(RGB(0, 0, 0)) == 16)
    }

    @Test func ansiRepaintsOnlyWhatChanged() {
        var a = ScreenGrid(width: 5, height: 3)
        a.put("hello", x: 0, y: 1)
        var b = a
        b.put("J", x: 3, y: 1)
        let diff = ANSIRenderer(mode: .none).frame(b, previous: a)
        #expect(diff == "\u{1B}[0m\u{1B}[2;4HJ\u{1B}[0m")
        #expect(ANSIRenderer(mode: .none).frame(a, previous: a) == "\u{1B}[0m\u{1B}[0m")
        // A different size repaints everything.
        #expect(ANSIRenderer(mode: .none).frame(b, previous: ScreenGrid(width: 4, height: 3)).contains("\u{1B}[2J"))
    }

    @Test func colourModeFromEnvironment() {
        #expect(ColorMode.detect(environment: ["TERM": "xterm-256color", "COLORTERM": "truecolor"]) == .trueColor)
        #expect(ColorMode.detect(environment: ["TERM": "xterm-256color"]) == .palette256)
        #expect(ColorMode.detect(environment: ["TERM": "xterm-256color", "NO_COLOR": "1"]) == .none)
        #expect(ColorMode.detect(environment: ["TERM": "dumb"]) == .none)
    }

    @Test func cellsTooSmallForABoxAreDots() {
        // 4000 level-0 pixels in 44 thumbnail pixels: a 40-pixel cell is under half a pixel.
        var p = Fixtures.gridPatch(suggestions: [10: "stroma"], labels: [11: "tumour"])
        p.region = Region(x: 1000, y: 1000, width: 4000, height: 4000)
        let c = Fixtures.openClient(patch: p)
        let t = c.thumbnail!
        #expect(t.width == 44)
        let g = c.screen()
        // Cell 10 at (1060, 1060) → thumbnail pixel (0.66, 0.66) → (0, 0): upper half of text row 1.
        #expect(g[0, 1].fg == LabelClient.muted(Fixtures.blue))
        // Cell 11 at (1200, 1060) → pixel (2.2, 0.66) → (2, 0).
        #expect(g[2, 1].fg == Fixtures.red)
        // No box outlines: the pixel next to a dot is the picture.
        #expect(g[1, 1].fg == RGB(230, 180, 230))
    }
}

@Suite struct LayoutTests {
    @Test func eightyByTwentyFour() {
        let l = Layout(columns: 80, rows: 24, patch: Fixtures.gridPatch())
        #expect(!l.tooSmall)
        #expect(l.headerRow == 0 && l.statusRow == 23)
        #expect(l.image == Layout.Rect(x: 0, y: 1, width: 44, height: 22))
        #expect(l.panel == Layout.Rect(x: 45, y: 1, width: 35, height: 22))
        let c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "stroma"]))
        #expect(c.thumbnail?.width == 44 && c.thumbnail?.height == 44)
        let g = c.screen()
        #expect(g.width == 80 && g.height == 24)
        #expect(g.text(row: 1).dropFirst(45).hasPrefix("Classes"))
        #expect(g.text(row: 2).dropFirst(45).hasPrefix(" 1 ██ tumour"))
        #expect(g.text(row: 22).dropFirst(45).hasPrefix("? help  n next  p picks  q quit"))
        #expect(g.text(row: 23).contains("● connected"))
        #expect((1...22).allSatisfy { g[43, $0].char == "▀" })  // the picture fills the image area's height
    }

    @Test func statusLineShowsEverythingAndAlwaysTheConnectionState() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        for _ in 0..<3 { _ = c.handle(.key(.char("1")), nowMs: 1_000_020) }
        _ = c.handle(.tick, nowMs: 1_000_010 + 60_000)
        let row = c.screen().text(row: 23)
        #expect(row == " labels 3 │ model v3 acc 87.5% │ 3.0 cells/min │ 3 unacked │ ● connected" + String(repeating: " ", count: 8))
        // Long figures are cut before the connection state is.
        for _ in 0..<120 { _ = c.handle(.key(.char("1")), nowMs: 1_000_020) }
        _ = c.handle(.disconnected(reason: "connection refused", retryInSeconds: 8), nowMs: 1_000_030)
        let (_, conn) = c.statusText()
        #expect(conn == "✕ offline, retry in 8s")
        let g = c.screen()
        #expect(g.text(row: 23).hasPrefix(" labels 9 │ model v3 acc 87.5% │ "))
        #expect(g.text(row: 23).hasSuffix("✕ offline, retry in 8s "))
    }

    @Test func helpOverlayFitsEightyByTwentyFour() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        _ = c.handle(.key(.char("?")), nowMs: 0)
        #expect(c.showHelp)
        let g = c.screen()
        let top = (0..<24).first { g.text(row: $0).contains("┌") }!
        let bottom = (0..<24).first { g.text(row: $0).contains("└") }!
        #expect(top >= 0 && bottom <= 23 && bottom - top + 1 == c.helpLines().count + 2)
        #expect(g.text.contains("accept all suggestions in view"))
        #expect(g.text.contains("1 2               tumour, stroma"))
        // Any key closes it without acting.
        #expect(c.handle(.key(.char("1")), nowMs: 0).isEmpty)
        #expect(!c.showHelp)
    }

    @Test func largerTerminalUsesTheHeightAndSmallOneSaysSo() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        _ = c.handle(.resize(columns: 160, rows: 50), nowMs: 0)
        #expect(c.layout.image.height == 48)
        #expect(c.thumbnail?.height == 96 && c.thumbnail?.width == 96)
        #expect(c.screen().width == 160)
        _ = c.handle(.resize(columns: 30, rows: 8), nowMs: 0)
        #expect(c.layout.tooSmall)
        #expect(c.screen().text(row: 0).hasPrefix("HALI: terminal too small"))
    }
}
