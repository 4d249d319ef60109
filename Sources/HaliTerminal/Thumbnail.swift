public import HaliCore
public import HaliWire

/// A patch's pixels box-averaged down to the terminal area that shows it.
///
/// One thumbnail pixel is half a character cell: a text row holds two pixel rows (the "▀" glyph's foreground is
/// the upper pixel, its background the lower one), so character cells, about twice as tall as wide, show square
/// pixels. The patch keeps its aspect ratio; the thumbnail may be narrower or shorter than the area.
public struct Thumbnail: Sendable, Equatable {
    /// Thumbnail pixels across (= text columns).
    public let width: Int
    /// Thumbnail pixels down (= 2 × text rows, possibly one less than a full row pair).
    public let height: Int
    public var pixels: [RGB]
    /// The patch region (level-0 pixels) the thumbnail shows; its top-left is the thumbnail's (0, 0).
    public let region: Region
    /// Level-0 pixels per thumbnail pixel (the same along both axes).
    public let level0PerPixel: Double
    /// False when the patch carried no pixels (only cells): the picture is a flat backdrop.
    public let hasPixels: Bool

    public static let backdrop = RGB(24, 24, 24)

    public init(width: Int, height: Int, pixels: [RGB], region: Region, level0PerPixel: Double, hasPixels: Bool) {
        self.width = width
        self.height = height
        self.pixels = pixels
        self.region = region
        self.level0PerPixel = level0PerPixel
        self.hasPixels = hasPixels
    }

    /// Fits `patch` into `columns` × `rows` text cells (2 × `rows` pixel rows), box-averaging its RGB8 pixels.
    public init(patch: Patch, columns: Int, rows: Int) {
        let maxW = max(1, columns)
        let maxH = max(1, rows * 2)
        let pixelCount = Int(patch.width) * Int(patch.height)
        let usable = patch.pixelFormat == .rgb8 && pixelCount > 0 && patch.pixels.count >= pixelCount * 3
        // Source dimensions, and level-0 pixels per source pixel.
        let sw: Int
        let sh: Int
        let level0PerSource: Double
        if usable {
            sw = Int(patch.width)
            sh = Int(patch.height)
            if patch.region.width > 0 {
                level0PerSource = Double(patch.region.width) / Double(sw)
            } else {
                level0PerSource = patch.downsample > 0 ? patch.downsample : 1
            }
        } else {
            sw = max(1, Int(patch.region.width))
            sh = max(1, Int(patch.region.height))
            level0PerSource = 1
        }
        // Source pixels per thumbnail pixel: the larger of the two axes' needs, so the whole patch fits.
        let s = max(Double(sw) / Double(maxW), Double(sh) / Double(maxH))
        let w = max(1, min(maxW, Int((Double(sw) / s - 1e-9).rounded(.up))))
        let h = max(1, min(maxH, Int((Double(sh) / s - 1e-9).rounded(.up))))
        var out = [RGB](repeating: Thumbnail.backdrop, count: w * h)
        if usable {
            patch.pixels.withUnsafeBufferPointer { src in
                for ty in 0..<h {
                    let y0 = min(sh - 1, Int(Double(ty) * s))
                    let y1 = max(y0 + 1, min(sh, Int(Double(ty + 1) * s)))
                    for tx in 0..<w {
                        let x0 = min(sw - 1, Int(Double(tx) * s))
                        let x1 = max(x0 + 1, min(sw, Int(Double(tx + 1) * s)))
                        var r = 0
                        var g = 0
                        var b = 0
                        for y in y0..<y1 {
                            var p = (y * sw + x0) * 3
                            for _ in x0..<x1 {
                                r += Int(src[p])
                                g += Int(src[p + 1])
                                b += Int(src[p + 2])
                                p += 3
                            }
                        }
                        let n = (y1 - y0) * (x1 - x0)
                        out[ty * w + tx] = RGB(UInt8((r + n / 2) / n), UInt8((g + n / 2) / n), UInt8((b + n / 2) / n))
                    }
                }
            }
        }
        self.init(
            width: w, height: h, pixels: out, region: patch.region, level0PerPixel: s * level0PerSource,
            hasPixels: usable)
    }

    public subscript(x: Int, y: Int) -> RGB {
        get { pixels[y * width + x] }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            pixels[y * width + x] = newValue
        }
    }

    /// Text rows the thumbnail occupies.
    public var textRows: Int { (height + 1) / 2 }

    /// Thumbnail pixel (fractional) of a level-0 point.
    public func pixel(ofLevel0 x: Double, _ y: Double) -> (x: Double, y: Double) {
        ((x - Double(region.x)) / level0PerPixel, (y - Double(region.y)) / level0PerPixel)
    }

    /// The thumbnail pixel rectangle (inclusive corners) of a level-0 box; not clipped.
    public func pixelRect(of box: Region) -> (x0: Int, y0: Int, x1: Int, y1: Int) {
        let a = pixel(ofLevel0: Double(box.x), Double(box.y))
        let b = pixel(ofLevel0: Double(box.x + max(1, box.width)), Double(box.y + max(1, box.height)))
        let x0 = Int(a.x.rounded(.down))
        let y0 = Int(a.y.rounded(.down))
        let x1 = max(x0, Int((b.x - 1e-9).rounded(.down)))
        let y1 = max(y0, Int((b.y - 1e-9).rounded(.down)))
        return (x0, y0, x1, y1)
    }

    /// Draws a rectangle's outline (inclusive corners), clipped.
    public mutating func strokeRect(x0: Int, y0: Int, x1: Int, y1: Int, color: RGB) {
        for x in x0...x1 {
            self[x, y0] = color
            self[x, y1] = color
        }
        for y in y0...y1 {
            self[x0, y] = color
            self[x1, y] = color
        }
    }

    /// Marks only the four corners of a rectangle (cells with neither label nor suggestion).
    public mutating func markCorners(x0: Int, y0: Int, x1: Int, y1: Int, color: RGB) {
        self[x0, y0] = color
        self[x1, y0] = color
        self[x0, y1] = color
        self[x1, y1] = color
    }
}
