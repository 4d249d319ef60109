import Testing

@testable import HaliTerminal

@Suite struct KeyDecoderTests {
    @Test func arrowsAndCursorKeyModes() {
        #expect(KeyDecoder.decodeAll([0x1B, 0x5B, 0x41]) == [.up])  // ESC [ A
        #expect(KeyDecoder.decodeAll([0x1B, 0x5B, 0x42]) == [.down])
        #expect(KeyDecoder.decodeAll([0x1B, 0x5B, 0x43]) == [.right])
        #expect(KeyDecoder.decodeAll([0x1B, 0x5B, 0x44]) == [.left])
        // Application cursor mode: ESC O A.
        #expect(KeyDecoder.decodeAll([0x1B, 0x4F, 0x41, 0x1B, 0x4F, 0x44]) == [.up, .left])
    }

    @Test func shiftedArrows() {
        // xterm: ESC [ 1 ; 2 A … D
        #expect(
            KeyDecoder.decodeAll(Array("\u{1B}[1;2A\u{1B}[1;2B\u{1B}[1;2C\u{1B}[1;2D".utf8))
                == [.shiftUp, .shiftDown, .shiftRight, .shiftLeft])
        // rxvt: ESC [ a … d
        #expect(KeyDecoder.decodeAll(Array("\u{1B}[a\u{1B}[d".utf8)) == [.shiftUp, .shiftLeft])
        // Ctrl-arrow (modifier 5) is an ordinary arrow here.
        #expect(KeyDecoder.decodeAll(Array("\u{1B}[1;5C".utf8)) == [.right])
    }

    @Test func plainKeys() {
        #expect(KeyDecoder.decodeAll(Array("q1A?u+-".utf8)) == [.char("q"), .char("1"), .char("A"), .char("?"), .char("u"), .char("+"), .char("-")])
        #expect(KeyDecoder.decodeAll([0x0D, 0x0A, 0x20, 0x7F, 0x09]) == [.enter, .enter, .space, .backspace, .tab])
        #expect(KeyDecoder.decodeAll([0x03, 0x0C]) == [.ctrl("c"), .ctrl("l")])
        #expect(KeyDecoder.decodeAll(Array("é".utf8)) == [.char("é")])
        #expect(KeyDecoder.decodeAll(Array("\u{1B}[5~\u{1B}[6~\u{1B}[H".utf8)) == [.pageUp, .pageDown, .home])
        #expect(KeyDecoder.decodeAll(Array("\u{1B}[15~".utf8)) == [.unknown(Array("\u{1B}[15~".utf8))])
    }

    @Test func sequencesSplitAcrossReads() {
        var d = KeyDecoder()
        #expect(d.feed([0x6A, 0x1B]) == [.char("j")])
        #expect(d.hasPending)
        #expect(d.feed([0x5B]) == [])
        #expect(d.feed([0x31, 0x3B, 0x32]) == [])
        #expect(d.feed([0x43, 0x6B]) == [.shiftRight, .char("k")])
        #expect(!d.hasPending)
        // A UTF-8 character split in two.
        #expect(d.feed([0xC3]) == [])
        #expect(d.feed([0xA9]) == [.char("é")])
    }

    @Test func loneEscapeWaitsForFlush() {
        var d = KeyDecoder()
        #expect(d.feed([0x1B]) == [])
        #expect(d.hasPending)
        #expect(d.flush() == [.escape])
        #expect(!d.hasPending)
        // ESC followed by a letter (Alt+x): escape, then the letter.
        #expect(KeyDecoder.decodeAll([0x1B, 0x78]) == [.escape, .char("x")])
        #expect(KeyDecoder.decodeAll([0x1B, 0x1B]) == [.escape, .escape])
    }
}
