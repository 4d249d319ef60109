import HaliSlide
import HaliWire
import Logging
import NIOPosix

/// The slides a daemon serves. Opening a slide reads its headers through OpenSlide, which blocks, so it runs on
/// NIO's blocking thread pool, never on an event loop or a cooperative thread.
actor SlideCatalog {
    private var slides: [String: Slide] = [:]
    private var order: [String] = []
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Opens every path; a slide that fails to open is logged with OpenSlide's message and left out, so one corrupt
    /// file does not stop the daemon serving the others. Returns the errors.
    @discardableResult
    func load(paths: [String]) async -> [SlideError] {
        var failures: [SlideError] = []
        for path in paths {
            do {
                let slide = try await NIOThreadPool.singleton.runIfActive { () throws -> Slide in try Slide(path: path) }
                let id = Self.identifier(for: path, taken: Set(order))
                slides[id] = slide
                order.append(id)
                logger.info("slide ready", metadata: ["id": "\(id)", "path": "\(path)", "size": "\(slide.width)x\(slide.height)"])
            } catch let error as SlideError {
                failures.append(error)
                logger.error("slide not served", metadata: ["path": "\(path)", "error": "\(error.message)"])
            } catch {
                logger.error("slide not served", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return failures
    }

    var count: Int { order.count }

    func list() -> [SlideInfo] {
        order.compactMap { id in
            guard let slide = slides[id] else { return nil }
            return SlideInfo(
                id: id, name: String(slide.path.split(separator: "/").last ?? ""), width: slide.width, height: slide.height,
                mppX: slide.micronsPerPixel?.x ?? 0, mppY: slide.micronsPerPixel?.y ?? 0,
                levelCount: UInt32(slide.levelCount), vendor: slide.vendor)
        }
    }

    func slide(id: String) -> Slide? { slides[id] }

    /// The file name without its extension, made unique with a numeric suffix.
    static func identifier(for path: String, taken: Set<String>) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        let stem = file.lastIndex(of: ".").map { String(file[..<$0]) } ?? file
        var candidate = stem.isEmpty ? "slide" : stem
        var n = 2
        while taken.contains(candidate) {
            candidate = "\(stem)-\(n)"
            n += 1
        }
        return candidate
    }
}
