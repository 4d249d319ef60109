import Foundation

/// Progress on standard error: a redrawn bar with rate and ETA on a terminal, a plain line every 10 % otherwise
/// (logs, CI).
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let label: String
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastDecile = -1
    private var lastDraw = 0.0

    init(label: String) { self.label = label }

    /// - Parameters:
    ///   - done, total: units of work (tiles).
    ///   - detail: what to show after the counts, e.g. "12,345 nuclei, 5.1 MP/s".
    ///   - elapsed: seconds since the start.
    func update(done: Int, total: Int, detail: String, elapsed: Double) {
        lock.lock()
        defer { lock.unlock() }
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        if isTerminal {
            guard done == total || elapsed - lastDraw >= 0.1 else { return }
            lastDraw = elapsed
            let width = 28
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = String(format: "\r%@ %@ %3.0f%% %d/%d, %@, %@ left ", label, bar, fraction * 100, done, total, detail, Self.clock(eta))
            FileHandle.standardError.write(Data(line.utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let decile = Int(fraction * 10)
            guard decile > lastDecile else { return }
            lastDecile = decile
            let line = String(
                format: "%@ %3.0f%% %d/%d, %@, %.1f s elapsed, %@ left\n", label, fraction * 100, done, total, detail, elapsed, Self.clock(eta))
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
