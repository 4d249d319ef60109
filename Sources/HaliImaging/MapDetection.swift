// Nuclei from two per-pixel maps predicted by a learned model (HaliNet.NucleusMapNet): P(pixel in a nucleus) and a
// nucleus-centre heat map. This file is the model-free half: preparing the model's input at the working resolution
// and turning its maps into nuclei with the same measurements as the watershed detector.
//
// Maps → nuclei (N = pixels at the working resolution, r = `peakRadiusMicrons` in px):
//  1. Seeds: pixels whose centre value is ≥ `seedThreshold` and equal to the maximum over the disk of radius r
//     around them (non-maximum suppression by a max filter, van Herk/Gil–Werman, O(N·r)); 8-connected groups of
//     such pixels (plateaus) are one seed. Local by construction, so tiled runs find the same seeds.
//  2. Regions: marker watershed of (centre + foreground) from the seeds, restricted to foreground ≥
//     `foregroundThreshold` or centre ≥ `seedThreshold` (4-connected, one-pixel lines; Meyer 1994), O(N log N).
//     Foreground not reachable from a seed is dropped (it held no nucleus centre).
//  3. Area filter, then `NucleusMeasurement` (centroid, box, contour, shape, stain OD).

/// Thresholds of the map-based detection. Probabilities in [0, 1], lengths in µm, areas in µm².
public struct NucleusMapParameters: Sendable, Equatable, Codable {
    /// Minimum centre-map probability of a seed.
    public var seedThreshold: Double = 0.35
    /// A seed must be the maximum of the centre map within this radius.
    public var peakRadiusMicrons: Double = 2
    /// Pixels with foreground probability at least this belong to nuclei.
    public var foregroundThreshold: Double = 0.5
    public var minAreaMicrons2: Double = 4
    public var maxAreaMicrons2: Double = 400

    public init() {}
}

/// An image prepared at the detector's working resolution: stain planes (for measurements) and the per-channel
/// optical density −log10(v/255) of R, G, B (the model's input), area-averaged from the input pixels.
public struct WorkingImage: Sendable {
    public let width: Int, height: Int
    /// Input pixels per working pixel along x and y.
    public let scaleX: Double, scaleY: Double
    public let micronsPerPixelX: Double, micronsPerPixelY: Double
    public let stainPlanes: [FloatImage]
    public let stainNames: [String]
    /// width × height × 3, interleaved (OD of R, G, B).
    public let opticalDensity: [Float]
}

