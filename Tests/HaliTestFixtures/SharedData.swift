public import Foundation

/// The shared data set the tests read: `../shared/data` beside the checkout (its README gives formats, counts and
/// licences), or wherever `HALI_SHARED_DATA` points. The project does not copy the data in; every test target
/// reaches it through here, so that a missing or damaged copy stops the run with one message that names the file
/// and what was expected, instead of failing somewhere inside OpenSlide or a parser.
public enum SharedData {
    /// The data set's root (checked: it must hold the data README).
    public static let root: String = {
        let root =
            ProcessInfo.processInfo.environment["HALI_SHARED_DATA"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data").path
        guard FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent("README.md")) else {
            stop(
                "the shared data set is not at \(root) (no README.md there). The tests read ../shared/data beside the checkout; set HALI_SHARED_DATA to its path."
            )
        }
        return root
    }()

    public static var rootURL: URL { URL(fileURLWithPath: root) }

    /// CMU-1-Small-Region.svs (OpenSlide's test data, Aperio SVS, 2220×2967 px at 0.499 µm/px): most tests' slide.
    public static let cmu1SmallRegion = file("slides/CMU-1-Small-Region.svs", bytes: 1_938_955)
    /// The same region as a generic tiled TIFF pyramid without a pixel size.
    public static let cmu1SmallRegionPyramid = file("slides/CMU-1-Small-Region-pyramid.tif", bytes: 1_173_750)
    /// CRC images laid out as one 5000×5000 generic TIFF without a pixel size (a slide wider than a patch may be).
    public static let crcMosaic = file("slides/crc-mosaic.tif", bytes: 8_610_376)

    /// A file of the data set; when `bytes` is given, its size is checked too (a truncated or replaced copy).
    public static func file(_ relative: String, bytes: Int? = nil) -> String {
        let path = (root as NSString).appendingPathComponent(relative)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = (attributes[.size] as? NSNumber)?.intValue
        else {
            stop("shared data file missing: \(path)")
        }
        if let bytes, size != bytes {
            stop("shared data file \(path) is \(size) bytes, expected \(bytes): a damaged or different copy")
        }
        return path
    }

    private static func stop(_ message: String) -> Never {
        FileHandle.standardError.write(Data("HALI tests: \(message)\n".utf8))
        fatalError(message)
    }
}
