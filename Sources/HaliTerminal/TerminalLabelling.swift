// `hali label`'s terminal shell: raw mode and the alternate screen, standard input and signals, and the connection
// to the daemon with reconnect and backoff. What the client decides (what to send, what to draw) is `LabelClient`;
// this file only moves bytes and events between it, the terminal and the daemon.

import Foundation
import HaliClient
public import HaliCore
public import HaliWire
public import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The terminal could not be used.
public struct TerminalError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs the labelling client on the process's terminal until the annotator quits or the terminal goes away.
public enum TerminalLabelling {
    public struct Options: Sendable {
        public var slideID: String
        public var task: String
        /// nil: detected from the environment ($COLORTERM, $TERM, $NO_COLOR).
        public var colorMode: ColorMode?
        public var strategy: Strategy
        /// NextPatch's side in microns (0: the daemon's default).
        public var patchSizeMicrons: Double
        /// nil: `$HALI_GRAPHICS` if set, else detected by asking the terminal (`GraphicsProbe`).
        public var graphics: GraphicsProtocol?

        public init(
            slideID: String, task: String, colorMode: ColorMode?, strategy: Strategy, patchSizeMicrons: Double,
            graphics: GraphicsProtocol? = nil
        ) {
            self.slideID = slideID
            self.task = task
            self.colorMode = colorMode
            self.strategy = strategy
            self.patchSizeMicrons = patchSizeMicrons
            self.graphics = graphics
        }
    }

    /// How the session ended.
    public struct Outcome: Sendable, Equatable {
        public var labelsDone: Int
        /// Labels sent and never acknowledged: they may be lost.
        public var unacknowledged: Int
    }

    public static func run(endpoint: Endpoint, hello: Hello, tls: NIOSSLContext?, options: Options) async throws -> Outcome {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw TerminalError("needs a terminal on standard input and output")
        }
        let mode = options.colorMode ?? ColorMode.detect(environment: ProcessInfo.processInfo.environment)

        let terminal = try RawTerminal()
        let environment = ProcessInfo.processInfo.environment
        let requested = options.graphics?.rawValue ?? environment["HALI_GRAPHICS"].flatMap { $0 == "auto" ? nil : $0 }
        var capabilities = TerminalCapabilities()
        if requested.map({ GraphicsProtocol(rawValue: $0)?.isPixelProtocol ?? true }) ?? true {
            capabilities = terminal.probe(timeoutMs: GraphicsProbe.timeoutMs)
        }
        let size = terminal.size()
        if capabilities.windowPixels == nil { capabilities.windowPixels = size.pixels }
        let cell = capabilities.cellSize(columns: size.columns, rows: size.rows)
        let graphics = GraphicsProbe.choose(
            requested: requested, capabilities: capabilities, environment: environment, hasCellSize: cell != nil)
        var painter = GraphicsPainter(graphics: graphics, sixelRegisters: capabilities.sixelRegisters ?? 256)

