import Foundation
import HaliImaging
import HaliMath
import HaliSlide
import HaliTestFixtures
import Testing

@testable import HaliExperiments

private let sharedData = SharedData.root

/// A synthetic 300 × 200 px slide whose pixel (x, y) is (x mod 256, y, x / 256): any read can be checked by value.
private func codedSlide() -> SlidePixels {
    SlidePixels(width: 300, height: 200) { x0, y0, w, h in
        var p = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let o = (y * w + x) * 3
                p[o] = UInt8((x0 + x) % 256); p[o + 1] = UInt8(y0 + y); p[o + 2] = UInt8((x0 + x) / 256)
            }
        }
        return RGBImage(width: w, height: h, pixels: p)
    }
}

private func writeCSV(_ text: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("hali-slide-cells-\(UUID().uuidString).csv").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Test func slideCellsAreCutIntoBlocksWithTheirContext() throws {
    // 1 µm/px, 100 µm blocks: 3 × 2 blocks with edges at x = 0, 100, 200 and y = 0, 100. Block (1, 1) gets no cell
    // and is dropped; a row of another image is ignored; (100, 50) lies on the first column of block (1, 0).
    let csv = try writeCSV(
        """
        image,x,y,class
        s.tif,10.5,20.5,a
        s.tif,150,30,b
        s.tif,99.9,99.9,a
        other.tif,5,5,a
        s.tif,250,150,b
        s.tif,100,50,a
        s.tif,290,10,b
        s.tif,5,150,a
        """)
    let data = try CellData.load(
        slidePath: "/slides/s.tif", slide: codedSlide(), cellsCSV: csv, micronsPerPixel: 1,
        blockMicrons: 100)
    #expect(data.imageNames == ["s.tif@0,0", "s.tif@100,0", "s.tif@200,0", "s.tif@0,100", "s.tif@200,100"])
    #expect(data.imageKind == "blocks")
    #expect(data.imageSizes.allSatisfy { $0.width == 100 && $0.height == 100 })
    // By block (row by row), then as listed; positions relative to the block's origin.
    #expect(data.image == [0, 0, 1, 1, 2, 3, 4])
    #expect(data.x == [10.5, 99.9, 50, 0, 90, 5, 50])
    #expect(data.y == [20.5, 99.9, 30, 50, 10, 50, 50])
    #expect(data.className == ["a", "a", "b", "a", "b", "a", "b"])

    // Block (100, 0) with 32 px of context on each side: the offset maps a cell's block coordinates into the picture,
    // and the pixel there is the slide's pixel at the cell's absolute position.
    let (picture, dx, dy) = try data.pixels(ofImage: 1)
    #expect(dx == 32 && dy == 0)  // nothing above y = 0
    #expect(picture.width == 164 && picture.height == 132)
    let o = (Int(data.y[2] + dy) * picture.width + Int(data.x[2] + dx)) * 3
    #expect(picture.pixels[o] == 150 && picture.pixels[o + 1] == 30 && picture.pixels[o + 2] == 0)
    // At the slide's corners the context is cut: block (0, 0) starts at the picture's origin, block (200, 0) ends at
    // the slide's right edge.
    let corner = try data.pixels(ofImage: 0), right = try data.pixels(ofImage: 2)
    #expect(corner.dx == 0 && corner.dy == 0 && corner.image.width == 132 && corner.image.height == 132)
    #expect(right.dx == 32 && right.image.width == 132)

    // Every 4th block is held aside, like every 4th image of a directory.
    let prepared = try PreparedData.make(
        cells: data, testDirectory: nil, useCase: UseCase(positive: "a"), features: .cheap,
        patchMicrons: 50)
    #expect(prepared.test.imageNames == ["s.tif@0,100"] && prepared.pool.count == 6 && prepared.test.count == 1)
    #expect(prepared.testDescription.contains("1 of the 5 blocks"))
    #expect(prepared.grid.patches.count == 16)  // 2 × 2 patches of 50 µm in each of the 4 pool blocks
}

@Test func blockEdgesOnWholePixelsWhenTheRegionDoesNotDivide() throws {
    // 299 px in 3 blocks: edges 0, 99, 199, 299. A cell on x = 99 starts the second block (⌊99·3/299⌋ alone says 0).
    let csv = try writeCSV("image,x,y,class\ns.tif,98.9,5,a\ns.tif,99,5,b\ns.tif,198.5,5,a\ns.tif,199,5,b\n")
    let data = try CellData.load(
        slidePath: "s.tif", slide: codedSlide(), cellsCSV: csv, micronsPerPixel: 1,
        region: PixelRegion(x: 0, y: 0, width: 299, height: 100), blockMicrons: 100)
    #expect(data.imageNames == ["s.tif@0,0", "s.tif@99,0", "s.tif@199,0"])
    #expect(data.imageSizes.map(\.width) == [99, 100, 100])
    #expect(data.image == [0, 1, 1, 2] && data.x == [98.9, 0, 99.5, 0])
}

@Test func slideCellsRefuseWhatTheyCannotUse() throws {
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }
    let csv = try writeCSV("image,x,y,class\nother.tif,5,5,a\n")
    let otherSlide = message { _ = try CellData.load(slidePath: "s.tif", slide: codedSlide(), cellsCSV: csv, micronsPerPixel: 1) }
    #expect(otherSlide.contains("no cells of s.tif") && otherSlide.contains("other.tif"), "\(otherSlide)")
    let inside = try writeCSV("image,x,y,class\ns.tif,5,5,a\n")
    let outside = message {
        _ = try CellData.load(
            slidePath: "s.tif", slide: codedSlide(), cellsCSV: inside, micronsPerPixel: 1,
            region: PixelRegion(x: 200, y: 0, width: 200, height: 10))
    }
    #expect(outside.contains("reaches outside the 300×200 slide"), "\(outside)")
    let empty = message {
        _ = try CellData.load(
            slidePath: "s.tif", slide: codedSlide(), cellsCSV: inside, micronsPerPixel: 1,
            region: PixelRegion(x: 100, y: 100, width: 50, height: 50))
    }
    #expect(empty.contains("no labelled cell of s.tif lies inside region"), "\(empty)")
    // 100 µm blocks at 1 µm/px need (100 + 2·32)² px per read: refused up front under a smaller read limit.
    var limited = codedSlide()
    limited.maxReadPixels = 160 * 160
    let tooLarge = message { _ = try CellData.load(slidePath: "s.tif", slide: limited, cellsCSV: inside, micronsPerPixel: 1, blockMicrons: 100) }
    #expect(tooLarge.contains("use a smaller --block-um"), "\(tooLarge)")
    #expect(PixelRegion.parse("0,3500,5000,1500") == PixelRegion(x: 0, y: 3500, width: 5000, height: 1500))
    #expect(PixelRegion.parse("0,0,0,5") == nil && PixelRegion.parse("1,2,3") == nil && PixelRegion.parse("-1,0,5,5") == nil)
}

