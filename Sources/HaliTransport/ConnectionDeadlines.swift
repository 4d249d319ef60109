public import NIOCore

/// Why a connection was closed for silence or slowness.
public struct DeadlineExceeded: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No successful Hello within `ConnectionDeadlines.Limits.hello` of connecting.
        case hello
        /// No complete frame within `idle` (an authenticated client keeps a quiet connection open with Ping).
        case idle
        /// A frame was begun and not finished within `frame` (a slow sender, one byte at a time).
        case frame
    }
    public var kind: Kind
    public var limit: TimeAmount
    public init(kind: Kind, limit: TimeAmount) {
        self.kind = kind
        self.limit = limit
    }
    public var description: String {
        let seconds = Double(limit.nanoseconds) / 1e9
        let s = seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
        return switch kind {
        case .hello: "no Hello within \(s) of connecting"
        case .idle: "no message for \(s) (send Ping to keep a quiet connection open)"
        case .frame: "a frame was not completed within \(s) of its first byte"
        }
    }
}

/// Deadlines that stop a connection from holding one of the daemon's slots without talking: a Hello deadline from
/// the moment of connecting, an idle deadline between whole frames, and a deadline for each frame once its first
/// byte has arrived (slowloris: one byte a second keeps a plain idle timer from ever firing).
///
/// Sits first in the pipeline, on the raw bytes, because only there does a half-sent frame show: `FrameDecoder`
/// still cuts the frames, and this handler follows the same 4-byte big-endian prefixes only to know where each
/// frame ends. It never buffers: bytes are passed on as they come.
///
/// When a deadline passes it fires `DeadlineExceeded` down the pipeline (the connection's task sees its inbound
/// stream end with that error, logs it and tries to send a fatal Error), and closes the channel `closeGrace` later
/// whatever the task managed, so a peer that does not read cannot keep the connection open either.
/// The connection's owner sends `ConnectionDeadlines.Authenticated()` as an inbound user event
/// (`pipeline.fireUserInboundEventTriggered`) once Hello succeeds, which ends the Hello deadline.
public final class ConnectionDeadlines: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    public struct Limits: Sendable, Equatable {
        public var hello: TimeAmount
        public var idle: TimeAmount
        public var frame: TimeAmount
        public var closeGrace: TimeAmount
        public init(
            hello: TimeAmount = .seconds(10), idle: TimeAmount = .seconds(900), frame: TimeAmount = .seconds(30), closeGrace: TimeAmount = .seconds(1)
        ) {
            self.hello = hello
            self.idle = idle
            self.frame = frame
            self.closeGrace = closeGrace
        }
    }

    /// The inbound user event that ends the Hello deadline.
    public struct Authenticated: Sendable, Equatable { public init() {} }

    private let limits: Limits
    private var helloTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var frameTimer: Scheduled<Void>?
    private var expired = false
    // Where the byte stream is: `prefixBytes` of the next length prefix seen, or `bodyRemaining` bytes still to come.
    private var prefixBytes = 0
    private var prefix: UInt32 = 0
    private var bodyRemaining = 0

    public init(limits: Limits) { self.limits = limits }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) { cancelAll() }

    public func channelInactive(context: ChannelHandlerContext) {
        cancelAll()
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Authenticated {
            helloTimer?.cancel()
            helloTimer = nil
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if follow(bytes) > 0 { arm(&idleTimer, .idle, limits.idle, context) }
        if prefixBytes == 0 && bodyRemaining == 0 {
            frameTimer?.cancel()
            frameTimer = nil
        } else if frameTimer == nil {
            arm(&frameTimer, .frame, limits.frame, context)
        }
        context.fireChannelRead(data)
    }

    /// Advances over `bytes`; returns how many frames ended in them.
    private func follow(_ bytes: ByteBuffer) -> Int {
        var completed = 0
        var index = bytes.readerIndex
        let end = bytes.writerIndex
        while index < end {
            if bodyRemaining > 0 {
                let step = min(bodyRemaining, end - index)
                bodyRemaining -= step
                index += step
                if bodyRemaining == 0 { completed += 1 }
            } else {
                prefix = prefix << 8 | UInt32(bytes.getInteger(at: index, as: UInt8.self)!)
                prefixBytes += 1
                index += 1
                if prefixBytes == 4 {
                    bodyRemaining = Int(prefix)
                    prefixBytes = 0
                    prefix = 0
                    // A zero length is FrameDecoder's to refuse; here it simply ends a frame.
                    if bodyRemaining == 0 { completed += 1 }
                }
            }
        }
        return completed
    }

    private func start(_ context: ChannelHandlerContext) {
        guard helloTimer == nil, idleTimer == nil, !expired else { return }
        arm(&helloTimer, .hello, limits.hello, context)
        arm(&idleTimer, .idle, limits.idle, context)
    }

    private func arm(_ timer: inout Scheduled<Void>?, _ kind: DeadlineExceeded.Kind, _ limit: TimeAmount, _ context: ChannelHandlerContext) {
        timer?.cancel()
        guard !expired else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { [self] in
            expire(DeadlineExceeded(kind: kind, limit: limit), context)
        }
    }

    private func expire(_ error: DeadlineExceeded, _ context: ChannelHandlerContext) {
        guard !expired else { return }
        expired = true
        cancelAll()
        context.fireErrorCaught(error)
        context.eventLoop.assumeIsolated().scheduleTask(in: limits.closeGrace) { context.close(promise: nil) }
    }

    private func cancelAll() {
        for timer in [helloTimer, idleTimer, frameTimer] { timer?.cancel() }
        (helloTimer, idleTimer, frameTimer) = (nil, nil, nil)
    }
}
