import Foundation
import HaliMath
import Testing

/// The textbook triple loop, in Double, as the reference for cblas_sgemm.
func naiveProduct(_ a: Matrix, transposeA: Bool, _ b: Matrix, transposeB: Bool) -> [Double] {
    let m = transposeA ? a.columns : a.rows
    let k = transposeA ? a.rows : a.columns
    let n = transposeB ? b.rows : b.columns
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let x = transposeA ? a[p, i] : a[i, p]
                let y = transposeB ? b[j, p] : b[p, j]
                sum += Double(x) * Double(y)
            }
            c[i * n + j] = sum
        }
    }
    return c
}

@Suite struct BLASTests {
    @Test func literalProduct() {
        let a = Matrix(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6])
        let b = Matrix(rows: 3, columns: 2, values: [7, 8, 9, 10, 11, 12])
        #expect(BLAS.multiply(a, b).values == [58, 64, 139, 154])
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matchesNaiveLoop(transposeA: Bool, transposeB: Bool) {
        var seed: UInt32 = 12345
        func random() -> Float {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return Float(seed >> 8) / Float(1 << 24) - 0.5
        }
        let (m, k, n) = (37, 53, 29)
        let a =
            transposeA
            ? Matrix(rows: k, columns: m, values: (0..<(m * k)).map { _ in random() })
            : Matrix(rows: m, columns: k, values: (0..<(m * k)).map { _ in random() })
        let b =
            transposeB
            ? Matrix(rows: n, columns: k, values: (0..<(k * n)).map { _ in random() })
            : Matrix(rows: k, columns: n, values: (0..<(k * n)).map { _ in random() })
        var c = Matrix(rows: m, columns: n, repeating: 1)
        BLAS.gemm(a, transposeA: transposeA, b, transposeB: transposeB, alpha: 2, beta: 0.5, into: &c)
        let reference = naiveProduct(a, transposeA: transposeA, b, transposeB: transposeB)
        for i in 0..<(m * n) {
            let expected = 2 * reference[i] + 0.5
            #expect(abs(Double(c.values[i]) - expected) < 1e-4 * max(1, abs(expected)))
        }
    }
}

/// OpenBLAS's thread count is process-wide; these check the one owner of it (`BLAS.configure` and its scopes).
@Suite(.serialized) struct BLASThreadPolicyTests {
    @Test func scopesNestAndTheLastOneRestoresTheConfiguredCount() {
        let atStart = BLAS.threadCount
        let configured = min(2, atStart)
        BLAS.configure(threads: configured)
        defer { BLAS.configure(threads: atStart) }
        BLAS.withOneThreadPerCaller {
            #expect(BLAS.threadCount == 1)
            BLAS.withOneThreadPerCaller { #expect(BLAS.threadCount == 1) }
            // The inner scope ended; the outer one still holds the count at 1.
            #expect(BLAS.threadCount == 1)
        }
        #expect(BLAS.threadCount == configured)
        BLAS.withOneThreadPerCaller(when: false) { #expect(BLAS.threadCount == configured) }
    }

    @Test func overlappingScopesOnManyThreadsEndOnTheConfiguredCount() {
        let atStart = BLAS.threadCount
        let configured = min(2, atStart)
        BLAS.configure(threads: configured)
        defer { BLAS.configure(threads: atStart) }
        let inside = LockedCount()
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            BLAS.withOneThreadPerCaller {
                if BLAS.threadCount == 1 { inside.add() }
                usleep(2_000)
            }
        }
        #expect(inside.value == 16)
        #expect(BLAS.threadCount == configured)
    }

    @Test func configuringInsideAScopeTakesEffectWhenItEnds() {
        let atStart = BLAS.threadCount
        defer { BLAS.configure(threads: atStart) }
        BLAS.configure(threads: min(2, atStart))
        BLAS.withOneThreadPerCaller {
            BLAS.configure(threads: 1)
            BLAS.configure(threads: min(2, atStart))
            #expect(BLAS.threadCount == 1)
        }
        #expect(BLAS.threadCount == min(2, atStart))
    }
}

private final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
