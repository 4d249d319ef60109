import Foundation
import HaliCore
import HaliWire
import Testing

@testable import HaliTerminal

/// The shell's connection loop against a daemon that is not there: it tries, says when it will try again, and waits
/// 0.5 s, then 1 s, then 2 s (doubling to 10 s), counting down in whole seconds on the status line.
struct ReconnectTests {
    @Test func aMissingDaemonIsRetriedWithDoublingBackoff() async throws {
        let endpoint = Endpoint.unix(path: NSTemporaryDirectory() + "hali-no-daemon-\(getpid()).sock")
        let hello = Hello(clientName: "test", clientVersion: "0", token: "t")
        let (events, sink) = AsyncStream<ShellEvent>.makeStream(bufferingPolicy: .unbounded)
        let loop = Task { await TerminalLabelling.connectionLoop(endpoint: endpoint, hello: hello, tls: nil, sink: sink) }
        defer { loop.cancel() }
        var seen: [String] = []
        let start = ContinuousClock.now
        var attemptTimes: [Duration] = []
        for await event in events {
            guard case .client(let clientEvent) = event else { continue }
            switch clientEvent {
            case .connecting(let attempt):
                seen.append("try \(attempt)")
                attemptTimes.append(ContinuousClock.now - start)
            case .disconnected(_, let retry):
                seen.append("retry in \(retry.map(String.init) ?? "never")")
            default: continue
            }
            if seen.count == 6 { break }
        }
        // The third wait is 2 s, announced as such.
        #expect(seen == ["try 1", "retry in 1", "try 2", "retry in 1", "try 3", "retry in 2"])
        // Waits of 0.5 and 1 s before the second and third tries. Only the time from the start to the third try is
        // bounded, from below: this loop may see an event late, which lengthens that time but can shorten the gap
        // between two events (CI saw 900 ms for the 1 s wait while the machine was loaded).
        #expect(attemptTimes.count == 3)
        #expect(attemptTimes[2] / .milliseconds(1) >= 1_500 * 0.95, "\(attemptTimes)")
    }
}
