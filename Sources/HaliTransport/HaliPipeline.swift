public import HaliWire
public import NIOCore
import NIOExtras
import NIOSSL

/// The channel pipeline both ends use:
///
///     socket ⇄ [TLS (optional)] ⇄ [ConnectionDeadlines (daemon only)] ⇄ [FrameDecoder | LengthFieldPrepender(4, big-endian)] ⇄ [EnvelopeDecoder | EnvelopeEncoder] ⇄ app
///
/// The event loop only frames and (de)serialises; everything else happens in the tasks that own a connection.
public enum HaliPipeline {
    /// Adds the handlers; call from the channel's event loop (e.g. in a bootstrap's channel initializer).
    /// - Parameter deadlines: the daemon's side only: `ConnectionDeadlines` goes first, on the raw bytes.
    /// - Parameter tls: TLS goes first of all, so everything after it sees plaintext.
    public static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations, maxFrameBytes: Int, deadlines: ConnectionDeadlines.Limits? = nil, tls: TLSRole? = nil
    ) throws {
        switch tls {
        case .server(let context): try pipeline.addHandler(NIOSSLServerHandler(context: context))
        case .client(let context, let hostname): try pipeline.addHandler(try NIOSSLClientHandler(context: context, serverHostname: hostname))
        case nil: break
        }
        if let deadlines { try pipeline.addHandler(ConnectionDeadlines(limits: deadlines)) }
        try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
        try pipeline.addHandler(LengthFieldPrepender(lengthFieldLength: .four, lengthFieldEndianness: .big))
        try pipeline.addHandler(EnvelopeDecoder())
        try pipeline.addHandler(EnvelopeEncoder())
    }

    /// Wraps a configured channel for async use: inbound `InboundFrame`s, outbound `Envelope`s.
    public static func asyncChannel(
        _ channel: any Channel, maxFrameBytes: Int, deadlines: ConnectionDeadlines.Limits? = nil, tls: TLSRole? = nil
    ) throws -> NIOAsyncChannel<InboundFrame, Envelope> {
        try configure(channel.pipeline.syncOperations, maxFrameBytes: maxFrameBytes, deadlines: deadlines, tls: tls)
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
