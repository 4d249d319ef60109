import Foundation
import HaliClient
import HaliCore
import HaliServer
import HaliWire
import Logging
import NIOCore
import NIOPosix
import Testing

/// Issue 14's cases: what an independent client written from `Proto/hali.proto` alone sent, and what it must get.
/// Each was seen to fail (or to kill the test process) before its fix.

func framed(bytes body: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(body.count), endianness: .big)
    buffer.writeBytes(body)
    return buffer
}

/// The encoded envelope with `marker`'s bytes overwritten (a Swift string holding NUL cannot be encoded).
func encoded(_ envelope: Envelope, replacing marker: String, with replacement: String) -> [UInt8] {
    var bytes = WireCodec.encode(envelope)
    let needle = Array(marker.utf8), patch = Array(replacement.utf8)
    let at = (0...(bytes.count - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle }!
    bytes.replaceSubrange(at..<at + needle.count, with: patch)
    return bytes
}

func expectRefusal(_ code: ErrorCode, _ body: () async throws -> Envelope, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    do {
        let reply = try await body()
        Issue.record("expected \(code), got \(reply.body.name)", sourceLocation: sourceLocation)
    } catch ClientError.server(let reply) {
        #expect(reply.code == code, "\(reply.message)", sourceLocation: sourceLocation)
        #expect(!reply.fatal, sourceLocation: sourceLocation)
    }
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct HostileClientTests {
    /// `x + width` with width = Int64.max trapped (SIGILL) and took every session with it.
    @Test func overflowingRegionsAreRefusedAndTheDaemonServesOn() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67")))
                let hostile = [
                    Region(x: 1, y: 0, width: .max, height: 10), Region(x: 0, y: 1, width: 10, height: .max),
                    Region(x: .max, y: .max, width: .max, height: .max), Region(x: .min, y: 0, width: 10, height: 10),
                    Region(x: 2219, y: 0, width: 2, height: 1), Region(x: 0, y: 0, width: 0, height: 5),
                ]
                for region in hostile {
                    try await expectRefusal(.invalidArgument) { try await c.request(.getPatch(GetPatch(target: .region(region)))) }
                }
                // The last pixel column and row are inside.
                _ = try await c.request(.getPatch(GetPatch(target: .region(Region(x: 2219, y: 2966, width: 1, height: 1)))))
                _ = try await c.ping()
            }
        }
    }

    /// A token followed by "\0anything" authenticated; the class "other\0junk" was stored as "other".
    @Test func stringsWithNulAreRefusedNotCut() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            let helloReplies = try await withRawConnection(to: endpoint) { raw in
                try await raw.executeThenClose { inbound, outbound in
                    let tokenX = token + "Xanything"
                    try await outbound.write(
                        framed(bytes: encoded(Envelope(requestID: 1, .hello(hello(tokenX))), replacing: tokenX, with: token + "\0anything")))
                    try await outbound.write(framed(Envelope(requestID: 2, .bye(Bye(reason: "done")))))  // closes if Hello was taken
                    return try await readAllFrames(inbound)
                }
            }
            guard helloReplies.count == 1, case .error(let e) = helloReplies[0].body else {
                Issue.record("a token with a NUL was answered with \(helloReplies.map(\.body.name))")
                return
            }
            #expect(e.fatal && e.message.contains("NUL"))

            let labelReplies = try await withRawConnection(to: endpoint) { raw in
                try await raw.executeThenClose { inbound, outbound in
                    try await outbound.write(framed(Envelope(requestID: 1, .hello(hello()))))
                    try await outbound.write(framed(Envelope(requestID: 2, .openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til")))))
                    let event = Envelope(
                        requestID: 3, .labelEvent(LabelEvent(clientSeq: 1, cellID: 5, className: "otherXjunk", source: .manual, clientTimeMs: 0)))
                    try await outbound.write(framed(bytes: encoded(event, replacing: "otherXjunk", with: "other\0junk")))
                    try await outbound.write(framed(Envelope(requestID: 4, .bye(Bye(reason: "done")))))
                    return try await readAllFrames(inbound)
                }
            }
            #expect(labelReplies.map(\.body.name) == ["welcome", "session_state", "error"])
            if case .error(let e) = labelReplies.last?.body { #expect(e.code == .malformedFrame && e.message.contains("class_name")) }
            // Nothing was stored.
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                guard case .sessionState(let state) = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til"))).body
                else { throw ClientError.unexpectedReply(expected: "session_state", got: "") }
                #expect(state.labelsDone == 0)
            }
        }
    }

    /// One whole-slide GetPatch marked every window done: NextPatch answered "every window … has been done" with 0
    /// labels, across reconnects and restarts (the region is persisted).
    @Test func anOverviewDoesNotEndTheLearner() async throws {
        let data = try await freshDataDirectory()
        for _ in 0..<2 {  // the second daemon restores the persisted whole-slide region
            try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
                try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                    _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67")))
                    _ = try await c.request(.getPatch(GetPatch(target: .region(Region(x: 0, y: 0, width: 2220, height: 2967)))))
                    guard case .nextPatchPick(let pick) = try await c.request(.nextPatch(NextPatch())).body
                    else { throw ClientError.unexpectedReply(expected: "next_patch_pick", got: "") }
                    #expect(pick.cellsInRegion > 0)
                }
            }
        }
    }

    /// client_seq is strictly increasing from 1; a reused number for another event answered INTERNAL.
    @Test func clientSeqRules() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til")))
                func label(_ seq: UInt64, _ cell: UInt64, _ className: String) async throws -> Envelope {
                    try await c.request(.labelEvent(LabelEvent(clientSeq: seq, cellID: cell, className: className, source: .manual, clientTimeMs: 0)))
                }
                try await expectRefusal(.invalidArgument) { try await label(0, 1, "other") }
                guard case .labelAck(let first) = try await label(5, 1, "other").body else {
                    throw ClientError.unexpectedReply(expected: "label_ack", got: "")
                }
                try await expectRefusal(.invalidArgument) { try await label(3, 2, "other") }  // below 5, never used
                try await expectRefusal(.invalidArgument) { try await label(5, 1, "inflammatory") }  // 5 is another event
                try await expectRefusal(.invalidArgument) { try await label(5, 2, "other") }
                guard case .labelAck(let resent) = try await label(5, 1, "other").body else {
                    throw ClientError.unexpectedReply(expected: "label_ack", got: "")
                }
                #expect(resent.eventID == first.eventID && resent.durable)
                // Undo shares the numbering; its resend is acknowledged again, not refused as "nothing to undo".
                guard case .labelAck(let undone) = try await c.request(.undo(Undo(clientSeq: 6))).body
                else { throw ClientError.unexpectedReply(expected: "label_ack", got: "") }
                guard case .labelAck(let undoneAgain) = try await c.request(.undo(Undo(clientSeq: 6))).body
                else { throw ClientError.unexpectedReply(expected: "label_ack", got: "") }
                #expect(undoneAgain.eventID == undone.eventID && undoneAgain.cellID == 1)
                try await expectRefusal(.invalidArgument) { try await label(6, 1, "other") }
                guard case .sessionState(let state) = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til"))).body
                else { throw ClientError.unexpectedReply(expected: "session_state", got: "") }
                #expect(state.labelsDone == 0 && state.lastAckedSeq == 6)
            }
        }
    }

    /// The protocol: anything but a valid Hello first closes the connection; an undecodable frame got a non-fatal
    /// error.
    @Test func undecodableFrameBeforeHelloCloses() async throws {
        try await withDaemon { _, endpoint in
            let replies = try await withRawConnection(to: endpoint) { raw in
                try await raw.executeThenClose { inbound, outbound in
                    try await outbound.write(framed(bytes: [0x52, 0x7f, 0x01]))
                    try await outbound.write(framed(Envelope(requestID: 2, .bye(Bye(reason: "done")))))
                    return try await readAllFrames(inbound)
                }
            }
            guard replies.count == 1, case .error(let e) = replies[0].body else {
                Issue.record("expected one Error, got \(replies.map(\.body.name))")
                return
            }
            #expect(e.fatal)
        }
    }

    /// Found by fuzzing the handlers: a client that sent a large request and then bad frames, and read nothing until
    /// it had sent all, got neither the large reply in full nor the fatal error that said why the connection closed:
    /// closing dropped every write still waiting for the socket.
    @Test func aConnectionClosedByTheDaemonGetsEverythingWrittenFirst() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data, configure: { $0.maxFrameBytes = 64 << 20 }) { _, endpoint in
            let side: Int64 = 2048
            let replies = try await withRawConnection(to: endpoint) { raw in
                try await raw.executeThenClose { inbound, outbound in
                    try await outbound.write(framed(Envelope(requestID: 1, .hello(hello()))))
                    try await outbound.write(framed(Envelope(requestID: 2, .openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67")))))
                    let region = Region(x: 0, y: 0, width: side, height: side)
                    try await outbound.write(framed(Envelope(requestID: 3, .getPatch(GetPatch(target: .region(region), includePixels: true)))))
                    // An empty frame is bad framing: a fatal error, and the daemon closes.
                    try await outbound.write(framed(bytes: []))
                    return try await readAllFrames(inbound)
                }
            }
            #expect(replies.map(\.body.name) == ["welcome", "session_state", "patch", "error"])
            if replies.count > 2, case .patch(let patch) = replies[2].body { #expect(patch.pixels.count == Int(side * side) * 3) }
            if case .error(let last)? = replies.last?.body { #expect(last.fatal) }
        }
    }

    /// ListSlides listed slides an annotator may not open.
    @Test func slideListShowsOnlyWhatTheAnnotatorMayOpen() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            try await HaliConnection.withConnection(to: endpoint, hello: hello("restricted-token")) { c in
                let slides = try await c.slides()
                #expect(slides.isEmpty)
            }
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                let slides = try await c.slides()
                #expect(slides.map(\.id) == ["CMU-1-Small-Region"])
            }
        }
    }

    /// 1,024 connections that never sent Hello filled the limit and real annotators got RESOURCE_EXHAUSTED; none
    /// was ever closed. Now the oldest waiting connection makes room for each newcomer.
    @Test func idleConnectionsCannotLockAnnotatorsOut() async throws {
        raiseOpenFileLimit(to: 8192)
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            guard case .tcp(let host, let port) = endpoint else { return }
            var idle: [any Channel] = []
            defer { for channel in idle { channel.close(promise: nil) } }
            for _ in 0..<2_000 {
                idle.append(try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: host, port: port).get())
            }
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til")))
                guard
                    case .labelAck(let ack) = try await c.request(
                        .labelEvent(LabelEvent(clientSeq: 1, cellID: 3, className: "other", source: .manual, clientTimeMs: 0))
                    ).body
                else { throw ClientError.unexpectedReply(expected: "label_ack", got: "") }
                #expect(ack.durable)
                #expect(try await c.status().connections <= 33)
            }
            try await Task.sleep(for: .milliseconds(200))
            let open = idle.filter(\.isActive).count
            #expect(open <= 32, "\(open) of 2,000 idle connections still open (per-peer limit 32)")
        }
    }

    /// Nothing closed a silent connection, nor one sending a frame a byte at a time; now each is closed with a fatal
    /// Error that says why.
    @Test func silentSlowAndIdleConnectionsAreClosedWithAReason() async throws {
        try await withDaemon(configure: {
            $0.deadlines = .init(hello: .milliseconds(300), idle: .milliseconds(600), frame: .milliseconds(400), closeGrace: .milliseconds(200))
        }) { _, endpoint in
            func closing(_ send: @escaping @Sendable (NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Void) async throws -> [Envelope] {
                try await withRawConnection(to: endpoint) { raw in
                    try await raw.executeThenClose { inbound, outbound in
                        let writer = Task { try? await send(outbound) }
                        defer { writer.cancel() }
                        return try await readAllFrames(inbound)
                    }
                }
            }
            func fatalError(_ replies: [Envelope]) -> ErrorReply? {
                guard case .error(let e) = replies.last?.body, e.fatal else { return nil }
                return e
            }
            let silent = try await closing { _ in }
            #expect(fatalError(silent)?.code == .unauthenticated, "\(silent.map(\.body.name))")
            #expect(fatalError(silent)?.message.contains("no Hello") == true)

            let slow = try await closing { outbound in
                try await outbound.write(framed(Envelope(requestID: 1, .hello(hello()))))
                let ping = framed(Envelope(requestID: 2, .ping(Ping(nonce: 9, clientTimeNs: 0))))
                for i in 0..<ping.readableBytes {  // a byte every 100 ms: the 400 ms frame deadline ends it
                    try await outbound.write(ping.getSlice(at: i, length: 1)!)
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(slow.first?.body.name == "welcome")
            #expect(fatalError(slow)?.code == .malformedFrame && fatalError(slow)?.message.contains("not completed") == true)

            let quiet = try await closing { outbound in try await outbound.write(framed(Envelope(requestID: 1, .hello(hello())))) }
            #expect(quiet.first?.body.name == "welcome")
            #expect(fatalError(quiet)?.code == .unavailable && fatalError(quiet)?.message.contains("Ping") == true)
        }
    }

    /// A slide that failed at start was logged and skipped while the daemon listened with 0 slides; `--strict` now
    /// refuses to start, naming each slide and its reason.
    @Test func strictRefusesToStartWithoutEverySlide() async throws {
        var configuration = ServerConfiguration(
            listen: [.tcp(host: "127.0.0.1", port: 0)], annotators: try AnnotatorRegistry([Annotator(name: "a", token: "t")]),
            slidePaths: ["/definitely/missing.svs"])
        configuration.dataDirectory = NSTemporaryDirectory() + "halid-strict-\(getpid())"
        configuration.ingestMissing = false
        configuration.strict = true
        let daemon = try HaliDaemon(configuration: configuration, logger: .init(label: "strict"))
        // Whoever waits for the daemon to listen hears that it will not (it waited for good: hali-fuzz hung on it).
        async let bound = daemon.waitUntilListening()
        do {
            try await daemon.run()
            Issue.record("a strict daemon started without its slide")
        } catch let error as StartupError {
            #expect(error.message.contains("/definitely/missing.svs"))
        }
        #expect(await bound == [])
        #expect(await daemon.waitUntilListening() == [])
    }

    /// A data directory that is a file printed Foundation's "Cocoa error 512".
    @Test func aDataDirectoryThatIsAFileIsNamed() async throws {
        let file = NSTemporaryDirectory() + "halid-datadir-file-\(getpid())"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { unlink(file) }
        for path in [file, file + "/below"] {
            var configuration = ServerConfiguration(listen: [], annotators: try AnnotatorRegistry([]))
            configuration.dataDirectory = path
            do {
                _ = try HaliDaemon(configuration: configuration, logger: .init(label: "datadir"))
                Issue.record("a data directory under a file was accepted")
            } catch {
                #expect("\(error)".contains("\(file) is a file, not a directory") || "\(error)".contains("data directory is a file"), "\(error)")
            }
        }
    }
}

/// 2,000 sockets on each side of loopback need more than a common default of 1,024 descriptors.
func raiseOpenFileLimit(to wanted: rlim_t) {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wanted else { return }
    limit.rlim_cur = min(wanted, limit.rlim_max)
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}
