public import HaliWire

/// Where things go on a terminal of a given size.
///
/// Row 0 is the header, the last row the status line; between them the patch on the left (as large as the height
/// allows, keeping its aspect ratio, two pixel rows per text row) and a side panel on the right (24–40 columns)
/// when the terminal is at least 60 columns wide. At 80×24 a square patch is 44×22 characters (44×44 pixels)
/// and the panel 35 columns.
public struct Layout: Sendable, Equatable {
    public struct Rect: Sendable, Equatable {
        public var x: Int
        public var y: Int
        public var width: Int
        public var height: Int
        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }
    }

    public static let minColumns = 40
    public static let minRows = 10

    public let columns: Int
    public let rows: Int
    public let headerRow: Int
    public let statusRow: Int
    /// The text cells the patch may use (the thumbnail fits inside, anchored top-left).
    public let image: Rect
    /// The side panel; width 0 when there is no room for one.
    public let panel: Rect
    /// Below the minimum size only a notice is drawn.
    public let tooSmall: Bool

    /// - Parameter cellAspect: a character cell's height over its width (2 for half-blocks, whose pixels are half a
    ///   cell; the cell's own pixel ratio for the pixel protocols).
    public init(columns: Int, rows: Int, patch: Patch?, cellAspect: Double = 2) {
        self.columns = columns
        self.rows = rows
        tooSmall = columns < Self.minColumns || rows < Self.minRows
        headerRow = 0
        statusRow = max(0, rows - 1)
        let bodyHeight = max(1, rows - 2)
        var aspect = 1.0
        if let r = patch?.region, r.width > 0, r.height > 0 { aspect = Double(r.width) / Double(r.height) }
        let needed = Int((Double(bodyHeight) * cellAspect * aspect).rounded(.up))
        let panelWidth = columns >= 60 ? min(40, max(24, columns - needed - 1)) : 0
        let imageWidth = max(1, panelWidth > 0 ? columns - panelWidth - 1 : columns)
        image = Rect(x: 0, y: 1, width: imageWidth, height: bodyHeight)
        panel = Rect(x: panelWidth > 0 ? columns - panelWidth : columns, y: 1, width: panelWidth, height: bodyHeight)
    }
}
