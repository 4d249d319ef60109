// Not @inlinable: the call costs nothing beside the BLAS work it starts, and CBLAS stays an internal import of
// HaliMath (no C type reaches its public API).
import CBLAS

extension BLAS {
    /// C = alpha · op(A) · op(B) + beta · C on raw row-major pointers (`cblas_sgemm`), for callers that keep
    /// their own buffers (the CNN in HaliNet). op(A) is m×k, op(B) is k×n, C is m×n; `lda`, `ldb`, `ldc` are
    /// the row strides of A, B, C as stored (before the transpose).
    ///
    /// - Complexity: O(m · n · k) multiply-adds.
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// y = alpha · A · x + beta · y on raw pointers (`cblas_sgemv`, row-major, no transpose): A is m×n with row
    /// stride `lda`, x has n elements, y has m.
    ///
    /// - Complexity: O(m · n) multiply-adds.
    public static func sgemv(
        m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>, beta: Float = 0,
        y: UnsafeMutablePointer<Float>
    ) {
        guard m > 0 else { return }
        guard n > 0 else {
            for i in 0..<m { y[i] *= beta }
            return
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }
}
