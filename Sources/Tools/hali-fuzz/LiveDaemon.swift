import Foundation
import HaliCore
import HaliInterop
import HaliServer
import HaliWire
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The `handlers` target: every message handler behind a live daemon in this process, reached the way a client
/// reaches it (a real socket, real frames), each input on a connection that has already said Hello and opened a
/// session, so the fuzzer spends its time past the handshake.
///
/// An input is a sequence of frame bodies, each as a 2-byte big-endian length and that many bytes (a cut-off last
/// record is dropped). They are sent after Hello and OpenSession, then a Ping; the daemon's replies are read until
/// its Pong. A finding is anything a correct daemon never does: crash or trap (the process dies), a reply that
/// does not decode, an INTERNAL error (reserved for bugs), silence for a minute, or closing the connection without
/// a fatal error or a Bye to say why.
enum HandlerTarget {
    static let token = "fuzz-token-0123"

    /// The daemon, started on first use with a fresh label store and a Unix socket. Labels, sessions and trained
    /// heads accumulate across inputs as they would in a day's work; every `inputsPerDaemon` inputs it is shut down
    /// and a fresh one started, so that one input that used up a session (a client_seq of 2^64 − 1) does not close
    /// the label paths for the rest of the run, and the store stays small.
    static let inputsPerDaemon = 5_000

    private final class Running: @unchecked Sendable {
        let daemon: HaliDaemon
        let task: Task<Void, any Error>
        let directory: String
        let socket: String
        var inputs = 0
        init(daemon: HaliDaemon, task: Task<Void, any Error>, directory: String, socket: String) {
            (self.daemon, self.task, self.directory, self.socket) = (daemon, task, directory, socket)
        }
    }

    nonisolated(unsafe) private static var running: Running?
    nonisolated(unsafe) private static var started = 0

    /// The socket of the daemon to use for the next input (libFuzzer runs inputs one at a time, on one thread).
    static func socketForNextInput() -> String {
        if let current = running, current.inputs < inputsPerDaemon {
            current.inputs += 1
            return current.socket
        }
        if let old = running {
            old.daemon.shutdown()
            blocking { try await old.task.value }
            try? FileManager.default.removeItem(atPath: old.directory)
        }
        started += 1
        let directory = NSTemporaryDirectory() + "hali-fuzz-daemon-\(getpid())-\(started)"
        try? FileManager.default.removeItem(atPath: directory)
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try! FileManager.default.copyItem(atPath: Fixture.indexedDirectory + "/index", toPath: directory + "/index")
        let socket = directory + "/halid.sock"
        var configuration = ServerConfiguration(
            listen: [.unix(path: socket)],
            annotators: try! AnnotatorRegistry([Annotator(name: "fuzzer", token: token)]),
            slidePaths: [Fixture.slidePath])
        configuration.dataDirectory = directory
        configuration.ingestMissing = false
        configuration.strict = true
        configuration.shutdownGracePeriod = .milliseconds(100)
        var logger = Logger(label: "hali-fuzz-halid")
        logger.logLevel = .critical
        let daemon = try! HaliDaemon(configuration: configuration, logger: logger)
        let task = Task { try await daemon.run() }
        if blocking({ await daemon.waitUntilListening() }).isEmpty {
            let reason = blocking { () -> String in
                do { try await task.value } catch { return "\(error)" }
                return "run() ended"
            }
            fatalError("hali-fuzz: the daemon did not start: \(reason)")
        }
        running = Running(daemon: daemon, task: task, directory: directory, socket: socket)
        running!.inputs = 1
        return socket
    }

    /// `HALI_FUZZ_VERBOSE=1`: print every reply (to read what a corpus input does).
    static let verbose = ProcessInfo.processInfo.environment["HALI_FUZZ_VERBOSE"] != nil

