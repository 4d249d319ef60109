// Global threshold selection.
//
// Otsu: N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. SMC 9(1):62–66,
// 1979. 256-bin histogram between the minimum and maximum finite value; the threshold maximises the
// between-class variance. O(N + 256).

public enum Thresholds {
    /// Otsu's threshold of `values` (returns the minimum when all values are equal or none is finite).
    public static func otsu(_ values: [Float], bins: Int = 256) -> Float {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        guard lo < hi else { return lo.isFinite ? lo : 0 }
        var hist = [Double](repeating: 0, count: bins)
        let scale = Float(bins) / (hi - lo)
        for v in values where v.isFinite { hist[min(bins - 1, Int((v - lo) * scale))] += 1 }
        let total = hist.reduce(0, +)
        var sumAll = 0.0
        for i in 0..<bins { sumAll += Double(i) * hist[i] }
        var wB = 0.0, sumB = 0.0, best = -1.0, bestI = 0
        for i in 0..<bins {
            wB += hist[i]
            if wB == 0 { continue }
            let wF = total - wB
            if wF == 0 { break }
            sumB += Double(i) * hist[i]
            let mB = sumB / wB, mF = (sumAll - sumB) / wF
            let between = wB * wF * (mB - mF) * (mB - mF)
            if between > best { best = between; bestI = i }
        }
        return lo + (Float(bestI) + 1) / scale
    }
}
