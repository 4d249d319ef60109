import COpenSlide

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a slide could not be opened or read. Always names the file.
public struct SlideError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case fileNotFound
        case notASlide
        case openSlide
        case levelOutOfRange
        case regionOutOfBounds
        case regionTooLarge
    }
    public var kind: Kind
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// A whole-slide image opened through OpenSlide (3.4 API).
///
/// The one owner of an `openslide_t`. OpenSlide's header states that every function except `openslide_close` is
/// thread-safe, so reads may run concurrently from several tasks; close happens in `deinit`, when no reference is
/// left, which is exactly OpenSlide's requirement ("no other threads may be using the object").
///
/// OpenSlide's error is sticky: once set, every later call fails. `checked` reads it after every call and turns it
/// into a `SlideError`.
///
/// Coordinates: level-0 pixels, x = column, y = row, origin top-left.
public final class Slide: @unchecked Sendable {
    public let path: String
    public let vendor: String
    public let levelCount: Int
    /// (width, height) of each level, in that level's pixels.
    public let levelDimensions: [(width: Int64, height: Int64)]
    /// Level-0 pixels per pixel of each level.
    public let levelDownsamples: [Double]
    /// Microns per level-0 pixel from the slide's metadata (`openslide.mpp-x`/`-y`), nil when absent.
    public let micronsPerPixel: (x: Double, y: Double)?
    public let properties: [String: String]

    private let handle: OpaquePointer

    public var width: Int64 { levelDimensions[0].width }
    public var height: Int64 { levelDimensions[0].height }

    /// The largest region `readRegion` accepts, in pixels, so a wrong request cannot exhaust memory.
    public static let maxRegionPixels = 64 << 20

    /// The OpenSlide library version, e.g. "3.4.1".
    public static var libraryVersion: String { String(cString: openslide_get_version()) }

    public init(path: String) throws(SlideError) {
        self.path = path
        guard access(path, R_OK) == 0 else {
            throw SlideError(kind: .fileNotFound, path: path, message: "no readable file")
        }
        guard let vendor = openslide_detect_vendor(path) else {
            throw SlideError(
                kind: .notASlide, path: path,
                message: "not a slide OpenSlide can read (Aperio, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle, Ventana, generic tiled TIFF)")
        }
        self.vendor = String(cString: vendor)
        guard let handle = openslide_open(path) else {
            throw SlideError(kind: .notASlide, path: path, message: "OpenSlide could not open it (vendor \(self.vendor))")
        }
        self.handle = handle
        if let message = openslide_get_error(handle) {
            let text = String(cString: message)
            openslide_close(handle)
            throw SlideError(kind: .openSlide, path: path, message: "OpenSlide: \(text)")
        }

        let count = Int(openslide_get_level_count(handle))
        var dimensions: [(width: Int64, height: Int64)] = []
        var downsamples: [Double] = []
        for level in 0..<max(count, 0) {
            var w: Int64 = -1
            var h: Int64 = -1
            openslide_get_level_dimensions(handle, Int32(level), &w, &h)
            dimensions.append((w, h))
            downsamples.append(openslide_get_level_downsample(handle, Int32(level)))
        }
        var properties: [String: String] = [:]
        if let names = openslide_get_property_names(handle) {
            var i = 0
            while let name = names[i] {
                if let value = openslide_get_property_value(handle, name) {
                    properties[String(cString: name)] = String(cString: value)
                }
                i += 1
            }
        }
        if let message = openslide_get_error(handle) {
            let text = String(cString: message)
            openslide_close(handle)
            throw SlideError(kind: .openSlide, path: path, message: "OpenSlide: \(text)")
        }
        guard count > 0, dimensions[0].width > 0, dimensions[0].height > 0 else {
            openslide_close(handle)
            throw SlideError(kind: .notASlide, path: path, message: "OpenSlide reports no levels")
        }
        self.levelCount = count
        self.levelDimensions = dimensions
        self.levelDownsamples = downsamples
        self.properties = properties
        if let x = properties["openslide.mpp-x"].flatMap(Double.init), let y = properties["openslide.mpp-y"].flatMap(Double.init),
            x > 0, y > 0
        {
            self.micronsPerPixel = (x, y)
        } else {
            self.micronsPerPixel = nil
        }
    }

