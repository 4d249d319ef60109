// Seeded randomness for the learning loop: every random choice in HaliLearning and HaliExperiments draws from a
// `SeededRandom` so that the same seed gives the same labels, models and curves on every machine.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and fully specified, so results do not depend on the
/// standard library's generator or its algorithms for `shuffle`/`random(in:)`.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    /// A generator derived from this seed and a stream id (e.g. repeat index, N), independent of draw order.
    public static func derived(_ seed: UInt64, _ streams: UInt64...) -> SeededRandom {
        var s = seed
        for t in streams { s = SeededRandom.mix(s ^ SeededRandom.mix(t &+ 0x632B_E59B_D9B4_E019)) }
        return SeededRandom(seed: s)
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform integer in 0..<n (n > 0), by multiply-high (Lemire) without rejection; bias < n / 2^64.
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Uniform Float in [0, 1).
    public mutating func unit() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform Float in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * unit() }

    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// Fisher–Yates shuffle with this generator.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, below(i + 1)) }
    }

    public mutating func shuffled<T>(_ a: [T]) -> [T] { var b = a; shuffle(&b); return b }

    /// `k` distinct indices of 0..<n in random order (partial Fisher–Yates).
    public mutating func sample(_ n: Int, _ k: Int) -> [Int] {
        var idx = Array(0..<n)
        let k = min(k, n)
        for i in 0..<k { idx.swapAt(i, i + below(n - i)) }
        return Array(idx[0..<k])
    }
}

// libm only (HaliLearning is pure: no Foundation, no I/O).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func _log(_ x: Double) -> Double { log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
