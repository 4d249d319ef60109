// Grey-level and binary morphology: circular min/max filters, morphological reconstruction, regional maxima,
// connected components, hole filling and the Euclidean distance transform.
//
// References:
// - L. Vincent, "Morphological grayscale reconstruction in image analysis: applications and efficient
//   algorithms", IEEE Trans. Image Process. 2(2):176–201, 1993 (the hybrid raster/FIFO algorithm used here).
// - M. van Herk, "A fast algorithm for local minimum and maximum filters on rectangular and octagonal
//   kernels", Pattern Recogn. Lett. 13:517–521, 1992; J. Gil, M. Werman, IEEE PAMI 15(5), 1993.
// - P. F. Felzenszwalb, D. P. Huttenlocher, "Distance transforms of sampled functions", Theory of Computing
//   8:415–428, 2012 (exact squared EDT in O(N)).

public enum Morphology {
    // MARK: Circular min / max (erosion / dilation by a disk)

    /// Grey erosion (`isMax == false`) or dilation (`isMax == true`) by ImageJ's circular kernel of
    /// radius `radius` pixels: offsets (dx, dy) with dx² + dy² ≤ r² + 1 (ImageJ `RankFilters`).
    ///
    /// The disk is a union of horizontal segments of half-width w(dy) = ⌊√(r²+1−dy²)⌋. For each distinct
    /// w a 1-D running min/max over 2w+1 samples is computed for every row with van Herk / Gil–Werman
    /// (3 comparisons per sample, independent of w); the output is then the min/max over the 2R+1 row
    /// offsets. Cost O(N·(R + #distinct widths)) with R = ⌊√(r²+1)⌋. Pixels outside the image are ignored.
    public static func rankFilter(_ image: FloatImage, radius: Double, isMax: Bool) -> FloatImage {
        guard radius > 0, image.count > 0 else { return image }
        let w = image.width, h = image.height
        let r2 = radius * radius + 1
        let R = Int(r2.squareRoot())
        var halfWidth = [Int](repeating: 0, count: 2 * R + 1)
        for dy in -R...R { halfWidth[dy + R] = Int((r2 - Double(dy * dy)).squareRoot()) }
        // Work as a min filter on (possibly negated) values.
        let sign: Float = isMax ? -1 : 1
        let src = image.data.map { sign * $0 }
        var out = [Float](repeating: .infinity, count: w * h)
        var plane = [Float](repeating: 0, count: w * h)
        let widths = Array(Set(halfWidth)).sorted()
        let maxW = widths.last ?? 0
        var padded = [Float](repeating: .infinity, count: w + 2 * maxW + 1)
        var g = [Float](repeating: 0, count: w + 2 * maxW + 1)
        var hh = [Float](repeating: 0, count: w + 2 * maxW + 1)
        for hw in widths {
            let k = 2 * hw + 1
            let n = w + 2 * hw
            src.withUnsafeBufferPointer { s in
                plane.withUnsafeMutableBufferPointer { p in
                    padded.withUnsafeMutableBufferPointer { pad in
                        g.withUnsafeMutableBufferPointer { gp in
                            hh.withUnsafeMutableBufferPointer { hp in
                                for y in 0..<h {
                                    let base = y * w
                                    for i in 0..<n {
                                        let x = i - hw
                                        pad[i] = (x >= 0 && x < w) ? s[base + x] : .infinity
                                    }
                                    // g: prefix minima within blocks of k; hp: suffix minima within blocks.
                                    var i = 0
                                    while i < n {
                                        let end = min(i + k, n)
                                        gp[i] = pad[i]
                                        var j = i + 1
                                        while j < end { gp[j] = min(gp[j - 1], pad[j]); j += 1 }
                                        hp[end - 1] = pad[end - 1]
                                        j = end - 2
                                        while j >= i { hp[j] = min(hp[j + 1], pad[j]); j -= 1 }
                                        i = end
                                    }
                                    // Window [x, x+k-1] in padded coords is centred on image column x.
                                    let row = p.baseAddress! + base, suffix = UnsafePointer(hp.baseAddress!)
                                    let prefix = UnsafePointer(gp.baseAddress! + (k - 1))
                                    for x in 0..<w { row[x] = min(suffix[x], prefix[x]) }
                                }
                            }
                        }
                    }
                }
            }
            plane.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in
                    for dy in -R...R where halfWidth[dy + R] == hw {
                        let y0 = max(0, -dy), y1 = min(h, h - dy)
                        if y0 >= y1 { continue }
                        for y in y0..<y1 {
                            // Row pointers: with checked index arithmetic this loop did not vectorise.
                            let target = o.baseAddress! + y * w, source = p.baseAddress! + (y + dy) * w
                            for x in 0..<w { target[x] = min(target[x], source[x]) }
                        }
                    }
                }
            }
        }
        if isMax { for i in 0..<out.count { out[i] = -out[i] } }
        return FloatImage(width: w, height: h, data: out)
    }

    // MARK: Reconstruction

    /// Grey-level morphological reconstruction by dilation of `marker` under `mask` (8-connected):
    /// the largest image ≤ mask obtained by iterated geodesic dilation of min(marker, mask).
    /// Vincent's (1993) hybrid algorithm: one raster and one anti-raster pass, then a FIFO propagation of
    /// the pixels that can still change. Typically O(N); worst case O(N·k) for k distinct levels.
    /// `marker` may contain −∞ (no seed).
    /// Reconstruction by dilation limited to `steps` geodesic steps (8-connected): J₀ = min(marker, mask),
    /// Jₖ = min(δ₃ₓ₃(Jₖ₋₁), mask), stopping early when nothing changes. With `steps` ≥ the image diameter this
    /// equals `reconstructByDilation(marker:mask:)`.
    ///
    /// Why bounded: full reconstruction propagates along any connected path under the mask, so a pixel's value can
    /// depend on pixels arbitrarily far away, and a tiled whole-slide run would then depend on where tiles are cut.
    /// Bounded to `steps` pixels, a pixel depends only on its `steps`-neighbourhood (plus the marker's support).
    ///
    /// - Complexity: O(steps · w · h), two separable passes per step.
    public static func reconstructByDilation(marker: FloatImage, mask: FloatImage, steps: Int) -> FloatImage {
        precondition(marker.width == mask.width && marker.height == mask.height)
        let w = mask.width, h = mask.height, n = w * h
        var j = marker.data
        var row = [Float](repeating: 0, count: n)
        mask.data.withUnsafeBufferPointer { I in
            j.withUnsafeMutableBufferPointer { J in
                row.withUnsafeMutableBufferPointer { R in
                    for i in 0..<n { J[i] = min(J[i], I[i]) }
                    let jBase = J.baseAddress!, rBase = R.baseAddress!, iBase = I.baseAddress!
                    for _ in 0..<max(0, steps) {
                        // Horizontal 1×3 max into R, then vertical 3×1 max back into J, clipped by the mask.
                        // Row pointers and branch-free interiors so that both passes vectorise.
                        for y in 0..<h {
                            let src = UnsafePointer(jBase + y * w), dst = rBase + y * w
                            if w == 1 { dst[0] = src[0]; continue }
                            dst[0] = max(src[0], src[1])
                            let left = src, centre = src + 1, right = src + 2, out = dst + 1
                            for x in 0..<(w - 2) { out[x] = max(max(left[x], centre[x]), right[x]) }
                            dst[w - 1] = max(src[w - 2], src[w - 1])
                        }
                        var changes: Int32 = 0
                        for y in 0..<h {
                            let centre = UnsafePointer(rBase + y * w)
                            let up = y > 0 ? UnsafePointer(rBase + (y - 1) * w) : centre
                            let down = y < h - 1 ? UnsafePointer(rBase + (y + 1) * w) : centre
                            let limit = UnsafePointer(iBase + y * w), out = jBase + y * w
                            for x in 0..<w {
                                let v = min(max(max(up[x], centre[x]), down[x]), limit[x])
                                changes |= v != out[x] ? 1 : 0
                                out[x] = v
                            }
                        }
                        let changed = changes != 0
                        if !changed { break }
                    }
                }
            }
        }
        return FloatImage(width: w, height: h, data: j)
    }

    public static func reconstructByDilation(marker: FloatImage, mask: FloatImage) -> FloatImage {
        precondition(marker.width == mask.width && marker.height == mask.height)
        let w = mask.width, h = mask.height, n = w * h
        var j = marker.data
        var queue = [Int32]()
        queue.reserveCapacity(n / 8 + 16)
        mask.data.withUnsafeBufferPointer { I in
            j.withUnsafeMutableBufferPointer { J in
                for i in 0..<n { J[i] = min(J[i], I[i]) }
                // Raster pass: N⁺ = already-visited neighbours (up-left, up, up-right, left).
                for y in 0..<h {
                    for x in 0..<w {
                        let p = y * w + x
                        var m = J[p]
                        if x > 0 { m = max(m, J[p - 1]) }
                        if y > 0 {
                            let q = p - w
                            m = max(m, J[q])
                            if x > 0 { m = max(m, J[q - 1]) }
                            if x < w - 1 { m = max(m, J[q + 1]) }
                        }
                        J[p] = min(m, I[p])
                    }
                }
                // Anti-raster pass; queue pixels whose N⁻ neighbour could still be raised.
                var y = h - 1
                while y >= 0 {
                    var x = w - 1
                    while x >= 0 {
                        let p = y * w + x
                        var m = J[p]
                        if x < w - 1 { m = max(m, J[p + 1]) }
                        if y < h - 1 {
                            let q = p + w
                            m = max(m, J[q])
                            if x > 0 { m = max(m, J[q - 1]) }
                            if x < w - 1 { m = max(m, J[q + 1]) }
                        }
                        let v = min(m, I[p])
                        J[p] = v
                        var enqueue = false
                        if x < w - 1 && J[p + 1] < v && J[p + 1] < I[p + 1] { enqueue = true }
                        if !enqueue && y < h - 1 {
                            let q = p + w
                            if J[q] < v && J[q] < I[q] {
                                enqueue = true
                            } else if x > 0 && J[q - 1] < v && J[q - 1] < I[q - 1] {
                                enqueue = true
                            } else if x < w - 1 && J[q + 1] < v && J[q + 1] < I[q + 1] {
                                enqueue = true
                            }
                        }
                        if enqueue { queue.append(Int32(p)) }
                        x -= 1
                    }
                    y -= 1
                }
                // FIFO propagation.
                var head = 0
                while head < queue.count {
                    let p = Int(queue[head]); head += 1
                    let px = p % w, py = p / w
                    let v = J[p]
                    for dy in -1...1 {
                        let qy = py + dy
                        if qy < 0 || qy >= h { continue }
                        for dx in -1...1 {
                            if dx == 0 && dy == 0 { continue }
                            let qx = px + dx
                            if qx < 0 || qx >= w { continue }
                            let q = qy * w + qx
                            if J[q] < v && J[q] != I[q] {
                                J[q] = min(v, I[q])
                                queue.append(Int32(q))
                            }
                        }
                    }
                    // Compact the queue occasionally so memory stays O(N).
                    if head > 1 << 16 && head * 2 > queue.count {
                        queue.removeFirst(head); head = 0
                    }
                }
            }
        }
        return FloatImage(width: w, height: h, data: j)
    }

    /// Morphological opening by reconstruction: erosion by a disk of `radius` px followed by reconstruction
    /// by dilation under the original. Removes bright structures that the disk does not fit in while keeping
    /// the exact shape of the remaining ones (used as the background estimate).
    public static func openingByReconstruction(_ image: FloatImage, radius: Double) -> FloatImage {
        let eroded = rankFilter(image, radius: radius, isMax: false)
        return reconstructByDilation(marker: eroded, mask: image)
    }

    // MARK: Regional maxima

    /// Regional maxima: connected (8-neighbour) plateaus of constant value with no strictly higher
    /// neighbour, and value > `minValue`. Returns a label image (1...n in raster order of first pixel).
    /// Each plateau is flooded once, O(N). With `dynamic > 0` the h-maxima transform is used instead:
    /// maxima of reconstruct(f − h, f), i.e. only peaks that rise at least h above every saddle to a higher
    /// peak (suppresses noise maxima).
    public static func regionalMaxima(_ image: FloatImage, minValue: Float = -.infinity, dynamic: Float = 0) -> LabelImage {
        var f = image
        if dynamic > 0 {
            let marker = FloatImage(width: image.width, height: image.height, data: image.data.map { $0 - dynamic })
            f = reconstructByDilation(marker: marker, mask: image)
        }
        let w = f.width, h = f.height, n = w * h
        var labels = [Int32](repeating: 0, count: n)
        var visited = [UInt8](repeating: 0, count: n)
        var stack = [Int32]()
        var plateau = [Int32]()
        var next: Int32 = 1
        // A pixel with a strictly greater 8-neighbour cannot belong to a maximal plateau, and every member of a
        // maximal plateau is undominated; so plateaus are explored only from undominated pixels, found first by a
        // vectorised 3×3 maximum. Labels come out as before: maximal plateaus numbered by their first pixel in
        // raster order. Most pixels are dominated, which makes this pass most of the work.
        let neighbourhoodMax = maximum3x3(f)
        f.data.withUnsafeBufferPointer { F in
            neighbourhoodMax.withUnsafeBufferPointer { M in
                for start in 0..<n where visited[start] == 0 && !(M[start] > F[start]) {
                    let v = F[start]
                    visited[start] = 1
                    if !(v > minValue) { continue }
                    stack.removeAll(keepingCapacity: true)
                    plateau.removeAll(keepingCapacity: true)
                    stack.append(Int32(start))
                    var isMax = true
                    while let pp = stack.popLast() {
                        let p = Int(pp)
                        plateau.append(pp)
                        let px = p % w, py = p / w
                        for dy in -1...1 {
                            let qy = py + dy
                            if qy < 0 || qy >= h { continue }
                            for dx in -1...1 {
                                let qx = px + dx
                                if qx < 0 || qx >= w || (dx == 0 && dy == 0) { continue }
                                let q = qy * w + qx
                                let fv = F[q]
                                if fv > v {
                                    isMax = false
                                } else if fv == v && visited[q] == 0 {
                                    visited[q] = 1
                                    stack.append(Int32(q))
                                }
                            }
                        }
                    }
                    if isMax {
                        for p in plateau { labels[Int(p)] = next }
                        next += 1
                    }
                }
            }
        }
        return LabelImage(width: w, height: h, labels: labels)
    }

    /// Maximum over each pixel's 3×3 neighbourhood (itself included; outside the image ignored). O(N).
    static func maximum3x3(_ image: FloatImage) -> [Float] {
        separable3x3(image.data, width: image.width, height: image.height) { max($0, $1) }
    }

    /// `combine` folded over each pixel's 3×3 neighbourhood (pixels outside the image ignored, which a product
    /// window allows): over 1×3, then over 3×1, on row pointers so that both passes vectorise once `combine`
    /// is inlined (max, min, |, &). `combine` must be associative and commutative. O(N).
    @inline(__always)
    static func separable3x3<T>(_ values: [T], width w: Int, height h: Int, _ combine: (T, T) -> T) -> [T] {
        var across = values, out = values
        guard w > 0, h > 0 else { return out }
        values.withUnsafeBufferPointer { s in
            across.withUnsafeMutableBufferPointer { a in
                for y in 0..<h {
                    let src = s.baseAddress! + y * w, dst = a.baseAddress! + y * w
                    if w == 1 { dst[0] = src[0]; continue }
                    dst[0] = combine(src[0], src[1])
                    let left = src, centre = src + 1, right = src + 2, inner = dst + 1
                    for x in 0..<(w - 2) { inner[x] = combine(combine(left[x], centre[x]), right[x]) }
                    dst[w - 1] = combine(src[w - 2], src[w - 1])
                }
            }
        }
        across.withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<h {
                    let centre = a.baseAddress! + y * w
                    let up = y > 0 ? centre - w : centre, down = y < h - 1 ? centre + w : centre
                    let dst = o.baseAddress! + y * w
                    for x in 0..<w { dst[x] = combine(combine(up[x], centre[x]), down[x]) }
                }
            }
        }
        return out
    }

    // MARK: Binary operations

    /// 3×3 binary dilation (`isMax`) or erosion; pixels outside the image are ignored.
    public static func binary3x3(_ image: BinaryImage, isMax: Bool) -> BinaryImage {
        let bits =
            isMax
            ? separable3x3(image.bits, width: image.width, height: image.height) { $0 | $1 }
            : separable3x3(image.bits, width: image.width, height: image.height) { $0 & $1 }
        return BinaryImage(width: image.width, height: image.height, bits: bits)
    }

    /// Fills holes: background components that do not touch the image border become foreground. Background
    /// is 8-connected (the dual of 4-connected foreground), so one-pixel diagonal watershed lines between
    /// objects stay open. O(N).
    public static func fillHoles(_ image: BinaryImage) -> BinaryImage {
        let w = image.width, h = image.height, n = w * h
        guard n > 0 else { return image }
        var out = image.bits
        // reach: 1 = background connected to the border. Unsafe buffers and a preallocated stack: the
        // array-and-closure version spent its time in uniqueness checks.
        var reach = [UInt8](repeating: 0, count: n)
        let stack = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { stack.deallocate() }
        image.bits.withUnsafeBufferPointer { bits in
            reach.withUnsafeMutableBufferPointer { r in
                var top = 0
                @inline(__always) func seed(_ p: Int) {
                    if bits[p] == 0 && r[p] == 0 { r[p] = 1; stack[top] = Int32(p); top += 1 }
                }
                for x in 0..<w { seed(x); seed((h - 1) * w + x) }
                for y in 0..<h { seed(y * w); seed(y * w + w - 1) }
                while top > 0 {
                    top -= 1
                    let p = Int(stack[top]), x = p % w, y = p / w
                    let x0 = max(x - 1, 0), x1 = min(x + 1, w - 1)
                    for yy in max(y - 1, 0)...min(y + 1, h - 1) {
                        for xx in x0...x1 where xx != x || yy != y { seed(yy * w + xx) }
                    }
                }
            }
        }
        for i in 0..<n where reach[i] == 0 { out[i] = 1 }
        return BinaryImage(width: w, height: h, bits: out)
    }

    /// Connected components of a binary image (4- or 8-connected), labelled 1...n in raster order.
    public static func connectedComponents(_ image: BinaryImage, eightConnected: Bool = false) -> LabelImage {
        let w = image.width, h = image.height
        var labels = [Int32](repeating: 0, count: w * h)
        var stack = [Int32]()
        var next: Int32 = 1
        for start in 0..<(w * h) where image.bits[start] != 0 && labels[start] == 0 {
            labels[start] = next
            stack.append(Int32(start))
            while let pp = stack.popLast() {
                let p = Int(pp), x = p % w, y = p / w
                for dy in -1...1 {
                    let yy = y + dy
                    if yy < 0 || yy >= h { continue }
                    for dx in -1...1 {
                        if dx == 0 && dy == 0 { continue }
                        if !eightConnected && dx != 0 && dy != 0 { continue }
                        let xx = x + dx
                        if xx < 0 || xx >= w { continue }
                        let q = yy * w + xx
                        if image.bits[q] != 0 && labels[q] == 0 { labels[q] = next; stack.append(Int32(q)) }
                    }
                }
            }
            next += 1
        }
        return LabelImage(width: w, height: h, labels: labels)
    }

    // MARK: Distance transform

    /// Exact Euclidean distance (pixels) from every foreground pixel to the nearest background pixel;
    /// background pixels get 0. Pixels outside the image do not count as background (objects cut by the
    /// border are not shrunk there). Felzenszwalb–Huttenlocher lower-envelope algorithm, two separable
    /// passes, O(N).
    public static func distanceTransform(_ image: BinaryImage) -> FloatImage {
        let w = image.width, h = image.height
        let inf: Double = 1e20
        var d = [Double](repeating: 0, count: w * h)
        for i in 0..<(w * h) { d[i] = image.bits[i] != 0 ? inf : 0 }
        let m = max(w, h)
        var f = [Double](repeating: 0, count: m)
        var out = [Double](repeating: 0, count: m)
        var v = [Int](repeating: 0, count: m)
        var z = [Double](repeating: 0, count: m + 1)
        func dt1(_ n: Int) {
            var k = 0
            v[0] = 0; z[0] = -inf; z[1] = inf
            if n > 1 {
                for q in 1..<n {
                    if f[q] >= inf { continue }
                    while true {
                        let p = v[k]
                        if f[p] >= inf {  // an empty envelope so far
                            v[k] = q; z[k] = -inf; z[k + 1] = inf; break
                        }
                        let s = ((f[q] + Double(q * q)) - (f[p] + Double(p * p))) / Double(2 * q - 2 * p)
                        if s <= z[k] {
                            if k == 0 { v[0] = q; z[0] = -inf; z[1] = inf; break }
                            k -= 1
                        } else {
                            k += 1; v[k] = q; z[k] = s; z[k + 1] = inf; break
                        }
                    }
                }
            }
            k = 0
            for q in 0..<n {
                while z[k + 1] < Double(q) { k += 1 }
                let p = v[k]
                out[q] = f[p] >= inf ? inf : Double((q - p) * (q - p)) + f[p]
            }
        }
        for x in 0..<w {
            for y in 0..<h { f[y] = d[y * w + x] }
            dt1(h)
            for y in 0..<h { d[y * w + x] = out[y] }
        }
        for y in 0..<h {
            for x in 0..<w { f[x] = d[y * w + x] }
            dt1(w)
            for x in 0..<w { d[y * w + x] = out[x] }
        }
        return FloatImage(width: w, height: h, data: d.map { $0 >= inf ? Float(m) : Float($0.squareRoot()) })
    }
}
