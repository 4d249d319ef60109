/// DEC sixel graphics: an RGB8 image as the escape sequence xterm (`-ti vt340`), mlterm, foot, WezTerm and Windows
/// Terminal draw at the cursor.
///
/// A sixel is one column of six vertical pixels, sent as the character 0x3F + its six bits (bit 0 on top). An image
/// is a sequence of bands six pixels tall; within a band each colour used is drawn as one pass over the band's
/// columns (`#index` selects the colour, `$` returns to the band's left edge, `-` moves to the next band), with runs
/// of the same sixel written `!count` + character. Colours are indices into at most `registers` colour registers,
/// defined as `#index;2;r;g;b` in percent (0–100), so an image is first reduced to a palette (`SixelPalette`).
///
/// The introducer is `ESC P 0;1;0 q`: P2 = 1 leaves pixels that no pass sets untouched, so a band taller than the
/// image (heights that are not multiples of six) does not paint over what lies below it; the raster attributes
/// (`"1;1;width;height`) give the size in pixels at a 1:1 aspect.
///
/// Reference: DEC, *VT330/VT340 Programmer Reference Manual*, vol. 2, ch. 14 "Sixel Graphics" (EK-VT3XX-GP-002);
/// xterm's ctlseqs ("Sixel Graphics", XTSMGRAPHICS).
///
/// - Complexity: O(width × height) to index the pixels, plus O(colours used in a band × width) per band to write
///   the passes; the output is at most about (colours per band + 1) × width bytes per band.
public enum SixelEncoder {
    /// The sequence that draws `indices` (one palette index per pixel, row-major, `width` × `height`) with `palette`.
    public static func encode(indices: [UInt8], width: Int, height: Int, palette: [RGB]) -> [UInt8] {
        precondition(indices.count == width * height, "\(indices.count) indices for \(width)×\(height)")
        var out: [UInt8] = []
        out.reserveCapacity(width * height / 2 + 64)
        func append(_ s: String) { out.append(contentsOf: s.utf8) }
        func appendNumber(_ n: Int) {
            if n >= 10 { appendNumber(n / 10) }
            out.append(UInt8(48 + n % 10))
        }
        append("\u{1B}P0;1;0q\"1;1;\(width);\(height)")
        guard width > 0, height > 0 else {
            append("\u{1B}\\")
            return out
        }
        var used = [Bool](repeating: false, count: palette.count)
        for i in indices { used[Int(i)] = true }
        for (i, c) in palette.enumerated() where used[i] {
            append("#\(i);2;\(percent(c.r));\(percent(c.g));\(percent(c.b))")
        }
        // bits[colour * width + x]: the sixel of column x for that colour in the current band.
        var bits = [UInt8](repeating: 0, count: palette.count * width)
        var inBand = [Bool](repeating: false, count: palette.count)
        var bandColours: [Int] = []
        for top in stride(from: 0, to: height, by: 6) {
            let rows = min(6, height - top)
            bandColours.removeAll(keepingCapacity: true)
            for r in 0..<rows {
                let rowStart = (top + r) * width
                let bit = UInt8(1) << UInt8(r)
                for x in 0..<width {
                    let c = Int(indices[rowStart + x])
                    if !inBand[c] {
                        inBand[c] = true
                        bandColours.append(c)
                    }
                    bits[c * width + x] |= bit
                }
            }
            for (n, c) in bandColours.enumerated() {
                if n > 0 { out.append(UInt8(ascii: "$")) }
                out.append(UInt8(ascii: "#"))
                appendNumber(c)
                let row = c * width
                // Trailing empty sixels need not be sent: the pass ends at the colour's last column.
                var end = width
                while end > 0 && bits[row + end - 1] == 0 { end -= 1 }
                var x = 0
                while x < end {
                    let value = bits[row + x]
                    var run = 1
                    while x + run < end && bits[row + x + run] == value { run += 1 }
                    let ch = 0x3F + value
                    if run >= 4 {
                        out.append(UInt8(ascii: "!"))
                        appendNumber(run)
                        out.append(ch)
                    } else {
                        for _ in 0..<run { out.append(ch) }
                    }
                    x += run
                }
                for i in row..<(row + width) { bits[i] = 0 }
                inBand[c] = false
            }
            out.append(UInt8(ascii: "-"))
        }
        append("\u{1B}\\")
        return out
    }

    /// An 8-bit channel as the sixel's percent, rounded to nearest.
    static func percent(_ v: UInt8) -> Int { (Int(v) * 100 + 127) / 255 }
}

/// A palette of at most `registers` colours for an image, and the map from any RGB colour to its nearest entry.
///
/// The colours come from median cut (Heckbert, "Color image quantization for frame buffer display", SIGGRAPH 1982)
/// over a 5-bit-per-channel histogram: the box of histogram cells with the largest population × longest side is
/// split at the median of its longest axis until there are enough boxes; each box's colour is its pixels' mean.
/// `reserved` colours (the outlines' class colours, the selection) are entries of their own, so that overlays keep
/// their exact hue. Lookups go through a 32,768-entry table (filled lazily), so mapping a frame costs one table read
/// per pixel.
///
/// - Complexity: O(pixels) for the histogram, O(k · 32,768) at worst to split k boxes, O(k) per first lookup of
///   one of the 32,768 cells.
public struct SixelPalette: Sendable {
    public private(set) var colors: [RGB]
    /// Entries 0..<reservedCount are the reserved colours.
    public let reservedCount: Int
    private var reservedCell: [Bool]
    private var lookup: [Int16]

