import Foundation
import HaliCore
import HaliEngine
import HaliIndex
import HaliInterop
import HaliMath
import HaliSlide
import HaliStore
import HaliTransport
import HaliWire
public import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Serialises everything written to one connection: replies from its own task and messages a session pushes after
/// retraining.
final class ConnectionOutbox: SessionSubscriber, @unchecked Sendable {
    private let writer: NIOAsyncChannelOutboundWriter<Envelope>
    private let lock = AsyncLock()

    init(_ writer: NIOAsyncChannelOutboundWriter<Envelope>) { self.writer = writer }

    func write(_ envelopes: [Envelope]) async throws {
        guard !envelopes.isEmpty else { return }
        try await lock.run { try await self.writer.write(contentsOf: envelopes) }
    }

    /// Pushed messages (Predictions, picks) are advice that the next one supersedes. They are written from their own
    /// task so a session's retrain never waits on a slow reader, and at most `maxPendingPushes` wait per connection:
    /// a client that stops reading loses advice, and slows no one else.
    func push(_ update: SessionPush) async {
        let envelope = Envelope(update)
        let admitted = pending.withLock { count -> Bool in
            guard count < Self.maxPendingPushes else { return false }
            count += 1
            return true
        }
        guard admitted else { return }
        Task {
            try? await self.write([envelope])
            self.pending.withLock { $0 -= 1 }
        }
    }

    static let maxPendingPushes = 4
    private let pending = LockedValue(0)
}