        let (events, sink) = AsyncStream<ShellEvent>.makeStream(bufferingPolicy: .unbounded)
        terminal.startReading(into: sink)
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                sink.yield(.tick)
            }
        }
        let connector = Task { await Self.connectionLoop(endpoint: endpoint, hello: hello, tls: tls, sink: sink) }

        var client = LabelClient(
            slideID: options.slideID, task: options.task, columns: size.columns, rows: size.rows, colorMode: mode,
            strategy: options.strategy, patchSizeUm: options.patchSizeMicrons, graphics: graphics,
            cellPixels: cell ?? PixelSize(width: 10, height: 20),
            maxPicturePixels: graphics == .sixel ? capabilities.sixelMaxSize : nil)
        let renderer = ANSIRenderer(mode: mode)
        var decoder = KeyDecoder()
        var escapeGeneration = 0
        var previous: ScreenGrid?
        var outbound: AsyncStream<Envelope>.Continuation?

        terminal.output(ANSIRenderer.enterSequence)
        let frameLog = environment["HALI_FRAME_LOG"].flatMap { FileHandle(forWritingAtPath: $0) }
        frameLog?.seekToEndOfFile()
        func redraw() {
            let grid = client.screen()
            let picture = graphics.isPixelProtocol ? client.picture() : nil
            let area = client.layout.image
            if graphics.isPixelProtocol, var prior = previous, prior.width == grid.width, prior.height == grid.height {
                // Cells the last picture covered and this one will not: a cell that differs from the one the renderer
                // remembers is written again, and text written over a sixel or iTerm2 image removes its pixels there.
                for (x, y) in painter.cellsLeftBehind(by: picture, column: area.x, row: area.y, cell: client.cellPixels)
                where x < prior.width && y < prior.height {
                    prior[x, y] = ScreenCell("\u{0}")
                }
                previous = prior
            }
            // Text first: blank cells written over the picture's area would erase it (sixel) or cover it.
            var bytes = Array(renderer.frame(grid, previous: previous).utf8)
            if graphics.isPixelProtocol && picture == nil { bytes += painter.remove() }
            if graphics.isPixelProtocol, let picture {
                // Text drawn over the picture (help, a repaint after a clear) means it must go again whole.
                if previous == nil || !Self.sameCells(grid, previous!, in: area) { painter.invalidate() }
                do {
                    bytes += try painter.frame(
                        picture, column: area.x, row: area.y, cell: client.cellPixels, overlays: client.overlayColors)
                } catch {
                    painter.invalidate()
                }
                if let frameLog {
                    // One JSON line per frame: where the picture is and what it shows, for tests that compare the
                    // screen with the slide.
                    let r = picture.region
                    let line =
                        "{\"graphics\":\"\(graphics.rawValue)\",\"column\":\(area.x),\"row\":\(area.y),\"cell_width\":\(client.cellPixels.width),"
                        + "\"cell_height\":\(client.cellPixels.height),\"width\":\(picture.width),\"height\":\(picture.height),"
                        + "\"region\":[\(r.x),\(r.y),\(r.width),\(r.height)],\"bytes\":\(bytes.count)}\n"
                    frameLog.write(Data(line.utf8))
                }
            }
            // Every frame ends with an attribute reset, whatever it drew: a harmless mark for tools that time frames.
            if graphics.isPixelProtocol { bytes += Array("\u{1B}[0m".utf8) }
            terminal.output(bytes)
            previous = grid
        }
        redraw()

        loop: for await event in events {
            let now = Self.nowMs()
            var out: [Envelope] = []
            switch event {
            case .input(let bytes):
                for key in decoder.feed(bytes) { out += client.handle(.key(key), nowMs: now) }
                if decoder.hasPending {
                    // A lone ESC, or a sequence cut by the read: wait briefly for the rest.
                    escapeGeneration += 1
                    let generation = escapeGeneration
                    Task {
                        try? await Task.sleep(for: .milliseconds(50))
                        sink.yield(.escapeTimeout(generation))
                    }
                }
            case .escapeTimeout(let generation):
                guard generation == escapeGeneration else { continue loop }
                for key in decoder.flush() { out += client.handle(.key(key), nowMs: now) }
            case .inputClosed:
                break loop
            case .resize, .resumed:
                if case .resumed = event { terminal.enterRawMode() }
                let s = terminal.size()
                out += client.handle(.resize(columns: s.columns, rows: s.rows), nowMs: now)
                if let px = s.pixels, s.columns > 0, s.rows > 0, px.width >= s.columns, px.height >= s.rows {
                    out += client.handle(.cellPixels(PixelSize(width: px.width / s.columns, height: px.height / s.rows)), nowMs: now)
                }
                previous = nil
                terminal.output(ANSIRenderer.enterSequence)
            case .terminate:
                break loop
            case .tick:
                out += client.handle(.tick, nowMs: now)
            case .connected(let welcome, let continuation):
                outbound = continuation
                out += client.handle(.connected(welcome), nowMs: now)
            case .client(let clientEvent):
                if case .disconnected = clientEvent { outbound = nil }
                out += client.handle(clientEvent, nowMs: now)
            }
            for envelope in out { outbound?.yield(envelope) }
            if client.shouldQuit { break loop }
            redraw()
        }

        // Close the connection politely (HaliConnection says Bye) but wait no more than half a second for it,
        // then restore the terminal.
        ticker.cancel()
        if let outbound {
            outbound.finish()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await connector.value }
                group.addTask { try? await Task.sleep(for: .milliseconds(500)) }
                await group.next()
                group.cancelAll()
            }
        }
        connector.cancel()
        terminal.restore()
        return Outcome(labelsDone: client.labelsDone, unacknowledged: client.pending.count)
    }

    /// Whether two grids hold the same cells inside `area`.
    static func sameCells(_ a: ScreenGrid, _ b: ScreenGrid, in area: Layout.Rect) -> Bool {
        guard a.width == b.width, a.height == b.height else { return false }
        for y in area.y..<min(a.height, area.y + area.height) {
            for x in area.x..<min(a.width, area.x + area.width) where a[x, y] != b[x, y] { return false }
        }
        return true
    }

    static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// Connects, runs the exchange until the connection ends, waits (0.5 s doubling to 10 s; back to 0.5 s after a
    /// connection that got as far as Welcome), and tries again; stops when the daemon refuses the token or version.
    static func connectionLoop(endpoint: Endpoint, hello: Hello, tls: NIOSSLContext?, sink: AsyncStream<ShellEvent>.Continuation) async {
        var attempt = 1
        var backoff = 0.5
        while !Task.isCancelled {
            sink.yield(.client(.connecting(attempt: attempt)))
            let (outStream, outContinuation) = AsyncStream<Envelope>.makeStream(bufferingPolicy: .unbounded)
            var reason = "the daemon closed the connection"
            var retry = true
            var welcomed = false
            do {
                let end = try await HaliConnection.withConnection(to: endpoint, hello: hello, tls: tls) { connection in
                    welcomed = true
                    sink.yield(.connected(connection.welcome, outContinuation))
                    // The daemon closes connections silent for its idle limit (15 min by default); a pathologist
                    // thinking over a patch is not gone, so a Ping goes every minute.
                    let keepalive = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(60))
                            outContinuation.yield(Envelope(.ping(HaliWire.Ping(nonce: 0, clientTimeNs: 0))))
                        }
                    }
                    defer { keepalive.cancel() }
                    return try await connection.exchange(sending: outStream) { sink.yield(.client(.received($0))) }
                }
                // The client finished the outbound stream: it is quitting (withConnection has said Bye).
                if end == .outboundFinished { return }
            } catch let error as ClientError {
                reason = error.description
                if case .server(let reply) = error, [.unauthenticated, .unsupportedVersion].contains(reply.code) {
                    retry = false
                }
            } catch {
                reason = "\(error)"
            }
            outContinuation.finish()
            if Task.isCancelled { return }
            if welcomed {
                attempt = 1
                backoff = 0.5
            }
            guard retry else {
                sink.yield(.client(.disconnected(reason: reason, retryInSeconds: nil)))
                return
            }
            // Count down in whole seconds so the status line shows when the next try comes.
            var remaining = backoff
            while remaining > 0 && !Task.isCancelled {
                sink.yield(.client(.disconnected(reason: reason, retryInSeconds: Int(remaining.rounded(.up)))))
                let step = min(1, remaining)
                try? await Task.sleep(for: .milliseconds(Int(step * 1000)))
                remaining -= step
            }
            backoff = min(backoff * 2, 10)
            attempt += 1
        }
    }
}

