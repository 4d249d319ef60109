import HaliMath

public enum HaliTrainingSetup {
    /// Sets the OpenBLAS thread count (commands take `--threads`).
    public static func blasThreads(_ n: Int) { BLAS.threadCount = max(1, n) }
}
