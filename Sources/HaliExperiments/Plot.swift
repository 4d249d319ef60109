// Curves as PNG: a tiny raster plotter and a pure-Swift PNG encoder (PNG 1.2; zlib RFC 1950; deflate RFC 1951 with
// one fixed-Huffman block and greedy LZ77 matching, enough for flat-coloured plots; no dependencies).

import Foundation

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

    public func png() -> [UInt8] { PNGWriter.encode(width: width, height: height, rgb: rgb) }
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

public enum PNGWriter {
    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    public static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in bytes { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return (b << 16) | a
    }

    /// zlib stream made of stored (uncompressed) deflate blocks of ≤ 65535 bytes.
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, data.count - i)
            let last: UInt8 = i + n >= data.count ? 1 : 0
            out.append(last)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[i..<(i + n)]
            i += n
        } while i < data.count
        let ad = adler32(data)
        out += [UInt8(ad >> 24), UInt8((ad >> 16) & 0xFF), UInt8((ad >> 8) & 0xFF), UInt8(ad & 0xFF)]
        return out
    }

    /// zlib stream of one fixed-Huffman deflate block (RFC 1951 §3.2.6) with greedy LZ77 (3-byte hash, 32 KiB window).
    public static func zlibFixedHuffman(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var bitBuffer: UInt64 = 0
        var bitCount = 0
        func bits(_ value: UInt32, _ n: Int) {  // LSB first
            bitBuffer |= UInt64(value) << UInt64(bitCount)
            bitCount += n
            while bitCount >= 8 { out.append(UInt8(bitBuffer & 0xFF)); bitBuffer >>= 8; bitCount -= 8 }
        }
        func huffman(_ code: UInt32, _ n: Int) {  // Huffman codes go MSB first
            var r: UInt32 = 0
            for i in 0..<n { r |= ((code >> UInt32(i)) & 1) << UInt32(n - 1 - i) }
            bits(r, n)
        }
        func literal(_ v: Int) {
            switch v {
            case 0...143: huffman(UInt32(0x30 + v), 8)
            case 144...255: huffman(UInt32(0x190 + v - 144), 9)
            case 256...279: huffman(UInt32(v - 256), 7)
            default: huffman(UInt32(0xC0 + v - 280), 8)
            }
        }
        let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        let distBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                        4097, 6145, 8193, 12289, 16385, 24577]
        let distExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
        bits(1, 1)  // BFINAL
        bits(1, 2)  // BTYPE = 01, fixed Huffman
        var head = [Int](repeating: -1, count: 1 << 15)
        var i = 0
        let n = data.count
        @inline(__always) func hash(_ p: Int) -> Int {
            ((Int(data[p]) << 10) ^ (Int(data[p + 1]) << 5) ^ Int(data[p + 2])) & 0x7FFF
        }
        while i < n {
            var bestLen = 0, bestDist = 0
            if i + 2 < n {
                let h = hash(i)
                let cand = head[h]
                head[h] = i
                if cand >= 0 && i - cand <= 32768 {
                    var l = 0
                    while l < 258 && i + l < n && data[cand + l] == data[i + l] { l += 1 }
                    if l >= 3 { bestLen = l; bestDist = i - cand }
                }
            }
            if bestLen >= 3 {
                var li = lengthBase.count - 1
                while lengthBase[li] > bestLen { li -= 1 }
                literal(257 + li)
                if lengthExtra[li] > 0 { bits(UInt32(bestLen - lengthBase[li]), lengthExtra[li]) }
                var di = distBase.count - 1
                while distBase[di] > bestDist { di -= 1 }
                huffman(UInt32(di), 5)
                if distExtra[di] > 0 { bits(UInt32(bestDist - distBase[di]), distExtra[di]) }
                // Index the skipped positions so later matches can find them.
                var j = i + 1
                while j < i + bestLen && j + 2 < n { head[hash(j)] = j; j += 1 }
                i += bestLen
            } else {
                literal(Int(data[i]))
                i += 1
            }
        }
        literal(256)
        if bitCount > 0 { out.append(UInt8(bitBuffer & 0xFF)) }
        let ad = adler32(data)
        out += [UInt8(ad >> 24), UInt8((ad >> 16) & 0xFF), UInt8((ad >> 8) & 0xFF), UInt8(ad & 0xFF)]
        return out
    }

    public static func encode(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let t = Array(type.utf8)
            return be32(UInt32(body.count)) + t + body + be32(crc32(t + body))
        }
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height { raw.append(0); raw += rgb[(y * width * 3)..<((y + 1) * width * 3)] }
        let ihdr = be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", zlibFixedHuffman(raw))
            + chunk("IEND", [])
    }
}

