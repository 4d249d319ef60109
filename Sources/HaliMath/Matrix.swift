import CBLAS
import Foundation

/// A dense row-major Float32 matrix: element (row r, column c) lives at `values[r * columns + c]`.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for a \(rows)×\(columns) matrix")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public init(rows: Int, columns: Int, repeating value: Float = 0) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: value, count: rows * columns))
    }

    public subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// ‖row‖² for every row, summed left to right (the distance expansions ‖x‖² + ‖c‖² − 2·x·c use these).
    public func rowSquaredNorms() -> [Float] {
        var out = [Float](repeating: 0, count: rows)
        values.withUnsafeBufferPointer { x in
            for r in 0..<rows {
                var s: Float = 0
                for c in 0..<columns { let v = x[r * columns + c]; s += v * v }
                out[r] = s
            }
        }
        return out
    }
}

/// The one owner of OpenBLAS in HALI: single-precision GEMM over `Matrix`.
public enum BLAS {
    /// Threads OpenBLAS uses for one call now (it defaults to the core count).
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Sets the count that BLAS calls use outside `withOneThreadPerCaller`: an executable calls this once, at start.
    ///
    /// OpenBLAS's count is process-wide (Debian 12's 0.3.21 has no `openblas_set_num_threads_local`), so HALI
    /// keeps a single owner of it: this configured value and the scopes below.
    public static func configure(threads: Int) {
        threadPolicy.withLock { policy in
            policy.configured = max(1, threads)
            if policy.singleThreadedScopes == 0 { openblas_set_num_threads(Int32(policy.configured)) }
        }
    }

    /// Runs `body` with OpenBLAS on one thread, for callers that already run BLAS on every core from their own
    /// threads (tiles of an ingest, batches of an embedding): one pool each, not two competing ones.
    ///
    /// With `needed` false, `body` just runs (for callers whose work may or may not touch BLAS).
    /// Scopes nest and overlap across threads: the count returns to the configured one when the last scope ends,
    /// so two concurrent ingests in one daemon cannot leave each other on the wrong count.
    public static func withOneThreadPerCaller<T>(when needed: Bool = true, _ body: () throws -> T) rethrows -> T {
        guard needed else { return try body() }
        enterSingleThreadedScope()
        defer { leaveSingleThreadedScope() }
        return try body()
    }

    /// `withOneThreadPerCaller` for asynchronous work.
    public static func withOneThreadPerCaller<T>(when needed: Bool = true, _ body: () async throws -> T) async rethrows -> T {
        guard needed else { return try await body() }
        enterSingleThreadedScope()
        defer { leaveSingleThreadedScope() }
        return try await body()
    }

    private struct ThreadPolicy {
        var configured = Int(openblas_get_num_threads())
        var singleThreadedScopes = 0
    }
    private static let threadPolicy = PolicyLock(ThreadPolicy())

    private static func enterSingleThreadedScope() {
        threadPolicy.withLock { policy in
            policy.singleThreadedScopes += 1
            if policy.singleThreadedScopes == 1 { openblas_set_num_threads(1) }
        }
    }

    private static func leaveSingleThreadedScope() {
        threadPolicy.withLock { policy in
            policy.singleThreadedScopes -= 1
            if policy.singleThreadedScopes == 0 { openblas_set_num_threads(Int32(policy.configured)) }
        }
    }

    /// C = alpha · op(A) · op(B) + beta · C, with op = transpose when asked (`cblas_sgemm`, row-major).
    ///
    /// - Complexity: O(m · n · k) multiply-adds, where op(A) is m×k and op(B) is k×n.
    public static func gemm(
        _ a: Matrix, transposeA: Bool = false, _ b: Matrix, transposeB: Bool = false, alpha: Float = 1,
        beta: Float = 0, into c: inout Matrix
    ) {
        let m = transposeA ? a.columns : a.rows
        let k = transposeA ? a.rows : a.columns
        let kb = transposeB ? b.columns : b.rows
        let n = transposeB ? b.rows : b.columns
        precondition(k == kb, "inner dimensions differ: \(k) vs \(kb)")
        precondition(c.rows == m && c.columns == n, "output is \(c.rows)×\(c.columns), expected \(m)×\(n)")
        guard m > 0, n > 0 else { return }
        if k == 0 {  // BLAS leaves C untouched only for beta = 1; define the empty product as zero.
            for i in c.values.indices { c.values[i] *= beta }
            return
        }
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                c.values.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(
                        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, pa.baseAddress, Int32(a.columns), pb.baseAddress,
                        Int32(b.columns), beta, pc.baseAddress, Int32(n))
                }
            }
        }
    }

    public static func multiply(_ a: Matrix, _ b: Matrix) -> Matrix {
        var c = Matrix(rows: a.rows, columns: b.columns)
        gemm(a, b, into: &c)
        return c
    }
}

/// NSLock rather than `Synchronization.Mutex`: ThreadSanitizer models NSLock, and the suite runs under it.
private final class PolicyLock<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