/// A FIFO async mutex.
actor AsyncLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        defer {
            if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}

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
    private let counters = LockedValue(DaemonCounters())
    private let startedAt = ContinuousClock.now
    private let state = LockedValue(LifecycleState())

    private struct LifecycleState {
        var listeners: [any Channel] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        /// Accepted but not yet taken from the listener's stream (see `adopt`).
        var unclaimed: [ObjectIdentifier: NIOAsyncChannel<InboundFrame, Envelope>] = [:]
        var acceptStreamsEnded = false
        var handshakes = Handshakes()
        var authenticated = Set<ObjectIdentifier>()
        var boundAddresses: [String] = []
        var shuttingDown = false
        var readyWaiters: [CheckedContinuation<[String], Never>] = []
        var ready = false
        /// `run()` threw before listening: waiters get no addresses instead of waiting for good.
        var startFailed = false
    }

    private let store: LabelStore
    private let registry: SessionRegistry
    private let slidesNotServed = LockedValue<[String]>([])
    /// Configured slides left out at start, and what the latest rescan of the index folder found.
    private let startupFailures = LockedValue<[String]>([])
    private let slidesPending = LockedValue<[String]>([])
    private let tls: TLSRole?

    /// Opens the label store in `configuration.dataDirectory` (creating it); throws when the store cannot be opened.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.catalog = SlideCatalog(logger: logger)
        // Certificate problems are found at start, not at the first client's handshake.
        tls = try configuration.tls.map { .server(try HaliTLS.serverContext(certificatePath: $0.certificatePath, keyPath: $0.keyPath)) }
        try Directories.ensure(configuration.dataDirectory, purpose: "the data directory")
        store = try LabelStore(path: (configuration.dataDirectory as NSString).appendingPathComponent("labels.sqlite"))
        registry = SessionRegistry(
            store: store, tasks: configuration.tasks, settings: configuration.sessions,
            pool: TrainingPool(width: configuration.trainingWidth, fits: NIOBlockingPool()),
            pixelCache: RenderedPixelCache(capacityBytes: configuration.pixelCacheBytes))
    }

    /// The addresses actually bound (with the real port when 0 was asked for), once listening; none when `run()`
    /// refused to start (its error says why).
    public func waitUntilListening() async -> [String] {
        await withCheckedContinuation { continuation in
            let result: [String]? = state.withLock { state in
                if state.ready || state.startFailed { return state.boundAddresses }
                state.readyWaiters.append(continuation)
                return nil
            }
            if let result { continuation.resume(returning: result) }
        }
    }

    private func releaseWaitersAfterFailedStart() {
        let waiters = state.withLock { state in
            state.startFailed = true
            defer { state.readyWaiters = [] }
            return state.readyWaiters
        }
        for waiter in waiters { waiter.resume(returning: []) }
    }

    /// Binds every endpoint and serves until `shutdown()` is called. Throws if an endpoint cannot be bound.
    public func run() async throws {
        BLAS.configure(threads: configuration.blasThreads)
        let failures = await catalog.load(
            paths: configuration.slidePaths, indexDirectory: (configuration.dataDirectory as NSString).appendingPathComponent("index"),
            ingestMissing: configuration.ingestMissing, micronsPerPixel: configuration.micronsPerPixel,
            weightsPath: configuration.weightsPath, detectorWeightsPath: configuration.detectorWeightsPath)
        slidesNotServed.withLock { $0 = failures }
        startupFailures.withLock { $0 = failures }
        if configuration.strict, !failures.isEmpty {
            store.close()
            releaseWaitersAfterFailedStart()
            throw StartupError(
                message: "--strict: \(failures.count) of \(configuration.slidePaths.count) slides cannot be served:\n  "
                    + failures.joined(separator: "\n  "))
        }
        if !failures.isEmpty {
            logger.warning(
                "serving without some slides (hali status lists them; --strict refuses to start)", metadata: ["not_served": "\(failures.count)"])
        }
        for slide in await catalog.all { await registry.add(slide) }

        typealias Listener = NIOAsyncChannel<NIOAsyncChannel<InboundFrame, Envelope>, Never>
        var listeners: [Listener] = []
        let maxFrameBytes = configuration.maxFrameBytes
        let deadlines = configuration.deadlines
        let tls = self.tls
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
                        channel.eventLoop.makeCompletedFuture {
                            try self.adopt(channel) {
                                try HaliPipeline.asyncChannel($0, maxFrameBytes: maxFrameBytes, deadlines: deadlines, tls: tls)
                            }
                        }
                    }
                case .unix(let path):
                    listener = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try self.adopt(channel) { try HaliPipeline.asyncChannel($0, maxFrameBytes: maxFrameBytes, deadlines: deadlines) }
                        }
                    }
                }
                listeners.append(listener)
            }
        } catch {
            for listener in listeners { try? await listener.channel.close() }
            releaseWaitersAfterFailedStart()
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
            metadata: [
                "on": "\(bound.joined(separator: ", "))", "tls": "\(tls == nil ? "off" : "on (TCP)")", "slides": "\(slideCount)",
                "max_frame_bytes": "\(maxFrameBytes)",
            ])

        let watcher = configuration.indexRescanInterval.map { interval in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard !Task.isCancelled else { break }
                    await self.rescanIndexes()
                }
            }
        }
        defer { watcher?.cancel() }
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
        // Connections accepted in the last moments before the listeners closed never came out of their streams.
        let unclaimed = state.withLock { state in
            state.acceptStreamsEnded = true
            defer { state.unclaimed = [:] }
            return Array(state.unclaimed.values)
        }
        for connection in unclaimed { try? await connection.executeThenClose { _, _ in } }
        store.close()
        logger.info("stopped", metadata: ["label_events": "\((try? store.eventCount()) ?? -1)"])
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
        let channel: any Channel
        var annotator: Annotator?
        var malformedInARow = 0
        var session: LabellingSession?
        let outbox: ConnectionOutbox
    }

    /// What handling one message asks the connection to do.
    private struct Outcome {
        var replies: [Envelope]
        var close = false
    }

    /// Wraps an accepted channel and keeps a reference until `serve` claims it. NIO drops channels still queued in a
    /// listener's stream when that stream ends, and a dropped `NIOAsyncChannel` traps ("Deinited NIOAsyncWriter without
    /// calling finish()", apple/swift-nio#2637): at shutdown, `run` closes whatever was never claimed. Once it has,
    /// late arrivals are refused here, before any writer exists.
    private func adopt(
        _ channel: any Channel, _ wrap: (any Channel) throws -> NIOAsyncChannel<InboundFrame, Envelope>
    ) throws -> NIOAsyncChannel<InboundFrame, Envelope> {
        try state.withLock { state in
            guard !state.acceptStreamsEnded else { throw ChannelError.ioOnClosedChannel }
            let connection = try wrap(channel)
            state.unclaimed[ObjectIdentifier(channel)] = connection
            return connection
        }
    }

    private func serve(_ connection: NIOAsyncChannel<InboundFrame, Envelope>) async {
        let channel = connection.channel
        let id = ObjectIdentifier(channel)
        state.withLock { _ = $0.unclaimed.removeValue(forKey: id) }
        let peer = channel.remoteAddress?.description ?? "unix"
        let peerHost = channel.remoteAddress?.ipAddress ?? "unix"
        var log = logger
        log[metadataKey: "peer"] = "\(peer)"
        // Every connection starts as a handshake; making room closes the oldest waiting one rather than refusing
        // the newcomer, so connections that never speak cannot lock annotators out however many there are.
        let (admitted, evicted) = state.withLock { state -> (Bool, (any Channel)?) in
            guard !state.shuttingDown else { return (false, nil) }
            state.connections[id] = channel
            let evicted = state.handshakes.admit(
                id, channel: channel, peer: peerHost, limit: configuration.maxUnauthenticated, perPeer: configuration.maxUnauthenticatedPerPeer)
            if let evicted { state.connections.removeValue(forKey: ObjectIdentifier(evicted)) }
            return (true, evicted)
        }
        if let evicted {
            log.warning(
                "closing a connection that has not said Hello, to make room",
                metadata: ["closed_peer": "\(evicted.remoteAddress?.description ?? "unix")", "waiting": "\(configuration.maxUnauthenticated)"])
            evicted.close(promise: nil)
        }
        counters.withLock { $0.connections += admitted ? 1 : 0 }
        defer {
            if admitted {
                state.withLock { state in
                    state.connections.removeValue(forKey: id)
                    state.handshakes.remove(id)
                    state.authenticated.remove(id)
                }
                counters.withLock { $0.connections -= 1 }
            }
        }

        do {
            try await connection.executeThenClose { inbound, outbound in
                guard admitted else {
                    log.info("refused: shutting down")
                    try await outbound.write(Envelope(.error(ErrorReply(code: .unavailable, message: "the daemon is shutting down", fatal: true))))
                    return
                }
                let outbox = ConnectionOutbox(outbound)
                var context = ConnectionContext(channel: channel, outbox: outbox)
                defer {
                    if let session = context.session { Task { await session.unsubscribe(outbox) } }
                }
                do {
                    for try await frame in inbound {
                        counters.withLock { $0.framesReceived += 1 }
                        let outcome = await self.handle(frame, context: &context, log: log)
                        let large = outcome.replies.contains { $0.isLarge }
                        try await outbox.write(outcome.replies)
                        if large { MemoryReturn.afterLargeReply() }
                        if outcome.close {
                            await Self.closeAfterWrites(channel, grace: self.configuration.deadlines.closeGrace)
                            return
                        }
                    }
                } catch let error as FrameError {
                    counters.withLock { $0.framesRejected += 1 }
                    log.warning(
                        "closing connection: bad framing",
                        metadata: [
                            "error":
                                "\(error.looksLikeTLS ? "a TLS handshake: this listener is plain TCP (start halid with --tls-cert/--tls-key for TLS)" : error.description)"
                        ])
                    let code: ErrorCode = if case .tooLarge = error.kind { .frameTooLarge } else { .malformedFrame }
                    try? await outbox.write([Envelope(.error(ErrorReply(code: code, message: error.description, fatal: true)))])
                    await Self.closeAfterWrites(channel, grace: self.configuration.deadlines.closeGrace)
                } catch let error as DeadlineExceeded {
                    log.warning(
                        "closing connection: deadline passed", metadata: ["error": "\(error)", "annotator": "\(context.annotator?.name ?? "-")"])
                    let code: ErrorCode =
                        switch error.kind {
                        case .hello: .unauthenticated
                        case .frame: .malformedFrame
                        case .idle: .unavailable
                        }
                    // Best effort: ConnectionDeadlines closes the channel shortly whether or not this is read.
                    try? await outbox.write([Envelope(.error(ErrorReply(code: code, message: error.description, fatal: true)))])
                }
            }
        } catch {
            log.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Ends a connection the daemon chose to close (a fatal error, a Bye, bad framing) only after what it wrote has
    /// reached the socket: closing at once dropped every write still queued, so a client that read nothing until it
    /// had sent all (found by fuzzing) lost the large reply it asked for and the fatal error that said why. The
    /// output is shut once the queue is written (NIO completes the half-close then); a peer that never reads gets
    /// `grace` before the caller closes everything.
    static func closeAfterWrites(_ channel: any Channel, grace: TimeAmount) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await channel.close(mode: .output).get() }
            group.addTask { try? await Task.sleep(for: .nanoseconds(grace.nanoseconds)) }
            await group.next()
            group.cancelAll()
        }
    }

    private func handle(_ frame: InboundFrame, context: inout ConnectionContext, log: Logger) async -> Outcome {
        let envelope: Envelope
        switch frame {
        case .undecodable(let error):
            counters.withLock { $0.framesRejected += 1 }
            context.malformedInARow += 1
            // Before Hello nothing is forgiven (the protocol: anything but a valid Hello closes the connection).
            let fatal = context.annotator == nil || context.malformedInARow >= configuration.maxConsecutiveMalformedFrames
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
            let connectionID = ObjectIdentifier(context.channel)
            let room = state.withLock { state -> Bool? in
                guard state.handshakes.remove(connectionID) != nil else { return nil }  // closed to make room meanwhile
                guard state.authenticated.count < configuration.maxConnections else { return false }
                state.authenticated.insert(connectionID)
                return true
            }
            guard let room else { return Outcome(replies: [], close: true) }
            guard room else {
                log.warning("refused: connection limit", metadata: ["annotator": "\(annotator.name)", "limit": "\(configuration.maxConnections)"])
                return fail(.resourceExhausted, "the daemon is at its limit of \(configuration.maxConnections) connections", fatal: true)
            }
            context.channel.pipeline.fireUserInboundEventTriggered(ConnectionDeadlines.Authenticated())
            context.annotator = annotator
            log.info("hello", metadata: ["annotator": "\(annotator.name)", "client": "\(hello.clientName) \(hello.clientVersion)"])
            return reply(
                .welcome(
                    Welcome(
                        serverVersion: HaliVersion.string, annotator: annotator.name, capabilities: Self.capabilities,
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
            // Only the slides this annotator may open: the others' names can be confidential (case ids).
            return reply(.slideList(await catalog.list().filter { annotator.mayOpen(slide: $0.id) }))
        case .bye:
            return Outcome(replies: [], close: true)
        case .openSession(let open):
            do {
                let session = try await registry.open(annotator: annotator, slideID: open.slideID, taskName: open.task)
                if let previous = context.session, previous !== session { await previous.unsubscribe(context.outbox) }
                context.session = session
                await session.subscribe(context.outbox)
                log.info("session opened", metadata: ["session": "\(session.sessionID)"])
                return reply(.sessionState(SessionState(await session.snapshot(), slide: session.slide)))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message)
            } catch {
                return fail(.internal, "\(error)")
            }
        case .getPatch(let request):
            guard let session = context.session else { return fail(.noSession, "get_patch needs open_session first") }
            do {
                let view = try await session.patch(try PatchRequest(request))
                return reply(.patch(Patch(view, annotator: session.annotator)))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message)
            } catch {
                return fail(.internal, "\(error)")
            }
        case .labelEvent(let event):
            guard let session = context.session else { return fail(.noSession, "label_event needs open_session first", seq: event.clientSeq) }
            do {
                return reply(.labelAck(LabelAck(try await session.label(LabelCommand(event)))))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message, seq: event.clientSeq)
            } catch {
                log.error("label not stored", metadata: ["error": "\(error)"])
                return fail(.internal, "label not stored: \(error)", seq: event.clientSeq)
            }
        case .undo(let undo):
            guard let session = context.session else { return fail(.noSession, "undo needs open_session first", seq: undo.clientSeq) }
            do {
                return reply(.labelAck(LabelAck(try await session.undo(UndoCommand(undo)))))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message, seq: undo.clientSeq)
            } catch {
                return fail(.internal, "undo not stored: \(error)", seq: undo.clientSeq)
            }
        case .nextPatch(let request):
            guard let session = context.session else { return fail(.noSession, "next_patch needs open_session first") }
            do {
                guard request.patchSizeUm >= 0, request.patchSizeUm <= 5_000 else {
                    return fail(.invalidArgument, "patch_size_um \(request.patchSizeUm) is outside 0…5000")
                }
                return reply(
                    .nextPatchPick(
                        NextPatchPick(try await session.nextPatch(strategy: PickStrategy(request.strategy), sizeMicrons: request.patchSizeUm))))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message)
            } catch {
                return fail(.internal, "\(error)")
            }
        case .exportRequest(let request):
            guard let session = context.session else { return fail(.noSession, "export_request needs open_session first") }
            do {
                let (slide, task, store) = (session.slide, session.task, self.store)
                let limit = configuration.maxFrameBytes - 4096
                let file = try await NIOThreadPool.singleton.runIfActive {
                    try SessionExport.file(
                        formatName: request.format, consensus: request.consensus, includeSuggestions: request.includeSuggestions, slide: slide,
                        task: task, annotator: annotator.name, store: store, byteLimit: limit)
                }
                return reply(
                    .exportedFile(ExportedFile(format: file.format.rawValue, fileName: file.fileName, data: file.data, cells: UInt32(file.cells))))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message)
            } catch {
                return fail(.internal, "export failed: \(error)")
            }
        case .getGallery(let request):
            guard let session = context.session else { return fail(.noSession, "get_gallery needs open_session first") }
            do {
                let view = try await session.gallery(try GalleryRequest(request))
                return reply(.gallery(Gallery(view, annotator: session.annotator)))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message)
            } catch {
                return fail(.internal, "\(error)")
            }
        case .getCellPicks(let request):
            guard let session = context.session else { return fail(.noSession, "get_cell_picks needs open_session first") }
            do {
                let view = try await session.cellPicks(try CellPicksRequest(request))
                return reply(.gallery(Gallery(view, annotator: session.annotator)))
            } catch let error as EngineError {
                return fail(ErrorCode(error.code), error.message)
            } catch {
                return fail(.internal, "\(error)")
            }
        case .welcome, .slideList, .sessionState, .patch, .labelAck, .predictions, .nextPatchPick, .error, .pong, .serverStatus,
            .exportedFile, .gallery:
            return fail(.unsupportedMessage, "\(envelope.body.name) is a daemon-to-client message")
        }
    }

    /// Serves the slides whose index appeared in the data directory's `index/` folder since the last look (halid
    /// calls this on SIGHUP, and every `indexRescanInterval` when set), and refreshes what `hali status` lists as not
    /// served or pending. New sessions can open the new slides at once; nothing else changes for anyone.
    public func rescanIndexes() async {
        let found = await catalog.rescan(indexDirectory: (configuration.dataDirectory as NSString).appendingPathComponent("index"))
        for slide in found.added { await registry.add(slide) }
        let servedPaths = Set(await catalog.all.map(\.slide.path))
        let stillFailing = startupFailures.withLock { failures in
            failures.filter { line in !servedPaths.contains { line.hasPrefix($0 + ": ") } }
        }
        slidesNotServed.withLock { $0 = stillFailing + found.notServed }
        slidesPending.withLock { $0 = found.pending }
        if !found.added.isEmpty {
            logger.info("rescanned the index folder", metadata: ["added": "\(found.added.map(\.id).joined(separator: ", "))"])
        }
    }

    private func status() async -> ServerStatus {
        let counters = self.counters.withLock { $0 }
        let uptime = ContinuousClock.now - startedAt
        let listen = state.withLock { $0.boundAddresses.joined(separator: ",") }
        return ServerStatus(
            serverVersion: HaliVersion.string,
            uptimeSeconds: uptime.seconds,
            connections: UInt32(counters.connections), sessions: UInt32(await registry.sessionCount), slides: UInt32(await catalog.count),
            framesReceived: counters.framesReceived, framesRejected: counters.framesRejected,
            maxFrameBytes: UInt32(configuration.maxFrameBytes), listen: listen, slidesNotServed: slidesNotServed.withLock { $0 },
            slidesPending: slidesPending.withLock { $0 })
    }

    static let capabilities = [
        "ping", "status", "slides", "sessions", "patches", "labels", "undo", "predictions", "next_patch", "export", "gallery", "jpeg",
        "cell_picks",
    ]

    static func wallClockNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

