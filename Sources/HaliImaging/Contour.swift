// Contour tracing of labelled regions and polygon geometry.
//
// Tracing follows the "cracks" between pixels (the boundary of the union of closed pixel squares), keeping
// the region on the right-hand side, with 4-connectivity (diagonal neighbours are not joined). Vertices are
// pixel corners: corner (cx, cy) is the top-left corner of pixel (cx, cy), i.e. the point (cx − ½, cy − ½)
// in pixel-centre coordinates. Only the outer boundary is traced (holes are filled, as QuPath's Wand
// tracing does). The shoelace area of the traced polygon equals the pixel count of the hole-free,
// 4-connected region. Cost: O(boundary length) per region after locating its first pixel.

/// A point in continuous image coordinates (x = column, y = row).
public struct Point: Sendable, Equatable, Hashable, Codable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
}

public enum Contour {
    /// Traces the outer crack boundary of the 4-connected component of `label` that contains the pixel
    /// `start`, which must be its first pixel in raster order. Returns the corner vertices where the
    /// direction changes, in corner coordinates (see file header), clockwise on screen (y down).
    public static func traceOuter(_ labels: LabelImage, label: Int32, startX: Int, startY: Int) -> [(Int, Int)] {
        let w = labels.width, h = labels.height
        @inline(__always) func inside(_ x: Int, _ y: Int) -> Bool {
            x >= 0 && y >= 0 && x < w && y < h && labels.labels[y * w + x] == label
        }
        // Directions: 0 = +x (E), 1 = +y (S), 2 = −x (W), 3 = −y (N).
        let dxs = [1, 0, -1, 0], dys = [0, 1, 0, -1]
        var cx = startX, cy = startY
        var d = 0
        var vertices: [(Int, Int)] = [(cx, cy)]
        cx += 1
        while !(cx == startX && cy == startY) {
            // Pixels ahead of the corner in direction d: (left-ahead, right-ahead).
            let l: Bool, r: Bool
            switch d {
            case 0: l = inside(cx, cy - 1); r = inside(cx, cy)
            case 1: l = inside(cx, cy); r = inside(cx - 1, cy)
            case 2: l = inside(cx - 1, cy); r = inside(cx - 1, cy - 1)
            default: l = inside(cx - 1, cy - 1); r = inside(cx, cy - 1)
            }
            let nd: Int
            if r && l { nd = (d + 3) & 3 } else if r { nd = d } else { nd = (d + 1) & 3 }
            if nd != d { vertices.append((cx, cy)) }
            d = nd
            cx += dxs[d]; cy += dys[d]
        }
        return vertices
    }

    /// Signed shoelace area (positive for clockwise-on-screen polygons with y down).
    public static func area(_ p: [Point]) -> Double {
        guard p.count >= 3 else { return 0 }
        var s = 0.0
        for i in 0..<p.count {
            let a = p[i], b = p[(i + 1) % p.count]
            s += a.x * b.y - b.x * a.y
        }
        return s / 2
    }

    /// Polygon perimeter.
    public static func perimeter(_ p: [Point]) -> Double {
        guard p.count >= 2 else { return 0 }
        var s = 0.0
        for i in 0..<p.count {
            let a = p[i], b = p[(i + 1) % p.count]
            s += ((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y)).squareRoot()
        }
        return s
    }

    /// The polygon through the midpoints of the unit boundary edges ("cracks") of a crack polygon, smoothed
    /// by `passes` circular [¼ ½ ¼] moving averages. Corner-cutting removes the staircase of the raw crack
    /// boundary (whose length overestimates a round object's perimeter by 4/π); the smoothing removes most
    /// of the remaining bias on digitised curves.
    public static func smoothedMidpointPolygon(_ crack: [(Int, Int)], passes: Int = 3) -> [Point] {
        guard crack.count >= 2 else { return crack.map { Point(x: Double($0.0), y: Double($0.1)) } }
        var mids: [Point] = []
        for i in 0..<crack.count {
            let a = crack[i], b = crack[(i + 1) % crack.count]
            let len = abs(b.0 - a.0) + abs(b.1 - a.1)
            let sx = (b.0 - a.0).signum(), sy = (b.1 - a.1).signum()
            for k in 0..<len {
                mids.append(Point(x: Double(a.0) + Double(sx) * (Double(k) + 0.5), y: Double(a.1) + Double(sy) * (Double(k) + 0.5)))
            }
        }
        let m = mids.count
        guard m >= 3 else { return mids }
        for _ in 0..<passes {
            var next = mids
            for i in 0..<m {
                let a = mids[(i + m - 1) % m], b = mids[i], c = mids[(i + 1) % m]
                next[i] = Point(x: 0.25 * a.x + 0.5 * b.x + 0.25 * c.x, y: 0.25 * a.y + 0.5 * b.y + 0.25 * c.y)
            }
            mids = next
        }
        return mids
    }

    /// Convex hull (Andrew's monotone chain), O(n log n).
    public static func convexHull(_ points: [Point]) -> [Point] {
        let p = points.sorted { $0.x < $1.x || ($0.x == $1.x && $0.y < $1.y) }
        guard p.count >= 3 else { return p }
        func cross(_ o: Point, _ a: Point, _ b: Point) -> Double { (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x) }
        var lower: [Point] = [], upper: [Point] = []
        for q in p {
            while lower.count >= 2 && cross(lower[lower.count - 2], lower[lower.count - 1], q) <= 0 { lower.removeLast() }
            lower.append(q)
        }
        for q in p.reversed() {
            while upper.count >= 2 && cross(upper[upper.count - 2], upper[upper.count - 1], q) <= 0 { upper.removeLast() }
            upper.append(q)
        }
        return Array(lower.dropLast() + upper.dropLast())
    }
}
