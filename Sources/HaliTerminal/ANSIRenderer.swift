/// Turns a `ScreenGrid` into ANSI escape sequences: 24-bit colour, the xterm 256-colour palette, or no colour
/// (bold and reverse video only).
///
/// `frame(_:previous:)` repaints only the rows that changed since `previous` (each from its first to its last
/// changed cell), which keeps redraws small over SSH.
public struct ANSIRenderer: Sendable {
    public var mode: ColorMode

    public init(mode: ColorMode) { self.mode = mode }

    /// Enter the alternate screen, hide the cursor, clear.
    public static let enterSequence = "\u{1B}[?1049h\u{1B}[?25l\u{1B}[0m\u{1B}[H\u{1B}[2J"
    /// Reset attributes, show the cursor, leave the alternate screen.
    public static let leaveSequence = "\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l"

    public func frame(_ grid: ScreenGrid, previous: ScreenGrid? = nil) -> String {
        var out = "\u{1B}[0m"
        var style: String? = "\u{1B}[0m"
        let sameSize = previous.map { $0.width == grid.width && $0.height == grid.height } ?? false
        if !sameSize { out += "\u{1B}[H\u{1B}[2J" }
        for y in 0..<grid.height {
            var first = 0
            var last = grid.width - 1
            if sameSize, let previous {
                guard let f = (0..<grid.width).first(where: { grid[$0, y] != previous[$0, y] }) else { continue }
                first = f
                last = (0..<grid.width).last(where: { grid[$0, y] != previous[$0, y] })!
            }
            guard first <= last else { continue }
            out += "\u{1B}[\(y + 1);\(first + 1)H"
            for x in first...last {
                let cell = grid[x, y]
                let s = sgr(cell)
                if s != style {
                    out += s
                    style = s
                }
                out.append(cell.char)
            }
        }
        out += "\u{1B}[0m"
        return out
    }

    /// The SGR sequence that sets `cell`'s attributes from a reset state.
    public func sgr(_ cell: ScreenCell) -> String {
        var codes = ["0"]
        if cell.bold { codes.append("1") }
        if cell.reverse { codes.append("7") }
        switch mode {
        case .trueColor:
            if let c = cell.fg { codes.append("38;2;\(c.r);\(c.g);\(c.b)") }
            if let c = cell.bg { codes.append("48;2;\(c.r);\(c.g);\(c.b)") }
        case .palette256:
            if let c = cell.fg { codes.append("38;5;\(Self.xterm256(c))") }
            if let c = cell.bg { codes.append("48;5;\(Self.xterm256(c))") }
        case .none:
            break
        }
        return "\u{1B}[" + codes.joined(separator: ";") + "m"
    }

    /// The nearest xterm 256-colour palette entry: the 6×6×6 cube (16–231) or the grey ramp (232–255).
    public static func xterm256(_ c: RGB) -> UInt8 {
        let levels: [Int] = [0, 95, 135, 175, 215, 255]
        func nearestLevel(_ v: UInt8) -> Int {
            var best = 0
            for i in 1..<levels.count where abs(levels[i] - Int(v)) < abs(levels[best] - Int(v)) { best = i }
            return best
        }
        let ri = nearestLevel(c.r)
        let gi = nearestLevel(c.g)
        let bi = nearestLevel(c.b)
        func d2(_ r: Int, _ g: Int, _ b: Int) -> Int {
            (r - Int(c.r)) * (r - Int(c.r)) + (g - Int(c.g)) * (g - Int(c.g)) + (b - Int(c.b)) * (b - Int(c.b))
        }
        let cubeDistance = d2(levels[ri], levels[gi], levels[bi])
        let mean = (Int(c.r) + Int(c.g) + Int(c.b)) / 3
        let grayIndex = max(0, min(23, (mean - 8 + 5) / 10))
        let grayValue = 8 + 10 * grayIndex
        let grayDistance = d2(grayValue, grayValue, grayValue)
        if grayDistance < cubeDistance { return UInt8(232 + grayIndex) }
        return UInt8(16 + 36 * ri + 6 * gi + bi)
    }
}
