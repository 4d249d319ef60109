// Metrics for the experiments: accuracy, balanced accuracy, AUC of curves, paired summaries.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Metrics {
    public static func accuracy(predicted: [Int], truth: [Int]) -> Double {
        guard !truth.isEmpty else { return 0 }
        return Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(truth.count)
    }

    /// Mean per-class recall over the classes present in `truth`.
    public static func balancedAccuracy(predicted: [Int], truth: [Int], classCount: Int) -> Double {
        var hit = [Int](repeating: 0, count: classCount), tot = hit
        for (p, t) in zip(predicted, truth) { tot[t] += 1; if p == t { hit[t] += 1 } }
        let present = (0..<classCount).filter { tot[$0] > 0 }
        guard !present.isEmpty else { return 0 }
        return present.map { Double(hit[$0]) / Double(tot[$0]) }.reduce(0, +) / Double(present.count)
    }

    /// Area under a curve sampled at `xs` (ascending) restricted to x < `limit`, by the trapezoid rule,
    /// normalised by the x-range covered, so a constant curve c has AUC c. With unit steps this is the mean.
    public static func auc(xs: [Int], ys: [Double], below limit: Int) -> Double {
        let pts = zip(xs, ys).filter { $0.0 < limit }
        guard pts.count >= 2 else { return pts.first?.1 ?? 0 }
        var area = 0.0
        for i in 1..<pts.count { area += Double(pts[i].0 - pts[i - 1].0) * (pts[i].1 + pts[i - 1].1) / 2 }
        return area / Double(pts.last!.0 - pts.first!.0)
    }
}

/// Mean, standard deviation and a two-sided 95 % Student-t confidence interval of a sample.
public struct Summary: Sendable, Equatable, Codable {
    public var mean: Double
    public var sd: Double
    public var ciLow: Double
    public var ciHigh: Double
    public var n: Int

    public init(_ v: [Double]) {
        n = v.count
        mean = v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count)
        let m = mean
        sd = v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
        let half = v.count > 1 ? Summary.t975(df: v.count - 1) * sd / Double(v.count).squareRoot() : 0
        ciLow = mean - half
        ciHigh = mean + half
    }

    /// 97.5 % quantile of Student's t (table for df ≤ 30, normal beyond).
    public static func t975(df: Int) -> Double {
        let table: [Double] = [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
            2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
            2.052, 2.048, 2.045, 2.042,
        ]
        return df >= 1 && df <= 30 ? table[df - 1] : 1.96
    }
}
