// The slide + cells-CSV layout for the experiments: one whole-slide image and a CSV of labelled centroids in its
// level-0 pixels (`image,x,y,class`, `image` = the slide's file name; e.g. ../shared/data/slides/crc-mosaic.tif with
// crc-mosaic-cells.csv). A slide has no "images" to hold aside, so the labelled region is cut into square blocks
// (default 500 µm) that play the part of images: the held-aside test part is every 4th block, and patches are cut
// inside blocks. Pixels are read block by block through a caller-given reader (OpenSlide in `hali`).

import Foundation

/// A rectangle in level-0 pixels (x = column, y = row of the top-left corner).
public struct PixelRegion: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }

    /// "X,Y,W,H" with W, H > 0; nil otherwise.
    public static func parse(_ text: String) -> PixelRegion? {
        let v = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 4, let x = v[0], let y = v[1], let w = v[2], let h = v[3], x >= 0, y >= 0, w > 0, h > 0 else { return nil }
        return PixelRegion(x: x, y: y, width: w, height: h)
    }
}

extension CellData {
    /// Loads the labelled cells of a slide.
    ///
    /// - Parameters:
    ///   - cellsCSV: rows whose `image` is the slide's file name (the last path component of `slidePath`) are used.
    ///   - region: only cells inside this level-0 rectangle (default: the whole slide).
    ///   - blockMicrons: the region is cut into nx × ny blocks, nx = max(1, round(width · mpp / blockMicrons)), with
    ///     edges on whole pixels (so a block is up to ~1.5 × blockMicrons wide); blocks without a labelled cell are
    ///     dropped. Cell positions become block-relative. Refused when a block and its context exceed
    ///     `slide.maxReadPixels`.
    /// - Complexity: O(rows of the CSV); no pixels are read here.
    public static func load(
        slidePath: String, slide: SlidePixels, cellsCSV: String, micronsPerPixel: Double,
        region: PixelRegion? = nil, blockMicrons: Double = 500
    ) throws -> CellData {
        guard micronsPerPixel > 0, blockMicrons > 0 else { throw ExperimentError.invalid("µm/px and block size must be positive") }
        let area = region ?? PixelRegion(x: 0, y: 0, width: slide.width, height: slide.height)
        guard area.x >= 0, area.y >= 0, area.width > 0, area.height > 0,
            area.x + area.width <= slide.width, area.y + area.height <= slide.height
        else {
            throw ExperimentError.invalid(
                "region \(area.x),\(area.y),\(area.width),\(area.height) reaches outside the \(slide.width)×\(slide.height) slide")
        }
        let slideName = (slidePath as NSString).lastPathComponent
        let rows = try CellRow.read(csv: cellsCSV)
        let mine = rows.filter { $0.image == slideName }
        guard !mine.isEmpty else {
            let named = Set(rows.prefix(1000).map(\.image)).sorted().prefix(3).joined(separator: ", ")
            throw ExperimentError.invalid(
                "\(cellsCSV) has no cells of \(slideName) in its image column (it names \(named.isEmpty ? "nothing" : named))")
        }
        let nx = max(1, Int((Double(area.width) * micronsPerPixel / blockMicrons).rounded()))
        let ny = max(1, Int((Double(area.height) * micronsPerPixel / blockMicrons).rounded()))
        // Block i spans [edge(i), edge(i + 1)) with whole-pixel edges. For d = p − start, b = ⌊d·n / length⌋ gives
        // edge(b) ≤ p, but p can equal edge(b + 1) when (b + 1)·length/n is not whole (length 299, n 3: edges 0, 99,
        // 199; p = 99 gives b = 0), so that case moves to the next block.
        func edge(_ i: Int, _ n: Int, _ start: Int, _ length: Int) -> Int { start + i * length / n }
        func block(_ p: Int, _ n: Int, _ start: Int, _ length: Int) -> Int {
            let b = (p - start) * n / length
            return b + 1 < n && edge(b + 1, n, start, length) <= p ? b + 1 : b
        }
        let largest = (area.width + nx - 1) / nx + 2 * Int((CellData.contextMicrons / micronsPerPixel).rounded(.up))
        let tallest = (area.height + ny - 1) / ny + 2 * Int((CellData.contextMicrons / micronsPerPixel).rounded(.up))
        guard largest * tallest <= slide.maxReadPixels else {
            throw ExperimentError.invalid(
                "blocks of \(blockMicrons) µm need reads of \(largest)×\(tallest) px, over the \(slide.maxReadPixels)-pixel limit: use a smaller --block-um"
            )
        }

        // Cells of each block holding any, keyed by row-major block index (a dictionary: a tiny block size on a
        // whole slide must not allocate nx·ny lists).
        var cellsOfBlock: [Int: [CellRow]] = [:]
        for row in mine {
            let px = Int(row.x.rounded(.down)), py = Int(row.y.rounded(.down))
            guard px >= area.x, px < area.x + area.width, py >= area.y, py < area.y + area.height else { continue }
            let bx = block(px, nx, area.x, area.width), by = block(py, ny, area.y, area.height)
            cellsOfBlock[by * nx + bx, default: []].append(row)
        }
        var data = CellData(directory: slidePath, imageNames: [], imagePaths: [], imageSizes: [], micronsPerPixel: micronsPerPixel)
        data.slide = slide
        for index in cellsOfBlock.keys.sorted() {
            let bx = index % nx, by = index / nx
            let x0 = edge(bx, nx, area.x, area.width), x1 = edge(bx + 1, nx, area.x, area.width)
            let y0 = edge(by, ny, area.y, area.height), y1 = edge(by + 1, ny, area.y, area.height)
            let im = data.imageNames.count
            data.imageNames.append("\(slideName)@\(x0),\(y0)")
            data.imagePaths.append(slidePath)
            data.imageSizes.append((x1 - x0, y1 - y0))
            data.imageOrigins.append((x0, y0))
            for cell in cellsOfBlock[index, default: []] {
                data.image.append(im); data.x.append(cell.x - Double(x0)); data.y.append(cell.y - Double(y0))
                data.className.append(cell.className)
            }
        }
        guard data.count > 0 else {
            throw ExperimentError.invalid("no labelled cell of \(slideName) lies inside region \(area.x),\(area.y),\(area.width),\(area.height)")
        }
        return data
    }
}
