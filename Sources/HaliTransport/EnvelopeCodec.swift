public import HaliWire
public import NIOCore

/// One inbound frame after protobuf decoding. A frame that does not decode is passed on (not thrown), so the
/// connection can answer it with an Error and carry on.
public enum InboundFrame: Sendable, Equatable {
    case envelope(Envelope)
    case undecodable(WireError)
}

/// Frame body (ByteBuffer) → `InboundFrame`, through `WireCodec` (protobuf-c).
public final class EnvelopeDecoder: ChannelInboundHandler, Sendable {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = InboundFrame

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let decoded: InboundFrame = frame.withUnsafeReadableBytes { bytes in
            do throws(WireError) { return .envelope(try WireCodec.decode(bytes)) } catch { return .undecodable(error) }
        }
        context.fireChannelRead(wrapInboundOut(decoded))
    }
}

/// `Envelope` → frame body (ByteBuffer); the length prefix is added by `LengthFieldPrepender` next in the pipeline.
public final class EnvelopeEncoder: ChannelOutboundHandler, Sendable {
    public typealias OutboundIn = Envelope
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = WireCodec.encode(unwrapOutboundIn(data))
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}