/// The engine's blocking work on NIO's blocking pool, which the daemon's pixel reads and exports share.
struct NIOBlockingPool: BlockingExecutor {
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }
}

/// Gives the memory of large replies back to the system. A pixel patch passes through several buffers of its size
/// (the pixels, the C message, the frame) freed on different threads; glibc keeps such freed memory in its per-thread
/// arenas, so one 20 MB GetPatch left the daemon's RSS ~150 MB higher for good (measured: 46 → 199 MB after five).
/// `malloc_trim` returns what is free in every arena; it runs at most once a second, on a blocking-pool thread.
enum MemoryReturn {
    #if canImport(Glibc)
    /// glibc's `malloc_trim` (<malloc.h>, which the Glibc module does not export).
    @_silgen_name("malloc_trim")
    private static func mallocTrim(_ pad: Int) -> CInt
    #endif

    private static let last = LockedValue<ContinuousClock.Instant?>(nil)

    static func afterLargeReply() {
        #if canImport(Glibc)
        let now = ContinuousClock.now
        let due = last.withLock { last -> Bool in
            if let previous = last, now - previous < .seconds(1) { return false }
            last = now
            return true
        }
        guard due else { return }
        NIOThreadPool.singleton.submit { _ in _ = mallocTrim(0) }
        #endif
    }
}

