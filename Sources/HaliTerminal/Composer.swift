import HaliWire

/// Drawing the client's state into a `ScreenGrid`.
extension LabelClient {
    static let headerBG = RGB(40, 44, 52)
    static let canvas = RGB(18, 18, 20)
    static let statusBG = RGB(40, 44, 52)
    static let text = RGB(220, 220, 220)
    static let dimText = RGB(140, 140, 140)
    static let selection = RGB(255, 255, 0)
    static let unmarked = RGB(200, 200, 200)
    static let errorText = RGB(255, 110, 110)
    static let okText = RGB(120, 220, 120)
    static let warnText = RGB(240, 200, 80)
    /// Boxes narrower or shorter than this (thumbnail pixels) are drawn as a dot.
    static let minBoxPixels = 3
    static let fallbackPalette = ["#e6194b", "#4363d8", "#3cb44b", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
    /// Luminance ramp for the no-colour picture, dark to light.
    static let ramp: [Character] = Array("@%#*+=-:. ")

    /// The class's colour, bright: how a label's box is drawn.
    public func brightColor(of className: String) -> RGB {
        if let i = classes.firstIndex(where: { $0.name == className }) {
            return RGB(hex: classes[i].color) ?? RGB(hex: Self.fallbackPalette[i % Self.fallbackPalette.count])!
        }
        return RGB(255, 0, 255)
    }

    /// The class's colour, muted (halfway to grey): how a suggestion's box is drawn.
    public func mutedColor(of className: String) -> RGB { Self.muted(brightColor(of: className)) }

    public static func muted(_ c: RGB) -> RGB { c.mixed(with: RGB.gray, 0.5) }

    /// The letter marking a class in the no-colour mode: the first letter of its name when no other class shares
    /// it, else its key, else A, B, C … (uppercase for a label, lowercase for a suggestion).
    public func letter(of className: String) -> Character {
        guard let i = classes.firstIndex(where: { $0.name == className }) else { return "?" }
        let first = classes[i].name.uppercased().first ?? "?"
        let clash = classes.enumerated().contains { $0.offset != i && $0.element.name.uppercased().first == first }
        if !clash && first.isLetter { return first }
        if let k = classes[i].key.first, k.isLetter || k.isNumber { return k }
        return Character(Unicode.Scalar(UInt8(65 + i % 26)))
    }

    /// The whole screen.
    public func screen() -> ScreenGrid {
        var g = ScreenGrid(width: columns, height: rows)
        let l = layout
        if l.tooSmall {
            g.put("HALI: terminal too small", x: 0, y: 0, bold: true)
            g.put("need \(Layout.minColumns)x\(Layout.minRows), have \(columns)x\(rows)", x: 0, y: 1)
            g.put("q quits", x: 0, y: 2)
            return g
        }
        drawHeader(&g, l)
        drawImage(&g, l)
        drawPanel(&g, l)
        drawStatus(&g, l)
        if showHelp { drawHelp(&g) }
        if color {
            // A dark canvas of our own, not the terminal's default: the class colours and the dimmed text are chosen
            // for it, and a light terminal (xterm's default is black on white) would wash them out.
            for y in 0..<g.height {
                for x in 0..<g.width where g[x, y].bg == nil && !g[x, y].reverse {
                    var cell = g[x, y]
                    cell.bg = Self.canvas
                    if cell.fg == nil { cell.fg = Self.text }
                    g[x, y] = cell
                }
            }
        }
        return g
    }

    private var color: Bool { colorMode != .none }

    // MARK: Header and status

    private func drawHeader(_ g: inout ScreenGrid, _ l: Layout) {
        let bg: RGB? = color ? Self.headerBG : nil
        g.fill(x: 0, y: l.headerRow, width: columns, height: 1, with: ScreenCell(" ", bg: bg, reverse: !color))
        var text = " HALI  \(session?.slide?.name.isEmpty == false ? session!.slide!.name : slideID) · \(task)"
        if let state = gallery, state.isPicks {
            text += " · learner's picks"
            if let page = state.page { text += " (\(page.pickStrategy.name)) · \(page.crops.count) of \(page.total) unlabelled" }
        } else if let state = gallery {
            text += " · review gallery: suggested \(state.className)"
            if let page = state.page, !page.crops.isEmpty {
                let first = Int(page.offset) + 1
                text += " · cells \(first)–\(first + page.crops.count - 1) of \(page.total)"
            }
        } else if let p = patch {
            text += " · patch \(p.patchID.isEmpty ? "-" : String(p.patchID.prefix(12))) L\(p.level)"
            text += " (\(p.region.x),\(p.region.y)) \(p.region.width)×\(p.region.height)"
        }
        g.put(text, x: 0, y: l.headerRow, fg: color ? Self.text : nil, bg: bg, bold: true, reverse: !color)
    }

    /// The status line: labels done, model version and validation accuracy, cells per minute, unacknowledged
    /// labels, connection state.
    public func statusText() -> (left: String, connection: String) {
        var parts = ["labels \(labelsDone)"]
        if modelVersion == 0 {
            parts.append("no model yet")
        } else if validationAccuracy.isNaN {
            parts.append("model v\(modelVersion) acc ?")
        } else {
            parts.append("model v\(modelVersion) acc " + Self.fixed(validationAccuracy * 100, 1) + "%")
        }
        parts.append(Self.fixed(cellsPerMinute, 1) + " cells/min")
        if unackedCount > 0 { parts.append("\(unackedCount) unacked") }
        let conn: String
        switch connection {
        case .connected: conn = sessionOpen ? "● connected" : "● opening session"
        case .connecting(let n): conn = n <= 1 ? "○ connecting" : "○ reconnecting (try \(n))"
        case .disconnected(let reason, let retry):
            if let retry { conn = "✕ offline, retry in \(retry)s" } else { conn = "✕ offline: \(reason)" }
        }
        return (" " + parts.joined(separator: " │ ") + " │ ", conn)
    }

    private func drawStatus(_ g: inout ScreenGrid, _ l: Layout) {
        let bg: RGB? = color ? Self.statusBG : nil
        g.fill(x: 0, y: l.statusRow, width: columns, height: 1, with: ScreenCell(" ", bg: bg, reverse: !color))
        let (left, conn) = statusText()
        // The connection state always shows, right after the figures or at the right edge when they are long.
        let connX = min(left.count, max(0, columns - conn.count - 1))
        g.put(left, x: 0, y: l.statusRow, fg: color ? Self.text : nil, bg: bg, reverse: !color, maxWidth: connX)
        let x = connX
        let connColor: RGB
        switch connection {
        case .connected: connColor = sessionOpen ? Self.okText : Self.warnText
        case .connecting: connColor = Self.warnText
        case .disconnected: connColor = Self.errorText
        }
        g.put(conn, x: x, y: l.statusRow, fg: color ? connColor : nil, bg: bg, bold: true, reverse: !color)
    }

    // MARK: Image

    private func drawImage(_ g: inout ScreenGrid, _ l: Layout) {
        if gallery != nil {
            drawGalleryImage(&g, l)
            return
        }
        if graphics.isPixelProtocol && basePicture != nil {
            // The picture is drawn over these cells by the graphics protocol; they stay blank so that text never
            // paints over it.
            return
        }
        guard var t = thumbnail else {
            let note: String
            switch connection {
            case .connected: note = sessionOpen ? "loading patch…" : "opening session…"
            case .connecting: note = "connecting to the daemon…"
            case .disconnected(let reason, _): note = "offline: \(reason)"
            }
            g.put(note, x: l.image.x + 2, y: l.image.y + l.image.height / 2, fg: color ? Self.dimText : nil, maxWidth: l.image.width - 2)
            return
        }
        if color && graphics != .none {
            drawBoxes(&t)
            for row in 0..<min(l.image.height, t.textRows) {
                for x in 0..<min(l.image.width, t.width) {
                    let upper = t[x, 2 * row]
                    let lower = 2 * row + 1 < t.height ? t[x, 2 * row + 1] : nil
                    g[l.image.x + x, l.image.y + row] = ScreenCell("▀", fg: upper, bg: lower)
                }
            }
        } else {
            drawLetters(&g, t, l)
        }
    }

    /// Cell boxes drawn into the thumbnail's pixels: corner marks for cells with neither label nor suggestion,
    /// muted class colour for suggestions, bright class colour for labels, a yellow ring around the selection.
    /// A cell whose box would be under `minBoxPixels` across is a single pixel at its centroid instead (and a cell
    /// with neither label nor suggestion is not marked), so that a zoomed-out patch still shows its tissue.
    private func drawBoxes(_ t: inout Thumbnail) {
        let ordered = cells.sorted { rank($0) < rank($1) }
        for cell in ordered {
            let r = t.pixelRect(of: cell.bbox)
            if r.x1 - r.x0 + 1 < Self.minBoxPixels || r.y1 - r.y0 + 1 < Self.minBoxPixels {
                let p = t.pixel(ofLevel0: cell.centroid.x, cell.centroid.y)
                let (x, y) = (Int(p.x.rounded(.down)), Int(p.y.rounded(.down)))
                if let label = cell.label {
                    t[x, y] = brightColor(of: label.className)
                } else if let s = cell.suggestion {
                    t[x, y] = mutedColor(of: s.className)
                }
                continue
            }
            if let label = cell.label {
                t.strokeRect(x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1, color: brightColor(of: label.className))
            } else if let s = cell.suggestion {
                t.strokeRect(x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1, color: mutedColor(of: s.className))
            } else {
                t.markCorners(x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1, color: Self.unmarked)
            }
        }
        if let s = selectedCell {
            let r = t.pixelRect(of: s.bbox)
            if r.x1 - r.x0 + 1 < Self.minBoxPixels || r.y1 - r.y0 + 1 < Self.minBoxPixels {
                let p = t.pixel(ofLevel0: s.centroid.x, s.centroid.y)
                let (x, y) = (Int(p.x.rounded(.down)), Int(p.y.rounded(.down)))
                t.strokeRect(x0: x - 1, y0: y - 1, x1: x + 1, y1: y + 1, color: Self.selection)
            } else {
                t.strokeRect(x0: r.x0 - 1, y0: r.y0 - 1, x1: r.x1 + 1, y1: r.y1 + 1, color: Self.selection)
            }
        }
    }

    private func rank(_ c: Cell) -> Int { c.label != nil ? 2 : c.suggestion != nil ? 1 : 0 }

    /// Outlines of cells with neither a label nor a suggestion: thin and grey, so the tissue stays readable.
    static let neitherOutline = RGB(150, 150, 150)

    /// The colours the picture's overlays use (the sixel palette keeps an exact entry for each).
    public var overlayColors: [RGB] {
        classes.flatMap { [brightColor(of: $0.name), mutedColor(of: $0.name)] } + [Self.selection, Self.neitherOutline]
    }

    /// The patch as the pixel protocols draw it: its pixels at screen resolution with every nucleus outlined —
    /// bright class colour for a label, muted for a suggestion, thin grey for neither, and a yellow rim around the
    /// selected one (the paper's Fig. 2b). Cells without a contour get their box; a nucleus under 3 picture
    /// pixels across is a dot. Nil before the first patch or with a character protocol.
    public func picture() -> Picture? {
        if gallery != nil { return galleryPicture() }
        guard var p = basePicture else { return nil }
        // Two-pixel lines once a slide pixel covers more than about 1.3 screen pixels.
        let strong = p.level0PerPixel <= 0.75 ? 2 : 1
        func small(_ cell: Cell) -> Bool {
            Double(max(cell.bbox.width, cell.bbox.height)) / p.level0PerPixel < Double(Self.minBoxPixels)
        }
        func draw(_ cell: Cell, _ colour: RGB, _ thickness: Int) {
            if small(cell) {
                let c = p.pixel(ofLevel0: cell.centroid.x, cell.centroid.y)
                p.dab(Int(c.x.rounded(.down)), Int(c.y.rounded(.down)), colour, thickness: 2)
            } else if cell.contour.count >= 6 {
                p.outline(level0: cell.contour, colour, thickness: thickness)
            } else {
                p.box(level0: cell.bbox, colour, thickness: thickness)
            }
        }
        for cell in cells.sorted(by: { rank($0) < rank($1) }) {
            if let label = cell.label {
                draw(cell, brightColor(of: label.className), strong)
            } else if let s = cell.suggestion {
                draw(cell, mutedColor(of: s.className), strong)
            } else if !small(cell) {
                draw(cell, Self.neitherOutline, 1)
            }
        }
        if let s = selectedCell {
            // A ring clear of the nucleus, so its outline (and the cells around it) stay visible.
            let c = p.pixel(ofLevel0: s.centroid.x, s.centroid.y)
            let radius = Double(max(s.bbox.width, s.bbox.height)) / p.level0PerPixel * 0.6 + 4
            p.ring(centreX: c.x, centreY: c.y, radius: radius, Self.selection, thickness: 2)
        }
        return p
    }

    /// The no-colour picture: a luminance ramp, each cell marked at its centroid by its class letter (uppercase
    /// label, lowercase suggestion, "+" neither), the selected one bracketed and in reverse video.
    private func drawLetters(_ g: inout ScreenGrid, _ t: Thumbnail, _ l: Layout) {
        for row in 0..<min(l.image.height, t.textRows) {
            for x in 0..<min(l.image.width, t.width) {
                var luma = t[x, 2 * row].luma
                if 2 * row + 1 < t.height { luma = (luma + t[x, 2 * row + 1].luma) / 2 }
                let ch: Character =
                    t.hasPixels && graphics != .none ? Self.ramp[min(Self.ramp.count - 1, Int(luma / 256 * Double(Self.ramp.count)))] : " "
                g[l.image.x + x, l.image.y + row] = ScreenCell(ch)
            }
        }
        let ordered = cells.sorted { rank($0) < rank($1) }
        func place(_ cell: Cell) -> (Int, Int)? {
            let p = t.pixel(ofLevel0: cell.centroid.x, cell.centroid.y)
            let x = Int(p.x.rounded(.down))
            let row = Int(p.y.rounded(.down)) / 2
            guard x >= 0, x < min(t.width, l.image.width), row >= 0, row < min(t.textRows, l.image.height) else { return nil }
            return (l.image.x + x, l.image.y + row)
        }
        for cell in ordered {
            guard let (x, y) = place(cell) else { continue }
            let ch: Character
            if let label = cell.label {
                ch = Character(String(letter(of: label.className)).uppercased())
            } else if let s = cell.suggestion {
                ch = Character(String(letter(of: s.className)).lowercased())
            } else {
                ch = "+"
            }
            g[x, y] = ScreenCell(ch, bold: cell.label != nil)
        }
        if let s = selectedCell, let (x, y) = place(s) {
            var c = g[x, y]
            c.reverse = true
            g[x, y] = c
            if x - 1 >= l.image.x { g[x - 1, y] = ScreenCell("[", bold: true) }
            if x + 1 < l.image.x + min(t.width, l.image.width) { g[x + 1, y] = ScreenCell("]", bold: true) }
        }
    }

    // MARK: Panel

    /// The gallery without a pixel protocol: the mosaic as half-blocks, or (no colour) as a luminance ramp with
    /// each crop's state as a letter in its corner (lowercase suggested, uppercase decided, "-" skipped).
    private func drawGalleryImage(_ g: inout ScreenGrid, _ l: Layout) {
        if graphics.isPixelProtocol { return }
        guard let state = gallery, let page = state.page, let p = galleryPicture() else {
            g.put(
                gallery?.page == nil ? "loading the gallery…" : message, x: l.image.x + 2, y: l.image.y + l.image.height / 2,
                fg: color ? Self.dimText : nil, maxWidth: l.image.width - 2)
            return
        }
        for row in 0..<min(l.image.height, (p.height + 1) / 2) {
            for x in 0..<min(l.image.width, p.width) {
                let upper = p[x, 2 * row]
                let lower = 2 * row + 1 < p.height ? p[x, 2 * row + 1] : Self.canvas
                if color && graphics != .none {
                    g[l.image.x + x, l.image.y + row] = ScreenCell("▀", fg: upper, bg: lower)
                } else {
                    let luma = (upper.luma + lower.luma) / 2
                    let ch: Character = graphics != .none ? Self.ramp[min(Self.ramp.count - 1, Int(luma / 256 * Double(Self.ramp.count)))] : " "
                    g[l.image.x + x, l.image.y + row] = ScreenCell(ch)
                }
            }
        }
        guard !color || graphics == .none else { return }
        for (i, id) in page.cellIDs.enumerated() where i < state.grid.capacity {
            let (ox, oy) = state.grid.origin(of: i)
            let (x, y) = (l.image.x + ox + 1, l.image.y + oy / 2 + 1)
            guard x < l.image.x + l.image.width, y < l.image.y + l.image.height else { continue }
            let mark: String
            if let d = state.decided[id] {
                mark = String(letter(of: d)).uppercased()
            } else if state.skipped.contains(id) {
                mark = "-"
            } else {
                mark = String(letter(of: page.className)).lowercased()
            }
            g.put(i == state.selected ? "[\(mark)]" : " \(mark) ", x: x, y: y, bold: true, reverse: i == state.selected)
        }
    }

    private func drawPanel(_ g: inout ScreenGrid, _ l: Layout) {
        guard l.panel.width > 0 else { return }
        if gallery != nil {
            var y = l.panel.y
            for line in galleryPanelLines() where y < l.panel.y + l.panel.height {
                g.put(line.text, x: l.panel.x, y: y, fg: color ? (line.colour ?? Self.text) : nil, bold: line.bold, maxWidth: l.panel.width)
                y += 1
            }
            return
        }
        let x = l.panel.x
        let w = l.panel.width
        var y = l.panel.y
        let bottom = l.panel.y + l.panel.height
        let fg: RGB? = color ? Self.text : nil
        let dim: RGB? = color ? Self.dimText : nil
        func line(_ s: String, _ c: RGB? = nil, bold: Bool = false) {
            guard y < bottom - 1 else { return }
            g.put(s, x: x, y: y, fg: c ?? fg, bold: bold, maxWidth: w)
            y += 1
        }
        line("Classes", bold: true)
        if classes.isEmpty { line("  (waiting for the session)", dim) }
        let patchCells = cellsInView
        for c in classes {
            guard y < bottom - 1 else { break }
            let labelled = patchCells.filter { $0.label?.className == c.name }.count
            let suggested = patchCells.filter { $0.label == nil && $0.suggestion?.className == c.name }.count
            var cx = g.put(" \(c.key.isEmpty ? "·" : c.key) ", x: x, y: y, fg: fg, bold: true, maxWidth: w)
            if color {
                g[cx, y] = ScreenCell("█", fg: brightColor(of: c.name))
                g[cx + 1, y] = ScreenCell("█", fg: mutedColor(of: c.name))
                cx += 3
            } else {
                cx = g.put("\(letter(of: c.name))/\(Character(String(letter(of: c.name)).lowercased())) ", x: cx, y: y, bold: true)
            }
            let count = " \(labelled)+\(suggested)"
            g.put(c.name, x: cx, y: y, fg: fg, maxWidth: max(0, x + w - cx - count.count))
            g.put(count, x: x + w - count.count, y: y, fg: dim)
            y += 1
        }
        line("")
        if let cell = selectedCell {
            line("Cell \(cell.id)", bold: true)
            if let label = cell.label {
                line("  label: \(label.className) (\(Self.sourceName(label.source)))", color ? brightColor(of: label.className) : nil)
            } else {
                line("  label: none", dim)
            }
            if let s = cell.suggestion {
                let v = suggestionModel[cell.id].map { " v\($0)" } ?? ""
                line(
                    "  model: \(s.className) \(Int((s.confidence * 100).rounded()))%\(v)",
                    color ? mutedColor(of: s.className).mixed(with: .white, 0.3) : nil)
            } else {
                line("  model: no suggestion", dim)
            }
            if cell.areaUm2 > 0 { line("  area \(Self.fixed(Double(cell.areaUm2), 1)) µm²", dim) }
        } else {
            line("No cell selected", dim)
        }
        line("")
        if let p = patch {
            let view = patchCells
            let labelled = view.filter { $0.label != nil }.count
            let suggested = view.filter { $0.label == nil && $0.suggestion != nil }.count
            line("Patch: \(view.count) cells", bold: true)
            line("  \(labelled) labelled, \(suggested) suggested", dim)
            if p.mpp > 0 { line("  level \(p.level), \(Self.fixed(p.mpp, 2)) µm/px", dim) } else { line("  level \(p.level)", dim) }
        }
        if let pick, !pick.reason.isEmpty {
            for chunk in Self.wrap("Pick: " + pick.reason, width: w).prefix(2) { line(chunk, dim) }
        }
        if !message.isEmpty {
            line("")
            for chunk in Self.wrap(message, width: w).prefix(3) { line(chunk, color ? (messageIsError ? Self.errorText : Self.warnText) : nil) }
        }
        g.put("? help  n next  p picks  q quit", x: x, y: bottom - 1, fg: dim, maxWidth: w)
    }

    static func sourceName(_ s: LabelSource) -> String {
        switch s {
        case .manual: "manual"
        case .acceptedSuggestion: "accepted"
        case .correctedSuggestion: "corrected"
        case .imported: "imported"
        case .unspecified: "?"
        }
    }

    // MARK: Help

    /// The help overlay's lines (without the frame).
    public func helpLines() -> [String] {
        var lines = [
            "Keys",
            "arrows, h j k l   select the nearest cell that way",
        ]
        if classes.isEmpty {
            lines.append("class keys        label the selected cell")
        } else {
            var keys = classes.map(\.key).joined(separator: " ")
            while keys.count < 18 { keys += " " }
            lines.append(keys + classes.map(\.name).joined(separator: ", "))
        }
        lines += [
            "Enter, Space      accept the selected suggestion",
            "A                 accept all suggestions in view",
            "u                 undo your last label",
            "Tab               next unlabelled cell",
            "Shift-arrows, wasd  pan half a patch",
            "+ / -             zoom in / out",
            "n                 next patch (the daemon's pick)",
            "g                 review gallery: a class's suggestions as crops",
            "p                 the learner's picks: the cells that teach most",
            "?                 help          q  quit",
            "",
        ]
        if color {
            lines += [
                "Boxes: bright = your label, muted = model",
                "suggestion, corners only = neither yet,",
                "yellow ring = selected cell.",
            ]
        } else {
            lines += [
                "Marks: UPPER = label, lower = suggestion,",
                "+ = neither yet, [x] = selected cell.",
            ]
        }
        lines += ["", "any key closes this help"]
        return lines
    }

    private func drawHelp(_ g: inout ScreenGrid) {
        let lines = helpLines()
        let w = min(columns - 2, (lines.map(\.count).max() ?? 0) + 4)
        let h = min(rows - 2, lines.count + 2)
        let x0 = max(0, (columns - w) / 2)
        let y0 = max(0, (rows - h) / 2)
        let bg: RGB? = color ? RGB(20, 24, 32) : nil
        let fg: RGB? = color ? Self.text : nil
        g.fill(x: x0, y: y0, width: w, height: h, with: ScreenCell(" ", fg: fg, bg: bg))
        let border: RGB? = color ? Self.selection : nil
        for x in x0..<(x0 + w) {
            g[x, y0] = ScreenCell("─", fg: border, bg: bg)
            g[x, y0 + h - 1] = ScreenCell("─", fg: border, bg: bg)
        }
        for y in y0..<(y0 + h) {
            g[x0, y] = ScreenCell("│", fg: border, bg: bg)
            g[x0 + w - 1, y] = ScreenCell("│", fg: border, bg: bg)
        }
        g[x0, y0] = ScreenCell("┌", fg: border, bg: bg)
        g[x0 + w - 1, y0] = ScreenCell("┐", fg: border, bg: bg)
        g[x0, y0 + h - 1] = ScreenCell("└", fg: border, bg: bg)
        g[x0 + w - 1, y0 + h - 1] = ScreenCell("┘", fg: border, bg: bg)
        for (i, text) in lines.prefix(h - 2).enumerated() {
            g.put(text, x: x0 + 2, y: y0 + 1 + i, fg: fg, bg: bg, bold: i == 0, maxWidth: w - 4)
        }
    }

    // MARK: Formatting (no Foundation)

    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "?" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int((abs(v) * scale).rounded())
        let whole = n / Int(scale)
        let frac = n % Int(scale)
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        return (v < 0 && n != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        guard width > 0 else { return [] }
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
            while current.count > width {
                lines.append(String(current.prefix(width)))
                current = String(current.dropFirst(width))
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
