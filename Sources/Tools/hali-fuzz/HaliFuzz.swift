// Fuzz targets for the bytes HALI takes from strangers: protocol frames, every message handler of a live daemon,
// slide index files and other viewers' label files.
//
// Built two ways from this one file:
// - with libFuzzer (`Deploy/fuzz.sh`: -sanitize=fuzzer,address and -D FUZZING), where libFuzzer's driver runs
//   the target that HALI_FUZZ_TARGET names;
// - as a plain executable in the ordinary build (`hali-fuzz TARGET FILE|DIR…`), which replays a corpus through
//   the same target: CI runs the committed corpus (Tests/fuzz/corpus) this way, so every input that once crashed
//   keeps being checked without a sanitizer build. `hali-fuzz seed TARGET DIR` writes the hand-made seeds.
import Foundation
import HaliIndex
import HaliWire

enum FuzzTarget: String, CaseIterable {
    /// A frame body as the daemon gets it: decode; anything that decodes must re-encode to bytes that decode to the
    /// same encoding (the mapping to and from protobuf-c loses nothing it kept).
    case wire
    /// A slide index file (`.hidx`): read it; a refusal is fine, a trap is not.
    case index
    /// Frames sent to a live in-process daemon on a session already open (`HandlerTarget`).
    case handlers
    /// Label files in each importable format (`ImporterTarget`).
    case importers

    func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .wire:
            guard let envelope = try? WireCodec.decode(bytes) else { return }
            let once = WireCodec.encode(envelope)
            guard let again = try? WireCodec.decode(once) else { fatalError("re-encoded envelope does not decode: \(envelope.body.name)") }
            let twice = WireCodec.encode(again)
            guard once == twice else { fatalError("encoding is not stable for \(envelope.body.name)") }
        case .index:
            _ = try? IndexFile.read(bytes: Array(bytes), path: "fuzz-input")
        case .handlers:
            HandlerTarget.run(bytes)
        case .importers:
            ImporterTarget.run(bytes)
        }
    }

    /// Hand-made starting points; the wire and index corpora grew from the fuzzer's own finds.
    func seeds() -> [[UInt8]] {
        switch self {
        case .wire, .index: []
        case .handlers: HandlerTarget.seeds()
        case .importers: ImporterTarget.seeds()
        }
    }
}

#if FUZZING
nonisolated(unsafe) let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["HALI_FUZZ_TARGET"] ?? "wire"
    guard let target = FuzzTarget(rawValue: name) else { fatalError("HALI_FUZZ_TARGET=\(name): one of \(FuzzTarget.allCases.map(\.rawValue))") }
    return target
}()

/// libFuzzer's driver, entered from our own `main`: SwiftPM links an executable's entry as `<module>_main`, so
/// libFuzzer's `main` is never used, and this hands it the command line instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("hali_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        fuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#else
@main
struct Replay {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "seed", arguments.count == 3, let target = FuzzTarget(rawValue: arguments.dropFirst().first!) {
            let directory = arguments.last!
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let seeds = target.seeds()
            for (index, seed) in seeds.enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: directory).appendingPathComponent(String(format: "seed-%03d", index)))
            }
            print("hali-fuzz seed \(target.rawValue): \(seeds.count) seeds in \(directory)")
            return
        }
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count >= 2 else {
            FileHandle.standardError.write(
                Data(
                    "usage: hali-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE|DIR…\n       hali-fuzz seed TARGET DIR\n"
                        .utf8))
            exit(2)
        }
        var files: [String] = []
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("hali-fuzz: \(path) does not exist\n".utf8))
                exit(2)
            }
            if isDirectory.boolValue {
                files += try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            bytes.withUnsafeBytes { target.run($0) }
        }
        print("hali-fuzz \(name): \(files.count) inputs replayed, none crashed")
        exit(0)  // the handlers target leaves a daemon running
    }
}
#endif
