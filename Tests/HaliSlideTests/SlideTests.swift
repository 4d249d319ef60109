import Foundation
import HaliSlide
import HaliTestFixtures
import Testing

let sharedData = SharedData.rootURL
let svsPath = SharedData.cmu1SmallRegion

@Suite struct SlideTests {
    @Test func opensTheAperioTestSlide() throws {
        let slide = try Slide(path: svsPath)
        #expect(slide.vendor == "aperio")
        #expect(slide.width == 2220 && slide.height == 2967)
        #expect(slide.levelCount == 1)
        let mpp = try #require(slide.micronsPerPixel)
        #expect(abs(mpp.x - 0.499) < 0.001)
        #expect(slide.properties["aperio.AppMag"] == "20")
    }

    @Test func readsARegionAsRGB() throws {
        let slide = try Slide(path: svsPath)
        let rgb = try slide.readRegion(x: 1000, y: 1000, level: 0, width: 64, height: 32)
        #expect(rgb.count == 64 * 32 * 3)
        // Tissue in the middle of CMU-1 is stained: mean intensity well below white, and not uniform.
        let mean = Double(rgb.reduce(0) { $0 + Int($1) }) / Double(rgb.count)
        #expect(mean < 235)
        #expect(Set(rgb).count > 20)
    }

    @Test func pyramidLevels() throws {
        let slide = try Slide(path: sharedData.appendingPathComponent("slides/CMU-1-Small-Region-pyramid.tif").path)
        #expect(slide.levelCount == 6)
        #expect(slide.vendor == "generic-tiff")
        #expect(slide.micronsPerPixel == nil)
        #expect(slide.levelDownsamples[1] > 1.9 && slide.levelDownsamples[1] < 2.1)
        let tile = try slide.readRegion(x: 0, y: 0, level: 2, width: 100, height: 100)
        #expect(tile.count == 30_000)
    }

    @Test func textFileNamedSVSIsNotASlide() throws {
        let path = NSTemporaryDirectory() + "hali-not-a-slide-\(getpid()).svs"
        try "this is not a slide\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect { try Slide(path: path) } throws: { ($0 as? SlideError)?.kind == .notASlide }
    }

    @Test func emptyFileIsNotASlide() throws {
        let path = NSTemporaryDirectory() + "hali-empty-\(getpid()).svs"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        defer { unlink(path) }
        #expect { try Slide(path: path) } throws: { ($0 as? SlideError)?.kind == .notASlide }
    }

    @Test func truncatedSVSIsRefused() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: svsPath))
        let path = NSTemporaryDirectory() + "hali-truncated-\(getpid()).svs"
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        // Depending on where the cut falls OpenSlide fails at open or at the first read of a missing tile;
        // either way HALI must report an error naming the file, never return pixels.
        do {
            let slide = try Slide(path: path)
            _ = try slide.readRegion(x: 0, y: 2000, level: 0, width: 2220, height: 900)
            Issue.record("a truncated slide read without error")
        } catch {
            #expect(error.path == path)
        }
    }

    @Test func missingFileAndBadRegions() throws {
        #expect { try Slide(path: "/nonexistent/x.svs") } throws: { ($0 as? SlideError)?.kind == .fileNotFound }
        let slide = try Slide(path: svsPath)
        #expect { try slide.readRegion(x: 5000, y: 0, level: 0, width: 10, height: 10) } throws: {
            ($0 as? SlideError)?.kind == .regionOutOfBounds
        }
        #expect { try slide.readRegion(x: 0, y: 0, level: 3, width: 10, height: 10) } throws: {
            ($0 as? SlideError)?.kind == .levelOutOfRange
        }
        #expect { try slide.readRegion(x: 0, y: 0, level: 0, width: 100_000, height: 100_000) } throws: {
            ($0 as? SlideError)?.kind == .regionTooLarge
        }
    }
}
