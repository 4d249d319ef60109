import Foundation
import HaliCore
import HaliWire
import Testing

@testable import HaliTerminal

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func occurrences(of needle: String, in haystack: String) -> Int { haystack.components(separatedBy: needle).count - 1 }

@Suite struct SixelEncoderTests {
    @Test func literalImageOfTwoColours() {
        // Rows: [black, white], [white, white], [black, black]; black's sixels are rows 0+2 then row 2; white's row 1
        // then rows 0+1.
        let bytes = SixelEncoder.encode(indices: [0, 1, 1, 1, 0, 0], width: 2, height: 3, palette: [.black, .white])
        #expect(text(bytes) == "\u{1B}P0;1;0q\"1;1;2;3#0;2;0;0;0#1;2;100;100;100#0DC$#1AB-\u{1B}\\")
    }

    @Test func runsOfFourOrMoreAreCounted() {
        let bytes = SixelEncoder.encode(indices: [UInt8](repeating: 0, count: 10) + [0, 0, 0, 1], width: 7, height: 2, palette: [.black, .white])
        // Colour 0: row 0 in all 7 columns, row 1 in the first 6 ("B" = rows 0+1, "@" = row 0 only); colour 1: row 1
        // of column 6 ("A"), after six empty sixels ("?").
        #expect(text(bytes).contains("#0!6B@$#1!6?A-"))
    }

    @Test func percentRoundTripsMultiplesOfFiftyOne() {
        for v: UInt8 in [0, 51, 102, 153, 204, 255] {
            let p = SixelEncoder.percent(v)
            #expect(UInt8((p * 255 + 50) / 100) == v)
        }
    }
}

@Suite struct SixelPaletteTests {
    @Test func reservedColoursAreExactAndTissueNeverTakesThem() {
        var rgb: [UInt8] = []
        for i in 0..<4096 { rgb += [UInt8(150 + i % 60), UInt8(60 + i % 40), UInt8(140 + i % 50)] }
        let overlay = RGB(160, 70, 150)  // inside the tissue's colours on purpose
        var palette = SixelPalette(pixels: rgb, registers: 16, reserved: [overlay, RGB(255, 255, 0)])
        #expect(palette.colors.count <= 16)
        #expect(palette.colors[Int(palette.index(of: overlay))] == overlay)
        #expect(palette.colors[Int(palette.index(of: RGB(255, 255, 0)))] == RGB(255, 255, 0))
        // A tissue pixel of the overlay's 5-bit cell but not its exact value maps to a median-cut entry.
        #expect(Int(palette.index(of: RGB(161, 70, 150))) >= palette.reservedCount)
    }

    @Test func fewColoursAreKeptExactly() {
        let rgb: [UInt8] = [10, 20, 30, 200, 100, 50, 10, 20, 30]
        var palette = SixelPalette(pixels: rgb, registers: 256)
        let indices = palette.indices(of: rgb)
        #expect(indices[0] == indices[2])
        #expect(palette.colors[Int(indices[0])] == RGB(10, 20, 30))
        #expect(palette.colors[Int(indices[1])] == RGB(200, 100, 50))
    }
}

@Suite struct InlineImageTests {
    @Test func kittyChunksAtMost4096CharactersAndKeysOnlyOnTheFirst() throws {
        let rgb = (0..<(1000 * 3)).map { UInt8($0 % 251) }
        let s = text(KittyGraphics.encode(rgb: rgb, width: 50, height: 20, id: 7))
        let commands = s.components(separatedBy: "\u{1B}\\").filter { !$0.isEmpty }
        #expect(commands.count == 1)  // 4,000 base64 characters: one chunk
        let big = (0..<(4000 * 3)).map { UInt8($0 % 251) }
        let parts = text(KittyGraphics.encode(rgb: big, width: 100, height: 40, id: 7)).components(separatedBy: "\u{1B}\\").filter { !$0.isEmpty }
        #expect(parts.count == 4)  // 16,000 characters
        #expect(parts[0].hasPrefix("\u{1B}_Ga=T,f=24,s=100,v=40,i=7,q=2,C=1,m=1;"))
        #expect(parts[1].hasPrefix("\u{1B}_Gm=1;") && parts[3].hasPrefix("\u{1B}_Gm=0;"))
        let payload = parts.map { String($0[$0.index(after: $0.firstIndex(of: ";")!)...]) }
        #expect(payload.allSatisfy { $0.count <= KittyGraphics.chunkCharacters })
        #expect(Data(base64Encoded: payload.joined()).map { [UInt8]($0) } == big)
    }
}

