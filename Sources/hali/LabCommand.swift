// `hali train-backbone | train-detector | embed | eval …` run `hali-lab` with the same arguments, so that the
// commands in the docs keep working while the client links none of the research code.

import ArgumentParser
import Foundation

enum LabCommand {
    /// Replaces this process with `hali-lab ARGUMENTS`: the sibling of this executable, else the first on PATH.
    static func handOver(_ arguments: [String]) throws -> Never {
        let executable = labExecutable()
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        execv(executable, argv)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(
            Data(
                """
                hali: the research tools are in hali-lab, next to hali; cannot run \(executable): \(reason)
                (build it with `swift build --product hali-lab`)

                """.utf8))
        throw ExitCode(127)
    }

    static func labExecutable() -> String {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let sibling = (own as NSString).deletingLastPathComponent + "/hali-lab"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/hali-lab"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return sibling
    }

    struct TrainBackbone: HandsOverToLab {
        static let configuration = CommandConfiguration(
            commandName: "train-backbone", abstract: "Train the CNN backbone (runs hali-lab train-backbone).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    }

    struct TrainDetector: HandsOverToLab {
        static let configuration = CommandConfiguration(
            commandName: "train-detector", abstract: "Train the learned nucleus detector (runs hali-lab train-detector).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    }

    struct Embed: HandsOverToLab {
        static let configuration = CommandConfiguration(
            commandName: "embed", abstract: "Backbone features of .npy patches (runs hali-lab embed).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    }

    struct Eval: HandsOverToLab {
        static let configuration = CommandConfiguration(
            commandName: "eval", abstract: "Measure detection, features and the learning loop (runs hali-lab eval).")
        @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    }
}

/// A `hali` command that `hali-lab` implements: it passes its name and every argument on.
protocol HandsOverToLab: ParsableCommand {
    var arguments: [String] { get }
}

extension HandsOverToLab {
    func run() throws { try LabCommand.handOver([Self.configuration.commandName ?? ""] + arguments) }
}
