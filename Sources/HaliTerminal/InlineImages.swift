import Foundation
import HaliPNG

/// The kitty graphics protocol: an RGB8 image transmitted and placed at the cursor in one command (kitty, WezTerm,
/// Ghostty, Konsole).
///
/// `ESC _ G keys ; payload ESC \`, with the pixels base64-encoded and cut into chunks of at most 4,096 characters:
/// every chunk but the last carries `m=1`, the last `m=0`; only the first carries the other keys. `a=T` transmits and
/// displays, `f=24` is packed RGB, `s`/`v` the size in pixels, `i` the image id (a later image with the same id
/// replaces it, after `delete(id:)`), `q=2` silences the terminal's replies (they would arrive as keystrokes),
/// `C=1` leaves the cursor where it was.
///
/// Reference: kitty's "Terminal graphics protocol" (sw.kovidgoyal.net/kitty/graphics-protocol).
public enum KittyGraphics {
    public static let chunkCharacters = 4096

    public static func encode(rgb: [UInt8], width: Int, height: Int, id: UInt32) -> [UInt8] {
        precondition(rgb.count == width * height * 3, "\(rgb.count) bytes for \(width)×\(height) RGB")
        let payload = Array(Data(rgb).base64EncodedString().utf8)
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + payload.count / chunkCharacters * 12 + 64)
        var start = 0
        repeat {
            let end = min(payload.count, start + chunkCharacters)
            let more = end < payload.count ? 1 : 0
            let keys = start == 0 ? "a=T,f=24,s=\(width),v=\(height),i=\(id),q=2,C=1,m=\(more)" : "m=\(more)"
            out.append(contentsOf: "\u{1B}_G\(keys);".utf8)
            out.append(contentsOf: payload[start..<end])
            out.append(contentsOf: "\u{1B}\\".utf8)
            start = end
        } while start < payload.count
        return out
    }

    /// Deletes the image `id` and frees its data (`d=I`).
    public static func delete(id: UInt32) -> [UInt8] { Array("\u{1B}_Ga=d,d=I,i=\(id),q=2\u{1B}\\".utf8) }

    /// Deletes every image on the screen (`d=A`), e.g. before a resize redraws them all.
    public static let deleteAll: [UInt8] = Array("\u{1B}_Ga=d,d=A,q=2\u{1B}\\".utf8)
}

/// iTerm2's inline images: a PNG file, base64-encoded, drawn at the cursor (iTerm2, WezTerm, mintty, Konsole).
///
/// `ESC ] 1337 ; File = inline=1;size=BYTES;width=Wpx;height=Hpx;preserveAspectRatio=0;doNotMoveCursor=1 : BASE64 BEL`.
/// The size in pixels keeps the terminal from rescaling the image to its own idea of a cell.
///
/// Reference: iTerm2's "Inline Images Protocol" (iterm2.com/documentation-images.html).
public enum ITermImages {
    public static func encode(rgb: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        let png = try PNGWriter.encode(width: width, height: height, rgb: rgb)
        var out = Array(
            "\u{1B}]1337;File=inline=1;size=\(png.count);width=\(width)px;height=\(height)px;preserveAspectRatio=0;doNotMoveCursor=1:"
                .utf8)
        out.append(contentsOf: Data(png).base64EncodedString().utf8)
        out.append(0x07)
        return out
    }
}
