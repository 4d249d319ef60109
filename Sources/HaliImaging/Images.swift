// Image buffers used by the nucleus detector.
//
// Layout (all buffers): row-major, "document" order. Row index = y (0 at the top), column index = x
// (0 at the left); the sample of pixel (x, y) is at `y * width + x` (times the channel count for
// interleaved colour). Coordinates of pixel centres are the integers (x, y); pixel (x, y) covers
// [x − ½, x + ½] × [y − ½, y + ½]. All types are value types (copy-on-write arrays) and `Sendable`, so a
// detector can run on many tiles concurrently without shared state.

/// An 8-bit interleaved RGB image (3 bytes per pixel, R G B), e.g. a tile read from a slide or a PNG.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, row-major, interleaved R, G, B.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(
            width >= 0 && height >= 0 && pixels.count == width * height * 3,
            "RGBImage: pixels.count must be width*height*3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Builds an RGB image from interleaved samples with `channels` per pixel (1 = gray, 2 = gray+alpha,
    /// 3 = RGB, 4 = RGBA). Alpha is ignored (tiles are treated as opaque).
    public init(width: Int, height: Int, interleaved: [UInt8], channels: Int) {
        precondition(channels >= 1 && channels <= 4 && interleaved.count == width * height * channels)
        if channels == 3 {
            self.init(width: width, height: height, pixels: interleaved)
            return
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            if channels <= 2 {
                let g = interleaved[i * channels]
                out[3 * i] = g; out[3 * i + 1] = g; out[3 * i + 2] = g
            } else {
                out[3 * i] = interleaved[i * channels]
                out[3 * i + 1] = interleaved[i * channels + 1]
                out[3 * i + 2] = interleaved[i * channels + 2]
            }
        }
        self.init(width: width, height: height, pixels: out)
    }

    @inlinable public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// A single-channel 32-bit float image (optical densities, filter responses, distances).
public struct FloatImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height` samples, row-major.
    public var data: [Float]

    public init(width: Int, height: Int, data: [Float]) {
        precondition(
            width >= 0 && height >= 0 && data.count == width * height,
            "FloatImage: data.count must be width*height")
        self.width = width
        self.height = height
        self.data = data
    }

    public init(width: Int, height: Int, fill: Float = 0) {
        self.init(width: width, height: height, data: [Float](repeating: fill, count: width * height))
    }

    @inlinable public var count: Int { width * height }

    @inlinable public subscript(x: Int, y: Int) -> Float {
        get { data[y * width + x] }
        set { data[y * width + x] = newValue }
    }
}

/// A label image: 0 = background, 1...n = object ids (e.g. watershed basins, nuclei).
public struct LabelImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height` labels, row-major.
    public var labels: [Int32]

    public init(width: Int, height: Int, labels: [Int32]) {
        precondition(
            width >= 0 && height >= 0 && labels.count == width * height,
            "LabelImage: labels.count must be width*height")
        self.width = width
        self.height = height
        self.labels = labels
    }

    public init(width: Int, height: Int) {
        self.init(width: width, height: height, labels: [Int32](repeating: 0, count: width * height))
    }

    @inlinable public subscript(x: Int, y: Int) -> Int32 {
        get { labels[y * width + x] }
        set { labels[y * width + x] = newValue }
    }

    /// The largest label present (0 for an empty image).
    public var maxLabel: Int32 { labels.max() ?? 0 }
}

/// A binary mask stored one byte per pixel (0 = false, anything else = true).
public struct BinaryImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var bits: [UInt8]

    public init(width: Int, height: Int, bits: [UInt8]) {
        precondition(
            width >= 0 && height >= 0 && bits.count == width * height,
            "BinaryImage: bits.count must be width*height")
        self.width = width
        self.height = height
        self.bits = bits
    }

    public init(width: Int, height: Int) {
        self.init(width: width, height: height, bits: [UInt8](repeating: 0, count: width * height))
    }

    @inlinable public subscript(x: Int, y: Int) -> Bool {
        get { bits[y * width + x] != 0 }
        set { bits[y * width + x] = newValue ? 1 : 0 }
    }
}