extension NucleusDetector {
    /// Optical density and stain planes of `image` at the working pixel size.
    ///
    /// Deconvolution is linear in OD and area averaging is linear, so OD is averaged first and deconvolved at the
    /// working resolution (k² fewer pixels to deconvolve). With an integer resampling factor k (0.25 µm scans at
    /// 0.5 µm working: k = 2) the working grid is exactly k×k input pixels from the image's origin, a trailing
    /// partial row or column is dropped, and the k×k averages are summed straight from the 8-bit pixels through the
    /// OD table; a tile whose origin is a multiple of k therefore sees the slide's own grid. Otherwise the OD planes
    /// are area-resampled (`Filters.resampleArea`). O(input pixels).
    public func workingImage(_ image: RGBImage, micronsPerPixel: Double) -> WorkingImage {
        precondition(micronsPerPixel > 0, "micronsPerPixel must be positive")
        let factor = NucleusDetector.resamplingFactor(working: parameters.workingPixelSizeMicrons, input: micronsPerPixel)
        let table = ColorDeconvolution.odTable
        var ww: Int, wh: Int, od: [Float], sx: Double, sy: Double
        if factor == factor.rounded(), case let k = Int(factor), image.width >= k, image.height >= k {
            ww = image.width / k; wh = image.height / k
            sx = factor; sy = factor
            od = [Float](repeating: 0, count: ww * wh * 3)
            let inverseArea = 1 / Float(k * k), width = image.width
            image.pixels.withUnsafeBufferPointer { p in
                table.withUnsafeBufferPointer { lut in
                    od.withUnsafeMutableBufferPointer { o in
                        for y in 0..<wh {
                            for x in 0..<ww {
                                var r: Float = 0, g: Float = 0, b: Float = 0
                                for dy in 0..<k {
                                    let row = ((y * k + dy) * width + x * k) * 3
                                    for dx in 0..<k {
                                        r += lut[Int(p[row + 3 * dx])]; g += lut[Int(p[row + 3 * dx + 1])]; b += lut[Int(p[row + 3 * dx + 2])]
                                    }
                                }
                                let i = (y * ww + x) * 3
                                o[i] = r * inverseArea; o[i + 1] = g * inverseArea; o[i + 2] = b * inverseArea
                            }
                        }
                    }
                }
            }
        } else {
            ww = max(1, Int((Double(image.width) / factor).rounded()))
            wh = max(1, Int((Double(image.height) / factor).rounded()))
            sx = Double(image.width) / Double(ww); sy = Double(image.height) / Double(wh)
            od = [Float](repeating: 0, count: ww * wh * 3)
            let n = image.width * image.height
            for c in 0..<3 {
                var channel = FloatImage(width: image.width, height: image.height)
                image.pixels.withUnsafeBufferPointer { p in
                    channel.data.withUnsafeMutableBufferPointer { d in for i in 0..<n { d[i] = table[Int(p[i * 3 + c])] } }
                }
                let r = Filters.resampleArea(channel, newWidth: ww, newHeight: wh)
                for i in 0..<(ww * wh) { od[i * 3 + c] = r.data[i] }
            }
        }
        // Stain amounts = OD · S⁻¹ (the first two stains), as ColorDeconvolution.deconvolve.
        let m = stains.inverse.map { $0.map { Float($0) } }
        var first = FloatImage(width: ww, height: wh), second = FloatImage(width: ww, height: wh)
        for i in 0..<(ww * wh) {
            let r = od[i * 3], g = od[i * 3 + 1], b = od[i * 3 + 2]
            first.data[i] = r * m[0][0] + g * m[1][0] + b * m[2][0]
            second.data[i] = r * m[0][1] + g * m[1][1] + b * m[2][1]
        }
        return WorkingImage(
            width: ww, height: wh, scaleX: sx, scaleY: sy,
            micronsPerPixelX: micronsPerPixel * sx, micronsPerPixelY: micronsPerPixel * sy,
            stainPlanes: [first, second], stainNames: Array(stains.names.prefix(2)), opticalDensity: od)
    }

    /// Nuclei of `working` from a model's foreground and centre probability maps (both working width × height).
    /// Coordinates in the original input image's pixels, as `detect`.
    public static func detect(
        _ working: WorkingImage, foreground: FloatImage, centre: FloatImage,
        parameters p: NucleusMapParameters
    ) -> [Nucleus] {
        let w = working.width, h = working.height, n = w * h
        precondition(foreground.width == w && foreground.height == h && centre.width == w && centre.height == h)
        let mpp = (working.micronsPerPixelX * working.micronsPerPixelY).squareRoot()
        // 1. Seeds.
        let peaks = Morphology.rankFilter(centre, radius: max(1, p.peakRadiusMicrons / mpp), isMax: true)
        let seedThreshold = Float(p.seedThreshold), foregroundThreshold = Float(p.foregroundThreshold)
        var seedMask = BinaryImage(width: w, height: h)
        for i in 0..<n where centre.data[i] >= seedThreshold && centre.data[i] >= peaks.data[i] { seedMask.bits[i] = 1 }
        let seeds = Morphology.connectedComponents(seedMask, eightConnected: true)
        // 2. Regions.
        var mask = BinaryImage(width: w, height: h)
        var relief = FloatImage(width: w, height: h)
        for i in 0..<n {
            if foreground.data[i] >= foregroundThreshold || centre.data[i] >= seedThreshold { mask.bits[i] = 1 }
            relief.data[i] = centre.data[i] + foreground.data[i]
        }
        let basins = Watershed.flood(relief, markers: seeds, minValue: -1, mask: mask)
        // 3. Filters, measurements.
        let pixelArea = working.micronsPerPixelX * working.micronsPerPixelY
        return NucleusMeasurement.measure(
            labels: basins, measure: working.stainPlanes[0], stainPlanes: working.stainPlanes, stainNames: working.stainNames,
            threshold: -.infinity, minAreaPixels: p.minAreaMicrons2 / pixelArea, maxAreaPixels: p.maxAreaMicrons2 / pixelArea,
            scaleX: working.scaleX, scaleY: working.scaleY,
            micronsPerPixelX: working.micronsPerPixelX, micronsPerPixelY: working.micronsPerPixelY)
    }
}
