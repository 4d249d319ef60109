/// Key presses, decoded from the raw bytes a terminal in raw mode sends.
///
/// `KeyDecoder` is fed whatever `read(2)` returned; an escape sequence split across two reads is completed by the
/// next `feed`. A lone ESC stays pending (it may be the start of a sequence) until `flush()` is called, which the
/// I/O shell does when no further byte arrived within a short timeout.
public enum Key: Sendable, Equatable, Hashable {
    case char(Character)
    case up, down, left, right
    case shiftUp, shiftDown, shiftLeft, shiftRight
    case enter
    case space
    case escape
    case backspace
    case tab
    case pageUp, pageDown, home, end
    /// Control plus a letter (`ctrl("c")` is byte 0x03), other than those named above.
    case ctrl(Character)
    /// A recognised-as-complete escape sequence this client has no use for (function keys, mouse reports …).
    case unknown([UInt8])
}

public struct KeyDecoder: Sendable {
    private var buffer: [UInt8] = []

    public init() {}

    /// True while bytes are held back waiting for the rest of a sequence (e.g. a lone ESC).
    public var hasPending: Bool { !buffer.isEmpty }

    /// Decodes every complete key in `bytes` (plus what was pending); incomplete trailing bytes stay pending.
    public mutating func feed<S: Sequence>(_ bytes: S) -> [Key] where S.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        var keys: [Key] = []
        var i = 0
        while i < buffer.count {
            switch Self.decodeOne(buffer, at: i) {
            case .key(let key, let length):
                keys.append(key)
                i += length
            case .incomplete:
                buffer.removeFirst(i)
                return keys
            }
        }
        buffer.removeAll(keepingCapacity: true)
        return keys
    }

    /// Gives up waiting for the rest of a sequence: a pending lone ESC becomes `.escape`, anything else pending is
    /// decoded as best it can be.
    public mutating func flush() -> [Key] {
        guard !buffer.isEmpty else { return [] }
        let pending = buffer
        buffer.removeAll()
        if pending == [0x1B] { return [.escape] }
        if pending.first == 0x1B {
            // ESC followed by an incomplete sequence: report ESC, then decode the rest on its own.
            var rest = KeyDecoder()
            var keys: [Key] = [.escape]
            keys += rest.feed(pending.dropFirst())
            keys += rest.flush()
            return keys
        }
        // An incomplete UTF-8 sequence.
        return [.unknown(pending)]
    }

    /// Decodes all of `bytes` at once, flushing at the end (tests, and pasted input).
    public static func decodeAll(_ bytes: [UInt8]) -> [Key] {
        var decoder = KeyDecoder()
        return decoder.feed(bytes) + decoder.flush()
    }

    private enum Step {
        case key(Key, Int)
        case incomplete
    }

    private static func decodeOne(_ b: [UInt8], at i: Int) -> Step {
        let byte = b[i]
        switch byte {
        case 0x1B: return decodeEscape(b, at: i)
        case 0x0D, 0x0A: return .key(.enter, 1)
        case 0x09: return .key(.tab, 1)
        case 0x20: return .key(.space, 1)
        case 0x7F, 0x08: return .key(.backspace, 1)
        case 0x00: return .key(.ctrl("@"), 1)
        case 0x01...0x1A: return .key(.ctrl(Character(Unicode.Scalar(byte + 0x60))), 1)
        case 0x1C...0x1F: return .key(.unknown([byte]), 1)
        case 0x21...0x7E: return .key(.char(Character(Unicode.Scalar(byte))), 1)
        default: return decodeUTF8(b, at: i)
        }
    }

    private static func decodeUTF8(_ b: [UInt8], at i: Int) -> Step {
        let lead = b[i]
        let length: Int
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return .key(.unknown([lead]), 1)
        }
        guard i + length <= b.count else {
            // Only continuation bytes so far: wait for the rest.
            for j in (i + 1)..<b.count where b[j] & 0xC0 != 0x80 { return .key(.unknown([lead]), 1) }
            return .incomplete
        }
        let slice = Array(b[i..<(i + length)])
        guard slice.dropFirst().allSatisfy({ $0 & 0xC0 == 0x80 }),
            let string = String(validating: slice, as: UTF8.self), let ch = string.first
        else { return .key(.unknown([lead]), 1) }
        return .key(.char(ch), length)
    }

    private static func decodeEscape(_ b: [UInt8], at i: Int) -> Step {
        guard i + 1 < b.count else { return .incomplete }
        let next = b[i + 1]
        switch next {
        case UInt8(ascii: "["):
            return decodeCSI(b, at: i)
        case UInt8(ascii: "O"):
            // SS3: application cursor keys (ESC O A) and F1–F4.
            guard i + 2 < b.count else { return .incomplete }
            let key: Key
            switch b[i + 2] {
            case UInt8(ascii: "A"): key = .up
            case UInt8(ascii: "B"): key = .down
            case UInt8(ascii: "C"): key = .right
            case UInt8(ascii: "D"): key = .left
            case UInt8(ascii: "H"): key = .home
            case UInt8(ascii: "F"): key = .end
            case UInt8(ascii: "M"): key = .enter
            default: key = .unknown(Array(b[i...(i + 2)]))
            }
            return .key(key, 3)
        case 0x1B:
            // ESC ESC: the first is a lone escape.
            return .key(.escape, 1)
        default:
            // Alt+key arrives as ESC key; treat ESC as its own key and decode the rest separately.
            return .key(.escape, 1)
        }
    }

    /// CSI: ESC [ parameters (0x30–0x3F)* intermediates (0x20–0x2F)* final (0x40–0x7E).
    private static func decodeCSI(_ b: [UInt8], at i: Int) -> Step {
        var j = i + 2
        while j < b.count, (0x20...0x3F).contains(b[j]) { j += 1 }
        guard j < b.count else {
            // Guard against a never-ending sequence eating all input.
            return j - i > 32 ? .key(.unknown(Array(b[i..<j])), j - i) : .incomplete
        }
        let final = b[j]
        guard (0x40...0x7E).contains(final) else { return .key(.escape, 1) }
        let length = j - i + 1
        let params = String(decoding: b[(i + 2)..<j], as: UTF8.self).split(separator: ";", omittingEmptySubsequences: false)
        let modifier = params.count >= 2 ? Int(params[1]) ?? 1 : 1
        let shifted = modifier == 2  // xterm: 1 + (shift 1 | alt 2 | ctrl 4)
        let raw = Array(b[i..<(i + length)])
        switch final {
        case UInt8(ascii: "A"): return .key(shifted ? .shiftUp : .up, length)
        case UInt8(ascii: "B"): return .key(shifted ? .shiftDown : .down, length)
        case UInt8(ascii: "C"): return .key(shifted ? .shiftRight : .right, length)
        case UInt8(ascii: "D"): return .key(shifted ? .shiftLeft : .left, length)
        // rxvt shift-arrows: ESC [ a … d
        case UInt8(ascii: "a"): return .key(.shiftUp, length)
        case UInt8(ascii: "b"): return .key(.shiftDown, length)
        case UInt8(ascii: "c"): return .key(.shiftRight, length)
        case UInt8(ascii: "d"): return .key(.shiftLeft, length)
        case UInt8(ascii: "H"): return .key(.home, length)
        case UInt8(ascii: "F"): return .key(.end, length)
        case UInt8(ascii: "Z"): return .key(.unknown(raw), length)  // shift-tab
        case UInt8(ascii: "~"):
            switch params.first.flatMap({ Int($0) }) {
            case 1, 7: return .key(.home, length)
            case 4, 8: return .key(.end, length)
            case 5: return .key(.pageUp, length)
            case 6: return .key(.pageDown, length)
            default: return .key(.unknown(raw), length)
            }
        default: return .key(.unknown(raw), length)
        }
    }
}