    public init(pixels rgb: [UInt8], registers: Int, reserved: [RGB] = []) {
        let total = max(2, min(256, registers))
        var reservedUnique: [RGB] = []
        for c in reserved where !reservedUnique.contains(c) { reservedUnique.append(c) }
        reservedUnique = Array(reservedUnique.prefix(total / 2))
        let budget = total - reservedUnique.count
        var histogram = [Int](repeating: 0, count: 32_768)
        var sums = [(Int, Int, Int)](repeating: (0, 0, 0), count: 32_768)
        var i = 0
        while i + 2 < rgb.count {
            let r = Int(rgb[i]), g = Int(rgb[i + 1]), b = Int(rgb[i + 2])
            let cell = (r >> 3) << 10 | (g >> 3) << 5 | (b >> 3)
            histogram[cell] += 1
            sums[cell].0 += r
            sums[cell].1 += g
            sums[cell].2 += b
            i += 3
        }
        let occupied = (0..<32_768).filter { histogram[$0] > 0 }
        var boxes: [[Int]] = occupied.isEmpty ? [] : [occupied]
        func axisRange(_ box: [Int], _ shift: Int) -> Int {
            var lo = 31, hi = 0
            for cell in box {
                let v = (cell >> shift) & 31
                lo = min(lo, v)
                hi = max(hi, v)
            }
            return hi - lo
        }
        func population(_ box: [Int]) -> Int { box.reduce(0) { $0 + histogram[$1] } }
        while boxes.count < budget {
            // The box most worth splitting: many pixels over a long side.
            var best = -1
            var bestScore = 0
            var bestShift = 0
            for (n, box) in boxes.enumerated() where box.count > 1 {
                let ranges = [(axisRange(box, 10), 10), (axisRange(box, 5), 5), (axisRange(box, 0), 0)]
                let longest = ranges.max { $0.0 < $1.0 }!
                let score = population(box) * (longest.0 + 1)
                if score > bestScore {
                    bestScore = score
                    best = n
                    bestShift = longest.1
                }
            }
            guard best >= 0 else { break }
            let sorted = boxes[best].sorted { ($0 >> bestShift) & 31 < ($1 >> bestShift) & 31 }
            let half = population(sorted) / 2
            var running = 0
            var cut = 1
            for (n, cell) in sorted.enumerated() {
                running += histogram[cell]
                if running >= half {
                    cut = max(1, min(sorted.count - 1, n + 1))
                    break
                }
            }
            boxes[best] = Array(sorted[..<cut])
            boxes.append(Array(sorted[cut...]))
        }
        var colors = reservedUnique
        for box in boxes {
            var r = 0, g = 0, b = 0, n = 0
            for cell in box {
                r += sums[cell].0
                g += sums[cell].1
                b += sums[cell].2
                n += histogram[cell]
            }
            colors.append(RGB(UInt8((r + n / 2) / n), UInt8((g + n / 2) / n), UInt8((b + n / 2) / n)))
        }
        if colors.isEmpty { colors = [RGB.black] }
        self.colors = colors
        reservedCount = reservedUnique.count
        reservedCell = [Bool](repeating: false, count: 32_768)
        for c in reservedUnique { reservedCell[Int(c.r >> 3) << 10 | Int(c.g >> 3) << 5 | Int(c.b >> 3)] = true }
        lookup = [Int16](repeating: -1, count: 32_768)
    }

    /// The index of the entry for `c`: the reserved entry equal to it, else the median-cut entry nearest to the
    /// centre of `c`'s 5-bit cell (squared RGB distance), so that tissue never takes an overlay's colour.
    public mutating func index(of c: RGB) -> UInt8 {
        let cell = Int(c.r >> 3) << 10 | Int(c.g >> 3) << 5 | Int(c.b >> 3)
        if reservedCell[cell] {
            for i in 0..<reservedCount where colors[i] == c { return UInt8(i) }
        }
        if lookup[cell] < 0 {
            let r = Int(c.r >> 3) * 8 + 4, g = Int(c.g >> 3) * 8 + 4, b = Int(c.b >> 3) * 8 + 4
            let candidates = reservedCount < colors.count ? reservedCount..<colors.count : 0..<colors.count
            var best = candidates.lowerBound
            var bestDistance = Int.max
            for i in candidates {
                let p = colors[i]
                let dr = Int(p.r) - r, dg = Int(p.g) - g, db = Int(p.b) - b
                let d = dr * dr + dg * dg + db * db
                if d < bestDistance {
                    bestDistance = d
                    best = i
                }
            }
            lookup[cell] = Int16(best)
        }
        return UInt8(lookup[cell])
    }

    /// Every pixel of an RGB8 buffer as its palette index.
    public mutating func indices(of rgb: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: rgb.count / 3)
        for p in 0..<out.count { out[p] = index(of: RGB(rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2])) }
        return out
    }
}