    static func describe(_ body: Body) -> String {
        switch body {
        case .error(let reply): " \(reply.code) \(reply.fatal ? "fatal " : "")\(reply.message)"
        case .patch(let patch): " \(patch.cells.count) cells, \(patch.width)×\(patch.height) px"
        case .labelAck(let ack): " seq \(ack.clientSeq)"
        case .nextPatchPick(let pick): " \(pick.patchID) \(pick.strategy) \(pick.cellsInRegion) cells"
        case .exportedFile(let file): " \(file.fileName) \(file.data.count) bytes"
        default: ""
        }
    }

    /// Splits an input into frame bodies (at most 64).
    static func frames(_ bytes: UnsafeRawBufferPointer) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var at = 0
        while at + 2 <= bytes.count, out.count < 64 {
            let length = Int(bytes[at]) << 8 | Int(bytes[at + 1])
            at += 2
            guard at + length <= bytes.count else { break }
            out.append(Array(bytes[at..<at + length]))
            at += length
        }
        return out
    }

    /// The inverse of `frames`, for writing seeds.
    static func input(_ envelopes: [Envelope]) -> [UInt8] {
        var out: [UInt8] = []
        for envelope in envelopes {
            let body = WireCodec.encode(envelope)
            precondition(body.count <= 0xffff)
            out += [UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
        }
        return out
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let bodies = frames(bytes)
        let connection = BlockingConnection(unixPath: socketForNextInput())
        defer { connection.close() }
        let nonce = UInt64.random(in: 1...UInt64.max)
        var out: [UInt8] = []
        func append(_ body: [UInt8]) {
            out += [UInt8(body.count >> 24 & 0xff), UInt8(body.count >> 16 & 0xff), UInt8(body.count >> 8 & 0xff), UInt8(body.count & 0xff)]
            out += body
        }
        append(WireCodec.encode(Envelope(requestID: 1, .hello(Hello(clientName: "hali-fuzz", token: token)))))
        append(WireCodec.encode(Envelope(requestID: 2, .openSession(OpenSession(slideID: Fixture.slideID, task: "ki67")))))
        for body in bodies { append(body) }
        append(WireCodec.encode(Envelope(requestID: UInt64.max, .ping(Ping(nonce: nonce, clientTimeNs: 0)))))
        // A daemon that has closed the connection may refuse the rest of what we write; the replies say why.
        _ = connection.writeAll(out)

        let sentBye = bodies.contains { body in
            body.withUnsafeBytes { raw in
                if case .bye? = (try? WireCodec.decode(raw))?.body { return true }
                return false
            }
        }
        var sawFatal = false
        while true {
            guard let frame = connection.readFrame(timeoutSeconds: 60) else {
                if sawFatal || sentBye { return }
                fatalError("the daemon closed the connection without a fatal error or a Bye (inputs: \(bodies.count) frames)")
            }
            let envelope: Envelope
            do {
                envelope = try frame.withUnsafeBytes { try WireCodec.decode($0) }
            } catch {
                fatalError("the daemon sent a frame that does not decode: \(error)")
            }
            if verbose { print("  \(envelope.requestID): \(envelope.body.name)\(describe(envelope.body))") }
            switch envelope.body {
            case .error(let reply):
                if reply.code == .internal { fatalError("INTERNAL error for request \(envelope.requestID): \(reply.message)") }
                if reply.fatal { sawFatal = true }
            case .pong(let pong) where pong.nonce == nonce:
                return
            default:
                break
            }
        }
    }
}

/// A plain blocking socket: libFuzzer calls the target synchronously, and a client that shares nothing with the
/// daemon's event loops is the honest outside view.
struct BlockingConnection {
    private let fd: CInt
    private let buffer = LockedBox<[UInt8]>([])

