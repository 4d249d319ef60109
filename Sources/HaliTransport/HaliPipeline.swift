import HaliWire
import NIOCore
import NIOExtras

/// The channel pipeline both ends use:
///
///     socket ⇄ [FrameDecoder | LengthFieldPrepender(4, big-endian)] ⇄ [EnvelopeDecoder | EnvelopeEncoder] ⇄ app
///
/// The event loop only frames and (de)serialises; everything else happens in the tasks that own a connection.
public enum HaliPipeline {
    /// Adds the handlers; call from the channel's event loop (e.g. in a bootstrap's channel initializer).
    public static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, maxFrameBytes: Int) throws {
        try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
        try pipeline.addHandler(LengthFieldPrepender(lengthFieldLength: .four, lengthFieldEndianness: .big))
        try pipeline.addHandler(EnvelopeDecoder())
        try pipeline.addHandler(EnvelopeEncoder())
    }

    /// Wraps a configured channel for async use: inbound `InboundFrame`s, outbound `Envelope`s.
    public static func asyncChannel(_ channel: any Channel, maxFrameBytes: Int) throws -> NIOAsyncChannel<InboundFrame, Envelope> {
        try configure(channel.pipeline.syncOperations, maxFrameBytes: maxFrameBytes)
        return try NIOAsyncChannel(
            wrappingChannelSynchronously: channel,
            configuration: .init(
                // Low watermarks keep a stalled client from making the daemon buffer without bound (backpressure).
                backPressureStrategy: .init(lowWatermark: 4, highWatermark: 32),
                isOutboundHalfClosureEnabled: false,
                inboundType: InboundFrame.self,
                outboundType: Envelope.self))
    }
}
