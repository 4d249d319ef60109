public import NIOCore

/// Why the byte stream could not be cut into frames. Both are fatal for the connection: after them the stream
/// position is unknown, so the daemon answers with an Error and closes.
public struct FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case tooLarge(length: Int, limit: Int)
        case zeroLength
    }
    public var kind: Kind
    public init(kind: Kind) { self.kind = kind }
    /// Whether the "length" was really the start of a TLS record (handshake 0x16 or alert 0x15, version 3.x): a
    /// plaintext peer talking to a TLS one, or the reverse, which deserves a plainer message than a frame size.
    public var looksLikeTLS: Bool {
        guard case .tooLarge(let length, _) = kind else { return false }
        return [0x15, 0x16].contains(length >> 24) && (length >> 16) & 0xff == 0x03
    }

    public var description: String {
        if looksLikeTLS { return "the peer speaks TLS and this side does not (or the reverse)" }
        return switch kind {
        case .tooLarge(let length, let limit): "frame of \(length) bytes exceeds the \(limit)-byte limit"
        case .zeroLength: "zero-length frame (a frame holds one non-empty envelope)"
        }
    }
}

/// Cuts a byte stream into frames: a 4-byte big-endian length N, then N bytes.
///
/// swift-nio-extras' `LengthFieldBasedFrameDecoder` has no maximum and would buffer a hostile 4 GiB frame until
/// it arrived; this decoder reads the length first and throws `FrameError.tooLarge` before a single body byte is
/// buffered beyond what one socket read brought in. Frames are emitted as slices of the cumulation buffer (no copy).
/// The encoding side is swift-nio-extras' `LengthFieldPrepender` (`.four`, big-endian): see `HaliPipeline`.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes > 0 && maxFrameBytes <= Int(UInt32.max))
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        let bodyLength = Int(length)
        guard bodyLength > 0 else { throw FrameError(kind: .zeroLength) }
        guard bodyLength <= maxFrameBytes else { throw FrameError(kind: .tooLarge(length: bodyLength, limit: maxFrameBytes)) }
        guard buffer.readableBytes >= 4 + bodyLength else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: bodyLength)!))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // Bytes of an incomplete frame at EOF are dropped: the peer went away mid-frame.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