extension Envelope {
    /// Over 1 MiB on the wire: a patch with pixels, an export.
    var isLarge: Bool {
        switch body {
        case .patch(let patch): patch.pixels.count > 1 << 20
        case .exportedFile(let file): file.data.count > 1 << 20
        case .gallery(let gallery): gallery.crops.reduce(0) { $0 + $1.pixels.count } > 1 << 20
        default: false
        }
    }
}

/// Why the daemon did not start serving.
public struct StartupError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Connections that have not said Hello yet, oldest first, with a count per peer address.
struct Handshakes {
    private var waiting: [ObjectIdentifier: (channel: any Channel, peer: String, arrival: UInt64)] = [:]
    private var perPeer: [String: Int] = [:]
    private var arrivals: UInt64 = 0

    var count: Int { waiting.count }

    /// Adds a connection; when `peer` already has `perPeer` waiting, or all peers `limit`, first removes the oldest
    /// waiting one (of that peer, or of all) and returns its channel for the caller to close.
    mutating func admit(_ id: ObjectIdentifier, channel: any Channel, peer: String, limit: Int, perPeer peerLimit: Int) -> (any Channel)? {
        var evicted: (any Channel)?
        if perPeer[peer, default: 0] >= peerLimit {
            evicted = removeOldest { $0 == peer }
        } else if waiting.count >= limit {
            evicted = removeOldest { _ in true }
        }
        arrivals += 1
        waiting[id] = (channel, peer, arrivals)
        perPeer[peer, default: 0] += 1
        return evicted
    }

    /// Removes a connection (it said Hello, or ended); nil when it was not waiting.
    @discardableResult
    mutating func remove(_ id: ObjectIdentifier) -> (any Channel)? {
        guard let entry = waiting.removeValue(forKey: id) else { return nil }
        perPeer[entry.peer, default: 1] -= 1
        if perPeer[entry.peer] == 0 { perPeer.removeValue(forKey: entry.peer) }
        return entry.channel
    }

    /// O(waiting): the table is small (at most `limit`) and this runs only when it is full.
    private mutating func removeOldest(where matches: (String) -> Bool) -> (any Channel)? {
        guard let oldest = waiting.filter({ matches($0.value.peer) }).min(by: { $0.value.arrival < $1.value.arrival })?.key else { return nil }
        return remove(oldest)
    }
}
