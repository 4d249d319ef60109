import HaliCore
import HaliTransport
import HaliWire
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Counters shown by `GetStatus` (and `hali status`).
struct DaemonCounters {
    var connections = 0
    var framesReceived: UInt64 = 0
    var framesRejected: UInt64 = 0
}

/// The HALI daemon: accepts connections on every configured endpoint and serves protocol v1 on each.
///
/// Concurrency: NIO's event loops only frame and (de)serialise (`HaliPipeline`). Each connection is served by its
/// own task, one request at a time in arrival order; blocking work (OpenSlide) goes to NIO's thread pool. A slow
/// or misbehaving connection therefore delays only itself: its task is the only one waiting on it, and its
/// outbound writes are flow-controlled by the channel's watermarks.
///
/// Lifecycle: `run()` binds and serves until `shutdown()`; shutdown stops accepting, half-closes every connection's
/// input so each finishes the request it is handling, then closes whatever is left after the grace period.
public final class HaliDaemon: Sendable {
    public let configuration: ServerConfiguration
    private let logger: Logger
    private let catalog: SlideCatalog
    private let counters = Mutex(DaemonCounters())
    private let startedAt = ContinuousClock.now
    private let state = Mutex(LifecycleState())

    private struct LifecycleState {
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        var boundAddresses: [String] = []
        var shuttingDown = false
        var readyWaiters: [CheckedContinuation<[String], Never>] = []
        var ready = false
    }

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.catalog = SlideCatalog(logger: logger)
    }

    /// The addresses actually bound (with the real port when 0 was asked for), once listening.
    public func waitUntilListening() async -> [String] {
        await withCheckedContinuation { continuation in
            let result: [String]? = state.withLock { state in
                if state.ready { return state.boundAddresses }
                state.readyWaiters.append(continuation)
                return nil
            }
            if let result { continuation.resume(returning: result) }
        }
    }

    /// Binds every endpoint and serves until `shutdown()` is called. Throws if an endpoint cannot be bound.
    public func run() async throws {
        await catalog.load(paths: configuration.slidePaths)

        typealias Listener = NIOAsyncChannel<NIOAsyncChannel<InboundFrame, Envelope>, Never>
        var listeners: [Listener] = []
        let maxFrameBytes = configuration.maxFrameBytes
        do {
            for endpoint in configuration.listen {
                let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.backlog, value: 256)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                let listener: Listener
                switch endpoint {
                case .tcp(let host, let port):
                    listener = try await bootstrap.bind(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture { try HaliPipeline.asyncChannel(channel, maxFrameBytes: maxFrameBytes) }
                    }
                case .unix(let path):
                    listener = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                        channel.eventLoop.makeCompletedFuture { try HaliPipeline.asyncChannel(channel, maxFrameBytes: maxFrameBytes) }
                    }
                }
                listeners.append(listener)
            }
        } catch {
            for listener in listeners { try? await listener.channel.close() }
            throw error
        }

        let bound = zip(configuration.listen, listeners).map { endpoint, listener -> String in
            if case .tcp(let host, _) = endpoint, let port = listener.channel.localAddress?.port {
                return Endpoint.tcp(host: host, port: port).description
            }
            return endpoint.description
        }
        let (waiters, stopAtOnce) = state.withLock { state in
            state.listeners = listeners.map(\.channel)
            state.boundAddresses = bound
            state.ready = true
            defer { state.readyWaiters = [] }
            return (state.readyWaiters, state.shuttingDown)
        }
        for waiter in waiters { waiter.resume(returning: bound) }
        if stopAtOnce { for listener in listeners { listener.channel.close(promise: nil) } }
        let slideCount = await catalog.count
        logger.info(
            "listening",
            metadata: ["on": "\(bound.joined(separator: ", "))", "slides": "\(slideCount)", "max_frame_bytes": "\(maxFrameBytes)"])

        await withDiscardingTaskGroup { group in
            for listener in listeners {
                group.addTask {
                    await withDiscardingTaskGroup { connections in
                        try? await listener.executeThenClose { inbound in
                            for try await connection in inbound {
                                connections.addTask { await self.serve(connection) }
                            }
                        }
                    }
                }
            }
        }
        logger.info("stopped")
    }

    /// Starts a graceful shutdown; `run()` returns once every connection has ended. Safe to call more than once.
    public func shutdown() {
        let (listeners, connections, first) = state.withLock { state in
            let first = !state.shuttingDown
            state.shuttingDown = true
            return (state.listeners, Array(state.connections.values), first)
        }
        guard first else { return }
        logger.info("shutting down", metadata: ["connections": "\(connections.count)"])
        for listener in listeners { listener.close(promise: nil) }
        // Half-close input: each connection finishes the request in hand, sees end of input, and closes itself.
        for connection in connections { connection.close(mode: .input, promise: nil) }
        let grace = configuration.shutdownGracePeriod
        Task {
            try? await Task.sleep(for: grace)
            let stragglers = self.state.withLock { Array($0.connections.values) }
            for connection in stragglers { connection.close(promise: nil) }
        }
    }

    // MARK: - One connection

    /// What the connection knows about its peer.
    private struct ConnectionContext {
        var annotator: Annotator?
        var malformedInARow = 0
    }

    /// What handling one message asks the connection to do.
    private struct Outcome {
        var replies: [Envelope]
        var close = false
    }

    private func serve(_ connection: NIOAsyncChannel<InboundFrame, Envelope>) async {
        let channel = connection.channel
        let peer = channel.remoteAddress?.description ?? "unix"
        let admitted = state.withLock { state -> Bool in
            guard !state.shuttingDown, state.connections.count < configuration.maxConnections else { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
        counters.withLock { $0.connections += admitted ? 1 : 0 }
        defer {
            if admitted {
                state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
                counters.withLock { $0.connections -= 1 }
            }
        }
        var log = logger
        log[metadataKey: "peer"] = "\(peer)"

        do {
            try await connection.executeThenClose { inbound, outbound in
                guard admitted else {
                    try await outbound.write(
                        Envelope(.error(ErrorReply(code: .resourceExhausted, message: "daemon is at its connection limit or shutting down", fatal: true))))
                    return
                }
                var context = ConnectionContext()
                do {
                    for try await frame in inbound {
                        counters.withLock { $0.framesReceived += 1 }
                        let outcome = await self.handle(frame, context: &context, log: log)
                        try await outbound.write(contentsOf: outcome.replies)
                        if outcome.close { return }
                    }
                } catch let error as FrameError {
                    counters.withLock { $0.framesRejected += 1 }
                    log.warning("closing connection: bad framing", metadata: ["error": "\(error)"])
                    let code: ErrorCode = if case .tooLarge = error.kind { .frameTooLarge } else { .malformedFrame }
                    try? await outbound.write(Envelope(.error(ErrorReply(code: code, message: error.description, fatal: true))))
                }
            }
        } catch {
            log.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    private func handle(_ frame: InboundFrame, context: inout ConnectionContext, log: Logger) async -> Outcome {
        let envelope: Envelope
        switch frame {
        case .undecodable(let error):
            counters.withLock { $0.framesRejected += 1 }
            context.malformedInARow += 1
            let fatal = context.malformedInARow >= configuration.maxConsecutiveMalformedFrames
            let code: ErrorCode = error.kind == .unknownBody ? .unsupportedMessage : .malformedFrame
            if fatal { log.warning("closing connection after repeated undecodable frames", metadata: ["count": "\(context.malformedInARow)"]) }
            return Outcome(replies: [Envelope(.error(ErrorReply(code: code, message: error.description, fatal: fatal)))], close: fatal)
        case .envelope(let decoded):
            envelope = decoded
            context.malformedInARow = 0
        }
        let id = envelope.requestID
        func reply(_ body: Body) -> Outcome { Outcome(replies: [Envelope(requestID: id, body)]) }
        func fail(_ code: ErrorCode, _ message: String, fatal: Bool = false, seq: UInt64 = 0) -> Outcome {
            Outcome(replies: [Envelope(requestID: id, .error(ErrorReply(code: code, message: message, clientSeq: seq, fatal: fatal)))], close: fatal)
        }

        guard let annotator = context.annotator else {
            guard case .hello(let hello) = envelope.body else {
                return fail(.unauthenticated, "the first message on a connection must be Hello (got \(envelope.body.name))", fatal: true)
            }
            guard hello.protocolVersion == protocolVersion else {
                return fail(
                    .unsupportedVersion, "this daemon speaks protocol version \(protocolVersion), the client asked for \(hello.protocolVersion)",
                    fatal: true)
            }
            guard let annotator = configuration.annotators.authenticate(token: hello.token) else {
                log.warning("refused: unknown token", metadata: ["client": "\(hello.clientName)"])
                return fail(.unauthenticated, hello.token.isEmpty ? "no token given" : "unknown token", fatal: true)
            }
            context.annotator = annotator
            log.info("hello", metadata: ["annotator": "\(annotator.name)", "client": "\(hello.clientName) \(hello.clientVersion)"])
            return reply(
                .welcome(
                    Welcome(
                        serverVersion: HaliVersion.string, annotator: annotator.name, capabilities: ["ping", "status", "slides"],
                        maxFrameBytes: UInt32(configuration.maxFrameBytes), serverName: configuration.serverName)))
        }

        switch envelope.body {
        case .hello:
            return fail(.invalidArgument, "already authenticated as \(annotator.name); Hello is sent once per connection")
        case .ping(let ping):
            return reply(.pong(Pong(nonce: ping.nonce, clientTimeNs: ping.clientTimeNs, serverTimeNs: Self.wallClockNanoseconds())))
        case .getStatus:
            return reply(.serverStatus(await status()))
        case .listSlides:
            return reply(.slideList(await catalog.list()))
        case .bye:
            return Outcome(replies: [], close: true)
        case .openSession, .getPatch, .labelEvent, .undo, .nextPatch:
            // Labelling sessions are a later capability; a client checks Welcome.capabilities before using them.
            return fail(.unsupportedMessage, "\(envelope.body.name) is not served by halid \(HaliVersion.string) (capabilities: ping, status, slides)")
        case .welcome, .slideList, .sessionState, .patch, .labelAck, .predictions, .nextPatchPick, .error, .pong, .serverStatus:
            return fail(.unsupportedMessage, "\(envelope.body.name) is a daemon-to-client message")
        }
    }

    private func status() async -> ServerStatus {
        let counters = self.counters.withLock { $0 }
        let uptime = ContinuousClock.now - startedAt
        let listen = state.withLock { $0.boundAddresses.joined(separator: ",") }
        return ServerStatus(
            serverVersion: HaliVersion.string,
            uptimeSeconds: Double(uptime.components.seconds) + Double(uptime.components.attoseconds) * 1e-18,
            connections: UInt32(counters.connections), sessions: 0, slides: UInt32(await catalog.count),
            framesReceived: counters.framesReceived, framesRejected: counters.framesRejected,
            maxFrameBytes: UInt32(configuration.maxFrameBytes), listen: listen)
    }

    static func wallClockNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