@Test func featureCacheKeepsApartWhatChangesTheFeatures() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hali-cache-\(UUID().uuidString)").path
    var data = CellData(directory: "d", imageNames: ["a.png"], imagePaths: [""], imageSizes: [(10, 10)], micronsPerPixel: 0.5)
    data.image = [0]; data.x = [1]; data.y = [2]; data.className = ["c"]
    var computed = 0
    func load(_ d: CellData) throws -> Float {
        try FeatureCache.load(d, kind: .cheap, cacheDirectory: dir) {
            computed += 1
            return Matrix(rows: 1, columns: 1, values: [Float(computed)])
        }[0, 0]
    }
    #expect(try load(data) == 1 && load(data) == 1)  // the second read comes from the file
    var rescaled = data
    rescaled.micronsPerPixel = 0.52
    var moved = data
    moved.x = [1.5]
    #expect(try load(rescaled) == 2 && load(moved) == 3 && computed == 3)

    // CNN features live in a folder per weights content; unreadable weights get no cache at all.
    let w1 = dir + "-w1", w2 = dir + "-w2"
    try "one".write(toFile: w1, atomically: true, encoding: .utf8)
    try "two".write(toFile: w2, atomically: true, encoding: .utf8)
    let c1 = LearningFeatureProviders.cacheDirectory(base: dir, kind: .cnn, weights: w1)
    let c2 = LearningFeatureProviders.cacheDirectory(base: dir, kind: .cnn, weights: w2)
    #expect(c1 != nil && c2 != nil && c1 != c2 && c1!.hasPrefix(dir + "/cnn-"))
    #expect(LearningFeatureProviders.cacheDirectory(base: dir, kind: .cnn, weights: dir + "-missing") == nil)
    #expect(LearningFeatureProviders.cacheDirectory(base: dir, kind: .cheap, weights: w1) == dir)
}