    deinit { openslide_close(handle) }

    /// Runs one OpenSlide call and converts a (sticky) error state into a `SlideError`.
    private func checked<R>(_ body: (OpaquePointer) -> R) throws(SlideError) -> R {
        let result = body(handle)
        if let message = openslide_get_error(handle) {
            throw SlideError(kind: .openSlide, path: path, message: "OpenSlide: \(String(cString: message))")
        }
        return result
    }

    /// The level whose downsample is closest below `downsample` (OpenSlide's own choice).
    public func bestLevel(forDownsample downsample: Double) throws(SlideError) -> Int {
        Int(try checked { openslide_get_best_level_for_downsample($0, downsample) })
    }

    /// Reads a region as packed RGB, 3 bytes per pixel, row-major.
    ///
    /// - Parameters:
    ///   - x, y: top-left corner in level-0 pixels.
    ///   - level: pyramid level to read from.
    ///   - width, height: size in pixels of `level`.
    /// - Returns: `width * height * 3` bytes. OpenSlide returns premultiplied ARGB; pixels are un-premultiplied
    ///   and composited over white, so glass outside the scanned area reads white as a viewer shows it.
    /// - Complexity: O(width × height) after OpenSlide decodes the covering tiles.
    public func readRegion(x: Int64, y: Int64, level: Int, width: Int, height: Int) throws(SlideError) -> [UInt8] {
        guard level >= 0, level < levelCount else {
            throw SlideError(kind: .levelOutOfRange, path: path, message: "level \(level) does not exist (slide has \(levelCount))")
        }
        guard width > 0, height > 0 else {
            throw SlideError(kind: .regionOutOfBounds, path: path, message: "empty region \(width)×\(height)")
        }
        guard width * height <= Self.maxRegionPixels else {
            throw SlideError(kind: .regionTooLarge, path: path, message: "region \(width)×\(height) exceeds \(Self.maxRegionPixels) pixels")
        }
        let downsample = levelDownsamples[level]
        let right = Double(x) + Double(width) * downsample
        let bottom = Double(y) + Double(height) * downsample
        guard x < self.width, y < self.height, right > 0, bottom > 0 else {
            throw SlideError(
                kind: .regionOutOfBounds, path: path,
                message: "region at (\(x), \(y)) size \(width)×\(height) at level \(level) lies outside the \(self.width)×\(self.height) slide")
        }
        var argb = [UInt32](repeating: 0, count: width * height)
        try argb.withUnsafeMutableBufferPointer { (buffer) throws(SlideError) in
            try checked { openslide_read_region($0, buffer.baseAddress, x, y, Int32(level), Int64(width), Int64(height)) }
        }
        var rgb = [UInt8](repeating: 255, count: width * height * 3)
        rgb.withUnsafeMutableBufferPointer { out in
            argb.withUnsafeBufferPointer { pixels in
                for i in 0..<pixels.count {
                    let p = pixels[i]
                    let a = p >> 24
                    if a == 255 {
                        out[3 * i] = UInt8(truncatingIfNeeded: p >> 16)
                        out[3 * i + 1] = UInt8(truncatingIfNeeded: p >> 8)
                        out[3 * i + 2] = UInt8(truncatingIfNeeded: p)
                    } else if a != 0 {
                        // Premultiplied: colour = c + (1 - a) * white.
                        let background = 255 - a
                        out[3 * i] = UInt8(min(255, ((p >> 16) & 0xff) + background))
                        out[3 * i + 1] = UInt8(min(255, ((p >> 8) & 0xff) + background))
                        out[3 * i + 2] = UInt8(min(255, (p & 0xff) + background))
                    }
                }
            }
        }
        return rgb
    }
}
