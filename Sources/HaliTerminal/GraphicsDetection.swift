/// How the patch is drawn.
public enum GraphicsProtocol: String, Sendable, CaseIterable {
    /// The kitty graphics protocol (kitty, WezTerm, Ghostty, Konsole).
    case kitty
    /// DEC sixel (xterm -ti vt340, mlterm, foot, WezTerm, Windows Terminal).
    case sixel
    /// iTerm2's inline images (iTerm2, WezTerm, mintty).
    case iterm
    /// Half-block characters, two pixels per character cell (any terminal; `--color` decides the colours).
    case blocks
    /// No picture: the cells as letters on a blank area.
    case none

    /// Draws real pixels (one image per frame part) rather than characters.
    public var isPixelProtocol: Bool { self == .kitty || self == .sixel || self == .iterm }
}

/// What the terminal said about itself, gathered by `GraphicsProbe`.
public struct TerminalCapabilities: Sendable, Equatable {
    /// kitty answered its graphics query with OK.
    public var kittyGraphics = false
    /// DA1 listed attribute 4 (sixel graphics).
    public var sixel = false
    /// Sixel colour registers after asking for 256 (XTSMGRAPHICS).
    public var sixelRegisters: Int?
    /// The largest sixel image the terminal draws now (XTSMGRAPHICS's current geometry), in pixels.
    public var sixelMaxSize: PixelSize?
    /// The text area in pixels (`CSI 14 t`, or the kernel's winsize).
    public var windowPixels: PixelSize?
    /// One character cell in pixels (`CSI 16 t`).
    public var cellPixels: PixelSize?
    /// The primary device attributes arrived (every terminal answers DA1, so it marks the end of the replies).
    public var answeredDA1 = false

    public init() {}

    /// A cell's size: as reported, else the window's pixels over its cells; nil when neither is known.
    public func cellSize(columns: Int, rows: Int) -> PixelSize? {
        if let c = cellPixels, c.width > 0, c.height > 0 { return c }
        if let w = windowPixels, columns > 0, rows > 0, w.width >= columns, w.height >= rows {
            return PixelSize(width: w.width / columns, height: w.height / rows)
        }
        return nil
    }
}

public struct PixelSize: Sendable, Equatable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
    public var description: String { "\(width)×\(height) px" }
}

/// The queries that find out which graphics a terminal draws, and the parser of its replies.
///
/// Sent together, in this order: kitty's graphics query (a 1×1 image with `a=q`, answered only by terminals that
/// speak the protocol), XTSMGRAPHICS to raise the sixel colour registers to 256 (the reply gives the number set),
/// XTSMGRAPHICS to read the current sixel geometry (pictures are capped to it), `CSI 14 t` and `CSI 16 t` for the window's and a cell's size in pixels, and
/// DA1 last: every terminal answers DA1, so its reply ends the wait early; terminals that ignore a query simply do
/// not answer it. The shell waits at most `timeoutMs` in all.
///
/// References: kitty's graphics protocol ("Querying support and available transmission mediums"); xterm's ctlseqs
/// (DA1 attribute 4 = sixel; XTSMGRAPHICS `CSI ? Pi ; Pa ; Pv S`; window operations 14 and 16).
public enum GraphicsProbe {
    public static let timeoutMs = 400

    public static let queries =
        "\u{1B}_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\u{1B}\\"
        + "\u{1B}[?1;3;256S" + "\u{1B}[?2;1;0S" + "\u{1B}[14t" + "\u{1B}[16t" + "\u{1B}[c"

    /// Reads every reply in `bytes` (unknown sequences and stray bytes are skipped) into `capabilities`.
    public static func parse(_ bytes: [UInt8], into capabilities: inout TerminalCapabilities) {
        var i = 0
        while i < bytes.count {
            guard bytes[i] == 0x1B, i + 1 < bytes.count else {
                i += 1
                continue
            }
            if bytes[i + 1] == UInt8(ascii: "_") {
                // APC … ST: kitty's reply, e.g. "Gi=31;OK".
                var j = i + 2
                while j + 1 < bytes.count && !(bytes[j] == 0x1B && bytes[j + 1] == UInt8(ascii: "\\")) { j += 1 }
                let body = String(decoding: bytes[(i + 2)..<min(j, bytes.count)], as: UTF8.self)
                if body.hasPrefix("Gi=31;") && body.hasSuffix("OK") { capabilities.kittyGraphics = true }
                i = j + 2
                continue
            }
            guard bytes[i + 1] == UInt8(ascii: "[") else {
                i += 2
                continue
            }
            var j = i + 2
            let privateMarker = j < bytes.count && bytes[j] == UInt8(ascii: "?")
            if privateMarker { j += 1 }
            let paramsStart = j
            while j < bytes.count && (bytes[j] == UInt8(ascii: ";") || (bytes[j] >= 0x30 && bytes[j] <= 0x39)) { j += 1 }
            guard j < bytes.count else { break }
            let final = bytes[j]
            let params = String(decoding: bytes[paramsStart..<j], as: UTF8.self).split(separator: ";", omittingEmptySubsequences: false)
                .map { Int($0) ?? -1 }
            i = j + 1
            switch (privateMarker, final) {
            case (true, UInt8(ascii: "c")):
                capabilities.answeredDA1 = true
                if params.dropFirst().contains(4) { capabilities.sixel = true }
            case (true, UInt8(ascii: "S")):
                guard params.count >= 3, params[1] == 0 else { continue }
                if params[0] == 1, params[2] > 0 {
                    capabilities.sixelRegisters = params[2]
                } else if params[0] == 2, params.count >= 4, params[2] > 0, params[3] > 0 {
                    capabilities.sixelMaxSize = PixelSize(width: params[2], height: params[3])
                }
            case (false, UInt8(ascii: "t")):
                guard params.count >= 3, params[1] > 0, params[2] > 0 else { continue }
                // Replies give height before width.
                if params[0] == 4 { capabilities.windowPixels = PixelSize(width: params[2], height: params[1]) }
                if params[0] == 6 { capabilities.cellPixels = PixelSize(width: params[2], height: params[1]) }
            default:
                continue
            }
        }
    }

    /// The protocol to use: `requested` unless it is nil or auto; else kitty, sixel, then iTerm2 (known only from the
    /// environment: `TERM_PROGRAM`, `LC_TERMINAL`) when the terminal supports it and a cell's pixel size is known;
    /// else half-blocks.
    public static func choose(
        requested: String?, capabilities: TerminalCapabilities, environment: [String: String], hasCellSize: Bool
    ) -> GraphicsProtocol {
        if let requested, let p = GraphicsProtocol(rawValue: requested.lowercased()) { return p }
        guard hasCellSize else { return .blocks }
        if capabilities.kittyGraphics { return .kitty }
        if capabilities.sixel { return .sixel }
        let program = (environment["TERM_PROGRAM"] ?? "") + " " + (environment["LC_TERMINAL"] ?? "")
        if program.contains("iTerm") || program.contains("WezTerm") { return .iterm }
        return .blocks
    }
}