public enum CurvePlot {
    public static let palette: [(UInt8, UInt8, UInt8)] = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14)]

    /// Mean curves with ±1 sd bands; y from `yMin` to 1; legend and axis numbers drawn with the bitmap font.
    public static func draw(title: String, xs: [Int], series: [(name: String, mean: [Double], sd: [Double])],
                            yMin: Double = 0.4, width: Int = 900, height: Int = 560) -> Canvas {
        var c = Canvas(width: width, height: height)
        let left = 80, right = width - 20, top = 50, bottom = height - 60
        let xMax = Double(xs.last ?? 1)
        func px(_ x: Double) -> Double { Double(left) + x / max(xMax, 1) * Double(right - left) }
        func py(_ y: Double) -> Double { Double(bottom) - (min(max(y, yMin), 1) - yMin) / (1 - yMin) * Double(bottom - top) }
        // Grid and ticks.
        var yt = yMin
        while yt <= 1.0001 {
            c.line(Double(left), py(yt), Double(right), py(yt), (225, 225, 225))
            c.text(String(format: "%.1f", yt), x: 20, y: Int(py(yt)) - 7, (60, 60, 60))
            yt += 0.1
        }
        let step = xMax > 100 ? 50 : 10
        for xt in stride(from: 0, through: Int(xMax), by: step) {
            c.line(px(Double(xt)), Double(top), px(Double(xt)), Double(bottom), (235, 235, 235))
            c.text("\(xt)", x: Int(px(Double(xt))) - 10, y: bottom + 10, (60, 60, 60))
        }
        c.line(Double(left), Double(bottom), Double(right), Double(bottom), (0, 0, 0), thickness: 2)
        c.line(Double(left), Double(top), Double(left), Double(bottom), (0, 0, 0), thickness: 2)
        c.text("N LABELS", x: (left + right) / 2 - 48, y: bottom + 34, (0, 0, 0))
        c.text(title, x: left, y: 14, (0, 0, 0))
        for (si, s) in series.enumerated() {
            let col = palette[si % palette.count]
            for i in 1..<xs.count {
                let x0 = Int(px(Double(xs[i - 1]))), x1 = Int(px(Double(xs[i])))
                for x in x0..<max(x1, x0 + 1) {
                    let t = Double(x - x0) / Double(max(x1 - x0, 1))
                    let m = s.mean[i - 1] + (s.mean[i] - s.mean[i - 1]) * t
                    let d = s.sd[i - 1] + (s.sd[i] - s.sd[i - 1]) * t
                    let ya = Int(py(m + d)), yb = Int(py(m - d))
                    for y in ya...max(ya, yb) { c.blend(x, y, col, alpha: 0.08) }
                }
            }
            for i in 1..<xs.count {
                c.line(px(Double(xs[i - 1])), py(s.mean[i - 1]), px(Double(xs[i])), py(s.mean[i]), col, thickness: 3)
            }
            let ly = bottom - 30 - (series.count - 1 - si) * 22
            c.fillRect(right - 250, ly, right - 234, ly + 12, col)
            c.text(s.name, x: right - 226, y: ly, (0, 0, 0))
        }
        return c
    }
}
