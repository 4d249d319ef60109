import Foundation
import Testing
@testable import HaliImaging

private func image(_ rows: [[Float]]) -> FloatImage {
    FloatImage(width: rows[0].count, height: rows.count, data: rows.flatMap { $0 })
}

private func binary(_ rows: [String]) -> BinaryImage {
    BinaryImage(width: rows[0].count, height: rows.count, bits: rows.flatMap { $0.map { $0 == "#" ? UInt8(1) : 0 } })
}

@Suite struct FilterTests {
    @Test func gaussianKernelCentre() {
        // σ = 1, half-width 4: 1 / Σ_{i=-4..4} e^{-i²/2} = 1 / 2.506620 = 0.398943.
        let k = Filters.gaussianKernel(sigma: 1)
        #expect(k.count == 9)
        #expect(abs(k[4] - 0.398943) < 1e-5)
        #expect(abs(k.reduce(0, +) - 1) < 1e-6)
    }

    @Test func gaussianOfImpulse() {
        var img = FloatImage(width: 21, height: 21)
        img[10, 10] = 1
        let b = Filters.gaussianBlur(img, sigma: 1)
        // Separable: centre = k0², neighbour = k0·k1 with k1 = e^{-1/2}/2.506620 = 0.241971.
        #expect(abs(b[10, 10] - 0.398943 * 0.398943) < 1e-5)
        #expect(abs(b[11, 10] - 0.398943 * 0.241971) < 1e-5)
        #expect(abs(b.data.reduce(0, +) - 1) < 1e-4)
    }

    @Test func negativeLaplacianOfImpulse() {
        var img = FloatImage(width: 5, height: 5)
        img[2, 2] = 1
        let l = Filters.negativeLaplacian(img)
        #expect(l[2, 2] == 4)
        #expect(l[1, 2] == -1 && l[2, 1] == -1)
        #expect(l[1, 1] == 0)
    }

    @Test func areaResampleHalves() {
        let img = image([[1, 3, 5, 7], [1, 3, 5, 7]])
        let r = Filters.resampleArea(img, newWidth: 2, newHeight: 1)
        #expect(r.data == [2, 6])
    }
}

@Suite struct MorphologyTests {
    @Test func circularDilationShapes() {
        var img = FloatImage(width: 9, height: 9)
        img[4, 4] = 1
        // r = 1: dx²+dy² ≤ 2 → 3×3 square; r = 2: ≤ 5 → 21 pixels (5×5 minus the 4 corners).
        #expect(Morphology.rankFilter(img, radius: 1, isMax: true).data.reduce(0, +) == 9)
        let d2 = Morphology.rankFilter(img, radius: 2, isMax: true)
        #expect(d2.data.reduce(0, +) == 21)
        #expect(d2[6, 5] == 1 && d2[6, 6] == 0)
        // Erosion is the dual.
        var ones = FloatImage(width: 9, height: 9, fill: 1)
        ones[4, 4] = 0
        #expect(Morphology.rankFilter(ones, radius: 2, isMax: false).data.reduce(0, +) == 81 - 21)
    }

    @Test func reconstructionByDilation() {
        let mask = image([[0, 3, 3, 1, 4, 4, 0]])
        let marker = image([[0, 3, 0, 0, 0, 0, 0]])
        let r = Morphology.reconstructByDilation(marker: marker, mask: mask)
        #expect(r.data == [0, 3, 3, 1, 1, 1, 0])
        // 2-D: a peak not reached by the marker is flattened to the connecting level.
        let m2 = image([[1, 1, 1, 1, 1], [1, 5, 1, 7, 1], [1, 1, 1, 1, 1]])
        var k2 = FloatImage(width: 5, height: 3, fill: -.infinity)
        k2[1, 1] = 5
        let r2 = Morphology.reconstructByDilation(marker: k2, mask: m2)
        #expect(r2[1, 1] == 5 && r2[3, 1] == 1 && r2[0, 0] == 1)
    }