/// What the shell's event loop reacts to.
enum ShellEvent: Sendable {
    case input([UInt8])
    case inputClosed
    case escapeTimeout(Int)
    case resize
    /// SIGCONT: the process was stopped and resumed; raw mode may have been undone.
    case resumed
    case terminate
    case tick
    case connected(Welcome, AsyncStream<Envelope>.Continuation)
    case client(ClientEvent)
}

// MARK: - The terminal

/// The write end of the self-pipe the signal handler writes to (async-signal-safe).
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1

/// Raw mode on standard input (restored by `restore()`, on normal exit and on SIGTERM/SIGHUP/SIGINT, which end the
/// event loop), plus a reader thread that polls stdin and a self-pipe fed by the signal handler.
final class RawTerminal: @unchecked Sendable {
    private var original = termios()
    private var restored = false
    private let lock = NSLock()
    private let signalPipeRead: Int32

    init() throws {
        guard tcgetattr(STDIN_FILENO, &original) == 0 else { throw TerminalError("cannot read the terminal's settings") }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TerminalError("cannot create a pipe") }
        signalPipeRead = fds[0]
        signalPipeWrite = fds[1]
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        for sig in [SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGCONT] {
            signal(sig) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWrite, &byte, 1)
            }
        }
        enterRawMode()
    }

    func enterRawMode() {
        var raw = original
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
    }

    /// Leaves the alternate screen and puts the terminal's settings back (idempotent).
    func restore() {
        lock.lock()
        defer { lock.unlock() }
        guard !restored else { return }
        restored = true
        writeAll(ANSIRenderer.leaveSequence)
        _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
        for sig in [SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGCONT] { signal(sig, SIG_DFL) }
    }

    deinit { restore() }

    /// The text area in cells, and in pixels when the kernel knows them (terminals that fill `ws_xpixel`).
    func size() -> (columns: Int, rows: Int, pixels: PixelSize?) {
        var ws = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 {
            let pixels = ws.ws_xpixel > 0 && ws.ws_ypixel > 0 ? PixelSize(width: Int(ws.ws_xpixel), height: Int(ws.ws_ypixel)) : nil
            return (Int(ws.ws_col), Int(ws.ws_row), pixels)
        }
        let env = ProcessInfo.processInfo.environment
        return (Int(env["COLUMNS"] ?? "") ?? 80, Int(env["LINES"] ?? "") ?? 24, nil)
    }

    /// Sends `GraphicsProbe.queries` and reads the replies until DA1's arrives or `timeoutMs` passes; runs before the
    /// reader thread starts, so the replies are not taken for keys (keys typed meanwhile are dropped).
    func probe(timeoutMs: Int) -> TerminalCapabilities {
        output(GraphicsProbe.queries)
        var capabilities = TerminalCapabilities()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000
        while !capabilities.answeredDA1 {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { break }
            var fd = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            let ready = poll(&fd, 1, Int32(max(1, (deadline - now) / 1_000_000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            let n = read(STDIN_FILENO, &buffer, buffer.count)
            guard n > 0 else { break }
            received += buffer.prefix(n)
            capabilities = TerminalCapabilities()
            GraphicsProbe.parse(received, into: &capabilities)
        }
        return capabilities
    }

    func output(_ text: String) { output(Array(text.utf8)) }

    func output(_ bytes: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        guard !restored else { return }
        writeAll(bytes)
    }

    private func writeAll(_ text: String) { writeAll(Array(text.utf8)) }

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            offset += n
        }
    }

    /// Reads stdin and the signal pipe on a thread of its own and turns them into events.
    func startReading(into sink: AsyncStream<ShellEvent>.Continuation) {
        let signalFD = signalPipeRead
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var fds = [
                pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
            ]
            while true {
                fds[0].revents = 0
                fds[1].revents = 0
                let ready = poll(&fds, 2, -1)
                if ready < 0 {
                    if errno == EINTR { continue }
                    sink.yield(.inputClosed)
                    return
                }
                if fds[1].revents & Int16(POLLIN) != 0 {
                    let n = read(signalFD, &buffer, buffer.count)
                    for sig in buffer.prefix(max(0, n)) {
                        switch Int32(sig) {
                        case SIGWINCH: sink.yield(.resize)
                        case SIGCONT: sink.yield(.resumed)
                        default: sink.yield(.terminate)
                        }
                    }
                }
                if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let n = read(STDIN_FILENO, &buffer, buffer.count)
                    if n > 0 {
                        sink.yield(.input(Array(buffer.prefix(n))))
                    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                        sink.yield(.inputClosed)
                        return
                    }
                }
            }
        }
        thread.start()
    }
}
