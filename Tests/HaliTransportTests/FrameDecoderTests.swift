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
