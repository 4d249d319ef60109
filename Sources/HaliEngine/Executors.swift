import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where the engine runs blocking work (head fits, k-center passes), so that it never holds a Swift concurrency
/// thread and knows nothing of the server's event loops: the daemon hands it NIO's blocking pool, tests and tools
/// the default `ThreadExecutor`.
public protocol BlockingExecutor: Sendable {
    /// Runs `work` on one of the executor's threads and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T
}

/// A fixed set of threads taking work first come, first served; optionally at a lower CPU priority (`nice`), for
/// advice that must only use CPU the rest leaves idle.
///
/// One lock and one condition variable: the queue holds closures that each resume their caller's continuation.
/// Its threads never end, so make few: one per purpose, for the life of the process.
public final class ThreadExecutor: BlockingExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []

    /// - Parameters:
    ///   - threads: how many threads run work at once.
    ///   - nice: Linux niceness of each thread (0 = as the process; 19 = only idle CPU).
    public init(threads: Int, nice: Int32 = 0, name: String = "hali-engine") {
        for index in 0..<max(1, threads) {
            let thread = Thread {
                #if os(Linux)
                // PRIO_PROCESS with 0 names the calling thread only on Linux.
                if nice != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) }
                #endif
                self.serve()
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// The shared default: as many threads as cores.
    public static let shared = ThreadExecutor(threads: ProcessInfo.processInfo.activeProcessorCount)

    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            queue.append { continuation.resume(with: Result { try work() }) }
            condition.signal()
            condition.unlock()
        }
    }

    private func serve() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let next = queue.removeFirst()
            condition.unlock()
            next()
        }
    }
}
