import Foundation
public import HaliCore
public import HaliWire

/// The patch as the pixel protocols draw it: its pixels scaled to fill the picture area (aspect kept, bilinear when
/// enlarging, box-averaged when shrinking), then the nuclei's outlines drawn in (`LabelClient.picture()`).
///
/// A picture is in screen pixels; `region` and `level0PerPixel` map level-0 slide coordinates onto it.
public struct Picture: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// RGB8, row-major.
    public var rgb: [UInt8]
    public let region: Region
    /// Level-0 pixels per picture pixel (the same along both axes).
    public let level0PerPixel: Double
    /// Changes whenever the underlying pixels do (a new patch or size), not for overlays: the sixel palette is
    /// rebuilt only then.
    public let generation: Int

    public init(width: Int, height: Int, rgb: [UInt8], region: Region, level0PerPixel: Double, generation: Int) {
        self.width = width
        self.height = height
        self.rgb = rgb
        self.region = region
        self.level0PerPixel = level0PerPixel
        self.generation = generation
    }

    /// Scales `patch` to fit inside `box` (both sides at least 1 px), keeping its aspect ratio.
    public init(patch: Patch, fitting box: PixelSize, generation: Int) {
        let sw = Int(patch.width)
        let sh = Int(patch.height)
        let usable = patch.pixelFormat == .rgb8 && sw > 0 && sh > 0 && patch.pixels.count >= sw * sh * 3
        let srcW = usable ? sw : max(1, Int(patch.region.width))
        let srcH = usable ? sh : max(1, Int(patch.region.height))
        // Source pixels per picture pixel.
        let s = max(Double(srcW) / Double(max(1, box.width)), Double(srcH) / Double(max(1, box.height)))
        let w = max(1, min(box.width, Int((Double(srcW) / s).rounded())))
        let h = max(1, min(box.height, Int((Double(srcH) / s).rounded())))
        var out = [UInt8](repeating: 24, count: w * h * 3)
        if usable {
            patch.pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    if s > 1 {
                        Self.boxAverage(src, sw, sh, into: dst, w, h, scale: s)
                    } else {
                        Self.bilinear(src, sw, sh, into: dst, w, h, scale: s)
                    }
                }
            }
        }
        let level0PerSource = patch.region.width > 0 ? Double(patch.region.width) / Double(srcW) : max(1, patch.downsample)
        self.init(width: w, height: h, rgb: out, region: patch.region, level0PerPixel: s * level0PerSource, generation: generation)
    }

    private static func boxAverage(
        _ src: UnsafeBufferPointer<UInt8>, _ sw: Int, _ sh: Int, into dst: UnsafeMutableBufferPointer<UInt8>, _ w: Int, _ h: Int,
        scale s: Double
    ) {
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
                let o = (ty * w + tx) * 3
                dst[o] = UInt8((r + n / 2) / n)
                dst[o + 1] = UInt8((g + n / 2) / n)
                dst[o + 2] = UInt8((b + n / 2) / n)
            }
        }
    }

    private static func bilinear(
        _ src: UnsafeBufferPointer<UInt8>, _ sw: Int, _ sh: Int, into dst: UnsafeMutableBufferPointer<UInt8>, _ w: Int, _ h: Int,
        scale s: Double
    ) {
        for ty in 0..<h {
            let fy = max(0, min(Double(sh - 1), (Double(ty) + 0.5) * s - 0.5))
            let y0 = Int(fy)
            let y1 = min(sh - 1, y0 + 1)
            let wy = fy - Double(y0)
            for tx in 0..<w {
                let fx = max(0, min(Double(sw - 1), (Double(tx) + 0.5) * s - 0.5))
                let x0 = Int(fx)
                let x1 = min(sw - 1, x0 + 1)
                let wx = fx - Double(x0)
                let o = (ty * w + tx) * 3
                for c in 0..<3 {
                    let top = Double(src[(y0 * sw + x0) * 3 + c]) * (1 - wx) + Double(src[(y0 * sw + x1) * 3 + c]) * wx
                    let bottom = Double(src[(y1 * sw + x0) * 3 + c]) * (1 - wx) + Double(src[(y1 * sw + x1) * 3 + c]) * wx
                    dst[o + c] = UInt8((top * (1 - wy) + bottom * wy).rounded())
                }
            }
        }
    }

    /// Picture pixel (fractional) of a level-0 point.
    public func pixel(ofLevel0 x: Double, _ y: Double) -> (x: Double, y: Double) {
        ((x - Double(region.x)) / level0PerPixel, (y - Double(region.y)) / level0PerPixel)
    }

    public subscript(x: Int, y: Int) -> RGB {
        let o = (y * width + x) * 3
        return RGB(rgb[o], rgb[o + 1], rgb[o + 2])
    }

    /// Paints a square of side `thickness` centred on (x, y), clipped.
    mutating func dab(_ x: Int, _ y: Int, _ c: RGB, thickness: Int) {
        let lo = -(thickness - 1) / 2
        for dy in lo..<(lo + thickness) {
            let yy = y + dy
            guard yy >= 0, yy < height else { continue }
            for dx in lo..<(lo + thickness) {
                let xx = x + dx
                guard xx >= 0, xx < width else { continue }
                let o = (yy * width + xx) * 3
                rgb[o] = c.r
                rgb[o + 1] = c.g
                rgb[o + 2] = c.b
            }
        }
    }

    /// A straight line between two picture points.
    public mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ c: RGB, thickness: Int) {
        let steps = max(1, Int(max(abs(x1 - x0), abs(y1 - y0)).rounded(.up)))
        for s in 0...steps {
            // Multiplied before dividing: (x1 - x0) * s / steps is exact for whole-pixel ends, where * (s / steps)
            // rounded 25 to 24.999… and left one-pixel holes in thin lines.
            let x = x0 + (x1 - x0) * Double(s) / Double(steps)
            let y = y0 + (y1 - y0) * Double(s) / Double(steps)
            dab(Int(x.rounded(.down)), Int(y.rounded(.down)), c, thickness: thickness)
        }
    }

    /// A square's outline in picture coordinates, top-left corner (x, y) (the gallery's tile frames).
    public mutating func square(x: Double, y: Double, side: Double, _ c: RGB, thickness: Int) {
        line(x, y, x + side, y, c, thickness: thickness)
        line(x + side, y, x + side, y + side, c, thickness: thickness)
        line(x, y + side, x + side, y + side, c, thickness: thickness)
        line(x, y, x, y + side, c, thickness: thickness)
    }

    /// A closed outline given in level-0 coordinates (x0, y0, x1, y1, …).
    public mutating func outline(level0 contour: [Float], _ c: RGB, thickness: Int) {
        let n = contour.count / 2
        guard n >= 2 else { return }
        var previous = pixel(ofLevel0: Double(contour[2 * (n - 1)]), Double(contour[2 * (n - 1) + 1]))
        for i in 0..<n {
            let p = pixel(ofLevel0: Double(contour[2 * i]), Double(contour[2 * i + 1]))
            line(previous.x, previous.y, p.x, p.y, c, thickness: thickness)
            previous = p
        }
    }

    /// A circle in picture coordinates (the selection).
    public mutating func ring(centreX: Double, centreY: Double, radius: Double, _ c: RGB, thickness: Int) {
        let steps = max(12, Int((2 * Double.pi * radius).rounded(.up)))
        for s in 0..<steps {
            let a = 2 * Double.pi * Double(s) / Double(steps)
            dab(Int((centreX + radius * cos(a)).rounded(.down)), Int((centreY + radius * sin(a)).rounded(.down)), c, thickness: thickness)
        }
    }

    /// A rectangle's outline in level-0 coordinates (cells without a contour).
    public mutating func box(level0 r: Region, _ c: RGB, thickness: Int) {
        let x0 = Float(r.x)
        let y0 = Float(r.y)
        let x1 = Float(r.x + r.width)
        let y1 = Float(r.y + r.height)
        outline(level0: [x0, y0, x1, y0, x1, y1, x0, y1], c, thickness: thickness)
    }
}
