public import HaliSlide

/// Where the tissue is, at low resolution, so ingest skips glass.
///
/// A thumbnail of about `targetSize` pixels on its long side is read from the pyramid level nearest that scale (in
/// strips, so a slide without a pyramid costs time, not memory). A thumbnail pixel is tissue when it is stained:
/// colour saturation (max − min of R, G, B) ≥ 18 or brightness (mean of R, G, B) ≤ 210 on 0–255, and it is not
/// near-black (mean ≥ 25: scanner borders, pen). The mask is dilated by 2 thumbnail pixels so tiles on the edge
/// of tissue are kept. These thresholds pass faint hematoxylin-only tissue and reject white or grey glass.
public struct TissueMask: Sendable {
    public let width: Int
    public let height: Int
    /// Level-0 pixels per mask pixel.
    public let downsample: Double
    public let mask: [Bool]

    public static let targetSize = 2048

    public static func compute(slide: Slide) throws -> TissueMask {
        let wanted = max(1, Double(max(slide.width, slide.height)) / Double(targetSize))
        let level = try slide.bestLevel(forDownsample: wanted)
        let levelDownsample = slide.levelDownsamples[level]
        let step = max(1, Int(wanted / levelDownsample))
        let (lw, lh) = slide.levelDimensions[level]
        let width = Int(lw) / step, height = Int(lh) / step
        var mask = [Bool](repeating: false, count: max(1, width * height))
        let strip = max(step, (1 << 22) / max(1, Int(lw)) / step * step)  // about 4 Mpx per read
        var y0 = 0
        while y0 < height * step {
            let rows = min(strip, height * step - y0)
            let rgb = try slide.readRegion(
                x: 0, y: Int64((Double(y0) * levelDownsample).rounded()), level: level, width: width * step, height: rows)
            mask.withUnsafeMutableBufferPointer { out in
                for sy in stride(from: 0, to: rows, by: step) {
                    let my = (y0 + sy) / step
                    for mx in 0..<width {
                        let i = (sy * width * step + mx * step) * 3
                        let r = Int(rgb[i]), g = Int(rgb[i + 1]), b = Int(rgb[i + 2])
                        let brightness = (r + g + b) / 3
                        let saturation = max(r, g, b) - min(r, g, b)
                        out[my * width + mx] = brightness >= 25 && (saturation >= 18 || brightness <= 210)
                    }
                }
            }
            y0 += rows
        }
        let dilated = dilate(mask, width: width, height: height, radius: 2)
        return TissueMask(width: width, height: height, downsample: levelDownsample * Double(step), mask: dilated)
    }

    init(width: Int, height: Int, downsample: Double, mask: [Bool]) {
        self.width = width
        self.height = height
        self.downsample = downsample
        self.mask = mask
    }

    /// Whether any mask pixel overlapping the level-0 rectangle [x0, x1) × [y0, y1) is tissue.
    public func containsTissue(x0: Double, y0: Double, x1: Double, y1: Double) -> Bool {
        let ax = max(0, Int(x0 / downsample)), ay = max(0, Int(y0 / downsample))
        let bx = min(width - 1, Int((x1 / downsample).rounded(.up))), by = min(height - 1, Int((y1 / downsample).rounded(.up)))
        guard ax <= bx, ay <= by else { return false }
        for y in ay...by {
            for x in ax...bx where mask[y * width + x] { return true }
        }
        return false
    }

    public var tissueFraction: Double { Double(mask.filter { $0 }.count) / Double(max(1, mask.count)) }

    public func tissueAreaMicrons2(micronsPerPixel: Double) -> Double {
        Double(mask.filter { $0 }.count) * downsample * downsample * micronsPerPixel * micronsPerPixel
    }

    /// Dilation by a (2·radius+1)² square: a horizontal pass, then a vertical one. O(width·height·radius).
    static func dilate(_ mask: [Bool], width: Int, height: Int, radius: Int) -> [Bool] {
        var rows = [Bool](repeating: false, count: mask.count), out = rows
        mask.withUnsafeBufferPointer { m in
            rows.withUnsafeMutableBufferPointer { r in
                for y in 0..<height {
                    for x in 0..<width where m[y * width + x] {
                        for xx in max(0, x - radius)...min(width - 1, x + radius) { r[y * width + xx] = true }
                    }
                }
            }
        }
        rows.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<height {
                    for x in 0..<width where r[y * width + x] {
                        for yy in max(0, y - radius)...min(height - 1, y + radius) { o[yy * width + x] = true }
                    }
                }
            }
        }
        return out
    }
}