    @Test func regionalMaxima() {
        let f = image([
            [0, 0, 0, 0, 0, 0],
            [0, 5, 5, 0, 2, 0],
            [0, 5, 5, 0, 0, 0],
            [0, 0, 0, 3, 3, 4],
        ])
        let m = Morphology.regionalMaxima(f, minValue: 0)
        // Maxima: the 5-plateau, the single 2, the 4; the 3-plateau touches 4 so it is not one.
        #expect(m.maxLabel == 3)
        #expect(m[1, 1] != 0 && m[1, 1] == m[2, 2])
        #expect(m[4, 1] != 0 && m[5, 3] != 0)
        #expect(m[3, 3] == 0 && m[0, 0] == 0)
        // h-maxima with h = 2.5 keep only the 5 (dynamic 5) and the 4 (dynamic 4 over the 0 saddle... > 2.5).
        let h = Morphology.regionalMaxima(f, minValue: 0, dynamic: 2.5)
        #expect(h[4, 1] == 0 && h[1, 1] != 0)
    }

    /// Regional maxima (labels and their raster-order numbering) against a brute-force definition on seeded
    /// random images of small integers, which have many plateaus and ties.
    @Test func regionalMaximaMatchBruteForce() {
        var state: UInt64 = 12345
        func nextValue() -> Float { state = state &* 6364136223846793005 &+ 1442695040888963407; return Float((state >> 33) % 4) }
        for (w, h) in [(1, 1), (1, 7), (9, 1), (8, 6), (13, 11)] {
            let f = FloatImage(width: w, height: h, data: (0..<(w * h)).map { _ in nextValue() })
            let got = Morphology.regionalMaxima(f, minValue: 0)
            // Brute force: 8-connected equal-value components in raster order of their first pixel.
            var component = [Int](repeating: -1, count: w * h)
            var expected = [Int32](repeating: 0, count: w * h)
            var next: Int32 = 1
            for start in 0..<(w * h) where component[start] == -1 {
                var members = [start], i = 0
                component[start] = start
                var isMax = f.data[start] > 0
                while i < members.count {
                    let p = members[i]; i += 1
                    for dy in -1...1 {
                        for dx in -1...1 where dx != 0 || dy != 0 {
                            let x = p % w + dx, y = p / w + dy
                            guard x >= 0, x < w, y >= 0, y < h else { continue }
                            let q = y * w + x
                            if f.data[q] > f.data[p] { isMax = false }
                            if f.data[q] == f.data[p] && component[q] == -1 { component[q] = start; members.append(q) }
                        }
                    }
                }
                if isMax { for p in members { expected[p] = next }; next += 1 }
            }
            #expect(got.labels == expected, "\(w)×\(h)")
        }
    }

    @Test func distanceTransform() {
        let b = binary(["#####", "#####", "#####"])
        var bb = b
        bb[0, 0] = false
        let d = Morphology.distanceTransform(bb)
        #expect(d[0, 0] == 0)
        #expect(d[1, 0] == 1 && d[1, 1] == Float(2.0.squareRoot()))
        #expect(abs(d[4, 2] - Float((16.0 + 4).squareRoot())) < 1e-5)
    }

    @Test func fillHolesAndComponents() {
        let b = binary(["#####", "#...#", "#####", ".....", "##..#"])
        let f = Morphology.fillHoles(b)
        #expect(f[2, 1])
        let c = Morphology.connectedComponents(f)
        #expect(c.maxLabel == 3)
    }
}