@Suite struct GraphicsProbeTests {
    @Test func xtermVT340Replies() {
        var c = TerminalCapabilities()
        let replies = "\u{1B}[?1;0;256S\u{1B}[?2;0;1000;1000S\u{1B}[4;870;1500t\u{1B}[6;17;9t\u{1B}[?63;1;2;4;6;9;15;16;22;28c"
        GraphicsProbe.parse(Array(replies.utf8), into: &c)
        #expect(c.sixel && !c.kittyGraphics && c.answeredDA1)
        #expect(c.sixelRegisters == 256)
        #expect(c.sixelMaxSize == PixelSize(width: 1000, height: 1000))
        #expect(c.windowPixels == PixelSize(width: 1500, height: 870))
        #expect(c.cellPixels == PixelSize(width: 9, height: 17))
        #expect(GraphicsProbe.choose(requested: nil, capabilities: c, environment: [:], hasCellSize: true) == .sixel)
    }

    @Test func kittyRepliesAndStrayBytes() {
        var c = TerminalCapabilities()
        // A keystroke typed meanwhile, kitty's OK, a DA1 without sixel.
        GraphicsProbe.parse(Array("x\u{1B}_Gi=31;OK\u{1B}\\\u{1B}[?62;22c".utf8), into: &c)
        #expect(c.kittyGraphics && !c.sixel && c.answeredDA1)
        #expect(GraphicsProbe.choose(requested: nil, capabilities: c, environment: [:], hasCellSize: true) == .kitty)
    }

    @Test func refusalsAndErrorsAreNotCapabilities() {
        var c = TerminalCapabilities()
        GraphicsProbe.parse(Array("\u{1B}_Gi=31;ENOTSUPPORTED\u{1B}\\\u{1B}[?1;3;0S\u{1B}[?2;2S\u{1B}[?1;2c".utf8), into: &c)
        #expect(!c.kittyGraphics && !c.sixel && c.sixelRegisters == nil && c.sixelMaxSize == nil)
        #expect(GraphicsProbe.choose(requested: nil, capabilities: c, environment: [:], hasCellSize: true) == .blocks)
        #expect(GraphicsProbe.choose(requested: nil, capabilities: c, environment: ["TERM_PROGRAM": "iTerm.app"], hasCellSize: true) == .iterm)
    }

    @Test func requestedWinsAndNoCellSizeMeansBlocks() {
        var c = TerminalCapabilities()
        c.kittyGraphics = true
        #expect(GraphicsProbe.choose(requested: "sixel", capabilities: c, environment: [:], hasCellSize: true) == .sixel)
        #expect(GraphicsProbe.choose(requested: nil, capabilities: c, environment: [:], hasCellSize: false) == .blocks)
        #expect(TerminalCapabilities().cellSize(columns: 100, rows: 50) == nil)
        var w = TerminalCapabilities()
        w.windowPixels = PixelSize(width: 1000, height: 900)
        #expect(w.cellSize(columns: 100, rows: 50) == PixelSize(width: 10, height: 18))
    }
}

@Suite struct PictureTests {
    private func patch(width: Int, height: Int, pixels: [UInt8], regionSide: Int64) -> Patch {
        Patch(
            patchID: "p", region: Region(x: 100, y: 200, width: regionSide, height: regionSide), level: 0, downsample: 1, mpp: 0.5,
            width: UInt32(width), height: UInt32(height), pixelFormat: .rgb8, pixels: pixels, cells: [], modelVersion: 0)
    }

    @Test func shrinkingAveragesBoxes() {
        // 4×4 → 2×2: each output pixel is the mean of a 2×2 block.
        var px: [UInt8] = []
        for y in 0..<4 { for x in 0..<4 { px += [UInt8(x * 10 + y), 0, 255] } }
        let p = Picture(patch: patch(width: 4, height: 4, pixels: px, regionSide: 4), fitting: PixelSize(width: 2, height: 9), generation: 1)
        #expect(p.width == 2 && p.height == 2)
        #expect(p[0, 0] == RGB(6, 0, 255))  // (0 + 10 + 1 + 11) / 4 = 5.5, rounded half up
        #expect(p[1, 1] == RGB(28, 0, 255))  // (22 + 32 + 23 + 33) / 4 = 27.5
        #expect(p.level0PerPixel == 2)
        #expect(p.pixel(ofLevel0: 102, 204) == (1, 2))
    }

