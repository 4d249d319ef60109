import ArgumentParser
import Dispatch
import Foundation
import HaliCore
import HaliIndex
import HaliServer
import HaliTransport
import Logging
import NIOCore

@main
struct Halid: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "halid",
        abstract: "The HALI daemon: serves slides, labelling sessions and model predictions over protocol v1.",
        discussion: """
            Annotators authenticate with a token. Give them with --annotator NAME:TOKEN (repeatable). With none, a \
            single annotator "local" is created whose token is kept in DATA_DIR/token (created on first start, \
            mode 0600); `hali` finds it there when run from the same directory.
            """,
        version: HaliVersion.string)

    @Option(name: .long, help: "JSON configuration file (Deploy/halid.example.json); flags add to or override it.")
    var config: String?

    @Option(name: .long, help: "Address to listen on: HOST:PORT or unix:PATH (repeatable; default 127.0.0.1:7070).")
    var listen: [String] = []

    @Option(name: .long, help: "Directory for the daemon's state (token, label store, slide indexes; default hali-data).")
    var dataDir: String?

    @Option(name: .long, help: "An annotator and their token, NAME:TOKEN (repeatable).")
    var annotator: [String] = []

    @Option(
        name: .long,
        help:
            "File of annotators, one per line: NAME SHA256_OF_TOKEN [TASK,TASK…|*] [SLIDE,SLIDE…|*] (# comments). `hali hash-token` prints the digest."
    )
    var annotatorsFile: String?

    @Option(name: .long, help: "A whole-slide image to serve (repeatable).")
    var slide: [String] = []

    @Option(name: .long, help: "Microns per pixel for slides that do not record it.")
    var mpp: Double?

    @Option(name: .long, help: "Backbone weights for slides ingested at start-up (cells get CNN embeddings).")
    var weights: String?

    @Option(name: .long, help: "Learned nucleus detector weights (hali train-detector) for slides ingested at start-up.")
    var detectorWeights: String?

    @Flag(name: .long, help: "Do not ingest slides without an index at start-up (refuse them instead).")
    var noIngest = false

    @Option(
        name: .long,
        help:
            "Look in the data directory's index/ folder every this many seconds for new indexes (e.g. from `hali batch`) and serve their slides (default: only on SIGHUP)."
    )
    var watchIndex: Double?

    @Option(name: .long, help: "Largest frame body accepted, in bytes (default 16 MiB).")
    var maxFrameBytes: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevel: String?

    @Option(name: .long, help: "PEM certificate chain: TCP listeners speak TLS (with --tls-key). Unix sockets stay plain.")
    var tlsCert: String?

    @Option(name: .long, help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Flag(name: .long, help: "Refuse to start when a slide cannot be served (default: leave it out, log it, list it in `hali status`).")
    var strict = false

    @Option(name: .long, help: "Authenticated connections served at once (default 1024).")
    var maxConnections: Int?

    @Option(name: .long, help: "Seconds a new connection has to send Hello (default 10).")
    var helloTimeout: Double?

    @Option(name: .long, help: "Seconds without a message before a connection is closed (default 900; clients keep it open with Ping).")
    var idleTimeout: Double?

    @Option(name: .long, help: "Seconds a frame may take to arrive once begun (default 30).")
    var frameTimeout: Double?

    func run() async throws {
        let file: DaemonConfigFile
        do {
            file = try config.map { try DaemonConfigFile.load(path: $0) } ?? DaemonConfigFile()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        let logLevel = self.logLevel ?? file.log_level ?? "info"
        let maxFrameBytes = self.maxFrameBytes ?? file.max_frame_bytes ?? (16 << 20)
        let dataDir = self.dataDir ?? file.data_dir ?? "hali-data"
        let listen = self.listen.isEmpty ? (file.listen ?? ["127.0.0.1:7070"]) : self.listen
        let slide = (file.slides ?? []) + self.slide
        let mpp = self.mpp ?? file.mpp
        guard (1024...(1 << 30)).contains(maxFrameBytes) else {
            throw ValidationError("max frame bytes must be between 1024 and 1073741824")
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "halid")

        let endpoints: [Endpoint]
        let registry: AnnotatorRegistry
        let tasks: [TaskDefinition]
        do {
            endpoints = try listen.map { try Endpoint(parsing: $0) }
            registry = try AnnotatorRegistry(
                try file.annotatorList() + annotators(dataDir: dataDir, configured: !file.annotatorList().isEmpty, logger: logger))
            tasks = try file.taskDefinitions() ?? TaskDefinition.builtIn
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        var configuration = ServerConfiguration(listen: endpoints, annotators: registry, tasks: tasks, slidePaths: slide)
        configuration.maxFrameBytes = maxFrameBytes
        configuration.dataDirectory = dataDir
        configuration.micronsPerPixel = mpp
        configuration.ingestMissing = !noIngest
        configuration.weightsPath = weights ?? file.weights
        configuration.detectorWeightsPath = detectorWeights ?? file.detector_weights
        configuration.strict = strict || (file.strict ?? false)
        if let watchIndex {
            guard watchIndex.isFinite, watchIndex >= 0.1, watchIndex <= 86_400 else {
                throw ValidationError("--watch-index must be between 0.1 and 86400 seconds (got \(watchIndex))")
            }
            configuration.indexRescanInterval = .milliseconds(Int64(watchIndex * 1000))
        }
        switch (tlsCert ?? file.tls_cert, tlsKey ?? file.tls_key) {
        case (let cert?, let key?): configuration.tls = (cert, key)
        case (nil, nil): break
        default: throw ValidationError("TLS needs both --tls-cert and --tls-key (or tls_cert and tls_key)")
        }
        func seconds(_ value: Double?, _ name: String, default fallback: TimeAmount) throws -> TimeAmount {
            guard let value else { return fallback }
            guard value.isFinite, value > 0, value <= 86_400 else {
                throw ValidationError("\(name) must be between 0 and 86400 seconds (got \(value))")
            }
            return .nanoseconds(Int64(value * 1e9))
        }
        func count(_ value: Int?, _ name: String, default fallback: Int) throws -> Int {
            guard let value else { return fallback }
            guard (1...1_000_000).contains(value) else { throw ValidationError("\(name) must be between 1 and 1000000 (got \(value))") }
            return value
        }
        let defaults = configuration.deadlines
        configuration.deadlines = ConnectionDeadlines.Limits(
            hello: try seconds(helloTimeout ?? file.hello_timeout_s, "hello timeout", default: defaults.hello),
            idle: try seconds(idleTimeout ?? file.idle_timeout_s, "idle timeout", default: defaults.idle),
            frame: try seconds(frameTimeout ?? file.frame_timeout_s, "frame timeout", default: defaults.frame))
        configuration.maxConnections = try count(maxConnections ?? file.max_connections, "max connections", default: configuration.maxConnections)
        configuration.maxUnauthenticated = try count(file.max_unauthenticated, "max_unauthenticated", default: configuration.maxUnauthenticated)
        configuration.maxUnauthenticatedPerPeer = try count(
            file.max_unauthenticated_per_peer, "max_unauthenticated_per_peer", default: configuration.maxUnauthenticatedPerPeer)
        let daemon: HaliDaemon
        do {
            daemon = try HaliDaemon(configuration: configuration, logger: logger)
        } catch let error as FileError {
            throw ValidationError(error.description)
        } catch let error as TLSSetupError {
            throw ValidationError(error.description)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }

        // SIGTERM/SIGINT start a graceful shutdown; a second signal is handled the same way (idempotent).
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let signalSources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { daemon.shutdown() }
            source.resume()
            return source
        }
        // SIGHUP: serve the slides whose index appeared in the index folder since the last look.
        signal(SIGHUP, SIG_IGN)
        let rescanSource = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        rescanSource.setEventHandler { Task { await daemon.rescanIndexes() } }
        rescanSource.resume()
        defer { (signalSources + [rescanSource]).forEach { $0.cancel() } }
        do {
            try await daemon.run()
        } catch let error as StartupError {
            logger.critical("not starting", metadata: ["reason": "\(error.message)"])
            throw ExitCode(1)
        }
    }

    private func annotators(dataDir: String, configured: Bool, logger: Logger) throws -> [Annotator] {
        var fromFile: [Annotator] = []
        if let annotatorsFile {
            guard let text = try? String(contentsOfFile: annotatorsFile, encoding: .utf8) else {
                throw ConfigurationError("cannot read --annotators-file \(annotatorsFile)")
            }
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if fields.isEmpty { continue }
                guard fields.count >= 2 else { throw ConfigurationError("\(annotatorsFile):\(number + 1): expected NAME SHA256 [TASKS] [SLIDES]") }
                func list(_ i: Int) -> [String] {
                    i < fields.count && fields[i] != "*" ? fields[i].split(separator: ",").map(String.init) : []
                }
                fromFile.append(Annotator(name: fields[0], tokenDigest: fields[1], tasks: list(2), slides: list(3)))
            }
        }
        if !annotator.isEmpty || !fromFile.isEmpty || configured {
            return try fromFile
                + annotator.map { entry in
                    guard let colon = entry.firstIndex(of: ":"), colon != entry.startIndex, entry.index(after: colon) != entry.endIndex else {
                        throw ConfigurationError("--annotator \"\(entry)\": expected NAME:TOKEN")
                    }
                    return Annotator(name: String(entry[..<colon]), token: String(entry[entry.index(after: colon)...]))
                }
        }
        let token = try LocalToken.loadOrCreate(dataDirectory: dataDir)
        logger.info("single-user mode: annotator \"local\"", metadata: ["token_file": "\(LocalToken.path(dataDirectory: dataDir))"])
        return [Annotator(name: "local", token: token)]
    }
}

/// The single-user token kept in DATA_DIR/token.
enum LocalToken {
    static func path(dataDirectory: String) -> String { (dataDirectory as NSString).appendingPathComponent("token") }

    static func loadOrCreate(dataDirectory: String) throws -> String {
        let file = path(dataDirectory: dataDirectory)
        if let existing = try? String(contentsOfFile: file, encoding: .utf8) {
            let token = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        do {
            try Directories.ensure(dataDirectory, purpose: "the data directory")
        } catch {
            throw ConfigurationError(error.description)
        }
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        guard FileManager.default.createFile(atPath: file, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("cannot write the token file \(file)")
        }
        return token
    }
}
