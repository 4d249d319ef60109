// PNG encoding over libpng's simplified write API (png_image_write_to_memory), the counterpart of PNGReader: errors
// come back in `png_image.message`, never through longjmp. 8-bit RGB in, a complete PNG file out.

import CPNG
public import HaliImaging

public enum PNGWriter {
    /// The PNG file of `rgb` (width × height × 3 bytes, rows top to bottom).
    public static func encode(width: Int, height: Int, rgb: [UInt8]) throws -> [UInt8] {
        // png_image holds 32-bit sizes; the byte count must match what libpng will read.
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, width <= Int(UInt32.max) / 3, height <= Int(UInt32.max), !overflow, pixels == rgb.count / 3,
            rgb.count % 3 == 0
        else {
            throw PNGError.unsupported(path: "(memory)", message: "\(rgb.count) bytes are not \(width)×\(height) RGB pixels")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        defer { png_image_free(&image) }
        // First call: the size; second: the bytes (libpng's documented two-pass use).
        var size = 0
        let sized = rgb.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard sized != 0, size > 0 else { throw PNGError.encodeFailed(message: PNGReadSession.message(of: image)) }
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBytes { buffer in
            rgb.withUnsafeBytes { png_image_write_to_memory(&image, buffer.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard written != 0 else { throw PNGError.encodeFailed(message: PNGReadSession.message(of: image)) }
        return Array(out.prefix(size))
    }
}

extension Canvas {
    /// The canvas as a PNG file.
    public func png() throws -> [UInt8] { try PNGWriter.encode(width: width, height: height, rgb: rgb) }
}
