import Foundation
import HaliIngest

/// What the handler and importer targets need around them: a real slide's index, built once per machine with the
/// real detector from a 1024×1024 window of CMU-1 (about a second) and reused by later runs.
enum Fixture {
    /// The shared data's small CMU-1 slide; `HALI_FUZZ_SLIDE` overrides.
    static let slidePath: String =
        ProcessInfo.processInfo.environment["HALI_FUZZ_SLIDE"]
        ?? packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/slides/CMU-1-Small-Region.svs").path

    /// The checkout (the folder holding Package.swift), found upwards from this file so that moving it cannot break
    /// the path (it did once: the fixture then looked for the slide inside the checkout).
    static let packageRoot: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) { return directory }
            directory.deleteLastPathComponent()
        }
        fatalError("hali-fuzz: no Package.swift above \(#filePath)")
    }()

    static let slideID = "CMU-1-Small-Region"

    /// A data directory whose `index/` holds the slide's index (the daemon's and `hali import`'s layout).
    static let indexedDirectory: String = {
        let directory = NSTemporaryDirectory() + "hali-fuzz-fixture-\(getuid())"
        let done = directory + "/.complete"
        if FileManager.default.fileExists(atPath: done) { return directory }
        guard FileManager.default.fileExists(atPath: slidePath) else {
            fatalError("hali-fuzz: the fixture slide \(slidePath) is missing (set HALI_FUZZ_SLIDE)")
        }
        try? FileManager.default.removeItem(atPath: directory)
        blocking {
            var options = IngestOptions()
            options.region = (x: 700, y: 1000, width: 1024, height: 1024)
            _ = try await IndexBuilder.build(slidePath: slidePath, options: options, outputDirectory: directory + "/index")
        }
        _ = FileManager.default.createFile(atPath: done, contents: nil)
        return directory
    }()
}

/// Runs async work to completion from synchronous code (libFuzzer's callback, set-up); traps on error, since a
/// fixture that cannot be built makes every input meaningless.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = LockedBox<Result<T, any Error>?>(nil)
    Task {
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        result.set(outcome)
        done.signal()
    }
    done.wait()
    switch result.get()! {
    case .success(let value): return value
    case .failure(let error): fatalError("hali-fuzz: set-up failed: \(error)")
    }
}

final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
}
