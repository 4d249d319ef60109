// A small raster for reports: dots, lines, rectangles and 5×7 bitmap text on RGB pixels (the curves of
// `hali eval`, the class map of `hali predict`). HaliPNG writes it to a file.

public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    public var rgb: [UInt8]

    public init(width: Int, height: Int, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        self.width = width
        self.height = height
        rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { rgb[i * 3] = background.0; rgb[i * 3 + 1] = background.1; rgb[i * 3 + 2] = background.2 }
    }

    public mutating func blend(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8), alpha: Double = 1) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let o = (y * width + x) * 3
        rgb[o] = UInt8(Double(rgb[o]) * (1 - alpha) + Double(c.0) * alpha)
        rgb[o + 1] = UInt8(Double(rgb[o + 1]) * (1 - alpha) + Double(c.1) * alpha)
        rgb[o + 2] = UInt8(Double(rgb[o + 2]) * (1 - alpha) + Double(c.2) * alpha)
    }

    public mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ c: (UInt8, UInt8, UInt8), thickness: Int = 1) {
        let steps = Int(max(abs(x1 - x0), abs(y1 - y0)).rounded(.up)) + 1
        for s in 0...steps {
            let t = Double(s) / Double(max(steps, 1))
            let x = Int((x0 + (x1 - x0) * t).rounded()), y = Int((y0 + (y1 - y0) * t).rounded())
            for dy in 0..<thickness { for dx in 0..<thickness { blend(x + dx - thickness / 2, y + dy - thickness / 2, c) } }
        }
    }

    public mutating func fillRect(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8), alpha: Double = 1) {
        for y in min(y0, y1)...max(y0, y1) { for x in min(x0, x1)...max(x0, x1) { blend(x, y, c, alpha: alpha) } }
    }

    /// Draws text with a 5×7 bitmap font (digits, upper-case letters, a few signs), `scale` pixels per dot.
    public mutating func text(_ s: String, x: Int, y: Int, _ c: (UInt8, UInt8, UInt8), scale: Int = 2) {
        var cx = x
        for ch in s.uppercased() {
            if let g = Font5x7.glyphs[ch] {
                for (row, bits) in g.enumerated() {
                    for col in 0..<5 where bits & (1 << (4 - col)) != 0 {
                        fillRect(cx + col * scale, y + row * scale, cx + col * scale + scale - 1, y + row * scale + scale - 1, c)
                    }
                }
            }
            cx += 6 * scale
        }
    }

}

enum Font5x7 {
    static let glyphs: [Character: [UInt8]] = [
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
        "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
        "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
        "9": [14, 17, 17, 15, 1, 2, 12], ".": [0, 0, 0, 0, 0, 12, 12], "-": [0, 0, 0, 31, 0, 0, 0],
        "+": [0, 4, 4, 31, 4, 4, 0], "%": [24, 25, 2, 4, 8, 19, 3], " ": [0, 0, 0, 0, 0, 0, 0],
        "=": [0, 0, 31, 0, 31, 0, 0], "(": [2, 4, 8, 8, 8, 4, 2], ")": [8, 4, 2, 2, 2, 4, 8], "/": [1, 1, 2, 4, 8, 16, 16],
        ":": [0, 12, 12, 0, 12, 12, 0], ",": [0, 0, 0, 0, 12, 4, 8],
        "A": [14, 17, 17, 31, 17, 17, 17], "B": [30, 17, 17, 30, 17, 17, 30], "C": [14, 17, 16, 16, 16, 17, 14],
        "D": [28, 18, 17, 17, 17, 18, 28], "E": [31, 16, 16, 30, 16, 16, 31], "F": [31, 16, 16, 30, 16, 16, 16],
        "G": [14, 17, 16, 23, 17, 17, 15], "H": [17, 17, 17, 31, 17, 17, 17], "I": [14, 4, 4, 4, 4, 4, 14],
        "J": [7, 2, 2, 2, 2, 18, 12], "K": [17, 18, 20, 24, 20, 18, 17], "L": [16, 16, 16, 16, 16, 16, 31],
        "M": [17, 27, 21, 21, 17, 17, 17], "N": [17, 17, 25, 21, 19, 17, 17], "O": [14, 17, 17, 17, 17, 17, 14],
        "P": [30, 17, 17, 30, 16, 16, 16], "Q": [14, 17, 17, 17, 21, 18, 13], "R": [30, 17, 17, 30, 20, 18, 17],
        "S": [15, 16, 16, 14, 1, 1, 30], "T": [31, 4, 4, 4, 4, 4, 4], "U": [17, 17, 17, 17, 17, 17, 14],
        "V": [17, 17, 17, 17, 17, 10, 4], "W": [17, 17, 17, 21, 21, 21, 10], "X": [17, 17, 10, 4, 10, 17, 17],
        "Y": [17, 17, 10, 4, 4, 4, 4], "Z": [31, 1, 2, 4, 8, 16, 31],
    ]
}
