import Foundation
import HaliCore
import HaliIndex
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
            for name in ["b.svs", "a.NDPI", "notes.txt", "c.tif"] {
                #expect(FileManager.default.createFile(atPath: "\(slides)/\(name)", contents: Data()))
            }
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

/// The index written in parts: what a streamed ingest writes equals what the whole table gives, bit for bit.
struct IndexStreamTests {
    static func rows(_ ys: [Double], className: String? = nil) -> [CellTable.Row] {
        ys.enumerated().map { i, y in
            var row = CellTable.Row(centroidX: Double(i), centroidY: y, minX: 0, minY: y - 1, maxX: 2, maxY: y + 1)
            row.areaMicrons2 = 10 + y
            row.stainStatistics = [1, 2, 3, 4, 5, 6, 7, 8]
            row.contour = Array(repeating: y, count: 2 * (3 + i))
            row.className = className
            row.embedding = [Float(y), -Float(y), 0.5]
            return row
        }
    }

    @Test func partsWriteTheSameIndexAsTheWholeTable() throws {
        try BatchTests.withFolder { folder in
            let stains = ["hematoxylin", "dab"]
            let first = Self.rows([1, 2, 3], className: "tumour"), second = Self.rows([4, 5], className: "stroma"), third = Self.rows([6])
            let whole = CellTable(rows: first + second + third, stainNames: stains, embeddingSource: "w.safetensors")
            let identity = IndexManifest.SlideIdentity(
                path: "/slides/s.svs", sizeBytes: 1, modified: 0, fingerprint: "f", vendor: "test", width: 100, height: 100, micronsPerPixel: 0.5,
                micronsPerPixelSource: "test")
            let manifest = IndexManifest(
                slide: identity, source: "test", settings: [:], cellCount: whole.count, tissueAreaMicrons2: 0, tiles: 0, seconds: 0, created: "")
            try IndexFile.write(whole, manifest: manifest, to: folder + "/whole.hidx")
            let writer = try IndexStreamWriter(path: folder + "/parts.hidx", stainNames: stains, embeddingSource: "w.safetensors")
            for part in [first, [], second, third] {
                try writer.append(CellTable(rows: part, stainNames: stains, embeddingSource: "w.safetensors"))
            }
            try writer.finish(manifest: manifest)
            #expect(try IndexFile.cellsDigest(path: folder + "/parts.hidx") == IndexFile.cellsDigest(path: folder + "/whole.hidx"))
            let (_, read) = try IndexFile.read(path: folder + "/parts.hidx")
            #expect(read == whole)
            #expect(Array(read.contour(ofRow: 4)) == Array(repeating: 5, count: 2 * 4))  // contour offsets carried across parts
            #expect(read.classNames == ["tumour", "stroma"] && read.classIndex == [0, 0, 0, 1, 1, -1])
            // Nothing is left beside the index.
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["parts.hidx", "whole.hidx"])
            let mismatched = try IndexStreamWriter(path: folder + "/bad.hidx", stainNames: stains, embeddingSource: "")
            try mismatched.append(CellTable(rows: first, stainNames: stains))
            var flat = second
            for i in flat.indices { flat[i].embedding = [] }
            #expect(throws: FileError.self) { try mismatched.append(CellTable(rows: flat, stainNames: stains)) }
        }
    }

    @Test func aStreamedIngestIndexHoldsTheCellsOfAnIngestInMemory() async throws {
        try await BatchTests.withFolderAsync { folder in
            var options = IngestOptions()
            options.region = (x: 900, y: 1200, width: 768, height: 768)
            options.tileSize = 256
            options.threads = 2
            let inMemory = try await SlideIngest.run(slidePath: SharedData.cmu1SmallRegion, options: options).table
            guard
                case .built(let path, _) = try await IndexBuilder.build(
                    slidePath: SharedData.cmu1SmallRegion, options: options, outputDirectory: folder)
            else {
                Issue.record("not built")
                return
            }
            #expect(inMemory.count > 50)
            #expect(try IndexFile.read(path: path).table == inMemory)
        }
    }
}

/// A slide ingested in shards (shares of its tile rows) and merged holds the cells of one ingest, bit for bit.
struct ShardTests {
    @Test func shardsMergeIntoTheCellsOfOneIngest() async throws {
        try await BatchTests.withFolderAsync { folder in
            var options = IngestOptions()
            options.region = (x: 600, y: 900, width: 1024, height: 1300)
            options.tileSize = 256
            options.threads = 2
            let slide = SharedData.cmu1SmallRegion
            _ = try await IndexBuilder.build(slidePath: slide, options: options, outputDirectory: folder + "/whole")
            for index in [2, 0, 1] {  // any order: the merge puts them in place
                let (path, built) = try await IndexBuilder.buildShard(
                    slidePath: slide, options: options, index: index, count: 3, outputDirectory: folder + "/sharded")
                #expect(built && FileManager.default.fileExists(atPath: path))
            }
            #expect(throws: FileError.self) {
                try IndexBuilder.merge(slidePath: slide, options: options, count: 4, outputDirectory: folder + "/sharded")
            }
            guard
                case .built(let merged, let summary) = try IndexBuilder.merge(
                    slidePath: slide, options: options, count: 3, outputDirectory: folder + "/sharded")
            else {
                Issue.record("not merged")
                return
            }
            let whole = IndexBuilder.indexPath(slidePath: slide, outputDirectory: folder + "/whole")
            #expect(summary.manifest.cellCount == (try IndexFile.readManifest(path: whole)).cellCount)
            #expect(try IndexFile.cellsDigest(path: merged) == IndexFile.cellsDigest(path: whole))
            // The shards are gone, and the merged index is current: a second merge or shard does nothing.
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/sharded/shards").isEmpty)
            guard case .upToDate = try IndexBuilder.merge(slidePath: slide, options: options, count: 3, outputDirectory: folder + "/sharded") else {
                Issue.record("merged twice")
                return
            }
            let again = try await IndexBuilder.buildShard(
                slidePath: slide, options: options, index: 0, count: 3, outputDirectory: folder + "/sharded")
            #expect(!again.built)
        }
    }
}