    init(unixPath: String) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket: \(String(cString: strerror(errno)))")
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        precondition(unixPath.utf8.count < capacity, "socket path too long")
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: unixPath.utf8)
            raw[unixPath.utf8.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        precondition(connected == 0, "connect \(unixPath): \(String(cString: strerror(errno)))")
    }

    /// False when the daemon has closed its end.
    func writeAll(_ bytes: [UInt8]) -> Bool {
        var at = 0
        while at < bytes.count {
            let n = bytes[at...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            at += n
        }
        return true
    }

    /// The next frame's body; nil at end of input. Traps when nothing arrives for `timeoutSeconds`.
    func readFrame(timeoutSeconds: Int32) -> [UInt8]? {
        var pending = buffer.get()
        defer { buffer.set(pending) }
        while true {
            if pending.count >= 4 {
                let length = Int(pending[0]) << 24 | Int(pending[1]) << 16 | Int(pending[2]) << 8 | Int(pending[3])
                if pending.count >= 4 + length {
                    let body = Array(pending[4..<4 + length])
                    pending.removeFirst(4 + length)
                    return body
                }
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutSeconds * 1000)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { fatalError("the daemon sent nothing for \(timeoutSeconds) s") }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return nil }  // closed (a reset counts as closed: the daemon may close with our input unread)
            pending += chunk[0..<n]
        }
    }

    func close() { _ = Glibc.close(fd) }
}

extension HandlerTarget {
    /// One seed per kind of work a client asks for, each a short valid conversation after the session is open.
    static func seeds() -> [[UInt8]] {
        let whole = Region(x: 700, y: 1000, width: 1024, height: 1024)
        let small = Region(x: 900, y: 1200, width: 300, height: 200)
        func label(_ seq: UInt64, _ cell: UInt64, _ className: String, _ source: LabelSource = .manual) -> Body {
            .labelEvent(LabelEvent(clientSeq: seq, cellID: cell, className: className, source: source, clientTimeMs: 1_700_000_000_000))
        }
        let sixLabels: [Body] = (1...6).map { (n: Int) -> Body in
            label(UInt64(20 + n), UInt64(n * 3), n % 2 == 0 ? "positive" : "negative", .correctedSuggestion)
        }
        let everyStrategy: [Body] = Strategy.allCases.map { .nextPatch(NextPatch(strategy: $0, patchSizeUm: 0)) }
        let everyCellStrategy: [Body] = CellPickStrategy.allCases.map { .getCellPicks(GetCellPicks(maxCells: 6, strategy: $0)) }
        let everyExport: [Body] = InteropFormat.allCases.map { .exportRequest(ExportRequest(format: $0.rawValue)) }
        let conversations: [[Body]] = [
            [.getPatch(GetPatch(target: .region(small), includeContours: true))],
            [.getPatch(GetPatch(target: .region(small), includePixels: true, includeContours: true))],
            [.getPatch(GetPatch(target: .region(whole), level: 1, includePixels: true))],
            [.getPatch(GetPatch(target: .patchID("0")))],
            [.getPatch(GetPatch(target: nil))],
            [label(1, 1, "positive"), label(2, 2, "negative", .acceptedSuggestion), .undo(Undo(clientSeq: 3, cellID: 2))],
            [label(10, 1, "positive"), label(10, 1, "negative"), label(0, 3, "positive"), .undo(Undo(clientSeq: 13))],
            sixLabels + [.nextPatch(NextPatch(strategy: .coreset, patchSizeUm: 100))],
            everyStrategy,
            [.nextPatch(NextPatch(patchSizeUm: 5_000)), .getPatch(GetPatch(target: .patchID("p1"), includeContours: true))],
            everyExport,
            sixLabels + everyCellStrategy,
            [.getCellPicks(GetCellPicks(maxCells: 70, skipCellIDs: [0, .max])), .getCellPicks(GetCellPicks(cropMicrons: -1, skipCellIDs: [2, 2]))],
            [.exportRequest(ExportRequest(format: "geojson", consensus: true, includeSuggestions: true))],
            [.openSession(OpenSession(slideID: Fixture.slideID, task: "til")), label(1, 5, "inflammatory")],
            [.openSession(OpenSession(slideID: "missing", task: "ki67")), .getStatus, .listSlides],
            [.hello(Hello(clientName: "again", token: token)), .ping(Ping(nonce: 7, clientTimeNs: 1))],
            [.bye(Bye(reason: "done"))],
        ]
        return conversations.map { bodies in input(bodies.enumerated().map { Envelope(requestID: UInt64($0.offset + 3), $0.element) }) }
    }
}