@Suite struct WatershedTests {
    /// The flooding queue pops by value descending, ties first-in-first-out, with −0 and +0 tied and negative
    /// values, infinities and subnormals in their float order: checked against a linear scan of the live entries.
    @Test func floodQueueOrderMatchesLinearScan() {
        let pool: [Float] = [0, -0.0, 1, -1, 0.5, -0.5, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 3.25, 2]
        for seed in 0..<10 {
            let queue = FloodQueue(capacity: 4)
            var live: [(value: Float, index: Int32)] = []  // in insertion order
            var got: [Int32] = [], expected: [Int32] = []
            func popBoth() {
                got.append(queue.pop())
                var best = 0
                for i in live.indices where live[i].value > live[best].value { best = i }  // first of the ties
                expected.append(live.remove(at: best).index)
            }
            for i in 0..<300 {
                let v = pool[(i * 7 + seed * 13 + (i * i) % 11) % pool.count]
                queue.push(Int32(i), v)
                live.append((v, Int32(i)))
                if (i + seed) % 3 == 2 { popBoth() }
            }
            while !live.isEmpty { popBoth() }
            #expect(queue.isEmpty)
            #expect(got == expected)
        }
    }

    @Test func twoTouchingBlobsSplitInTheMiddle() {
        // Two cones with peaks at x = 2 and x = 8 on a 11×5 grid; the saddle is at x = 5.
        var f = FloatImage(width: 11, height: 5)
        for y in 0..<5 {
            for x in 0..<11 {
                let d1 = Float(abs(x - 2) + abs(y - 2)), d2 = Float(abs(x - 8) + abs(y - 2))
                f[x, y] = 10 - min(d1, d2)
            }
        }
        var markers = LabelImage(width: 11, height: 5)
        markers[2, 2] = 1
        markers[8, 2] = 2
        let w = Watershed.flood(f, markers: markers, minValue: 0)
        for y in 0..<5 {
            for x in 0..<5 { #expect(w[x, y] == 1) }
            #expect(w[5, y] == 0)
            for x in 6..<11 { #expect(w[x, y] == 2) }
        }
    }

    @Test func floodStopsAtMinValue() {
        let f = image([[5, 4, 0, 4, 5]])
        var m = LabelImage(width: 5, height: 1)
        m[0, 0] = 1
        let w = Watershed.flood(f, markers: m, minValue: 0)
        #expect(w.labels == [1, 1, 0, 0, 0])
    }

    @Test func splitByShapeSeparatesTwoDisks() {
        var b = BinaryImage(width: 40, height: 24)
        for y in 0..<24 {
            for x in 0..<40 {
                let a = (x - 12) * (x - 12) + (y - 12) * (y - 12), c = (x - 27) * (x - 27) + (y - 12) * (y - 12)
                if a <= 81 || c <= 81 { b[x, y] = true }
            }
        }
        #expect(Morphology.connectedComponents(b).maxLabel == 1)
        let s = Watershed.splitByShape(b)
        let c = Morphology.connectedComponents(s)
        #expect(c.maxLabel == 2)
        #expect(c[12, 12] != c[27, 12])
        #expect(!s[19, 12] || !s[20, 12])
    }
}

@Suite struct ColourTests {
    @Test func stainMatrixMatchesQuPath() {
        let inv = StainMatrix.hematoxylinEosin.inverse
        // Reference inverse from the research notes (numpy): [[1.83833082,-1.37332083,0.31551058], ...].
        #expect(abs(inv[0][0] - 1.83833082) < 1e-6 && abs(inv[0][1] + 1.37332083) < 1e-6)
        #expect(abs(inv[2][2] - 0.73665368) < 1e-6)
        let dab = StainMatrix.hematoxylinDAB.inverse
        #expect(abs(dab[1][0] - 0.68440031) < 1e-6 && abs(dab[2][1] - 1.51201325) < 1e-6)
    }

    @Test func deconvolutionRoundTrip() {
        let px: [UInt8] = [200, 100, 150, 50, 30, 90, 255, 255, 255, 120, 60, 80, 10, 200, 30]
        let rgb = RGBImage(width: 5, height: 1, pixels: px)
        for stains in [StainMatrix.hematoxylinEosin, .hematoxylinDAB] {
            let planes = ColorDeconvolution.deconvolve(rgb, stains: stains)
            let back = ColorDeconvolution.reconvolve(planes, stains: stains)
            for i in 0..<px.count { #expect(abs(Int(back.pixels[i]) - Int(px[i])) <= 1) }
        }
    }

    @Test func pureHematoxylinDeconvolvesToOneStain() {
        let h = StainMatrix.hematoxylinEosin.rows[0]
        let c = h.map { UInt8((255 * pow10(-$0)).rounded()) }  // one unit of hematoxylin OD
        let planes = ColorDeconvolution.deconvolve(RGBImage(width: 1, height: 1, pixels: c), stains: .hematoxylinEosin)
        #expect(abs(planes.planes[0].data[0] - 1) < 0.02)
        #expect(abs(planes.planes[1].data[0]) < 0.02)
    }

    private func pow10(_ x: Double) -> Double { ColorDeconvolutionTestMath.pow10(x) }
}

enum ColorDeconvolutionTestMath {
    static func pow10(_ x: Double) -> Double {
        // exp(x · ln 10) without importing libm in the test target.
        var result = 1.0, term = 1.0
        let y = x * 2.302585092994046
        for k in 1..<40 { term *= y / Double(k); result += term }
        return result
    }
}

@Suite struct ContourAndMeasurementTests {
    @Test func squareContour() {
        var l = LabelImage(width: 8, height: 8)
        for y in 2..<5 { for x in 2..<5 { l[x, y] = 1 } }
        let c = Contour.traceOuter(l, label: 1, startX: 2, startY: 2)
        #expect(c.map { [$0.0, $0.1] } == [[2, 2], [5, 2], [5, 5], [2, 5]])
        let p = c.map { Point(x: Double($0.0), y: Double($0.1)) }
        #expect(Contour.area(p) == 9)
        #expect(Contour.perimeter(p) == 12)
    }

    @Test func lShapeContourAreaEqualsPixelCount() {
        var l = LabelImage(width: 6, height: 6)
        for (x, y) in [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2)] { l[x, y] = 7 }
        let c = Contour.traceOuter(l, label: 7, startX: 1, startY: 1)
        #expect(Contour.area(c.map { Point(x: Double($0.0), y: Double($0.1)) }) == 6)
    }

    /// A C whose tips touch only at a diagonal corner (`X X X / X . X / . X X`): 4-connectivity keeps the tips apart,
    /// so the outline passes twice through corner (1, 2), round the pocket pixel (1, 1) the other way. The exporters
    /// keep the larger loop (HaliInteropTests' `SimpleRingTests` start from this very ring).
    @Test func diagonalTouchPassesTwiceThroughTheCorner() {
        var l = LabelImage(width: 3, height: 3)
        for (x, y) in [(0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (2, 2)] { l[x, y] = 1 }
        let c = Contour.traceOuter(l, label: 1, startX: 0, startY: 0)
        #expect(c.map { [$0.0, $0.1] } == [[0, 0], [3, 0], [3, 3], [1, 3], [1, 2], [2, 2], [2, 1], [1, 1], [1, 2], [0, 2]])
        #expect(Contour.area(c.map { Point(x: Double($0.0), y: Double($0.1)) }) == 7)
    }

    @Test func diskMeasurements() {
        let n = 41, r = 10.0
        var l = LabelImage(width: n, height: n)
        var count = 0
        for y in 0..<n {
            for x in 0..<n where Double((x - 20) * (x - 20) + (y - 20) * (y - 20)) <= r * r {
                l[x, y] = 1; count += 1
            }
        }
        let ones = FloatImage(width: n, height: n, fill: 0.5)
        let nuc = NucleusMeasurement.measure(
            labels: l, measure: ones, stainPlanes: [ones], stainNames: ["Hematoxylin"], threshold: 0.1,
            minAreaPixels: 1, maxAreaPixels: 10_000, scaleX: 1, scaleY: 1, micronsPerPixelX: 0.5, micronsPerPixelY: 0.5)
        #expect(nuc.count == 1)
        let d = nuc[0]
        #expect(d.areaMicrons2 == Double(count) * 0.25)
        #expect(abs(d.centroid.x - 20) < 1e-9 && abs(d.centroid.y - 20) < 1e-9)
        #expect(abs(d.perimeterMicrons - 2 * Double.pi * r * 0.5) / (2 * Double.pi * r * 0.5) < 0.06)
        #expect(d.circularity > 0.9)
        #expect(d.solidity > 0.95)
        #expect(d.eccentricity < 0.05)
        #expect(abs(d.majorAxisMicrons - 2 * r * 0.5) < 0.5)
        #expect(d.boundingBox == BoundingBox(minX: 9.5, minY: 9.5, maxX: 30.5, maxY: 30.5))
        #expect(d.stains[0].mean == 0.5 && d.stains[0].std == 0)
    }
}

@Suite struct DetectorTests {
    /// Two dark hematoxylin-coloured disks (radius 3 µm) on white at 0.25 µm/px.
    @Test func findsTwoSyntheticNuclei() {
        let w = 160, h = 100
        var px = [UInt8](repeating: 255, count: w * h * 3)
        let centres = [(40.0, 50.0), (110.0, 45.0)]
        for y in 0..<h {
            for x in 0..<w {
                for (cx, cy) in centres where (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy) <= 144 {
                    px[(y * w + x) * 3] = 80; px[(y * w + x) * 3 + 1] = 60; px[(y * w + x) * 3 + 2] = 140
                }
            }
        }
        let det = NucleusDetector()
        let nuclei = det.detect(RGBImage(width: w, height: h, pixels: px), micronsPerPixel: 0.25)
        #expect(nuclei.count == 2)
        let sorted = nuclei.sorted { $0.centroid.x < $1.centroid.x }
        for (n, c) in zip(sorted, centres) {
            #expect(abs(n.centroid.x - c.0) < 1.5 && abs(n.centroid.y - c.1) < 1.5)
            #expect(n.areaMicrons2 > 15 && n.areaMicrons2 < 40)  // π·3² = 28 µm²
        }
        // Deterministic.
        #expect(det.detect(RGBImage(width: w, height: h, pixels: px), micronsPerPixel: 0.25) == nuclei)
    }
}

@Suite struct BoundedReconstructionTests {
    /// 1×7 literal: a marker peak of 5 under a mask ramp; k steps spread it k pixels, clipped by the mask.
    @Test func spreadsOnePixelPerStep() {
        let mask = FloatImage(width: 7, height: 1, data: [9, 9, 9, 9, 9, 9, 3])
        let marker = FloatImage(width: 7, height: 1, data: [0, 0, 0, 5, 0, 0, 0])
        #expect(Morphology.reconstructByDilation(marker: marker, mask: mask, steps: 1).data == [0, 0, 5, 5, 5, 0, 0])
        #expect(Morphology.reconstructByDilation(marker: marker, mask: mask, steps: 2).data == [0, 5, 5, 5, 5, 5, 0])
        #expect(Morphology.reconstructByDilation(marker: marker, mask: mask, steps: 3).data == [5, 5, 5, 5, 5, 5, 3])
    }

    @Test func equalsFullReconstructionWithEnoughSteps() {
        var seed: UInt32 = 99
        func next() -> Float {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return Float(seed >> 16) / 65536
        }
        let (w, h) = (23, 17)
        let mask = FloatImage(width: w, height: h, data: (0..<(w * h)).map { _ in next() })
        let marker = FloatImage(width: w, height: h, data: mask.data.map { $0 * next() })
        let full = Morphology.reconstructByDilation(marker: marker, mask: mask)
        let bounded = Morphology.reconstructByDilation(marker: marker, mask: mask, steps: w * h)
        #expect(bounded.data == full.data)
        // Fewer steps never exceed the full reconstruction and never fall below the clipped marker.
        let short = Morphology.reconstructByDilation(marker: marker, mask: mask, steps: 2)
        for i in 0..<(w * h) {
            #expect(short.data[i] <= full.data[i])
            #expect(short.data[i] >= min(marker.data[i], mask.data[i]))
        }
    }
}

@Suite struct MapDetectionTests {
    /// A working image at 0.5 µm/px (scale 1) with blank stain planes, and maps drawn from disks and centre peaks.
    private func maps(disks: [(x: Double, y: Double, r: Double, peak: Bool)], width: Int = 40, height: Int = 30)
        -> (WorkingImage, FloatImage, FloatImage)
    {
        var fg = FloatImage(width: width, height: height), centre = FloatImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                for d in disks {
                    let d2 = (Double(x) - d.x) * (Double(x) - d.x) + (Double(y) - d.y) * (Double(y) - d.y)
                    if d2 <= d.r * d.r { fg[x, y] = 0.9 }
                    if d.peak { centre[x, y] = max(centre[x, y], Float(exp(-d2 / 8))) }
                }
            }
        }
        let plane = FloatImage(width: width, height: height, fill: 0.3)
        let working = WorkingImage(
            width: width, height: height, scaleX: 1, scaleY: 1, micronsPerPixelX: 0.5, micronsPerPixelY: 0.5,
            stainPlanes: [plane, plane], stainNames: ["hematoxylin", "eosin"],
            opticalDensity: [Float](repeating: 0, count: width * height * 3))
        return (working, fg, centre)
    }

    @Test func separateDisksBecomeNucleiAndSeedlessForegroundIsDropped() {
        let (working, fg, centre) = maps(disks: [(10, 12, 4, true), (28, 15, 4, true), (36, 3, 2, false)])
        let found = NucleusDetector.detect(working, foreground: fg, centre: centre, parameters: NucleusMapParameters())
        #expect(found.count == 2)
        guard found.count == 2 else { return }
        let sorted = found.sorted { $0.centroid.x < $1.centroid.x }
        #expect(abs(sorted[0].centroid.x - 10) < 1e-9 && abs(sorted[0].centroid.y - 12) < 1e-9)
        #expect(abs(sorted[1].centroid.x - 28) < 1e-9 && abs(sorted[1].centroid.y - 15) < 1e-9)
        // 49 pixels within radius 4 of a pixel centre, 0.25 µm² each.
        #expect(abs(sorted[0].areaMicrons2 - 49 * 0.25) < 1e-9)
        #expect(abs(sorted[0].stains[0].mean - 0.3) < 1e-6)
    }

    @Test func touchingDisksWithTwoPeaksAreSplit() {
        let (working, fg, centre) = maps(disks: [(10, 12, 4, true), (17, 12, 4, true)])
        let found = NucleusDetector.detect(working, foreground: fg, centre: centre, parameters: NucleusMapParameters())
        #expect(found.count == 2)
        let xs = found.map(\.centroid.x).sorted()
        #expect(xs.count == 2 && xs[0] < 12.5 && xs[1] > 14.5, "\(xs)")
        // A faint peak (below the seed threshold) seeds nothing: the pair becomes one nucleus.
        var p = NucleusMapParameters()
        p.seedThreshold = 0.95
        let (w2, fg2, peaks) = maps(disks: [(10, 12, 4, true), (17, 12, 4, false)])
        var c2 = peaks
        for i in 0..<c2.count { c2.data[i] *= 0.5 }
        #expect(NucleusDetector.detect(w2, foreground: fg2, centre: c2, parameters: p).isEmpty)
        p.seedThreshold = 0.4
        let one = NucleusDetector.detect(w2, foreground: fg2, centre: c2, parameters: p)
        #expect(one.count == 1 && one[0].areaMicrons2 > 60 * 0.25)
    }
}
