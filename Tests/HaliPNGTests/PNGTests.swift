import Foundation
import HaliImaging
import HaliPNG
import Testing

@Suite struct PNGTests {
    func temporaryPath() -> String { NSTemporaryDirectory() + "hali-png-\(getpid())-\(UUID().uuidString).png" }

    @Test func aCanvasRoundTripsThroughLibpngExactly() throws {
        var canvas = Canvas(width: 301, height: 97)
        canvas.line(0, 0, 300, 96, (200, 10, 30), thickness: 3)
        canvas.fillRect(20, 20, 80, 60, (10, 120, 200), alpha: 0.5)
        canvas.text("GAIN +4.3%", x: 100, y: 40, (0, 0, 0))
        var state: UInt32 = 1
        for i in 0..<500 {  // some noise, so that the encoder sees more than flat colour
            state = state &* 1_103_515_245 &+ 12345
            canvas.rgb[(i * 37) % canvas.rgb.count] = UInt8(truncatingIfNeeded: state >> 16)
        }
        let bytes = try canvas.png()
        #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(bytes.suffix(8)) == [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])  // IEND and its CRC
        #expect(bytes.count < canvas.rgb.count / 2)
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let back = try PNGReader.readRGB(path: path)
        #expect(back.width == 301 && back.height == 97)
        #expect(back.pixels == canvas.rgb)
    }

    @Test func aTwoPixelImageKeepsItsColours() throws {
        let rgb: [UInt8] = [255, 0, 0, 0, 0, 255]
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(try PNGWriter.encode(width: 2, height: 1, rgb: rgb))))
        #expect(try PNGReader.dimensions(path: path) == (2, 1))
        #expect(try PNGReader.readRGB(path: path).pixels == rgb)
    }

    @Test func pixelsThatDoNotMatchTheSizeAreRefused() {
        #expect(throws: PNGError.self) { try PNGWriter.encode(width: 2, height: 2, rgb: [0, 0, 0]) }
        #expect(throws: PNGError.self) { try PNGWriter.encode(width: 0, height: 1, rgb: []) }
        #expect(throws: PNGError.self) { try PNGWriter.encode(width: Int.max, height: 2, rgb: [0, 0, 0]) }
    }
}
