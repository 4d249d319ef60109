import ArgumentParser
import Foundation
import HaliClient
import HaliCore
import HaliSlide
import HaliTransport
import HaliWire
import NIOSSL

@main
struct Hali: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hali",
        abstract: "HALI: human-in-the-loop cell labelling. Client of halid, and local slide tools.",
        version: "0.3.0",
        subcommands: [
            LabelCommand.self, Ping.self, Status.self, Slides.self, SlideInfoCommand.self, IngestCommand.self, BatchCommand.self, CellsCommand.self,
            PredictCommand.self, ExportCommand.self, ImportCommand.self, ReportCommand.self, HashToken.self,
            LabCommand.TrainBackbone.self, LabCommand.TrainDetector.self, LabCommand.Embed.self, LabCommand.Eval.self,
        ])
}

/// How to reach and authenticate with a daemon; shared by every client subcommand.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Daemon address, HOST:PORT or unix:PATH (default: $HALI_SERVER or 127.0.0.1:7070).")
    var server: String?

    @Option(name: .long, help: "Annotator token (default: $HALI_TOKEN, else the file given by --token-file).")
    var token: String?

    @Option(name: .long, help: "File holding the token (default: hali-data/token, the daemon's single-user token).")
    var tokenFile: String = "hali-data/token"

    @Flag(name: .long, help: "Speak TLS to the daemon, verifying its certificate with the system's roots (or --tls-ca).")
    var tls = false

    @Option(
        name: .long,
        help:
            "PEM certificate(s) to trust for the daemon's TLS: a lab CA, or the daemon's self-signed certificate (implies --tls; default: $HALI_TLS_CA)."
    )
    var tlsCA: String?

    /// The TLS context when --tls, --tls-ca or HALI_TLS_CA asks for one.
    func tlsContext() throws -> NIOSSLContext? {
        let ca = tlsCA ?? ProcessInfo.processInfo.environment["HALI_TLS_CA"].flatMap { $0.isEmpty ? nil : $0 }
        guard tls || ca != nil else { return nil }
        do { return try HaliTLS.clientContext(trusting: ca) } catch { throw ValidationError(error.description) }
    }

    func endpoint() throws -> Endpoint {
        let text = server ?? ProcessInfo.processInfo.environment["HALI_SERVER"] ?? "127.0.0.1:7070"
        do { return try Endpoint(parsing: text) } catch { throw ValidationError(error.description) }
    }

    func resolvedToken() throws -> String {
        if let token { return token }
        if let token = ProcessInfo.processInfo.environment["HALI_TOKEN"], !token.isEmpty { return token }
        if let contents = try? String(contentsOfFile: tokenFile, encoding: .utf8) {
            let token = contents.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        throw ValidationError("no token: pass --token, set HALI_TOKEN, or point --token-file at the daemon's token file")
    }

    func connect<R>(_ body: (HaliConnection) async throws -> R) async throws -> R {
        let hello = Hello(clientName: "hali-cli", clientVersion: HaliCLIVersion.string, token: try resolvedToken())
        do {
            return try await HaliConnection.withConnection(to: try endpoint(), hello: hello, tls: try tlsContext(), body)
        } catch let error as ClientError {
            FileHandle.standardError.write(Data("hali: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

enum HaliCLIVersion { static let string = "0.3.0" }

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure round-trip time to the daemon (Ping/Pong over one connection).")

    @OptionGroup var connection: ConnectionOptions

    @Option(name: [.customShort("n"), .long], help: "Number of pings.")
    var count: Int = 1000

    @Option(name: .long, help: "Pings sent first and not counted.")
    var warmup: Int = 20

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    func run() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        try await connection.connect { daemon in
            let handshake = clock.now - start
            print(
                "connected to \(daemon.welcome.serverName) \(daemon.welcome.serverVersion) as \(daemon.welcome.annotator); handshake \(format(handshake))"
            )
            for _ in 0..<warmup { _ = try await daemon.ping() }
            var samples: [Duration] = []
            samples.reserveCapacity(count)
            for _ in 0..<count { samples.append(try await daemon.ping()) }
            samples.sort()
            func at(_ p: Double) -> String { format(percentile(samples, p, alreadySorted: true)!) }
            print("\(count) pings: median \(at(0.5)), p95 \(at(0.95)), p99 \(at(0.99)), min \(at(0)), max \(at(1))")
        }
    }

    private func format(_ d: Duration) -> String {
        let micros = d.seconds * 1e6
        return micros < 1000 ? String(format: "%.0f µs", micros) : String(format: "%.2f ms", micros / 1000)
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's version, uptime, connections and counters.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await connection.connect { daemon in
            let w = daemon.welcome
            let s = try await daemon.status()
            print(
                """
                server        \(w.serverName) \(s.serverVersion) (protocol \(s.protocolVersion))
                annotator     \(w.annotator)
                capabilities  \(w.capabilities.joined(separator: ", "))
                listening     \(s.listen)
                uptime        \(String(format: "%.1f s", s.uptimeSeconds))
                connections   \(s.connections)
                sessions      \(s.sessions)
                slides        \(s.slides)
                frames        \(s.framesReceived) received, \(s.framesRejected) rejected
                max frame     \(s.maxFrameBytes) bytes
                """)
            let served = try await daemon.slides()
            if !served.isEmpty { print("served        " + served.map(\.id).joined(separator: ", ")) }
            if !s.slidesPending.isEmpty {
                print("pending       \(s.slidesPending.count):")
                for line in s.slidesPending { print("  " + line) }
            }
            if !s.slidesNotServed.isEmpty {
                print("not served    \(s.slidesNotServed.count):")
                for failure in s.slidesNotServed { print("  " + failure) }
            }
        }
    }
}

struct Slides: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the slides the daemon serves.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await connection.connect { daemon in
            let slides = try await daemon.slides()
            if slides.isEmpty { print("(the daemon serves no slides; start it with --slide PATH)") }
            for s in slides {
                let mpp = s.mppX > 0 ? String(format: "%.4f µm/px", s.mppX) : "mpp unknown"
                print("\(s.id)\t\(s.width)×\(s.height)\t\(s.levelCount) levels\t\(mpp)\t\(s.vendor)\t\(s.name)")
            }
        }
    }
}

struct SlideInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slide-info", abstract: "Describe a whole-slide image through OpenSlide (no daemon needed).")

    @Argument(help: "Path to the slide.")
    var path: String

    func run() throws {
        do {
            let slide = try Slide(path: path)
            print("file      \(path)")
            print("vendor    \(slide.vendor) (OpenSlide \(Slide.libraryVersion))")
            if let mpp = slide.micronsPerPixel {
                print(String(format: "mpp       %.4f × %.4f µm/px", mpp.x, mpp.y))
            } else {
                print("mpp       not recorded in the slide (pass --mpp where a command needs it)")
            }
            for level in 0..<slide.levelCount {
                let (w, h) = slide.levelDimensions[level]
                print(String(format: "level %-3d %lld × %lld  (downsample %.3f)", level, w, h, slide.levelDownsamples[level]))
            }
        } catch {
            FileHandle.standardError.write(Data("hali: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct HashToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-token", abstract: "Print the SHA-256 digest of a token, for halid --annotators-file.")

    @Argument(help: "The token (a random one is made when omitted).")
    var token: String?

    func run() {
        let value = token ?? (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        if token == nil { print("token   \(value)") }
        print(token == nil ? "sha256  \(SHA256.hexDigest(value))" : SHA256.hexDigest(value))
    }
}