    @Test func enlargingKeepsCornersAndInterpolates() {
        let px: [UInt8] = [0, 0, 0, 200, 200, 200, 0, 0, 0, 200, 200, 200]  // 2×2: black | grey columns
        let p = Picture(patch: patch(width: 2, height: 2, pixels: px, regionSide: 2), fitting: PixelSize(width: 4, height: 4), generation: 1)
        #expect(p.width == 4 && p.height == 4)
        #expect(p[0, 0] == RGB(0, 0, 0) && p[3, 3] == RGB(200, 200, 200))
        #expect(p[1, 0] == RGB(50, 50, 50) && p[2, 0] == RGB(150, 150, 150))
        #expect(p.level0PerPixel == 0.5)
    }
}

@Suite struct GraphicsPainterTests {
    private func picture(_ fill: UInt8, width: Int = 64, height: Int = 100) -> Picture {
        Picture(
            width: width, height: height, rgb: [UInt8](repeating: fill, count: width * height * 3),
            region: Region(x: 0, y: 0, width: 64, height: 100),
            level0PerPixel: 1, generation: 1)
    }
    private let cell = PixelSize(width: 8, height: 10)

    @Test func firstFrameSendsEveryBandThenOnlyWhatChanged() throws {
        var painter = GraphicsPainter(graphics: .sixel)
        let first = text(try painter.frame(picture(100), column: 0, row: 1, cell: cell, overlays: []))
        // 100 px in bands of 4 rows × 10 px: 3 images, at rows 2, 6 and 10 (1-based).
        #expect(occurrences(of: "\u{1B}P", in: first) == 3)
        #expect(first.contains("\u{1B}[2;1H") && first.contains("\u{1B}[6;1H") && first.contains("\u{1B}[10;1H"))
        #expect(try painter.frame(picture(100), column: 0, row: 1, cell: cell, overlays: []).isEmpty)
        var changed = picture(100)
        let o = (55 * 64 + 20) * 3  // picture row 55 (band 1), column 20 (cell column 2)
        changed.rgb[o] = 0
        let second = text(try painter.frame(changed, column: 0, row: 1, cell: cell, overlays: []))
        #expect(occurrences(of: "\u{1B}P", in: second) == 1)
        // Band 1 starts at text row 1 + 4 = 5 (0-based) → 6; the change's cell column 2 → 3. One cell wide.
        #expect(second.hasPrefix("\u{1B}[6;3H\u{1B}P0;1;0q\"1;1;8;40"))
        painter.invalidate()
        #expect(occurrences(of: "\u{1B}P", in: text(try painter.frame(changed, column: 0, row: 1, cell: cell, overlays: []))) == 3)
    }

    @Test func kittyReplacesWholeBandsByID() throws {
        var painter = GraphicsPainter(graphics: .kitty)
        _ = try painter.frame(picture(100), column: 2, row: 1, cell: cell, overlays: [])
        var changed = picture(100)
        changed.rgb[(5 * 64 + 3) * 3] = 0  // band 0
        let s = text(try painter.frame(changed, column: 2, row: 1, cell: cell, overlays: []))
        #expect(s.hasPrefix("\u{1B}[2;3H\u{1B}_Ga=d,d=I,i=\(GraphicsPainter.kittyFirstID),q=2\u{1B}\\\u{1B}_Ga=T,f=24,s=64,v=40,"))
        // A new size deletes every image first.
        let resized = text(try painter.frame(picture(100, width: 32), column: 2, row: 1, cell: cell, overlays: []))
        #expect(resized.hasPrefix(text(KittyGraphics.deleteAll)))
    }

    /// A smaller picture (the gallery after the patch) leaves cells of the old one to be repainted as text; no
    /// picture leaves them all, and kitty's images are deleted.
    @Test func cellsTheLastPictureLeavesBehind() throws {
        var painter = GraphicsPainter(graphics: .sixel)
        #expect(painter.cellsLeftBehind(by: picture(1), column: 2, row: 1, cell: cell).isEmpty)
        // 64 × 100 px at cells of 8 × 10 px: 8 × 10 cells from (2, 1).
        _ = try painter.frame(picture(100), column: 2, row: 1, cell: cell, overlays: [])
        #expect(painter.cellsLeftBehind(by: picture(1), column: 2, row: 1, cell: cell).isEmpty)
        // 33 × 41 px covers 5 × 5 cells (partial cells count as covered): 80 − 25 = 55 left.
        let left = painter.cellsLeftBehind(by: picture(1, width: 33, height: 41), column: 2, row: 1, cell: cell)
        #expect(left.count == 55)
        #expect(left.allSatisfy { ($0.column >= 7 || $0.row >= 6) && $0.column < 10 && $0.row < 11 })
        #expect(left.contains { $0 == (9, 10) } && !left.contains { $0 == (6, 5) })
        #expect(painter.cellsLeftBehind(by: nil, column: 2, row: 1, cell: cell).count == 80)
        #expect(painter.remove().isEmpty)
        #expect(painter.cellsLeftBehind(by: nil, column: 2, row: 1, cell: cell).isEmpty)
        var kitty = GraphicsPainter(graphics: .kitty)
        _ = try kitty.frame(picture(100), column: 2, row: 1, cell: cell, overlays: [])
        #expect(kitty.remove() == KittyGraphics.deleteAll)
        #expect(kitty.remove().isEmpty)
    }
}

