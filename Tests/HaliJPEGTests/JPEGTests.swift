import Foundation
import Testing

@testable import HaliJPEG

/// A smooth RGB test card: gradients in two channels and a disc in the third, the kind of content JPEG keeps well.
private func card(width: Int, height: Int) -> [UInt8] {
    var rgb = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 3
            rgb[i] = UInt8(x * 255 / max(1, width - 1))
            rgb[i + 1] = UInt8(y * 255 / max(1, height - 1))
            let dx = x - width / 2, dy = y - height / 2
            rgb[i + 2] = dx * dx + dy * dy < (width * width) / 16 ? 200 : 60
        }
    }
    return rgb
}

private func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
    var sum = 0.0
    for (x, y) in zip(a, b) { sum += Double((Int(x) - Int(y)) * (Int(x) - Int(y))) }
    let mse = sum / Double(a.count)
    return mse == 0 ? .infinity : 10 * log10(255.0 * 255.0 / mse)
}

@Suite struct JPEGTests {
    @Test func encodesAJFIFFileThatDecodesToTheSameSizeAndCloseColours() throws {
        let (w, h) = (97, 61)  // not multiples of the 16-pixel MCU: the edges are padded and cropped again
        let rgb = card(width: w, height: h)
        let file = try JPEG.encode(rgb: rgb, width: w, height: h, quality: 90)
        #expect(Array(file.prefix(4)) == [0xFF, 0xD8, 0xFF, 0xE0])  // SOI, then the JFIF APP0 marker
        #expect(Array(file[6..<10]) == Array("JFIF".utf8))
        #expect(Array(file.suffix(2)) == [0xFF, 0xD9])  // EOI
        let image = try JPEG.decode(file)
        #expect(image.width == w && image.height == h && image.rgb.count == w * h * 3)
        // Lossy, so bounded rather than exact: a smooth card at quality 90 keeps well over 30 dB.
        #expect(psnr(image.rgb, rgb) > 30)
    }

    @Test func aFlatGreyComesBackExactly() throws {
        // A constant block has only a DC coefficient, which quantisation at quality 100 keeps exactly.
        let rgb = [UInt8](repeating: 128, count: 16 * 16 * 3)
        let image = try JPEG.decode(try JPEG.encode(rgb: rgb, width: 16, height: 16, quality: 100))
        #expect(image.rgb == rgb)
    }

    @Test func higherQualityCostsMoreBytesAndKeepsMore() throws {
        let rgb = card(width: 128, height: 128)
        let low = try JPEG.encode(rgb: rgb, width: 128, height: 128, quality: 30)
        let high = try JPEG.encode(rgb: rgb, width: 128, height: 128, quality: 95)
        #expect(low.count < high.count)
        #expect(psnr(try JPEG.decode(low).rgb, rgb) < psnr(try JPEG.decode(high).rgb, rgb))
    }

    @Test func refusesPixelsThatDoNotMatchTheSize() {
        #expect(throws: JPEGError.self) { try JPEG.encode(rgb: [1, 2, 3], width: 2, height: 1) }
        #expect(throws: JPEGError.self) { try JPEG.encode(rgb: [], width: 0, height: 0) }
    }

    @Test func refusesGarbageEmptyAndTruncatedFiles() throws {
        #expect(throws: JPEGError.self) { try JPEG.decode([]) }
        #expect(throws: JPEGError.self) { try JPEG.decode(Array("not a jpeg at all".utf8)) }
        let file = try JPEG.encode(rgb: card(width: 64, height: 64), width: 64, height: 64)
        // Cut inside the entropy-coded data: libjpeg would pad with grey and warn; the decoder must refuse it.
        #expect(throws: JPEGError.self) { try JPEG.decode(Array(file.prefix(file.count / 2))) }
        // Cut inside the header.
        #expect(throws: JPEGError.self) { try JPEG.decode(Array(file.prefix(20))) }
    }

    @Test func refusesAHeaderThatClaimsTooManyPixelsBeforeAllocatingThem() throws {
        var file = try JPEG.encode(rgb: card(width: 16, height: 16), width: 16, height: 16)
        // The baseline frame header (SOF0 = FF C0): length (2), precision (1), height (2), width (2).
        let sof = try #require((0..<(file.count - 1)).first { file[$0] == 0xFF && file[$0 + 1] == 0xC0 })
        file[sof + 5] = 0xEA  // height 60,000
        file[sof + 6] = 0x60
        file[sof + 7] = 0xEA  // width 60,000
        file[sof + 8] = 0x60
        let error = try #require(throws: JPEGError.self) { try JPEG.decode(file, maxPixels: 4096 * 4096) }
        #expect(error.message.contains("60000×60000"))
    }
}
