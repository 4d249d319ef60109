import HaliTransport
import HaliWire
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

private func frame(_ body: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(body.count), endianness: .big)
    buffer.writeBytes(body)
    return buffer
}

@Suite struct FrameDecoderTests {
    @Test func passesNIOsDecoderVerifier() throws {
        // Drip-feeds one byte at a time, coalesces, and checks leftovers.
        let pairs: [(ByteBuffer, [ByteBuffer])] = [
            (frame([1]), [ByteBuffer(bytes: [1])]),
            (frame([1, 2, 3, 4, 5]), [ByteBuffer(bytes: [1, 2, 3, 4, 5])]),
            (frame(Array(repeating: 7, count: 300)), [ByteBuffer(bytes: Array(repeating: 7, count: 300))]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder(maxFrameBytes: 1024) }
    }

    @Test func truncatedFrameWaitsAndIsDroppedAtEOF() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        var partial = frame([9, 9, 9, 9, 9, 9])
        partial.moveWriterIndex(to: partial.writerIndex - 2)
        try channel.writeInbound(partial)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        // A header alone, too.
        var header = ByteBuffer()
        header.writeInteger(UInt16(0), endianness: .big)
        let headerChannel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        try headerChannel.writeInbound(header)
        #expect(try headerChannel.readInbound(as: ByteBuffer.self) == nil)
        _ = try? channel.finish()
        _ = try? headerChannel.finish()
    }

    @Test func oversizedLengthIsRefusedFromTheHeaderAlone() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        var header = ByteBuffer()
        header.writeInteger(UInt32(1025), endianness: .big)  // only the 4 length bytes: no body sent at all
        #expect(throws: FrameError(kind: .tooLarge(length: 1025, limit: 1024))) { try channel.writeInbound(header) }
        _ = try? channel.finish()
    }

    @Test func hugeLengthIsRefused() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 16 << 20)))
        var header = ByteBuffer()
        header.writeInteger(UInt32.max, endianness: .big)
        #expect(throws: FrameError.self) { try channel.writeInbound(header) }
        _ = try? channel.finish()
    }

    @Test func zeroLengthIsRefused() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        #expect(throws: FrameError(kind: .zeroLength)) { try channel.writeInbound(frame([])) }
        _ = try? channel.finish()
    }

    @Test func exactlyTheLimitIsAccepted() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1024)))
        try channel.writeInbound(frame(Array(repeating: 1, count: 1024)))
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == 1024)
        #expect(try channel.finish().isClean)
    }

    @Test func seededRandomStreamsNeverCrashAndFramesStayWithinLimit() throws {
        var state: UInt64 = 0xDEAD_BEEF_CAFE_F00D
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        for _ in 0..<500 {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64)))
            let bytes = (0..<Int(next() % 200)).map { _ in UInt8(truncatingIfNeeded: next() % 3 == 0 ? 0 : next()) }
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes))
                while let out = try channel.readInbound(as: ByteBuffer.self) {
                    #expect(out.readableBytes > 0 && out.readableBytes <= 64)
                }
            } catch is FrameError {
                // Expected for most random headers.
            }
            _ = try? channel.finish()
        }
    }
}

@Suite struct PipelineTests {
    /// Both ends' pipelines wired back to back through EmbeddedChannels: envelopes in, envelopes out.
    @Test func envelopeCrossesThePipeline() throws {
        let sender = EmbeddedChannel()
        try HaliPipeline.configure(sender.pipeline.syncOperations, maxFrameBytes: 1 << 20)
        let receiver = EmbeddedChannel()
        try HaliPipeline.configure(receiver.pipeline.syncOperations, maxFrameBytes: 1 << 20)

        let envelopes = [
            Envelope(requestID: 1, .hello(Hello(clientName: "t", token: "x"))),
            Envelope(requestID: 2, .ping(Ping(nonce: 3, clientTimeNs: 4))),
        ]
        for envelope in envelopes { try sender.writeOutbound(envelope) }
        while let bytes = try sender.readOutbound(as: ByteBuffer.self) { try receiver.writeInbound(bytes) }
        #expect(try receiver.readInbound(as: InboundFrame.self) == .envelope(envelopes[0]))
        #expect(try receiver.readInbound(as: InboundFrame.self) == .envelope(envelopes[1]))
        #expect(try receiver.readInbound(as: InboundFrame.self) == nil)
        _ = try sender.finish()
        _ = try receiver.finish()
    }

