/// A rectangle of a slide in level-0 pixels: the unit every region of the system (views, patches, picks, cells'
/// boxes) is given in.
public struct Region: Sendable, Equatable, Hashable {
    public var x: Int64
    public var y: Int64
    public var width: Int64
    public var height: Int64
    public init(x: Int64, y: Int64, width: Int64, height: Int64) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// A point of a slide in level-0 pixels (sub-pixel: a centroid).
public struct Point: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}
