import CZstd

public struct ZstdError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

/// zstd compression of whole buffers (the slide index's columns).
///
/// The one owner of libzstd in HALI. Each call makes and frees its own context, so there is no
/// shared state and calls may run on any thread. Decompression is bounded by the frame's declared content size and
/// by an explicit cap, so a corrupt or hostile file cannot make it allocate without limit.
public enum Zstd {
    public static var libraryVersion: String { String(cString: ZSTD_versionString()) }

    /// Compresses one buffer into one frame that records its size and, when `checksum` is set, an xxHash-64 of
    /// the content, so a flipped bit anywhere in the frame is caught on decompression.
    public static func compress(_ input: [UInt8], level: Int32 = 3, checksum: Bool = true) throws(ZstdError) -> [UInt8] {
        guard let context = ZSTD_createCCtx() else { throw ZstdError(description: "zstd: cannot create a context") }
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0)
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { inp in ZSTD_compress2(context, out.baseAddress, bound, inp.baseAddress, inp.count) }
        }
        if ZSTD_isError(written) != 0 { throw ZstdError(description: "zstd compress: " + String(cString: ZSTD_getErrorName(written))) }
        output.removeSubrange(written...)
        return output
    }

    /// - Parameter maxOutputBytes: refuse frames that declare (or need) more than this.
    public static func decompress(_ input: [UInt8], maxOutputBytes: Int = 1 << 31) throws(ZstdError) -> [UInt8] {
        let declared = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // ZSTD_CONTENTSIZE_ERROR = -2, ZSTD_CONTENTSIZE_UNKNOWN = -1 (as unsigned long long).
        if declared == UInt64.max - 1 { throw ZstdError(description: "zstd decompress: not a zstd frame") }
        if declared == UInt64.max {
            throw ZstdError(description: "zstd decompress: frame does not declare its size (HALI always writes it)")
        }
        guard declared <= UInt64(maxOutputBytes) else {
            throw ZstdError(description: "zstd decompress: frame declares \(declared) bytes, over the \(maxOutputBytes)-byte cap")
        }
        var output = [UInt8](repeating: 0, count: Int(declared))
        let written = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { inp in ZSTD_decompress(out.baseAddress, out.count, inp.baseAddress, inp.count) }
        }
        if ZSTD_isError(written) != 0 { throw ZstdError(description: "zstd decompress: " + String(cString: ZSTD_getErrorName(written))) }
        guard written == Int(declared) else {
            throw ZstdError(description: "zstd decompress: got \(written) bytes, frame declared \(declared)")
        }
        return output
    }

    /// One frame compressed from a stream of chunks, for columns too large to hold whole (a whole slide's outlines).
    /// The frame records `contentSize` (given up front) and a checksum, like `compress`, so `decompress` reads it
    /// alike. One owner of its context; not for concurrent use.
    public final class StreamCompressor {
        private let context: OpaquePointer
        private var buffer: [UInt8]

        public init(contentSize: Int, level: Int32 = 3, checksum: Bool = true) throws(ZstdError) {
            guard let context = ZSTD_createCCtx() else { throw ZstdError(description: "zstd: cannot create a context") }
            self.context = context
            ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
            ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0)
            ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
            ZSTD_CCtx_setPledgedSrcSize(context, UInt64(contentSize))
            buffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        }

        deinit { ZSTD_freeCCtx(context) }

        /// Compresses `input` (the next part of the content), handing each compressed piece to `sink`.
        public func add(_ input: UnsafeRawBufferPointer, to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            try run(input, ZSTD_e_continue, sink)
        }

        /// Ends the frame (after exactly `contentSize` bytes were added).
        public func finish(to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            try run(UnsafeRawBufferPointer(start: nil, count: 0), ZSTD_e_end, sink)
        }

        private func run(_ input: UnsafeRawBufferPointer, _ mode: ZSTD_EndDirective, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
            let capacity = buffer.count
            while true {
                let (remaining, produced) = buffer.withUnsafeMutableBytes { out -> (Int, Int) in
                    var target = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                    let r = ZSTD_compressStream2(context, &target, &source, mode)
                    return (r, target.pos)
                }
                if ZSTD_isError(remaining) != 0 {
                    throw ZstdError(description: "zstd compress: " + String(cString: ZSTD_getErrorName(remaining)))
                }
                try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
                let drained = mode == ZSTD_e_end ? remaining == 0 : source.pos == source.size
                if drained { return }
            }
        }
    }
}
