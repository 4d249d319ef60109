import Foundation
import HaliCore

/// Where an index came from and with what settings. Stored inside the index file and, for people, beside it as
/// `<stem>.manifest.json`.
public struct IndexManifest: Codable, Sendable, Equatable {
    public struct SlideIdentity: Codable, Sendable, Equatable {
        public var path: String
        public var sizeBytes: Int64
        public var modified: Double
        /// SHA-256 over the file size and its first and last 1 MiB: cheap, and changes when the file does.
        public var fingerprint: String
        public var vendor: String
        public var width: Int64
        public var height: Int64
        public var micronsPerPixel: Double
        /// "slide" (from its metadata) or "option" (given with --mpp).
        public var micronsPerPixelSource: String

        public init(
            path: String, sizeBytes: Int64, modified: Double, fingerprint: String, vendor: String, width: Int64, height: Int64,
            micronsPerPixel: Double, micronsPerPixelSource: String
        ) {
            self.path = path
            self.sizeBytes = sizeBytes
            self.modified = modified
            self.fingerprint = fingerprint
            self.vendor = vendor
            self.width = width
            self.height = height
            self.micronsPerPixel = micronsPerPixel
            self.micronsPerPixelSource = micronsPerPixelSource
        }
    }

    public var format = "hali-index/1"
    public var slide: SlideIdentity
    /// "hali-watershed" for the built-in detector, or the importer ("qupath-geojson", "hovernet-json", "csv").
    public var source: String
    /// Detector version and parameters, or the imported file's path and fingerprint: whatever decides the cells.
    /// Re-ingesting with an equal `settings` and slide identity is a no-op.
    public var settings: [String: String]
    public var cellCount: Int
    public var tissueAreaMicrons2: Double
    public var tiles: Int
    public var seconds: Double
    public var created: String
    /// The detector's intensity threshold (OD) after calibration on the slide, for the record.
    public var detectorThreshold: Double?

    public init(
        slide: SlideIdentity, source: String, settings: [String: String], cellCount: Int, tissueAreaMicrons2: Double, tiles: Int,
        seconds: Double, created: String
    ) {
        self.slide = slide
        self.source = source
        self.settings = settings
        self.cellCount = cellCount
        self.tissueAreaMicrons2 = tissueAreaMicrons2
        self.tiles = tiles
        self.seconds = seconds
        self.created = created
    }
}
