import HaliCore
import HaliJPEG
import HaliSlide

/// How a patch's pixels leave the engine.
public enum PixelEncoding: Sendable, Hashable {
    /// Row-major RGB8, 3 bytes per pixel: exact, and ~3 MiB for a 1,024² patch.
    case rgb8
    /// A JFIF file at this quality (1…100): about a tenth of the bytes for H&E at 85.
    case jpeg(quality: Int)

    /// The quality when a client names none.
    public static let defaultJPEGQuality = JPEG.defaultQuality
}

/// Pixels the engine has read and encoded, kept so that the next annotator (or the same one panning back) is served
/// without OpenSlide or the encoder: a region of a slide at a level in an encoding, least recently used evicted first
/// once the entries pass `capacityBytes`.
///
/// Shared by every session of a daemon. Lookups and inserts take one lock; eviction scans the entries (a few hundred
/// at most at the default 64 MiB), which costs less than one patch read.
public final class RenderedPixelCache: Sendable {
    struct Key: Hashable {
        var slide: String
        var region: Region
        var level: Int
        var encoding: PixelEncoding
    }
    struct Entry {
        var bytes: [UInt8]
        var lastUse: UInt64
    }
    struct State {
        var entries: [Key: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
    }

    public let capacityBytes: Int
    private let state = LockedValue(State())

    public init(capacityBytes: Int = 64 << 20) { self.capacityBytes = max(0, capacityBytes) }

    /// (hits, misses) since start, for status and the benchmark.
    public var counts: (hits: Int, misses: Int) { state.withLock { ($0.hits, $0.misses) } }

    func bytes(for key: Key) -> [UInt8]? {
        state.withLock { s in
            s.clock += 1
            guard var entry = s.entries[key] else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            entry.lastUse = s.clock
            s.entries[key] = entry
            return entry.bytes
        }
    }

    func insert(_ bytes: [UInt8], for key: Key) {
        guard bytes.count <= capacityBytes / 4 else { return }  // one huge patch must not flush everyone's
        state.withLock { s in
            s.clock += 1
            if let old = s.entries.updateValue(Entry(bytes: bytes, lastUse: s.clock), forKey: key) { s.bytes -= old.bytes.count }
            s.bytes += bytes.count
            while s.bytes > capacityBytes, let oldest = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                s.bytes -= oldest.value.bytes.count
                s.entries.removeValue(forKey: oldest.key)
            }
        }
    }

    /// Reads `region` of the slide at `level` as `width` × `height` pixels and encodes them, or returns the cached
    /// bytes. Blocking (OpenSlide and the encoder): call it on an executor, never on a Swift concurrency thread.
    func render(
        slideID: String, slide: Slide, region: Region, level: Int, width: Int, height: Int, encoding: PixelEncoding
    ) throws -> [UInt8] {
        let key = Key(slide: slideID, region: region, level: level, encoding: encoding)
        if let cached = bytes(for: key) { return cached }
        let rgb = try slide.readRegion(x: region.x, y: region.y, level: level, width: width, height: height)
        let encoded: [UInt8]
        switch encoding {
        case .rgb8: encoded = rgb
        case .jpeg(let quality):
            do { encoded = try JPEG.encode(rgb: rgb, width: width, height: height, quality: quality) } catch {
                throw EngineError(.internal, "\(error)")
            }
        }
        insert(encoded, for: key)
        return encoded
    }
}
