// Nucleus detection in brightfield (H&E, H-DAB) images: QuPath's watershed cell detection
// (Bankhead et al., "QuPath: Open source software for digital pathology image analysis", Sci. Rep. 7:16878,
// 2017; `WatershedCellDetection.java`) re-implemented in Swift, with all parameters in microns.
//
// Pipeline (N = pixels at the working resolution; every step O(N) or O(N log N)):
//  1. Colour deconvolution (Ruifrok & Johnston 2001) of the 8-bit RGB input into stain ODs.
//  2. Area-averaging resampling of the stain planes from the input pixel size to the working pixel size
//     (default 0.5 µm/px; never finer than the input).
//  3. Detection image D = hematoxylin OD (or OD sum).
//  4. Background: B = opening by reconstruction of D with a disk of `backgroundRadiusMicrons`
//     (erosion, then reconstruction by dilation under D; Vincent 1993). Regions whose eroded value exceeds
//     `maxBackground` are excluded (mask dilated by 2r) and nuclei touching them are rejected.
//     D' = D − B is the background-subtracted image on which intensity thresholds are applied.
//  5. LoG: L = −∇²(G_σ ∗ D') with σ = `sigmaMicrons` (separable Gaussian, 3×3 Laplacian).
//  6. Seeds: regional maxima of L above 0.001 (optionally h-maxima with dynamic `seedDynamic`).
//  7. Marker watershed of L from the seeds, restricted to L > 0 (4-connected, one-pixel lines).
//  8. Keep basins whose mean D' > max(`threshold`, `otsuFactor` × Otsu(D')); dilate the union by one pixel and intersect with L > 0
//     (merges basins that belong to one nucleus, as QuPath's "merge all").
//  9. Split by shape (optional): fill holes, watershed of the Euclidean distance map from its h-maxima
//     (dynamic `splitTolerancePixels`).
// 10. Boundary refinement (when σ > 1.5 px): boundary pixels are kept only where the fine LoG
//     (σ = 1 px on D) is positive.
// 11. 4-connected components, holes filled; reject mean D' < `threshold`, area outside
//     [`minAreaMicrons2`, `maxAreaMicrons2`].
// 12. Measurements and contour polygons, mapped back to input-image pixels.
//
// Thread safety: `NucleusDetector` is a value type with no shared mutable state; `detect` may run
// concurrently on different tiles. Results are deterministic (no randomness, FIFO tie-breaking).

/// Which image the nuclei are found in.
public enum DetectionChannel: String, Sendable, Codable, CaseIterable {
    /// First stain (hematoxylin) OD after colour deconvolution (QuPath's default).
    case hematoxylin
    /// OD_R + OD_G + OD_B (stain-agnostic; QuPath's alternative).
    case opticalDensitySum
}

