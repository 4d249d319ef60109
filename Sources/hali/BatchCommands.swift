import ArgumentParser
import Foundation
import HaliCore
import HaliIndex
import HaliIngest

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Ingest many slides on a cluster: a Slurm job array or a Kubernetes Indexed Job, one task per slide.",
        discussion: """
            `hali batch submit` looks at each slide's index in --index-dir and submits only the slides without a \
            current one; each task runs `hali batch task`, which writes the index by rename or records why the slide \
            failed (<index dir>/<slide>.failed.txt). A rerun submits only what is missing. `hali batch status` lists \
            where every slide stands. Guide: docs/admin-guide.md, "Batch ingest on a cluster".
            """,
        subcommands: [BatchSubmit.self, BatchTask.self, BatchMerge.self, BatchStatus.self])
}

/// The slides of a batch and where their indexes go.
struct BatchSlidesOptions: ParsableArguments {
    @Argument(help: "Slides, folders of slides, or manifests (.txt/.list: one path per line, # comments).")
    var inputs: [String] = []

    @Option(help: "The index folder, on storage every node sees.")
    var indexDir: String = "hali-data/index"

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("name at least one slide, folder or manifest") }
    }

    func slides() throws -> [String] {
        let slides = try BatchSlides.expand(inputs)
        guard !slides.isEmpty else { throw ValidationError("no slides in \(inputs.joined(separator: ", "))") }
        return slides
    }
}

enum BatchScheduler: String, ExpressibleByArgument, CaseIterable {
    case slurm
    case kubernetes
}

