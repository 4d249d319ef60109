/// The p-quantile of a sample by the lower nearest rank: the element at index ⌊(n − 1)·p⌋ of the sorted values (no
/// interpolation, so the answer is always a value that was measured). p = 0.5 of [1, 2, 3, 4] is 2; p = 1 is the
/// maximum. nil for an empty sample. O(n log n) for the sort; pass `alreadySorted` to skip it.
public func percentile<T: Comparable>(_ values: [T], _ p: Double, alreadySorted: Bool = false) -> T? {
    guard !values.isEmpty, p >= 0, p <= 1 else { return nil }
    let sorted = alreadySorted ? values : values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

/// The median: the middle value of the sorted sample, or the mean of the two middle ones (unlike `percentile`, which
/// always answers a measured value); nil for an empty sample. O(n log n).
public func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
