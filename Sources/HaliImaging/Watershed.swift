// Marker-controlled watershed by priority-queue flooding (Meyer 1994; Vincent & Soille 1991), in the form
// QuPath uses (`qupath.imagej.processing.Watershed.doWatershed`): the image is flooded from the markers
// in order of DEcreasing value (basins are bright, e.g. the LoG response of nuclei or a distance map),
// ties broken first-in-first-out; a pixel is labelled only if all its already-labelled 4-neighbours carry
// the same label, otherwise it stays 0 and forms a one-pixel watershed line. Pixels with value ≤
// `minValue` are never flooded.
//
// References: L. Vincent, P. Soille, "Watersheds in digital spaces: an efficient algorithm based on
// immersion simulations", IEEE PAMI 13(6):583–598, 1991; F. Meyer, "Topographic distance and watershed
// lines", Signal Processing 38:113–125, 1994.
//
// Cost: O(N log N) (binary heap of at most N entries).

/// A priority queue of pixel indices ordered by value descending, then insertion order ascending (FIFO ties).
/// Both are packed into one UInt64 key, smallest first: the high 32 bits are the value's bits mapped so that
/// integer order is float order, inverted; the low 32 bits the insertion counter. One comparison per step,
/// two parallel buffers (not three Swift arrays with their uniqueness and bounds checks): measured faster on
/// `hali ingest` with identical detections.
final class FloodQueue {
    private var keys: UnsafeMutablePointer<UInt64>
    private var indices: UnsafeMutablePointer<Int32>
    private var capacity: Int
    private(set) var count = 0
    private var counter: UInt32 = 0

    /// `capacity` is a hint; the queue grows past it. Flooding pushes each pixel at most once, so a capacity of
    /// the pixel count never reallocates.
    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        keys = .allocate(capacity: self.capacity); indices = .allocate(capacity: self.capacity)
    }

    deinit { keys.deallocate(); indices.deallocate() }

    var isEmpty: Bool { count == 0 }

    /// Smaller key = higher value, then earlier insertion. −0 is folded into +0 so that they tie, as `==` says.
    @inline(__always) static func key(_ value: Float, _ order: UInt32) -> UInt64 {
        let bits = (value + 0).bitPattern
        let ascending = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(~ascending) << 32 | UInt64(order)
    }

    private func grow() {
        let bigger = capacity * 2
        let k = UnsafeMutablePointer<UInt64>.allocate(capacity: bigger), i = UnsafeMutablePointer<Int32>.allocate(capacity: bigger)
        k.moveInitialize(from: keys, count: count); i.moveInitialize(from: indices, count: count)
        keys.deallocate(); indices.deallocate()
        keys = k; indices = i; capacity = bigger
    }

    @inline(__always) func push(_ index: Int32, _ value: Float) {
        let key = Self.key(value, counter)
        counter &+= 1
        if count == capacity { grow() }
        var c = count
        count += 1
        while c > 0 {  // sift the hole up
            let p = (c - 1) >> 1
            if key < keys[p] { keys[c] = keys[p]; indices[c] = indices[p]; c = p } else { break }
        }
        keys[c] = key; indices[c] = index
    }

    @inline(__always) func pop() -> Int32 {
        let top = indices[0]
        count -= 1
        let n = count
        if n == 0 { return top }
        let lastKey = keys[n], lastIndex = indices[n]
        var p = 0
        while true {  // sift the hole at the root down, then drop the last entry into it
            let l = 2 * p + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && keys[l + 1] < keys[l] { c = l + 1 }
            if keys[c] < lastKey { keys[p] = keys[c]; indices[p] = indices[c]; p = c } else { break }
        }
        keys[p] = lastKey; indices[p] = lastIndex
        return top
    }
}

public enum Watershed {
    /// Floods `image` from the labelled `markers` (label > 0) and returns the basin labels (0 = line or
    /// unflooded). `mask`, when given, restricts flooding to its foreground.
    public static func flood(
        _ image: FloatImage, markers: LabelImage, minValue: Float = 0,
        mask: BinaryImage? = nil
    ) -> LabelImage {
        precondition(image.width == markers.width && image.height == markers.height)
        let w = image.width, h = image.height, n = w * h
        var labels = markers.labels
        // 0 = may still be queued; 1 = queued, labelled, or never floodable (value ≤ minValue, outside the
        // mask). Folding those tests into one byte leaves one check per neighbour.
        var state = [UInt8](repeating: 0, count: n)
        let queue = FloodQueue(capacity: n)
        image.data.withUnsafeBufferPointer { F in
            labels.withUnsafeMutableBufferPointer { L in
                state.withUnsafeMutableBufferPointer { S in
                    for p in 0..<n where L[p] != 0 || F[p] <= minValue { S[p] = 1 }
                    if let mask { for p in 0..<n where mask.bits[p] == 0 { S[p] = 1 } }
                    @inline(__always) func enqueueNeighbours(_ p: Int, _ x: Int, _ y: Int) {
                        if x > 0 { let q = p - 1; if S[q] == 0 { S[q] = 1; queue.push(Int32(q), F[q]) } }
                        if x < w - 1 { let q = p + 1; if S[q] == 0 { S[q] = 1; queue.push(Int32(q), F[q]) } }
                        if y > 0 { let q = p - w; if S[q] == 0 { S[q] = 1; queue.push(Int32(q), F[q]) } }
                        if y < h - 1 { let q = p + w; if S[q] == 0 { S[q] = 1; queue.push(Int32(q), F[q]) } }
                    }
                    for y in 0..<h { for x in 0..<w where L[y * w + x] != 0 { enqueueNeighbours(y * w + x, x, y) } }
                    while !queue.isEmpty {
                        let p = Int(queue.pop())
                        let y = p / w, x = p - y * w
                        var lab: Int32 = 0
                        var conflict = false
                        @inline(__always) func look(_ q: Int) {
                            let l = L[q]
                            if l != 0 { if lab == 0 { lab = l } else if lab != l { conflict = true } }
                        }
                        if x > 0 { look(p - 1) }
                        if x < w - 1 { look(p + 1) }
                        if y > 0 { look(p - w) }
                        if y < h - 1 { look(p + w) }
                        if conflict || lab == 0 { continue }
                        L[p] = lab
                        enqueueNeighbours(p, x, y)
                    }
                }
            }
        }
        return LabelImage(width: w, height: h, labels: labels)
    }

    /// Splits touching convex objects of a binary mask by a watershed of its distance map ("split by shape",
    /// as ImageJ's `EDM.toWatershed` that QuPath applies): seeds are the h-maxima of the Euclidean distance
    /// map with dynamic `tolerance` pixels (ImageJ uses 0.5), flooded downwards inside the mask; the
    /// returned mask has one-pixel lines where objects were cut.
    public static func splitByShape(_ mask: BinaryImage, tolerance: Float = 0.5) -> BinaryImage {
        let edm = Morphology.distanceTransform(mask)
        let seeds = Morphology.regionalMaxima(edm, minValue: 0, dynamic: tolerance)
        let basins = flood(edm, markers: seeds, minValue: 0, mask: mask)
        var out = [UInt8](repeating: 0, count: mask.bits.count)
        for i in 0..<out.count where basins.labels[i] != 0 { out[i] = 1 }
        return BinaryImage(width: mask.width, height: mask.height, bits: out)
    }
}