struct BatchSubmit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit the slides whose index is missing or stale (Slurm: sbatch; Kubernetes: a manifest to apply).")

    @OptionGroup var batch: BatchSlidesOptions
    @OptionGroup var ingest: IngestSettingsOptions

    @Option(help: "slurm (sbatch a job array) or kubernetes (write an Indexed Job manifest).")
    var scheduler: BatchScheduler = .slurm

    @Flag(help: "Print the script or manifest instead of submitting or writing it.")
    var dryRun = false

    @Flag(help: "Slurm: wait until the array has finished, then print the status of every slide.")
    var wait = false

    @Flag(help: "Submit slides whose last task failed, although their file is unchanged.")
    var retryFailed = false

    @Option(help: "Slurm: split each slide larger than --shard-above-mb into this many tasks (shares of its tile rows), joined by a merge job.")
    var shards = 1

    @Option(help: "Slurm: with --shards, only slides larger than this many MB are split.")
    var shardAboveMb: Double = 0

    @Option(help: "The hali executable as the nodes see it (default: this one for Slurm, hali on the image's PATH for Kubernetes).")
    var hali: String?

    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: "Slurm wall time per task, e.g. 2:00:00.") var time: String?
    @Option(help: "Memory per task: Slurm's --mem (e.g. 4G), Kubernetes' quantity (e.g. 4Gi).") var mem: String?
    @Option(help: "CPUs per task (each task's ingest threads).") var cpusPerTask = 2
    @Option(help: "Slurm generic resources, e.g. gpu:1.") var gres: String?
    @Option(help: "At most this many tasks at once.") var maxParallel: Int?
    @Option(help: "Slurm: run hali inside this Apptainer image.") var apptainer: String?
    @Option(help: "Kubernetes: the container image (Deploy/Containerfile).") var image = "hali:latest"
    @Option(help: "Kubernetes: namespace.") var namespace: String?
    @Option(help: "Kubernetes: PersistentVolumeClaim holding the slides.") var slidesClaim = "hali-slides"
    @Option(help: "Kubernetes: where the slides' claim is mounted (default: the slides' common folder).") var slidesPath: String?
    @Option(help: "Kubernetes: PersistentVolumeClaim holding --index-dir.") var indexClaim = "hali-index"

    func validate() throws {
        guard cpusPerTask >= 1, (maxParallel ?? 1) >= 1 else { throw ValidationError("--cpus-per-task and --max-parallel must be ≥ 1") }
        guard (1...64).contains(shards), shardAboveMb >= 0, shardAboveMb.isFinite else {
            throw ValidationError("--shards must be 1 to 64 and --shard-above-mb a size of 0 or more")
        }
        guard shards == 1 || scheduler == .slurm else { throw ValidationError("--shards is for Slurm (not in the Kubernetes Job yet)") }
        guard !(wait && scheduler == .kubernetes) else { throw ValidationError("--wait is for Slurm (kubectl wait follows a Job)") }
        for (name, value) in [("--partition", partition), ("--time", time), ("--mem", mem), ("--gres", gres)] {
            if let value, value.isEmpty || value.contains(where: { $0.isWhitespace || $0.isNewline }) {
                throw ValidationError("\(name) must be one word")
            }
        }
    }

    func run() async throws {
        let slides = try batch.slides()
        let options = try ingest.ingestOptions()
        let indexDirectory = BatchSlides.absolutePath(batch.indexDir)
        if !dryRun {
            do { try Directories.ensure(indexDirectory, purpose: "--index-dir") } catch { throw ValidationError(error.description) }
        }
        let plan = BatchPlan(slides: slides, options: options, outputDirectory: indexDirectory)
        if let clash = plan.clashingStems().first { throw ValidationError("two slides are named \(clash): their indexes would collide") }
        let todo = plan.toRun(retryFailed: retryFailed)
        for slide in todo where slide.contains(where: \.isNewline) || slide.hasPrefix("#") || slide != slide.trimmingCharacters(in: .whitespaces) {
            throw ValidationError("cannot list \(slide.debugDescription) in a batch: rename it (no newlines, no leading #, no edge spaces)")
        }
        let skipped = slides.count - todo.count
        FileHandle.standardError.write(
            Data("hali batch: \(slides.count) slides, \(skipped) current or failed before, \(todo.count) to ingest\n".utf8))
        guard !todo.isEmpty else {
            print("nothing to submit: every slide's index is current (or its last task failed; --retry-failed runs those again)")
            return
        }
        let command = BatchTaskCommand(
            hali: hali ?? (scheduler == .kubernetes ? "hali" : Self.thisExecutable()), ingestArguments: ingest.taskArguments,
            indexDirectory: indexDirectory)
        let stamp = Self.timestamp()
        let batchFolder = (indexDirectory as NSString).appendingPathComponent("batch")
        switch scheduler {
        case .slurm:
            var settings = SlurmSettings()
            settings.partition = partition; settings.time = time; settings.memory = mem; settings.cpusPerTask = cpusPerTask
            settings.gres = gres; settings.maxParallel = maxParallel; settings.apptainerImage = apptainer
            let logs = (batchFolder as NSString).appendingPathComponent("logs")
            let split = shards > 1 ? todo.filter { Self.megabytes($0) > shardAboveMb } : []
            var tasks: [(slide: String, shard: String?)] = []
            for slide in todo {
                tasks += split.contains(slide) ? (0..<shards).map { (slide, "\($0)/\(shards)") } : [(slide, nil)]
            }
            let script = SlurmScript.render(
                slides: tasks.map(\.slide), shards: split.isEmpty ? nil : tasks.map(\.shard), command: command, settings: settings,
                logDirectory: logs, created: stamp)
            let mergeScript =
                split.isEmpty
                ? nil
                : SlurmScript.renderMerge(slides: split, shards: shards, command: command, settings: settings, logDirectory: logs, created: stamp)
            if dryRun {
                print(script, terminator: "")
                if let mergeScript { print("\n# then, with --dependency=afterany on that job:\n" + mergeScript, terminator: "") }
                return
            }
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let file = (batchFolder as NSString).appendingPathComponent("hali-ingest-\(stamp).sbatch")
            try script.write(toFile: file, atomically: true, encoding: .utf8)
            let jobID = String(
                try Self.output(of: ["sbatch", "--parsable", file]).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? "")
            print("submitted Slurm job \(jobID): \(tasks.count) task\(tasks.count == 1 ? "" : "s") (\(file))")
            var jobs = [jobID]
            if let mergeScript {
                let mergeFile = (batchFolder as NSString).appendingPathComponent("hali-merge-\(stamp).sbatch")
                try mergeScript.write(toFile: mergeFile, atomically: true, encoding: .utf8)
                let mergeID = String(
                    try Self.output(of: ["sbatch", "--parsable", "--dependency=afterany:\(jobID)", mergeFile])
                        .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? "")
                print(
                    "submitted Slurm job \(mergeID) after \(jobID): merges \(split.count) sharded slide\(split.count == 1 ? "" : "s") (\(mergeFile))")
                jobs.append(mergeID)
            }
            guard wait else { return }
            while !(try Self.output(of: ["squeue", "-h", "-j", jobs.joined(separator: ",")]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            {
                try await Task.sleep(for: .seconds(2))
            }
            let after = BatchPlan(slides: slides, options: options, outputDirectory: indexDirectory)
            print(BatchStatus.table(after))
            if after.slides.contains(where: { if case .current = $0.state { false } else { true } }) { throw ExitCode(2) }
        case .kubernetes:
            var settings = KubernetesSettings()
            settings.namespace = namespace; settings.image = image; settings.cpu = String(cpusPerTask)
            if let mem { settings.memory = mem }
            if let maxParallel { settings.parallelism = maxParallel }
            settings.slidesClaim = slidesClaim; settings.indexClaim = indexClaim
            settings.slidesPath = slidesPath ?? Self.commonFolder(todo)
            settings.name = "hali-ingest-\(stamp.lowercased().filter { $0.isLetter || $0.isNumber })"
            let manifest = KubernetesJob.render(slides: todo, command: command, settings: settings, created: stamp)
            if dryRun {
                print(manifest, terminator: "")
                return
            }
            try FileManager.default.createDirectory(atPath: batchFolder, withIntermediateDirectories: true)
            let file = (batchFolder as NSString).appendingPathComponent("hali-ingest-\(stamp).yaml")
            try manifest.write(toFile: file, atomically: true, encoding: .utf8)
            print("wrote \(file): apply it with `kubectl apply -f \(file)`")
        }
    }

    static func megabytes(_ path: String) -> Double {
        Double((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0) / 1e6
    }

    static func thisExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? BatchSlides.absolutePath(CommandLine.arguments[0])
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date())
    }

    static func commonFolder(_ paths: [String]) -> String {
        var common = (paths[0] as NSString).deletingLastPathComponent.split(separator: "/")
        for path in paths.dropFirst() {
            let parts = (path as NSString).deletingLastPathComponent.split(separator: "/")
            common = Array(zip(common, parts).prefix { $0 == $1 }.map(\.0))
        }
        return "/" + common.joined(separator: "/")
    }

    /// Runs a scheduler command and returns what it printed; its own error message when it fails.
    static func output(of arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { throw ValidationError("cannot run \(arguments[0]): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            FileHandle.standardError.write(Data("hali batch: \(arguments.joined(separator: " ")) failed: \(text)\n".utf8))
            throw ExitCode(1)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

struct BatchTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Ingest one slide of a batch (what each array task or pod runs): skip it if current, record why if it fails.",
        discussion: """
            Exit status: 0 when the index is current or was written, \(KubernetesJob.recordedFailureExitCode) when the \
            slide failed and the reason was recorded in <index dir>/<slide>.failed.txt, 1 when not even that worked.
            """)

    @Argument(help: "The slide (or give --list and --item).")
    var slide: String?

    @Option(help: "A list of slides (one per line), with --item: the slide on line ITEM + 1.")
    var list: String?

    @Option(help: "With --list: which slide, from 0 (a Slurm array task id, a Job's completion index).")
    var item: Int?

    @Option(help: "The index folder.")
    var indexDir: String = "hali-data/index"

    @Option(help: "Only shard I of N of the slide (I/N, from 0): its share of the tile rows, into <index dir>/shards/.")
    var shard: String?

    @OptionGroup var ingest: IngestSettingsOptions

    func validate() throws {
        guard (slide != nil) != (list != nil), (list != nil) == (item != nil) else {
            throw ValidationError("give a slide, or --list and --item")
        }
        if let item, item < 0 { throw ValidationError("--item must be 0 or more") }
        if let shard, Self.parseShard(shard) == nil { throw ValidationError("--shard wants I/N with 0 ≤ I < N ≤ 64, e.g. 0/2") }
    }

    static func parseShard(_ text: String) -> (index: Int, count: Int)? {
        let parts = text.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], (1...64).contains(n), (0..<n).contains(i) else { return nil }
        return (i, n)
    }

    func run() async throws {
        var path = slide ?? ""
        if let list, let item {
            let slides = try BatchSlides.expand([list])
            guard item < slides.count else { throw ValidationError("--item \(item): \(list) lists \(slides.count) slides") }
            path = slides[item]
        }
        path = BatchSlides.absolutePath(path)
        let indexDirectory = BatchSlides.absolutePath(indexDir)
        do {
            try Directories.ensure(indexDirectory, purpose: "--index-dir")
            let options = try ingest.ingestOptions()
            if let shard = shard.flatMap(Self.parseShard) {
                let (shardPath, built) = try await IndexBuilder.buildShard(
                    slidePath: path, options: options, index: shard.index, count: shard.count, outputDirectory: indexDirectory)
                print(built ? "\(shardPath): shard \(shard.index) of \(shard.count) written" : "\(shardPath): current (or the whole index is)")
                return
            }
            let outcome = try await IndexBuilder.build(slidePath: path, options: options, outputDirectory: indexDirectory)
            BatchFailure.clear(slidePath: path, outputDirectory: indexDirectory)
            switch outcome {
            case .upToDate(let index, let manifest): print("\(index) is current (\(manifest.cellCount) cells)")
            case .built(let index, let result):
                print(String(format: "%@: %d cells in %.1f s", index, result.manifest.cellCount, result.manifest.seconds))
            }
        } catch {
            throw BatchTask.recordFailure(error, of: path, in: indexDirectory, by: "task")
        }
    }
}

extension BatchTask {
    /// Says why `slidePath` failed, records it beside its index, and gives the exit to end with: the recorded-failure
    /// status, or 1 when not even the record could be written.
    static func recordFailure(_ error: any Error, of slidePath: String, in indexDirectory: String, by step: String) -> ExitCode {
        let reason = "\(error)"
        FileHandle.standardError.write(Data("hali batch \(step): \(reason.contains(slidePath) ? reason : "\(slidePath): \(reason)")\n".utf8))
        do {
            try BatchFailure.record(slidePath: slidePath, outputDirectory: indexDirectory, reason: step == "task" ? reason : "\(step): \(reason)")
        } catch {
            FileHandle.standardError.write(Data("hali batch \(step): could not record the failure: \(error)\n".utf8))
            return ExitCode(1)
        }
        return ExitCode(KubernetesJob.recordedFailureExitCode)
    }
}

struct BatchMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join a slide's shards (hali batch task --shard) into its index, as the merge job does; record why if one is missing.",
        discussion: "Exit status as for `hali batch task`.")

    @Argument(help: "The slide.")
    var slide: String

    @Option(help: "How many shards the slide was split into.")
    var shards: Int

    @Option(help: "The index folder.")
    var indexDir: String = "hali-data/index"

    @OptionGroup var ingest: IngestSettingsOptions

    func validate() throws {
        guard (1...64).contains(shards) else { throw ValidationError("--shards must be 1 to 64") }
    }

    func run() throws {
        let path = BatchSlides.absolutePath(slide)
        let indexDirectory = BatchSlides.absolutePath(indexDir)
        do {
            let outcome = try IndexBuilder.merge(slidePath: path, options: try ingest.ingestOptions(), count: shards, outputDirectory: indexDirectory)
            BatchFailure.clear(slidePath: path, outputDirectory: indexDirectory)
            switch outcome {
            case .upToDate(let index, let manifest): print("\(index) is current (\(manifest.cellCount) cells)")
            case .built(let index, let result): print("\(index): \(result.manifest.cellCount) cells from \(shards) shards")
            }
        } catch {
            throw BatchTask.recordFailure(error, of: path, in: indexDirectory, by: "merge")
        }
    }
}