/// The real mosaic of the 100 CRC images (row-major, 500 px each): its bottom row read through OpenSlide in 275 µm
/// blocks gives back images 91–100 — the same cells at the same places, and nearly the same pixels.
@Test func crcMosaicBlocksAreTheCRCImages() throws {
    let slidePath = sharedData + "/slides/crc-mosaic.tif"
    let slide = try Slide(path: slidePath)
    let pixels = SlidePixels(width: Int(slide.width), height: Int(slide.height)) { x, y, w, h in
        RGBImage(width: w, height: h, pixels: try slide.readRegion(x: Int64(x), y: Int64(y), level: 0, width: w, height: h))
    }
    let blocks = try CellData.load(
        slidePath: slidePath, slide: pixels, cellsCSV: sharedData + "/slides/crc-mosaic-cells.csv",
        micronsPerPixel: 0.55, region: PixelRegion(x: 0, y: 4500, width: 5000, height: 500),
        blockMicrons: 275)
    #expect(blocks.imageNames.count == 10 && blocks.imageOrigins.map(\.x) == Array(stride(from: 0, to: 5000, by: 500)))
    #expect(blocks.imageSizes.allSatisfy { $0.width == 500 && $0.height == 500 })

    // crc/cells.csv has a few centroids on an image's far edge (x or y = 500.0, e.g. img091 at x = 500): on the
    // mosaic they lie on the first pixel of the next image. Every other cell of images 91–100 is in its block.
    let images = try CellData.load(directory: sharedData + "/crc").subset(images: Array(90..<100))
    func key(_ d: CellData, _ c: Int) -> String {
        "\(d.image[c]) \(Int((d.x[c] * 100).rounded())) \(Int((d.y[c] * 100).rounded())) \(d.className[c])"
    }
    var blockCell: [String: Int] = [:]
    for c in 0..<blocks.count { blockCell[key(blocks, c)] = c }
    let inner = (0..<images.count).filter { images.x[$0] < 500 && images.y[$0] < 500 }
    #expect(inner.count >= images.count - 1)
    #expect(inner.allSatisfy { blockCell[key(images, $0)] != nil })
    let extra = blocks.count - inner.count
    #expect(extra >= 0 && extra <= 3 && (0..<blocks.count).filter { blocks.x[$0] == 0 || blocks.y[$0] == 0 }.count >= extra)

    // Cheap features (in [0, 1]) of cells at least 16 µm inside images 91 and 92 see the same pixels in both layouts.
    let margin = 16 / 0.55
    let deep = inner.filter {
        images.image[$0] < 2 && images.x[$0] > margin && images.y[$0] > margin && images.x[$0] < 500 - margin && images.y[$0] < 500 - margin
    }
    let a = try CheapFeatures.extract(blocks.subset(images: [0, 1])), b = try CheapFeatures.extract(images.subset(images: [0, 1]))
    var largest: Float = 0, sum: Float = 0
    for c in deep {
        let m = blockCell[key(images, c)]!
        for j in 0..<CheapFeatures.dimension { largest = max(largest, abs(a[m, j] - b[c, j])); sum += abs(a[m, j] - b[c, j]) }
    }
    // The mosaic's tiles are lossy-compressed: close, not equal (a misplaced window would differ by ~0.1–0.5).
    let mean = sum / Float(deep.count * CheapFeatures.dimension)
    #expect(deep.count > 100 && largest < 0.1 && mean < 0.01, "difference: largest \(largest), mean \(mean) over \(deep.count) cells")
}
