/// A colour written "#rrggbb" (or "#rgb"), as tasks name their classes' colours.
public struct HexColor: Sendable, Equatable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    /// nil when `hex` is not "#rrggbb", "rrggbb", "#rgb" or "rgb".
    public init?(_ hex: String) {
        var text = hex.hasPrefix("#") ? String(hex.dropFirst()) : hex
        if text.count == 3 { text = text.map { "\($0)\($0)" }.joined() }
        guard text.count == 6, let value = UInt32(text, radix: 16) else { return nil }
        r = UInt8(value >> 16 & 0xFF)
        g = UInt8(value >> 8 & 0xFF)
        b = UInt8(value & 0xFF)
    }

    /// For unknown or malformed colours.
    public static let grey = HexColor("#808080")!
}
