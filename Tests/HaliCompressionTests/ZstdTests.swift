import HaliCompression
import Testing

@Suite struct ZstdTests {
    @Test func roundTrip() throws {
        let input = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
        let packed = try Zstd.compress(input)
        #expect(packed.count < input.count / 10)
        #expect(try Zstd.decompress(packed) == input)
    }

    @Test func emptyInput() throws {
        #expect(try Zstd.decompress(Zstd.compress([])) == [])
    }

    @Test func garbageIsRefused() {
        #expect(throws: ZstdError.self) { try Zstd.decompress([1, 2, 3, 4, 5, 6, 7, 8]) }
    }

    @Test func truncatedFrameIsRefused() throws {
        let packed = try Zstd.compress((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        #expect(throws: ZstdError.self) { try Zstd.decompress(Array(packed.dropLast(4))) }
    }

    @Test func flippedBitIsCaughtByTheChecksum() throws {
        var packed = try Zstd.compress((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        packed[packed.count / 2] ^= 0x10
        #expect(throws: ZstdError.self) { try Zstd.decompress(packed) }
    }

    @Test func outputCapIsEnforced() throws {
        let packed = try Zstd.compress([UInt8](repeating: 0, count: 1 << 20))
        #expect(throws: ZstdError.self) { try Zstd.decompress(packed, maxOutputBytes: 1 << 19) }
    }
}