@Suite struct PixelClientTests {
    @Test func pixelProtocolsAskForContoursAndDrawNoCharactersOverThePicture() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(), columns: 100, rows: 30, graphics: .sixel)
        let out = c.handle(.key(.char("+")), nowMs: 2_000_000)
        guard case .getPatch(let g) = out.first?.body else {
            Issue.record("expected get_patch, got \(out)")
            return
        }
        #expect(g.includeContours)
        let grid = c.screen()
        let area = c.layout.image
        for y in area.y..<(area.y + area.height) { for x in area.x..<(area.x + area.width) { #expect(grid[x, y].char == " ") } }
        var blocks = Fixtures.openClient(patch: Fixtures.gridPatch())
        guard case .getPatch(let b) = blocks.handle(.key(.char("+")), nowMs: 2_000_000).first?.body else { return }
        #expect(!b.includeContours)
    }

    @Test func pictureFillsTheAreaAndOutlinesTheLabelledCell() throws {
        let patch = Fixtures.gridPatch(labels: [10: "tumour"])
        let c = Fixtures.openClient(patch: patch, columns: 100, rows: 30, graphics: .sixel)
        let p = try #require(c.picture())
        let box = c.pictureBox
        // The 400×400 region fills the box's shorter side.
        #expect(p.width == min(box.width, box.height) || p.height == min(box.width, box.height))
        // Cell 10's box (no contour in the fixture) starts at level-0 (1040, 1040): its top-left corner is red.
        let corner = p.pixel(ofLevel0: 1040, 1040)
        #expect(p[Int(corner.x.rounded(.down)), Int(corner.y.rounded(.down))] == Fixtures.red)
        // The level is chosen for the picture's pixels: 400 level-0 px are fewer than the box's width, so level 0;
        // a region 16 times wider has 400 px at level 1 (downsample 16): enough for half-blocks (256), too few for a
        // picture 472 px wide, which stays at level 0.
        #expect(c.level(for: patch.region) == 0)
        #expect(box.width == 59 * 8)
        let wide = Region(x: 0, y: 0, width: 6400, height: 6400)
        #expect(c.level(for: wide) == 0)
        #expect(Fixtures.openClient(patch: patch, columns: 100, rows: 30).level(for: wide) == 1)
    }

    /// A window made larger asks for the same region again at the finer level it now has room for; a resize that
    /// wants the same level asks for nothing.
    @Test func aLargerWindowFetchesTheRegionAtTheLevelItNowFits() {
        var patch = Fixtures.gridPatch()
        // 2,048 level-0 px at level 1 (downsample 4): 512 picture px, plenty for a small window's picture.
        patch.region = Region(x: 0, y: 0, width: 2048, height: 2048)
        (patch.level, patch.downsample, patch.width, patch.height) = (1, 4, 512, 512)
        patch.pixels = [UInt8](repeating: 200, count: 512 * 512 * 3)
        var c = Fixtures.openClient(patch: patch, columns: 50, rows: 12, graphics: .sixel)
        #expect(c.level(for: patch.region) == 1)
        #expect(c.handle(.resize(columns: 52, rows: 12), nowMs: 2_000_000).isEmpty)
        let out = c.handle(.resize(columns: 200, rows: 60), nowMs: 2_000_000)
        guard out.count == 1, case .getPatch(let g) = out[0].body else {
            Issue.record("expected get_patch, got \(out)")
            return
        }
        #expect(g.level == 0 && g.target == .region(patch.region))
        // Half-blocks need no more pixels than the patch has: a resize redraws from what is there.
        var blocks = Fixtures.openClient(patch: patch, columns: 50, rows: 12)
        #expect(blocks.handle(.resize(columns: 200, rows: 60), nowMs: 2_000_000).isEmpty)
    }
}
