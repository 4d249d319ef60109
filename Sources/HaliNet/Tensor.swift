// Tensors of HaliNet.
//
// Layout: NHWC, row-major, Float32 — element (n, y, x, c) lives at ((n·H + y)·W + x)·C + c.
// Why NHWC: a convolution over a whole mini-batch becomes ONE sgemm, im2col(X)[N·Ho·Wo, kh·kw·Cin] ×
// W[kh·kw·Cin, Cout] = Y[N·Ho·Wo, Cout], whose result is already NHWC (no transposes between layers), the
// channel vector of a pixel is contiguous (im2col copies runs of Cin floats; 1×1 stride-1 convolutions need
// no im2col at all), and batch norm / bias / ReLU are per-column operations on that matrix. Convolution
// weights are kept internally as HWIO ([kh][kw][Cin][Cout], i.e. a row-major (kh·kw·Cin)×Cout matrix);
// files use PyTorch's OIHW and are permuted on load/save.

/// A 4-D Float32 tensor in NHWC layout (a feature vector batch is N×1×1×C).
public struct Tensor: Sendable, Equatable {
    public var n: Int, h: Int, w: Int, c: Int
    public var data: [Float]

    public init(n: Int, h: Int, w: Int, c: Int, data: [Float]) {
        precondition(data.count == n * h * w * c, "\(data.count) values for a \(n)×\(h)×\(w)×\(c) tensor")
        self.n = n; self.h = h; self.w = w; self.c = c; self.data = data
    }

    public init(n: Int, h: Int, w: Int, c: Int, repeating v: Float = 0) {
        self.init(n: n, h: h, w: w, c: c, data: [Float](repeating: v, count: n * h * w * c))
    }

    public var count: Int { data.count }
    public var shape: [Int] { [n, h, w, c] }
    /// Rows of the N·H·W × C matrix view.
    public var rows: Int { n * h * w }

    public subscript(n: Int, y: Int, x: Int, c: Int) -> Float {
        get { data[((n * h + y) * w + x) * self.c + c] }
        set { data[((n * h + y) * w + x) * self.c + c] = newValue }
    }
}

/// Deterministic random numbers (SplitMix64) so that weights, shuffles and augmentation are reproducible
/// from a seed on every platform.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

// Tiny libm wrappers so that HaliNet needs no Foundation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
@inline(__always) func _log(_ x: Double) -> Double { log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
@inline(__always) func _exp(_ x: Float) -> Float { expf(x) }
