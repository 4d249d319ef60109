// Per-nucleus measurements from a label image (QuPath's "Nucleus: …" shape and intensity features).
//
// One raster pass accumulates, per label, the pixel count, first and second moments, bounding box and the
// running sums of every stain plane; contours are traced only for the labels that pass the filters.
// Cost O(N + Σ boundary lengths + Σ h log h) for hull sizes h.
//
// - Area: pixel count × pixel area (µm²).
// - Perimeter: length of the smoothed polygon through the midpoints of the boundary cracks
//   (`Contour.smoothedMidpointPolygon`), µm; within ~2 % for digitised disks of radius ≥ 5 px.
// - Circularity: min(4πA/P², 1) with A the pixel area. Solidity: area of the smoothed polygon / area of its
//   convex hull.
// - Eccentricity, major/minor axis: from the eigenvalues λ₁ ≥ λ₂ of the pixel covariance (in µm²):
//   e = √(1 − λ₂/λ₁), axes 4√λ (the ellipse with the same second moments).
// - Per stain: mean, standard deviation (population), min, max of the deconvolved OD.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum NucleusMeasurement {
    /// Measures the labelled regions of `labels` and returns the nuclei passing the filters, in label order.
    /// `scaleX/Y` map working pixels to input pixels (input = (working + ½)·scale − ½).
    public static func measure(
        labels: LabelImage, measure: FloatImage, stainPlanes: [FloatImage], stainNames: [String],
        threshold: Double, minAreaPixels: Double, maxAreaPixels: Double,
        scaleX: Double, scaleY: Double,
        micronsPerPixelX: Double, micronsPerPixelY: Double
    ) -> [Nucleus] {
        let w = labels.width, h = labels.height
        let nl = Int(labels.maxLabel) + 1
        guard nl > 1 else { return [] }
        let ns = stainPlanes.count
        var count = [Int](repeating: 0, count: nl)
        var first = [Int](repeating: -1, count: nl)
        var sx = [Double](repeating: 0, count: nl), sy = sx, sxx = sx, syy = sx, sxy = sx, smeas = sx
        var minX = [Int](repeating: Int.max, count: nl), minY = minX
        var maxX = [Int](repeating: Int.min, count: nl), maxY = maxX
        var ssum = [Double](repeating: 0, count: nl * ns), ssq = ssum
        var smin = [Double](repeating: .infinity, count: nl * ns)
        var smax = [Double](repeating: -.infinity, count: nl * ns)
        labels.labels.withUnsafeBufferPointer { L in
            for y in 0..<h {
                for x in 0..<w {
                    let i = y * w + x
                    let l = Int(L[i])
                    if l == 0 { continue }
                    if first[l] < 0 { first[l] = i }
                    count[l] += 1
                    let fx = Double(x), fy = Double(y)
                    sx[l] += fx; sy[l] += fy; sxx[l] += fx * fx; syy[l] += fy * fy; sxy[l] += fx * fy
                    smeas[l] += Double(measure.data[i])
                    if x < minX[l] { minX[l] = x }
                    if x > maxX[l] { maxX[l] = x }
                    if y < minY[l] { minY[l] = y }
                    if y > maxY[l] { maxY[l] = y }
                    for s in 0..<ns {
                        let v = Double(stainPlanes[s].data[i])
                        let k = l * ns + s
                        ssum[k] += v; ssq[k] += v * v
                        if v < smin[k] { smin[k] = v }
                        if v > smax[k] { smax[k] = v }
                    }
                }
            }
        }
        let pixelArea = micronsPerPixelX * micronsPerPixelY
        var out: [Nucleus] = []
        for l in 1..<nl where count[l] > 0 {
            let c = Double(count[l])
            if c < minAreaPixels || c > maxAreaPixels { continue }
            if smeas[l] / c < threshold { continue }
            let crack = Contour.traceOuter(labels, label: Int32(l), startX: first[l] % w, startY: first[l] / w)
            // Contour and geometry in working pixels (corner coordinates), then mapped to input pixels.
            let cornersW = crack.map { Point(x: Double($0.0), y: Double($0.1)) }
            let smooth = Contour.smoothedMidpointPolygon(crack)
            let smoothArea = abs(Contour.area(smooth))
            let hullArea = abs(Contour.area(Contour.convexHull(smooth)))
            let mx = sx[l] / c, my = sy[l] / c
            // Covariance in µm².
            let cxx = (sxx[l] / c - mx * mx) * micronsPerPixelX * micronsPerPixelX
            let cyy = (syy[l] / c - my * my) * micronsPerPixelY * micronsPerPixelY
            let cxy = (sxy[l] / c - mx * my) * micronsPerPixelX * micronsPerPixelY
            let tr = cxx + cyy, det = cxx * cyy - cxy * cxy
            let disc = max(0, tr * tr / 4 - det).squareRoot()
            let l1 = max(0, tr / 2 + disc), l2 = max(0, tr / 2 - disc)
            // Pixel units give an isotropic perimeter only for square pixels; use the mean pixel size.
            let perimeter = Contour.perimeter(smooth) * (micronsPerPixelX * micronsPerPixelY).squareRoot()
            let area = c * pixelArea
            let circ = perimeter > 0 ? min(4 * Double.pi * area / (perimeter * perimeter), 1) : 0
            var stats: [StainStatistics] = []
            for s in 0..<ns {
                let k = l * ns + s
                let mean = ssum[k] / c
                stats.append(
                    StainStatistics(
                        name: s < stainNames.count ? stainNames[s] : "Stain \(s + 1)",
                        mean: mean, std: max(0, ssq[k] / c - mean * mean).squareRoot(),
                        min: smin[k], max: smax[k]))
            }
            let toInX = { (v: Double) in v * scaleX - 0.5 }  // corner coordinate → input pixel-centre coords
            let toInY = { (v: Double) in v * scaleY - 0.5 }
            out.append(
                Nucleus(
                    centroid: Point(x: (mx + 0.5) * scaleX - 0.5, y: (my + 0.5) * scaleY - 0.5),
                    boundingBox: BoundingBox(
                        minX: toInX(Double(minX[l])), minY: toInY(Double(minY[l])),
                        maxX: toInX(Double(maxX[l] + 1)), maxY: toInY(Double(maxY[l] + 1))),
                    contour: cornersW.map { Point(x: toInX($0.x), y: toInY($0.y)) },
                    areaMicrons2: area, perimeterMicrons: perimeter, circularity: circ,
                    solidity: hullArea > 0 ? min(1, smoothArea / hullArea) : 1,
                    eccentricity: l1 > 0 ? (1 - l2 / l1).squareRoot() : 0,
                    majorAxisMicrons: 4 * l1.squareRoot(), minorAxisMicrons: 4 * l2.squareRoot(),
                    stains: stats))
        }
        return out
    }
}