/// Detector parameters. Lengths in µm, areas in µm², intensities in OD units. Defaults are QuPath's except
/// σ 1.25 µm (QuPath 1.5), minimum area 6 µm² (10), split tolerance 0.75 px (0.5) and the adaptive
/// threshold factor 0.75 (none), tuned on MoNuSeg train and CoNSeP train (docs/detector.md).
public struct NucleusDetectionParameters: Sendable, Equatable, Codable {
    /// Pixel size at which detection runs (µm/px). Inputs are resampled to it; never upsampled.
    public var workingPixelSizeMicrons: Double = 0.5
    public var channel: DetectionChannel = .hematoxylin
    /// Radius of the disk used for the background estimate; 0 disables background subtraction.
    public var backgroundRadiusMicrons: Double = 8
    /// Opening by reconstruction (true) or plain opening (false) for the background.
    public var backgroundByReconstruction: Bool = true
    /// Geodesic reach of that reconstruction; 0 = unbounded (QuPath). Bounded, every output pixel depends only
    /// on a neighbourhood of about `backgroundRadiusMicrons` + this, so tiled whole-slide runs do not depend on
    /// where the tiles are cut.
    public var reconstructionRadiusMicrons: Double = 16
    /// Eroded detection values above this are "not background" regions; nuclei touching them are dropped.
    /// 0 disables.
    public var maxBackground: Double = 2
    /// Gaussian σ of the LoG.
    public var sigmaMicrons: Double = 1.25
    /// Minimum dynamic (in LoG units) of a seed; 0 = every regional maximum (QuPath).
    public var seedDynamic: Double = 0
    /// Nuclei must have mean background-subtracted OD above this.
    public var threshold: Double = 0.1
    /// Adaptive part of the threshold: the effective threshold is max(`threshold`, factor × Otsu(D')) where
    /// Otsu(D') is Otsu's (1979) threshold of the background-subtracted image of the tile. 0 disables
    /// (QuPath's fixed threshold).
    public var otsuFactor: Double = 0.75
    public var minAreaMicrons2: Double = 6
    public var maxAreaMicrons2: Double = 400
    /// Merge adjacent accepted LoG basins before splitting by shape (QuPath's "merge all"). When false,
    /// every accepted basin is its own nucleus.
    public var mergeBasins: Bool = true
    /// Split merged nuclei by a distance-map watershed.
    public var splitByShape: Bool = true
    /// Dynamic of distance-map maxima that seed the split, in pixels at the working resolution.
    public var splitTolerancePixels: Double = 0.75
    /// Refine boundaries with a fine-scale LoG (applies when σ > 1.5 px).
    public var refineBoundary: Bool = true

    public init() {}
}

/// Per-stain intensity statistics inside one nucleus (raw deconvolved OD at the working resolution).
public struct StainStatistics: Sendable, Equatable, Codable {
    public var name: String
    public var mean: Double
    public var std: Double
    public var min: Double
    public var max: Double
}

/// Axis-aligned bounding box in input-image pixel-centre coordinates (inclusive of the boundary pixels'
/// outer edges: a single pixel (x, y) has box [x − ½, x + ½] × [y − ½, y + ½]).
public struct BoundingBox: Sendable, Equatable, Codable {
    public var minX: Double
    public var minY: Double
    public var maxX: Double
    public var maxY: Double
}

/// One detected nucleus. Coordinates are in input-image pixels (x = column, y = row, origin top-left,
/// pixel centres at integers).
public struct Nucleus: Sendable, Equatable, Codable {
    public var centroid: Point
    public var boundingBox: BoundingBox
    /// Outer contour, clockwise on screen; vertices at pixel corners of the working-resolution mask.
    public var contour: [Point]
    public var areaMicrons2: Double
    public var perimeterMicrons: Double
    /// min(4πA/P², 1).
    public var circularity: Double
    /// Area / convex-hull area.
    public var solidity: Double
    /// √(1 − λ₂/λ₁) of the pixel covariance (0 = circle, → 1 = line).
    public var eccentricity: Double
    /// 4√λ₁, 4√λ₂ (ellipse with the same second moments), µm.
    public var majorAxisMicrons: Double
    public var minorAxisMicrons: Double
    public var stains: [StainStatistics]
}

public struct NucleusDetector: Sendable {
    public var parameters: NucleusDetectionParameters
    public var stains: StainMatrix

    public init(parameters: NucleusDetectionParameters = .init(), stains: StainMatrix = .hematoxylinEosin) {
        self.parameters = parameters
        self.stains = stains
    }

    /// Steps 1–4 at the working resolution: stain planes, detection image, background-subtracted image.
    private struct Prepared {
        var ww: Int, wh: Int
        var sx: Double, sy: Double, mppX: Double, mppY: Double, mpp: Double
        var planes: [FloatImage]
        var detection: FloatImage
        var measure: FloatImage
        var backgroundMask: BinaryImage
    }

