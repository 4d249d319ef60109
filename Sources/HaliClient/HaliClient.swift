public import HaliCore
import HaliTransport
public import HaliWire
import NIOCore
import NIOPosix
public import NIOSSL

public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// The daemon answered with an Error message.
    case server(ErrorReply)
    /// The daemon closed the connection before answering.
    case connectionClosed
    /// The daemon answered with something other than what the request calls for.
    case unexpectedReply(expected: String, got: String)
    case connectFailed(Endpoint, String)

    public var description: String {
        switch self {
        case .server(let reply): "daemon error \(reply.code): \(reply.message)"
        case .connectionClosed: "the daemon closed the connection"
        case .unexpectedReply(let expected, let got): "expected \(expected) from the daemon, got \(got)"
        case .connectFailed(let endpoint, let reason): "cannot connect to \(endpoint): \(reason)"
        }
    }
}

/// A connection to a HALI daemon that has completed the Hello/Welcome handshake.
///
/// Requests are answered in order; messages the daemon streams on its own (request id 0, e.g. Predictions) that
/// arrive while a reply is awaited are kept in `unsolicited` for the caller.
public final class HaliConnection {
    public let welcome: Welcome
    public private(set) var unsolicited: [Envelope] = []
    private var inbound: NIOAsyncChannelInboundStream<InboundFrame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<Envelope>
    private var nextRequestID: UInt64 = 1

    fileprivate init(
        welcome: Welcome, inbound: NIOAsyncChannelInboundStream<InboundFrame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<Envelope>, nextRequestID: UInt64
    ) {
        self.welcome = welcome
        self.inbound = inbound
        self.outbound = outbound
        self.nextRequestID = nextRequestID
    }

    /// Connects, says Hello, and runs `body` with the authenticated connection; closes it afterwards.
    ///
    /// - Throws: `ClientError.server` when the daemon refuses the handshake (unknown token, wrong version).
    /// - Parameter tls: a client context (`HaliTLS.clientContext`) to speak TLS over TCP, verifying the daemon's
    ///   certificate against the host name connected to.
    public static func withConnection<Result>(
        to endpoint: Endpoint, hello: Hello, maxFrameBytes: Int = defaultMaxFrameBytes, tls: NIOSSLContext? = nil,
        _ body: (HaliConnection) async throws -> Result
    ) async throws -> Result {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        let channel: NIOAsyncChannel<InboundFrame, Envelope>
        do {
            switch endpoint {
            case .tcp(let host, let port):
                // SNI and the certificate's name check want a name; an IP literal is still verified (against the
                // certificate's IP addresses) but not sent as SNI, which must not carry one.
                let role = tls.map { TLSRole.client($0, serverHostname: host.first?.isLetter == true ? host : nil) }
                channel = try await bootstrap.connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try HaliPipeline.asyncChannel(channel, maxFrameBytes: maxFrameBytes, tls: role) }
                }
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture { try HaliPipeline.asyncChannel(channel, maxFrameBytes: maxFrameBytes) }
                }
            }
        } catch {
            throw ClientError.connectFailed(endpoint, "\(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            let frame: InboundFrame?
            do {
                do {
                    try await outbound.write(Envelope(requestID: 1, .hello(hello)))
                } catch {
                    // The write can lose the race with a failed TLS handshake ("I/O on closed channel"); the inbound
                    // side carries the reason.
                    _ = try await iterator.next()
                    throw error
                }
                frame = try await iterator.next()
            } catch let error as NIOSSLError {
                throw ClientError.connectFailed(endpoint, "TLS handshake failed: \(error)")
            } catch let error as BoringSSLError {
                throw ClientError.connectFailed(endpoint, "TLS: \(error)")
            } catch let error as FrameError where error.looksLikeTLS {
                throw ClientError.connectFailed(endpoint, "the daemon speaks TLS: connect with --tls-ca FILE (its certificate or CA) or --tls")
            } catch let error where tls != nil && !(error is ClientError) {
                throw ClientError.connectFailed(endpoint, "TLS handshake failed: \(error)")
            }
            guard let frame else { throw ClientError.connectionClosed }
            let reply = try Self.unwrap(frame)
            let welcome: Welcome
            switch reply.body {
            case .welcome(let w): welcome = w
            case .error(let e): throw ClientError.server(e)
            default: throw ClientError.unexpectedReply(expected: "welcome", got: reply.body.name)
            }
            let connection = HaliConnection(welcome: welcome, inbound: iterator, outbound: outbound, nextRequestID: 2)
            let result = try await body(connection)
            try? await outbound.write(Envelope(.bye(Bye(reason: "client done"))))
            return result
        }
    }

    private static func unwrap(_ frame: InboundFrame) throws -> Envelope {
        switch frame {
        case .envelope(let envelope): return envelope
        case .undecodable(let error): throw error
        }
    }

    /// Sends one request and waits for the reply carrying its request id. An Error reply is thrown.
    public func request(_ body: Body) async throws -> Envelope {
        let id = nextRequestID
        nextRequestID += 1
        try await outbound.write(Envelope(requestID: id, body))
        while true {
            guard let frame = try await inbound.next() else { throw ClientError.connectionClosed }
            let envelope = try Self.unwrap(frame)
            if envelope.requestID == id {
                if case .error(let e) = envelope.body { throw ClientError.server(e) }
                return envelope
            }
            if case .error(let e) = envelope.body, e.fatal { throw ClientError.server(e) }
            unsolicited.append(envelope)
        }
    }

    /// Sends a message without waiting for anything.
    public func send(_ envelope: Envelope) async throws { try await outbound.write(envelope) }

    /// The next message from the daemon, whatever it is; nil when the daemon closed the connection.
    public func receive() async throws -> Envelope? {
        if !unsolicited.isEmpty { return unsolicited.removeFirst() }
        guard let frame = try await inbound.next() else { return nil }
        return try Self.unwrap(frame)
    }

    /// One Ping/Pong round trip; returns the measured round-trip time.
    public func ping() async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        let reply = try await request(.ping(Ping(nonce: nextRequestID, clientTimeNs: 0)))
        let elapsed = clock.now - start
        guard case .pong = reply.body else { throw ClientError.unexpectedReply(expected: "pong", got: reply.body.name) }
        return elapsed
    }

    public func status() async throws -> ServerStatus {
        let reply = try await request(.getStatus)
        guard case .serverStatus(let status) = reply.body else {
            throw ClientError.unexpectedReply(expected: "server_status", got: reply.body.name)
        }
        return status
    }

    public func slides() async throws -> [SlideInfo] {
        let reply = try await request(.listSlides)
        guard case .slideList(let slides) = reply.body else {
            throw ClientError.unexpectedReply(expected: "slide_list", got: reply.body.name)
        }
        return slides
    }
}
