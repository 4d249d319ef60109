import Foundation
import HaliCore
import HaliTestFixtures
import Testing

@testable import HaliIngest

/// `hali batch`'s pure parts: which slides a batch names, where each stands, what a failure leaves, and the scripts.
/// The live Slurm run and the Kubernetes schema check are in Tests/interop/test_batch.py.
struct BatchTests {
    static func withFolder(_ body: (String) throws -> Void) throws {
        let folder = NSTemporaryDirectory() + "hali-batch-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try body(folder)
    }

    @Test func foldersManifestsAndFilesExpandOnceEachInOrder() throws {
        try Self.withFolder { folder in
            let slides = folder + "/slides"
            try FileManager.default.createDirectory(atPath: slides, withIntermediateDirectories: true)
            for name in ["b.svs", "a.NDPI", "notes.txt", "c.tif"] { FileManager.default.createFile(atPath: "\(slides)/\(name)", contents: Data()) }
            try "# the lab's list\n\nslides/c.tif\n  /elsewhere/d.svs  \n".write(toFile: folder + "/batch.list", atomically: true, encoding: .utf8)
            let expanded = try BatchSlides.expand(["slides", "batch.list", "slides/b.svs"], workingDirectory: folder)
            // The folder's slide files by name (not notes.txt), then the list's new entry; nothing twice.
            #expect(expanded == ["\(slides)/a.NDPI", "\(slides)/b.svs", "\(slides)/c.tif", "/elsewhere/d.svs"])
            #expect(throws: FileError.self) { try BatchSlides.expand(["missing.svs"], workingDirectory: folder) }
            try "a.svs\nb\0.svs\n".write(toFile: folder + "/nul.txt", atomically: true, encoding: .utf8)
            #expect(throws: FileError.self) { try BatchSlides.expand(["nul.txt"], workingDirectory: folder) }
        }
    }

    @Test func aFailureIsRecordedForItsFileAndAChangedFileIsTriedAgain() throws {
        try Self.withFolder { folder in
            let slide = folder + "/scan.svs"
            try Data((0..<4096).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: slide))
            var options = IngestOptions()
            options.micronsPerPixel = 0.5
            var plan = BatchPlan(slides: [slide], options: options, outputDirectory: folder + "/index")
            guard case .unreadable = plan.slides[0].state else { Issue.record("\(plan.slides[0].state)"); return }
            #expect(plan.toRun() == [slide])
            try FileManager.default.createDirectory(atPath: folder + "/index", withIntermediateDirectories: true)
            try BatchFailure.record(slidePath: slide, outputDirectory: folder + "/index", reason: "not a slide\nat all")
            plan = BatchPlan(slides: [slide], options: options, outputDirectory: folder + "/index")
            #expect(plan.slides[0].state == .failed("not a slide at all"))
            #expect(plan.toRun().isEmpty && plan.toRun(retryFailed: true) == [slide])
            // Another file under the same name is not the one that failed.
            try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: slide))
            plan = BatchPlan(slides: [slide], options: options, outputDirectory: folder + "/index")
            #expect(plan.toRun() == [slide])
        }
    }

    @Test func anIndexIsCurrentOnlyForItsFileAndSettings() async throws {
        try await Self.withFolderAsync { folder in
            var options = IngestOptions()
            options.threads = 2
            let slide = SharedData.cmu1SmallRegion
            #expect(BatchPlan(slides: [slide], options: options, outputDirectory: folder).slides[0].state == .missing)
            _ = try await IndexBuilder.build(slidePath: slide, options: options, outputDirectory: folder)
            guard case .current(let cells) = BatchPlan(slides: [slide], options: options, outputDirectory: folder).slides[0].state else {
                Issue.record("not current after a build")
                return
            }
            #expect(cells > 1000)
            var other = options
            other.stain = .hdab
            #expect(BatchPlan(slides: [slide], options: other, outputDirectory: folder).slides[0].state == .stale("built with other settings"))
        }
    }

    static func withFolderAsync(_ body: (String) async throws -> Void) async throws {
        let folder = NSTemporaryDirectory() + "hali-batch-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await body(folder)
    }

    /// The script's slide list, read back by bash itself: names with quotes, spaces, `$` and backslashes survive.
    @Test func bashReadsTheSlurmScriptsSlidesBackAsWritten() throws {
        let slides = ["/data/it's a slide.svs", "/data/$HOME `x` \\n \"q\".tif", "/data/plain.svs"]
        var settings = SlurmSettings()
        settings.partition = "gpu"
        settings.gres = "gpu:1"
        settings.maxParallel = 2
        settings.memory = "4G"
        let script = SlurmScript.render(
            slides: slides, command: BatchTaskCommand(hali: "/opt/hali bin/hali", ingestArguments: ["--stain", "hdab"], indexDirectory: "/idx"),
            settings: settings, logDirectory: "/idx/batch/logs", created: "now")
        #expect(script.contains("#SBATCH --array=0-2%2\n") && script.contains("#SBATCH --gres=gpu:1\n") && script.contains("#SBATCH --mem=4G\n"))
        #expect(script.hasPrefix("#!/bin/bash\n"))
        // Everything up to the exec line, then print the array one item per line and the command words.
        let body = script.components(separatedBy: "exec ")[0]
        let probe = body + "printf '%s\\n' \"${SLIDES[@]}\"; printf '[%s]' \"${HALI[@]}\"\n"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", probe]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(output == slides.joined(separator: "\n") + "\n[/opt/hali bin/hali]")
    }

    @Test func yamlScalarsAreQuotedWithJSONEscapes() {
        #expect(KubernetesJob.yamlQuoted("plain") == "\"plain\"")
        #expect(KubernetesJob.yamlQuoted("a \"b\" \\ c\n\u{1}") == "\"a \\\"b\\\" \\\\ c\\n\\u0001\"")
    }
}