    @Test func undecodableBodyIsPassedOnNotThrown() throws {
        let receiver = EmbeddedChannel()
        try HaliPipeline.configure(receiver.pipeline.syncOperations, maxFrameBytes: 1 << 20)
        try receiver.writeInbound(frame([0x52, 0x7f, 0x01]))
        guard case .undecodable(let error) = try receiver.readInbound(as: InboundFrame.self) else {
            Issue.record("expected an undecodable frame")
            return
        }
        #expect(error.kind == .malformed)
        _ = try receiver.finish()
    }
}

/// `ConnectionDeadlines` on NIO's embedded loop, whose clock only moves when told.
@Suite struct ConnectionDeadlinesTests {
    let limits = ConnectionDeadlines.Limits(hello: .seconds(10), idle: .seconds(100), frame: .seconds(30), closeGrace: .seconds(1))

    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: ConnectionDeadlines(limits: limits))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func expired(_ channel: EmbeddedChannel) -> DeadlineExceeded? {
        do {
            try channel.throwIfErrorCaught()
            return nil
        } catch {
            return error as? DeadlineExceeded
        }
    }

    @Test func silenceAfterConnectingEndsAtTheHelloDeadline() throws {
        let channel = try channel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(expired(channel) == nil && channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(expired(channel) == DeadlineExceeded(kind: .hello, limit: .seconds(10)))
        #expect(channel.isActive, "the connection's task gets the close grace to say why")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func helloEndsTheHelloDeadlineAndFramesKeepTheConnectionOpen() throws {
        let channel = try channel()
        try channel.writeInbound(frame([1, 2, 3]))
        channel.pipeline.fireUserInboundEventTriggered(ConnectionDeadlines.Authenticated())
        for _ in 0..<5 {  // 450 s in all, a frame every 90 s: under the 100 s idle limit each time
            channel.embeddedEventLoop.advanceTime(by: .seconds(90))
            try channel.writeInbound(frame([4]))
        }
        #expect(expired(channel) == nil && channel.isActive)
        // Bytes pass through untouched (FrameDecoder, not this handler, cuts frames).
        #expect(try channel.readInbound(as: ByteBuffer.self) == frame([1, 2, 3]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(100))
        #expect(expired(channel) == DeadlineExceeded(kind: .idle, limit: .seconds(100)))
    }

    /// One byte a second resets a plain idle timer for ever; the frame deadline counts from the frame's first byte.
    @Test func aFrameSentOneByteASecondIsCutOff() throws {
        let channel = try channel()
        channel.pipeline.fireUserInboundEventTriggered(ConnectionDeadlines.Authenticated())
        let slow = frame(Array(repeating: 7, count: 100))
        for i in 0..<29 {
            try channel.writeInbound(slow.getSlice(at: i, length: 1)!)
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        #expect(expired(channel) == nil)
        try channel.writeInbound(slow.getSlice(at: 29, length: 1)!)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(expired(channel) == DeadlineExceeded(kind: .frame, limit: .seconds(30)))
    }

    /// Frames split anywhere, prefixes included, and several in one read: the handler follows them all.
    @Test func framesSplitAcrossReadsAreFollowed() throws {
        let channel = try channel()
        channel.pipeline.fireUserInboundEventTriggered(ConnectionDeadlines.Authenticated())
        var stream = frame([1, 2, 3, 4, 5])
        stream.writeImmutableBuffer(frame([6]))
        stream.writeImmutableBuffer(frame(Array(repeating: 9, count: 300)))
        // Cut inside the first prefix, inside a body, and between frames.
        for (start, end) in [(0, 2), (2, 7), (7, 9), (9, 14), (14, 200), (200, stream.readableBytes)] {
            try channel.writeInbound(stream.getSlice(at: start, length: end - start)!)
            channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        }
        // 60 s in all, no frame took 30 s; the last read ended the last frame (at 50 s), so no frame deadline runs
        // and the idle one ends at 150 s.
        #expect(expired(channel) == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(89))
        #expect(expired(channel) == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(expired(channel)?.kind == .idle)
    }
}
