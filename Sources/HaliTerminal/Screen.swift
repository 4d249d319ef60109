import HaliCore

/// The screen as a grid of character cells, independent of how it is put on a terminal (see `ANSIRenderer`).

public struct RGB: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// Parses "#rrggbb" (or "rrggbb", "#rgb"); nil when malformed.
    public init?(hex: String) {
        guard let colour = HexColor(hex) else { return nil }
        self.init(colour.r, colour.g, colour.b)
    }

    public var description: String {
        let hex = Array("0123456789abcdef")
        return "#" + [r, g, b].map { String([hex[Int($0 >> 4)], hex[Int($0 & 15)]]) }.joined()
    }

    /// `self` moved `t` (0…1) of the way towards `other`.
    public func mixed(with other: RGB, _ t: Double) -> RGB {
        func m(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - t) + Double(b) * t).rounded()) }
        return RGB(m(r, other.r), m(g, other.g), m(b, other.b))
    }

    /// Relative luminance, 0…255 (Rec. 601 weights).
    public var luma: Double { 0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(b) }

    public static let black = RGB(0, 0, 0)
    public static let white = RGB(255, 255, 255)
    public static let gray = RGB(128, 128, 128)
}

/// How many colours the terminal shows.
public enum ColorMode: String, Sendable, CaseIterable {
    /// 24-bit colour: half-block pixels ("▀", fg = upper pixel, bg = lower pixel).
    case trueColor = "truecolor"
    /// The xterm 256-colour palette: the same picture, quantised.
    case palette256 = "256"
    /// No colour: the picture as a luminance ramp of ASCII characters, cells marked by letters.
    case none = "none"

    /// Picks a mode from the environment: NO_COLOR or TERM=dumb → none; COLORTERM=truecolor/24bit → truecolor;
    /// anything else → 256 colours.
    public static func detect(environment: [String: String]) -> ColorMode {
        let term = environment["TERM"] ?? ""
        if environment["NO_COLOR"].map({ !$0.isEmpty }) == true || term == "dumb" || term.isEmpty { return .none }
        let colorterm = (environment["COLORTERM"] ?? "").lowercased()
        if colorterm == "truecolor" || colorterm == "24bit" || term.contains("direct") { return .trueColor }
        return .palette256
    }
}

public struct ScreenCell: Sendable, Equatable {
    public var char: Character
    /// nil: the terminal's default.
    public var fg: RGB?
    public var bg: RGB?
    public var bold: Bool
    public var reverse: Bool

    public init(_ char: Character = " ", fg: RGB? = nil, bg: RGB? = nil, bold: Bool = false, reverse: Bool = false) {
        self.char = char
        self.fg = fg
        self.bg = bg
        self.bold = bold
        self.reverse = reverse
    }

    public static let blank = ScreenCell()
}

public struct ScreenGrid: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [ScreenCell]

    public init(width: Int, height: Int, fill: ScreenCell = .blank) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: fill, count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> ScreenCell {
        get { cells[y * width + x] }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            cells[y * width + x] = newValue
        }
    }

    public func contains(x: Int, y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height }

    /// Writes `text` from (x, y), clipped at `maxWidth` columns and the grid's edge. Control characters become
    /// spaces. Returns the column after the last character written.
    @discardableResult
    public mutating func put(
        _ text: String, x: Int, y: Int, fg: RGB? = nil, bg: RGB? = nil, bold: Bool = false, reverse: Bool = false,
        maxWidth: Int = .max
    ) -> Int {
        guard y >= 0, y < height else { return x }
        var column = x
        let limit = min(width, maxWidth == .max ? width : x + maxWidth)
        for ch in text {
            guard column < limit else { break }
            let safe: Character = ch.isASCII && (ch.asciiValue! < 0x20 || ch.asciiValue! == 0x7F) ? " " : ch
            if column >= 0 { self[column, y] = ScreenCell(safe, fg: fg, bg: bg, bold: bold, reverse: reverse) }
            column += 1
        }
        return column
    }

    /// Fills a rectangle (clipped).
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, with cell: ScreenCell) {
        for yy in max(0, y)..<min(height, y + h) {
            for xx in max(0, x)..<min(width, x + w) { self[xx, yy] = cell }
        }
    }

    /// One row's characters (for tests and plain captures).
    public func text(row y: Int) -> String { String((0..<width).map { self[$0, y].char }) }

    /// The whole grid as plain text, rows joined by newlines, trailing spaces kept.
    public var text: String { (0..<height).map { text(row: $0) }.joined(separator: "\n") }
}
