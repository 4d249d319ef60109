// hali-graphics encode PROTOCOL IMAGE.png [REGISTERS]: writes the escape sequence `hali label` would send for the
// image (sixel, kitty or iterm) to standard output, so that the interop tests can decode it with tools that are not
// HALI's (libsixel's sixel2png, Python's base64 and PNG readers) and compare the pixels.
import Foundation
import HaliPNG
import HaliTerminal

let arguments = CommandLine.arguments
guard arguments.count >= 4, arguments[1] == "encode", let graphics = GraphicsProtocol(rawValue: arguments[2]), graphics.isPixelProtocol
else {
    FileHandle.standardError.write(Data("usage: hali-graphics encode sixel|kitty|iterm IMAGE.png [REGISTERS]\n".utf8))
    exit(2)
}
do {
    let image = try PNGReader.readRGB(path: arguments[3])
    let bytes: [UInt8]
    switch graphics {
    case .sixel:
        var palette = SixelPalette(pixels: image.pixels, registers: arguments.count > 4 ? Int(arguments[4]) ?? 256 : 256)
        bytes = SixelEncoder.encode(indices: palette.indices(of: image.pixels), width: image.width, height: image.height, palette: palette.colors)
    case .kitty:
        bytes = KittyGraphics.encode(rgb: image.pixels, width: image.width, height: image.height, id: 1)
    default:
        bytes = try ITermImages.encode(rgb: image.pixels, width: image.width, height: image.height)
    }
    FileHandle.standardOutput.write(Data(bytes))
} catch {
    FileHandle.standardError.write(Data("hali-graphics: \(error)\n".utf8))
    exit(1)
}
