// PNG decoding over libpng's "simplified" API (png_image_begin_read_from_file / png_image_finish_read),
// which reports errors through `png_image.message` instead of longjmp, so it is safe to call from Swift.
//
// Supported: every PNG libpng reads (gray, gray+alpha, RGB, RGBA, palette; 1–16 bit). `readRGB` returns
// 8-bit RGB (alpha dropped, gray replicated, 16-bit reduced by libpng). `readGray16` returns 16-bit samples
// for 16-bit grayscale files (instance maps) exactly: libpng treats 16-bit data without a gAMA chunk as
// linear, so requesting PNG_FORMAT_LINEAR_Y does no conversion.

import CPNG
public import HaliImaging

public enum PNGError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, message: String)
    case decodeFailed(path: String, message: String)
    case unsupported(path: String, message: String)
    case encodeFailed(message: String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let m): return "cannot open PNG \(p): \(m)"
        case .decodeFailed(let p, let m): return "cannot decode PNG \(p): \(m)"
        case .unsupported(let p, let m): return "unsupported PNG \(p): \(m)"
        case .encodeFailed(let m): return "cannot encode PNG: \(m)"
        }
    }
}

/// Owns one `png_image` control structure and frees libpng's state when it goes away.
final class PNGReadSession {
    var image = png_image()
    let path: String

    init(path: String) throws {
        self.path = path
        image.version = UInt32(PNG_IMAGE_VERSION)
        if png_image_begin_read_from_file(&image, path) == 0 {
            let message = Self.message(of: image)
            png_image_free(&image)
            throw PNGError.cannotOpen(path: path, message: message)
        }
    }

    deinit { png_image_free(&image) }

    var width: Int { Int(image.width) }
    var height: Int { Int(image.height) }
    /// Format flags of the file as libpng describes it.
    var fileFormat: UInt32 { image.format }

    static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Decodes into 8-bit samples with the requested format (`channels` must match it).
    func finish8(format: UInt32, channels: Int) throws -> [UInt8] {
        image.format = format
        var buffer = [UInt8](repeating: 0, count: width * height * channels)
        let ok = buffer.withUnsafeMutableBytes { raw in
            png_image_finish_read(&image, nil, raw.baseAddress, 0, nil)
        }
        if ok == 0 { throw PNGError.decodeFailed(path: path, message: Self.message(of: image)) }
        return buffer
    }

    /// Decodes into 16-bit samples (PNG_FORMAT_FLAG_LINEAR formats).
    func finish16(format: UInt32, channels: Int) throws -> [UInt16] {
        image.format = format
        var buffer = [UInt16](repeating: 0, count: width * height * channels)
        let ok = buffer.withUnsafeMutableBytes { raw in
            png_image_finish_read(&image, nil, raw.baseAddress, 0, nil)
        }
        if ok == 0 { throw PNGError.decodeFailed(path: path, message: Self.message(of: image)) }
        return buffer
    }
}

/// A 16-bit single-channel image (e.g. an instance map: 0 = background, k = instance id).
public struct Gray16Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var samples: [UInt16]

    public init(width: Int, height: Int, samples: [UInt16]) {
        self.width = width
        self.height = height
        self.samples = samples
    }
}

public enum PNGReader {
    /// Width and height without decoding the pixels.
    public static func dimensions(path: String) throws -> (width: Int, height: Int) {
        let s = try PNGReadSession(path: path)
        return (s.width, s.height)
    }

    /// Reads any PNG as 8-bit RGB.
    public static func readRGB(path: String) throws -> RGBImage {
        let s = try PNGReadSession(path: path)
        let px = try s.finish8(format: UInt32(PNG_FORMAT_RGB), channels: 3)
        return RGBImage(width: s.width, height: s.height, pixels: px)
    }

    /// Reads a 16-bit grayscale PNG without conversion. Throws `unsupported` for other layouts.
    public static func readGray16(path: String) throws -> Gray16Image {
        let s = try PNGReadSession(path: path)
        let f = s.fileFormat
        let isLinear = f & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        let isColor = f & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let isMapped = f & UInt32(PNG_FORMAT_FLAG_COLORMAP) != 0
        guard isLinear && !isColor && !isMapped else {
            throw PNGError.unsupported(path: path, message: "expected a 16-bit grayscale PNG (format flags \(f))")
        }
        let px = try s.finish16(format: UInt32(PNG_FORMAT_LINEAR_Y), channels: 1)
        return Gray16Image(width: s.width, height: s.height, samples: px)
    }
}