struct BatchStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Where every slide of a batch stands: current (with its cells), missing, stale or failed (why).")

    @OptionGroup var batch: BatchSlidesOptions
    @OptionGroup var ingest: IngestSettingsOptions

    func run() throws {
        let plan = BatchPlan(
            slides: try batch.slides(), options: try ingest.ingestOptions(), outputDirectory: BatchSlides.absolutePath(batch.indexDir))
        print(Self.table(plan))
    }

    static func table(_ plan: BatchPlan) -> String {
        var lines: [String] = []
        var counts: [String: Int] = [:]
        for (path, state) in plan.slides {
            let (word, detail): (String, String) =
                switch state {
                case .current(let cells): ("current", "\(cells) cells")
                case .missing: ("missing", "")
                case .stale(let why): ("stale", why)
                case .failed(let why): ("failed", why)
                case .unreadable(let why): ("unreadable", why)
                }
            counts[word, default: 0] += 1
            lines.append("\(word.padding(toLength: 10, withPad: " ", startingAt: 0)) \(path)\(detail.isEmpty ? "" : "  (\(detail))")")
        }
        let summary = ["current", "missing", "stale", "failed", "unreadable"].compactMap { k in counts[k].map { "\($0) \(k)" } }
        return (lines + ["\(plan.slides.count) slides: " + summary.joined(separator: ", ")]).joined(separator: "\n")
    }
}
