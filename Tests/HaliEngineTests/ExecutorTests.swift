import Foundation
import HaliCore
import Testing

@testable import HaliEngine

struct ExecutorTests {
    struct Refused: Error, Equatable {}

    /// Every job's result comes back to its own caller, and no more than `threads` run at once.
    @Test func resultsReturnToTheirCallersWithBoundedConcurrency() async throws {
        let executor = ThreadExecutor(threads: 2, name: "test-executor")
        let running = LockedValue(0)
        let most = LockedValue(0)
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for job in 0..<40 {
                group.addTask {
                    let square = try await executor.run { () -> Int in
                        let now = running.withLock {
                            $0 += 1; return $0
                        }
                        most.withLock { $0 = max($0, now) }
                        usleep(1_000)
                        running.withLock { $0 -= 1 }
                        return job * job
                    }
                    return (job, square)
                }
            }
            var all: [Int: Int] = [:]
            for try await (job, square) in group { all[job] = square }
            return all
        }
        #expect(results.count == 40)
        #expect(results.allSatisfy { $0.value == $0.key * $0.key })
        #expect(most.withLock { $0 } <= 2)
        #expect(most.withLock { $0 } >= 1)
    }

    @Test func errorsAreThrownToTheCaller() async {
        let executor = ThreadExecutor(threads: 1, name: "test-errors")
        await #expect(throws: Refused.self) { try await executor.run { () throws -> Int in throw Refused() } }
        #expect((try? await executor.run { 7 }) == 7)
    }
}
