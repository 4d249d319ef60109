import Foundation

/// A value behind a lock, for state shared by threads and tasks where an actor's `await` is not wanted (counters,
/// queues touched from synchronous callbacks).
public final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
