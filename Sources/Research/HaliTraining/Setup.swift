import HaliMath
#if canImport(Glibc)
import Glibc
#endif

public enum HaliTrainingSetup {
    /// Sets the OpenBLAS thread count (commands take `--threads`).
    public static func blasThreads(_ n: Int) { BLAS.configure(threads: n) }

    /// Asks glibc to recycle large blocks instead of mapping and unmapping them on every malloc/free.
    /// Why: training allocates activations and im2col columns of 20–60 MB per layer per mini-batch; above
    /// glibc's default mmap threshold (at most 32 MiB even after its own adaptation) each one is a fresh
    /// mmap whose pages are faulted in and zeroed by the kernel. Measured with the same settings (as
    /// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_) on hali-bench-cnn before inference kept its own
    /// buffers: system time 63 s → 9.5 s, 1.8× the cells/s. Process-wide, so the training command calls it.
    public static func keepLargeAllocations() {
        #if canImport(Glibc)
        // malloc.h is not in Swift's Glibc module: look mallopt up with its C calling convention.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1  // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        _ = mallopt(mmapThreshold, 512 << 20)
        _ = mallopt(trimThreshold, 1 << 30)
        #endif
    }
}
