/// Puts `Picture`s on the terminal with a pixel protocol, resending only what changed.
///
/// The picture is cut into bands of `bandRows` text rows. A frame compares each band with the one on screen and
/// sends only the bands that differ — for sixel and iTerm2 only the changed columns, widened to whole cells (an image
/// drawn at a cell over an older one replaces those pixels); for kitty the whole band as an image of its own id,
/// deleted and sent again (kitty keeps images as objects, so a band is replaced, not painted over). Moving the
/// selection thus sends two small strips instead of the picture. `invalidate()` forgets what is on screen (after a
/// clear, a resize, or text drawn over the picture).
///
/// Sixel frames share one palette per underlying picture (`Picture.generation`), with an exact entry for every
/// overlay colour, so bands sent at different times match.
public struct GraphicsPainter: Sendable {
    public let graphics: GraphicsProtocol
    /// Colour registers the terminal gave sixel images.
    public let sixelRegisters: Int
    public static let bandRows = 4
    public static let kittyFirstID: UInt32 = 7_100

    private var shown: Picture?
    private var shownAt: (column: Int, row: Int) = (0, 0)
    private var shownCell = PixelSize(width: 0, height: 0)
    private var palette: SixelPalette?
    private var paletteGeneration = -1
    private var kittyBands = 0

    public init(graphics: GraphicsProtocol, sixelRegisters: Int = 256) {
        self.graphics = graphics
        self.sixelRegisters = max(2, sixelRegisters)
    }

    public mutating func invalidate() { shown = nil }

    /// Text cells the last picture covered that `picture` (nil: no picture) placed at (`column`, `row`) will not
    /// cover. Sixel and iTerm2 pixels stay on screen until something is drawn over them, so the caller repaints these
    /// cells as text (a gallery narrower than the patch before it left a strip of the patch beside it).
    public func cellsLeftBehind(by picture: Picture?, column: Int, row: Int, cell: PixelSize) -> [(column: Int, row: Int)] {
        guard let old = shown, shownCell.width > 0, shownCell.height > 0 else { return [] }
        func footprint(_ p: Picture, _ c: PixelSize) -> (columns: Int, rows: Int) {
            ((p.width + c.width - 1) / c.width, (p.height + c.height - 1) / c.height)
        }
        let was = footprint(old, shownCell)
        let will = picture.map { footprint($0, cell) } ?? (columns: 0, rows: 0)
        // Every frame asks; the usual answer (the same place, at least as large) needs no walk over the cells.
        if column <= shownAt.column && row <= shownAt.row && column + will.columns >= shownAt.column + was.columns
            && row + will.rows >= shownAt.row + was.rows
        {
            return []
        }
        var left: [(column: Int, row: Int)] = []
        for y in shownAt.row..<(shownAt.row + was.rows) {
            for x in shownAt.column..<(shownAt.column + was.columns) {
                let covered = x >= column && x < column + will.columns && y >= row && y < row + will.rows
                if !covered { left.append((x, y)) }
            }
        }
        return left
    }

    /// The bytes that take the last picture off the screen where text alone cannot (kitty keeps its images over the
    /// text); afterwards nothing is shown.
    public mutating func remove() -> [UInt8] {
        defer {
            shown = nil
            kittyBands = 0
        }
        return graphics == .kitty && kittyBands > 0 ? KittyGraphics.deleteAll : []
    }

    /// The bytes that bring the screen from what was last drawn to `picture`, placed with its top-left at text cell
    /// (`column`, `row`) (0-based) for cells of `cell` pixels; empty when nothing changed. `overlays`: colours the
    /// sixel palette must hold exactly.
    public mutating func frame(_ picture: Picture, column: Int, row: Int, cell: PixelSize, overlays: [RGB]) throws -> [UInt8] {
        precondition(graphics.isPixelProtocol, "the painter draws pixel protocols only")
        var out: [UInt8] = []
        let sameGeometry =
            shown.map { $0.width == picture.width && $0.height == picture.height } == true && shownAt == (column, row) && shownCell == cell
        if !sameGeometry { shown = nil }
        if shown == nil && graphics == .kitty && kittyBands > 0 { out += KittyGraphics.deleteAll }
        if graphics == .sixel && (palette == nil || paletteGeneration != picture.generation) {
            palette = SixelPalette(pixels: picture.rgb, registers: sixelRegisters, reserved: overlays)
            paletteGeneration = picture.generation
        }
        let bandHeight = Self.bandRows * cell.height
        var band = 0
        var top = 0
        while top < picture.height {
            let bottom = min(picture.height, top + bandHeight)
            var span: (Int, Int)? = (0, picture.width)
            if let previous = shown { span = Self.changedColumns(previous, picture, rows: top..<bottom) }
            if var (x0, x1) = span {
                if graphics == .kitty {
                    (x0, x1) = (0, picture.width)
                } else {
                    x0 = x0 / cell.width * cell.width
                    x1 = min(picture.width, (x1 + cell.width - 1) / cell.width * cell.width)
                }
                let rgb = Self.crop(picture, x: x0..<x1, y: top..<bottom)
                out += Array("\u{1B}[\(row + band * Self.bandRows + 1);\(column + x0 / cell.width + 1)H".utf8)
                switch graphics {
                case .sixel:
                    let indices = palette!.indices(of: rgb)
                    out += SixelEncoder.encode(indices: indices, width: x1 - x0, height: bottom - top, palette: palette!.colors)
                case .kitty:
                    let id = Self.kittyFirstID + UInt32(band)
                    if shown != nil { out += KittyGraphics.delete(id: id) }  // after deleteAll it is gone already
                    out += KittyGraphics.encode(rgb: rgb, width: x1 - x0, height: bottom - top, id: id)
                case .iterm:
                    out += try ITermImages.encode(rgb: rgb, width: x1 - x0, height: bottom - top)
                case .blocks, .none:
                    break
                }
            }
            band += 1
            top = bottom
        }
        kittyBands = max(kittyBands, band)
        shown = picture
        shownAt = (column, row)
        shownCell = cell
        return out
    }

    /// The first and one-past-last columns where two same-sized pictures differ within `rows`; nil when none do.
    static func changedColumns(_ a: Picture, _ b: Picture, rows: Range<Int>) -> (Int, Int)? {
        var first = Int.max
        var last = -1
        let w = a.width
        a.rgb.withUnsafeBufferPointer { pa in
            b.rgb.withUnsafeBufferPointer { pb in
                for y in rows {
                    let base = y * w * 3
                    var x = 0
                    while x < w {
                        let o = base + x * 3
                        if pa[o] != pb[o] || pa[o + 1] != pb[o + 1] || pa[o + 2] != pb[o + 2] {
                            first = min(first, x)
                            last = max(last, x)
                        }
                        x += 1
                    }
                }
            }
        }
        return last < 0 ? nil : (first, last + 1)
    }

    static func crop(_ p: Picture, x: Range<Int>, y: Range<Int>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(x.count * y.count * 3)
        for row in y {
            let start = (row * p.width + x.lowerBound) * 3
            out += p.rgb[start..<(start + x.count * 3)]
        }
        return out
    }
}