    private func prepare(_ image: RGBImage, micronsPerPixel: Double) -> Prepared {
        let p = parameters
        // 1–2. Deconvolve, resample.
        let full = ColorDeconvolution.deconvolve(image, stains: stains)
        let factor = NucleusDetector.resamplingFactor(working: p.workingPixelSizeMicrons, input: micronsPerPixel)
        let ww = max(1, Int((Double(image.width) / factor).rounded()))
        let wh = max(1, Int((Double(image.height) / factor).rounded()))
        let sx = Double(image.width) / Double(ww), sy = Double(image.height) / Double(wh)
        let mppX = micronsPerPixel * sx, mppY = micronsPerPixel * sy
        let mpp = (mppX * mppY).squareRoot()
        let planes = [full.planes[0], full.planes[1]].map {
            Filters.resampleArea($0, newWidth: ww, newHeight: wh)
        }
        // 3. Detection image.
        let detection: FloatImage
        switch p.channel {
        case .hematoxylin: detection = planes[0]
        case .opticalDensitySum:
            detection = Filters.resampleArea(ColorDeconvolution.opticalDensitySum(image), newWidth: ww, newHeight: wh)
        }
        let n = ww * wh
        // 4. Background.
        var measure = detection
        var backgroundMask = BinaryImage(width: ww, height: wh)
        let bgRadius = p.backgroundRadiusMicrons / mpp
        if bgRadius > 0 {
            var bg = Morphology.rankFilter(detection, radius: bgRadius, isMax: false)
            if p.maxBackground > 0 {
                var m = FloatImage(width: ww, height: wh)
                var any = false
                for i in 0..<n where bg.data[i] > Float(p.maxBackground) { m.data[i] = 1; any = true }
                if any {
                    m = Morphology.rankFilter(m, radius: 2 * bgRadius, isMax: true)
                    for i in 0..<n where m.data[i] > 0 { backgroundMask.bits[i] = 1; bg.data[i] = -.infinity }
                }
            }
            if p.backgroundByReconstruction {
                if p.reconstructionRadiusMicrons > 0 {
                    let steps = Int((p.reconstructionRadiusMicrons / mpp).rounded(.up))
                    bg = Morphology.reconstructByDilation(marker: bg, mask: detection, steps: steps)
                } else {
                    bg = Morphology.reconstructByDilation(marker: bg, mask: detection)
                }
            } else {
                bg = Morphology.rankFilter(bg, radius: bgRadius, isMax: true)
            }
            measure.data.withUnsafeMutableBufferPointer { md in
                bg.data.withUnsafeBufferPointer { b in
                    for i in 0..<n { md[i] = b[i].isFinite ? md[i] - b[i] : 0 }
                }
            }
        }
        return Prepared(
            ww: ww, wh: wh, sx: sx, sy: sy, mppX: mppX, mppY: mppY, mpp: mpp, planes: planes, detection: detection, measure: measure,
            backgroundMask: backgroundMask)
    }

    /// Input pixels per working pixel: working / input, at least 1, snapped to the nearest integer when within 5 % of
    /// it (0.2527 µm scanned for 0.5 µm working gives 2). Integer factors make resampling plain k×k box averages, so a
    /// tile whose origin is a multiple of k is resampled on the same grid as the whole slide would be.
    public static func resamplingFactor(working: Double, input: Double) -> Double {
        let factor = max(1, working / input)
        let nearest = factor.rounded()
        return abs(factor - nearest) <= 0.05 * nearest ? nearest : factor
    }

    /// The adaptive part of the threshold for this image: `otsuFactor` × Otsu(D′), in OD units (0 when disabled).
    ///
    /// Whole-slide ingest measures it once on sample tiles and fixes it (`threshold`, with `otsuFactor` = 0), so
    /// a nucleus gets the same threshold whichever tile it falls in.
    public func adaptiveThreshold(_ image: RGBImage, micronsPerPixel: Double) -> Double {
        guard parameters.otsuFactor > 0, image.width > 2, image.height > 2 else { return 0 }
        let prepared = prepare(image, micronsPerPixel: micronsPerPixel)
        return parameters.otsuFactor * Double(Thresholds.otsu(prepared.measure.data))
    }

