// JPEG over libjpeg-turbo's TurboJPEG API, for pixels on the wire (GetPatch with PIXEL_FORMAT_JPEG).
//
// Why TurboJPEG and not libjpeg's own API: libjpeg reports errors by calling `error_exit`, which must longjmp out
// of the library, and Swift cannot set a jump target. TurboJPEG returns -1 and keeps the message on its handle, so
// every failure reaches Swift as a thrown error. Why JPEG at all: a 1,024² RGB8 patch is 3 MiB, 2.5 s on a
// 10 Mbit/s link; at quality 85 the same H&E patch is about a tenth of that (docs/benchmarks.md has the figures).
//
// Decoding treats the bytes as hostile: the header is read first and the size checked against the caller's bound
// before any pixel memory is allocated; a truncated or corrupt stream (libjpeg's warnings) is an error, not a
// half-grey picture; progressive files are limited in their number of scans.

import CTurboJPEG

public struct JPEGError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The one owner of a TurboJPEG handle: made per call (a handle is not thread-safe, and making one costs
/// microseconds against the milliseconds of a patch), destroyed when the call ends.
final class TurboJPEGHandle {
    let raw: tjhandle

    init(compressor: Bool) throws(JPEGError) {
        guard let raw = compressor ? tjInitCompress() : tjInitDecompress() else {
            throw JPEGError("cannot start libjpeg-turbo: \(String(cString: tjGetErrorStr2(nil)))")
        }
        self.raw = raw
    }

    deinit { tjDestroy(raw) }

    /// Throws the handle's last error, prefixed with what was being done.
    func check(_ status: Int32, _ doing: String) throws(JPEGError) {
        guard status == 0 else { throw JPEGError("\(doing): \(String(cString: tjGetErrorStr2(raw)))") }
    }
}

public enum JPEG {
    /// The quality the daemon uses when a client names none: visually lossless for H&E at the sizes shown.
    public static let defaultQuality = 85

    /// Encodes 8-bit RGB (row-major, no padding) as a baseline JFIF file with 4:2:0 chroma.
    ///
    /// - Parameter quality: 1…100 (clamped).
    /// - Complexity: O(width × height); about 10 ms per megapixel with libjpeg-turbo's SIMD on one core.
    public static func encode(rgb: [UInt8], width: Int, height: Int, quality: Int = defaultQuality) throws(JPEGError) -> [UInt8] {
        guard width > 0, height > 0, width <= Int(Int32.max) / 3, height <= Int(Int32.max) else {
            throw JPEGError("cannot encode a \(width)×\(height) image")
        }
        guard rgb.count == width * height * 3 else {
            throw JPEGError("\(rgb.count) bytes are not \(width)×\(height) RGB8 (\(width * height * 3))")
        }
        let handle = try TurboJPEGHandle(compressor: true)
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        defer { if let output { tjFree(output) } }
        let status = rgb.withUnsafeBufferPointer { source in
            tjCompress2(
                handle.raw, source.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue), &output, &size,
                Int32(TJSAMP_420.rawValue), Int32(min(100, max(1, quality))), TJFLAG_ACCURATEDCT)
        }
        try handle.check(status, "cannot encode JPEG")
        guard let output else { throw JPEGError("cannot encode JPEG: libjpeg-turbo returned no data") }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }

    /// A decoded image: 8-bit RGB, row-major.
    public struct Image: Equatable, Sendable {
        public var width: Int
        public var height: Int
        public var rgb: [UInt8]
    }

    /// Decodes a JPEG file to 8-bit RGB.
    ///
    /// - Parameter maxPixels: larger images are refused before any pixel memory is allocated.
    public static func decode(_ data: [UInt8], maxPixels: Int = 4096 * 4096) throws(JPEGError) -> Image {
        guard !data.isEmpty, data.count <= Int(UInt32.max) else { throw JPEGError("cannot decode JPEG: \(data.count) bytes") }
        let handle = try TurboJPEGHandle(compressor: false)
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = data.withUnsafeBufferPointer { source in
            tjDecompressHeader3(handle.raw, source.baseAddress, UInt(source.count), &width, &height, &subsampling, &colorspace)
        }
        try handle.check(header, "cannot read JPEG header")
        guard width > 0, height > 0, Int(width) * Int(height) <= maxPixels else {
            throw JPEGError("JPEG of \(width)×\(height) pixels is over the limit of \(maxPixels) pixels")
        }
        var rgb = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = data.withUnsafeBufferPointer { source in
            rgb.withUnsafeMutableBufferPointer { target in
                tjDecompress2(
                    handle.raw, source.baseAddress, UInt(source.count), target.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue),
                    TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS)
            }
        }
        try handle.check(status, "cannot decode JPEG")
        return Image(width: Int(width), height: Int(height), rgb: rgb)
    }
}