    /// Detects nuclei in an 8-bit RGB image whose pixels are `micronsPerPixel` µm wide.
    public func detect(_ image: RGBImage, micronsPerPixel: Double) -> [Nucleus] {
        precondition(micronsPerPixel > 0, "micronsPerPixel must be positive")
        guard image.width > 2 && image.height > 2 else { return [] }
        let p = parameters
        let prepared = prepare(image, micronsPerPixel: micronsPerPixel)
        let (ww, wh, sx, sy, mppX, mppY, mpp) = (prepared.ww, prepared.wh, prepared.sx, prepared.sy, prepared.mppX, prepared.mppY, prepared.mpp)
        let (planes, detection, measure, backgroundMask) = (prepared.planes, prepared.detection, prepared.measure, prepared.backgroundMask)
        let n = ww * wh
        var threshold = p.threshold
        if p.otsuFactor > 0 { threshold = max(threshold, p.otsuFactor * Double(Thresholds.otsu(measure.data))) }
        // 5. LoG.
        let sigmaPx = p.sigmaMicrons / mpp
        // Scale-normalised (× σ²) so that the response is in OD units whatever σ is.
        var log = Filters.negativeLaplacian(Filters.gaussianBlur(measure, sigma: sigmaPx))
        let s2 = Float(sigmaPx * sigmaPx)
        for i in 0..<n { log.data[i] *= s2 }
        // 6–7. Seeds and watershed.
        let seeds = Morphology.regionalMaxima(log, minValue: 0.001, dynamic: Float(p.seedDynamic))
        let basins = Watershed.flood(log, markers: seeds, minValue: 0)
        // 8. Keep basins with enough stain; merge.
        let nb = Int(seeds.maxLabel) + 1
        var sum = [Double](repeating: 0, count: nb)
        var cnt = [Int](repeating: 0, count: nb)
        var touchesBg = [Bool](repeating: false, count: nb)
        for i in 0..<n {
            let l = Int(basins.labels[i])
            if l == 0 { continue }
            sum[l] += Double(measure.data[i]); cnt[l] += 1
            if backgroundMask.bits[i] != 0 { touchesBg[l] = true }
        }
        var bp = BinaryImage(width: ww, height: wh)
        for i in 0..<n {
            let l = Int(basins.labels[i])
            if l != 0 && !touchesBg[l] && sum[l] / Double(cnt[l]) > threshold { bp.bits[i] = 1 }
        }
        if p.mergeBasins {
            bp = Morphology.binary3x3(bp, isMax: true)
            for i in 0..<n where log.data[i] <= 0 { bp.bits[i] = 0 }
        }
        // 9. Split by shape.
        if p.splitByShape {
            bp = Morphology.fillHoles(bp)
            bp = Watershed.splitByShape(bp, tolerance: Float(p.splitTolerancePixels))
        }
        // 10. Boundary refinement.
        if p.refineBoundary && sigmaPx > 1.5 {
            let fine = Filters.negativeLaplacian(Filters.gaussianBlur(detection, sigma: 1))
            let eroded = Morphology.binary3x3(bp, isMax: false)
            for i in 0..<n { bp.bits[i] = (eroded.bits[i] != 0 || (bp.bits[i] != 0 && fine.data[i] > 0)) ? 1 : 0 }
        }
        // 11. Components, filters.
        bp = Morphology.fillHoles(bp)
        let comps = Morphology.connectedComponents(bp, eightConnected: false)
        return NucleusMeasurement.measure(
            labels: comps, measure: measure, stainPlanes: planes, stainNames: Array(stains.names.prefix(2)),
            threshold: threshold,
            minAreaPixels: p.minAreaMicrons2 / (mppX * mppY), maxAreaPixels: p.maxAreaMicrons2 / (mppX * mppY),
            scaleX: sx, scaleY: sy, micronsPerPixelX: mppX, micronsPerPixelY: mppY)
    }
}
