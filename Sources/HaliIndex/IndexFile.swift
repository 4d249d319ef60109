import Foundation
import HaliCompression
public import HaliCore

#if canImport(Glibc)
import Glibc
#endif

/// The `.hidx` file: a slide's `CellTable` and `IndexManifest`, each column compressed with zstd.
///
///     "HALIIDX\0"                         8 bytes
///     header length H                     u32, little-endian
///     header                              H bytes of JSON: manifest, row count, names, column directory
///     column 1 … column k                 zstd frames, in directory order (little-endian values inside)
///     "HALIEND\0" + total file length     16 bytes
///
/// Written to a temporary file, fsync'd, then renamed over the final name: a reader sees the old index or the
/// new one, never part of one, and an interrupted ingest leaves at most a stray `*.tmp-*` file that never loads.
/// Reading verifies the magic, the trailer, every column's size against the row count, and the contour offsets.
public enum IndexFile {
    static let magic = Array("HALIIDX\0".utf8)
    static let trailerMagic = Array("HALIEND\0".utf8)
    /// A header is a few KiB; refuse anything absurd before allocating it.
    static let maxHeaderBytes = 16 << 20

    struct Header: Codable {
        struct Column: Codable {
            var name: String
            var type: String
            var count: Int
            var bytes: Int
        }
        var manifest: IndexManifest
        var rows: Int
        var stainNames: [String]
        var classNames: [String]
        var columns: [Column]
        var embeddingDimension: Int?
        var embeddingSource: String?
    }

    // MARK: Writing

    /// Writes `table` as one part of an `IndexStreamWriter` (the one way every index is written).
    public static func write(_ table: CellTable, manifest: IndexManifest, to path: String) throws {
        let writer = try IndexStreamWriter(path: path, stainNames: table.stainNames, embeddingSource: table.embeddingSource)
        try writer.append(table)
        try writer.finish(manifest: manifest)
    }

    /// Writes `bytes` to `path` through a temporary file in the same directory, fsync, rename, fsync of the
    /// directory. A crash at any point leaves either the previous file or the new one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        try writeAtomically(to: path) { write in try write(bytes) }
    }

    /// `writeAtomically` for contents written in pieces: `body` gets a function that appends bytes to the file.
    public static func writeAtomically(to path: String, _ body: (_ write: ([UInt8]) throws -> Void) throws -> Void) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try Directories.ensure(directory, purpose: "the output directory") }
        let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileError(path: temporary, message: "cannot create: \(String(cString: strerror(errno)))") }
        func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileError(path: temporary, message: "write failed: \(String(cString: strerror(errno)))")
                    }
                    offset += n
                }
            }
        }
        do {
            try body(write)
            guard fsync(fd) == 0 else { throw FileError(path: temporary, message: "fsync failed: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw FileError(path: path, message: "rename failed: \(message)")
        }
        let dirfd = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    private static func appendLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    // MARK: Reading

    public static func readManifest(path: String) throws -> IndexManifest {
        try readHeader(Array(try readFile(path)), path: path).header.manifest
    }

    public static func read(path: String) throws -> (manifest: IndexManifest, table: CellTable) {
        try read(bytes: Array(try readFile(path)), path: path)
    }

    /// SHA-256 over the cells' values, decompressed: the row count, stain and class names, embedding size and source,
    /// then every column's values in file order (little-endian bit patterns). Two indexes with one digest hold the
    /// same cells, outlines, measurements and embeddings bit for bit, however they were compressed and whatever their
    /// manifests say of when, where and how fast they were built (what `hali batch` is checked against). Reads the
    /// whole table: O(cells) memory.
    public static func cellsDigest(path: String) throws -> String {
        let (_, table) = try read(path: path)
        var bytes = Array("\(table.count)|\(table.stainNames)|\(table.classNames)|\(table.embeddingDimension)|\(table.embeddingSource)|".utf8)
        func add<T: FixedWidthInteger>(_ values: [T]) {
            values.withUnsafeBufferPointer { buffer in for v in buffer { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } } }
        }
        for column in [
            table.centroidX, table.centroidY, table.minX, table.minY, table.maxX, table.maxY, table.areaMicrons2, table.perimeterMicrons,
            table.circularity, table.solidity, table.eccentricity, table.majorAxisMicrons, table.minorAxisMicrons,
        ] + table.stainStatistics + [table.contourPoints, table.classProbability, table.embeddings] {
            add(column.map(\.bitPattern))
        }
        add(table.contourStart)
        add(table.classIndex)
        return SHA256.hexDigest(bytes: bytes)
    }

    /// Most rows, columns, classes, stains and embedding dimensions a header may declare. Far above any real slide
    /// (10^6 nuclei), and low enough that no product of them overflows or asks for more memory than the file could
    /// explain: a corrupt or hostile header is refused before any of its numbers is used in arithmetic.
    static let maxRows = 100_000_000, maxColumns = 1024, maxNames = 4096, maxEmbeddingDimension = 8192

    /// Parses an index file's bytes (`path` names it in errors). Throws `FileError` for anything that is not a
    /// complete, consistent index.
    public static func read(bytes: [UInt8], path: String) throws -> (manifest: IndexManifest, table: CellTable) {
        let (header, bodyStart) = try readHeader(bytes, path: path)
        func fail(_ message: String) -> FileError { FileError(path: path, message: "corrupt index: \(message)") }
        guard (0...maxRows).contains(header.rows) else { throw fail("\(header.rows) rows") }
        guard header.columns.count <= maxColumns, header.stainNames.count <= maxNames, header.classNames.count <= maxNames else {
            throw fail("too many columns or names")
        }
        guard (0...maxEmbeddingDimension).contains(header.embeddingDimension ?? 0) else {
            throw fail("embedding dimension \(header.embeddingDimension ?? 0)")
        }
        // zstd cannot expand a column more than 32,768-fold (a 128 KiB block written as one repeated byte takes 4
        // bytes), so a count past that bound is not in this file, and is refused before anything is allocated for it.
        for column in header.columns {
            guard (0...bytes.count).contains(column.bytes), (0...(column.bytes * 32_768 + (1 << 17)) / 2).contains(column.count) else {
                throw fail("column \(column.name) declares \(column.count) values in \(column.bytes) bytes")
            }
        }

        var offset = bodyStart
        var raw: [String: [UInt8]] = [:]
        let elementSize = ["f32": 4, "u32": 4, "i16": 2, "f16": 2]
        for column in header.columns {
            guard let size = elementSize[column.type] else { throw fail("column \(column.name) has unknown type \(column.type)") }
            guard column.bytes >= 0, offset + column.bytes <= bytes.count - 16 else { throw fail("column \(column.name) runs past the end") }
            let values: [UInt8]
            do {
                values = try Zstd.decompress(Array(bytes[offset..<offset + column.bytes]), maxOutputBytes: column.count * size)
            } catch {
                throw fail("column \(column.name): \(error)")
            }
            guard values.count == column.count * size else {
                throw fail("column \(column.name) holds \(values.count) bytes, expected \(column.count * size)")
            }
            raw[column.name] = values
            offset += column.bytes
        }
        guard offset == bytes.count - 16 else { throw fail("\(bytes.count - 16 - offset) unexplained bytes before the trailer") }

        func floats(_ name: String, count: Int? = nil) throws -> [Float] {
            guard let data = raw[name] else { throw fail("missing column \(name)") }
            let values = data.withUnsafeBytes { buffer in
                (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            if let count, values.count != count { throw fail("column \(name) has \(values.count) values for \(count) rows") }
            return values
        }
        let rows = header.rows
        var table = CellTable()
        table.centroidX = try floats("centroid_x", count: rows)
        table.centroidY = try floats("centroid_y", count: rows)
        table.minX = try floats("min_x", count: rows)
        table.minY = try floats("min_y", count: rows)
        table.maxX = try floats("max_x", count: rows)
        table.maxY = try floats("max_y", count: rows)
        table.areaMicrons2 = try floats("area_um2", count: rows)
        table.perimeterMicrons = try floats("perimeter_um", count: rows)
        table.circularity = try floats("circularity", count: rows)
        table.solidity = try floats("solidity", count: rows)
        table.eccentricity = try floats("eccentricity", count: rows)
        table.majorAxisMicrons = try floats("major_axis_um", count: rows)
        table.minorAxisMicrons = try floats("minor_axis_um", count: rows)
        table.stainNames = header.stainNames
        table.stainStatistics = try (0..<(header.stainNames.count * 4)).map { k in
            try floats("od_\(header.stainNames[k / 4])_\(["mean", "std", "min", "max"][k % 4])", count: rows)
        }
        guard let startBytes = raw["contour_start"], startBytes.count == (rows + 1) * 4 else { throw fail("contour_start size") }
        table.contourStart = startBytes.withUnsafeBytes { b in
            (0...rows).map { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
        }
        table.contourPoints = try floats("contour_points")
        guard table.contourStart.first == 0, table.contourStart.last.map({ Int($0) * 2 }) == table.contourPoints.count,
            zip(table.contourStart, table.contourStart.dropFirst()).allSatisfy({ $0 <= $1 })
        else { throw fail("contour offsets are inconsistent") }
        guard let classBytes = raw["class_index"], classBytes.count == rows * 2 else { throw fail("class_index size") }
        table.classIndex = classBytes.withUnsafeBytes { b in
            (0..<rows).map { Int16(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
        }
        table.classNames = header.classNames
        guard table.classIndex.allSatisfy({ $0 >= -1 && Int($0) < header.classNames.count }) else { throw fail("class index out of range") }
        table.classProbability = try floats("class_probability", count: rows)
        if let dimension = header.embeddingDimension, dimension > 0 {
            guard let data = raw["embedding"], data.count == rows * dimension * 2 else { throw fail("embedding column size") }
            table.embeddingDimension = dimension
            table.embeddingSource = header.embeddingSource ?? ""
            table.embeddings = data.withUnsafeBytes { b in
                (0..<(rows * dimension)).map {
                    Float(Float16(bitPattern: UInt16(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))))
                }
            }
        }
        return (header.manifest, table)
    }

    private static func readFile(_ path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FileError(path: path, message: "cannot read: \((error as NSError).localizedDescription)")
        }
    }

    private static func readHeader(_ bytes: [UInt8], path: String) throws -> (header: Header, bodyStart: Int) {
        func fail(_ message: String) -> FileError { FileError(path: path, message: "not a HALI index: \(message)") }
        guard bytes.count >= 28, Array(bytes[0..<8]) == magic else { throw fail("bad magic") }
        guard Array(bytes[(bytes.count - 16)..<(bytes.count - 8)]) == trailerMagic else { throw fail("no trailer (truncated?)") }
        let declared = bytes[(bytes.count - 8)...].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard declared == UInt64(bytes.count) else { throw fail("file is \(bytes.count) bytes, trailer says \(declared)") }
        let headerLength = Int(bytes[8..<12].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
        guard headerLength <= maxHeaderBytes, 12 + headerLength <= bytes.count - 16 else { throw fail("header length \(headerLength) out of range") }
        do {
            let header = try JSONDecoder().decode(Header.self, from: Data(bytes[12..<(12 + headerLength)]))
            return (header, 12 + headerLength)
        } catch {
            throw fail("header does not decode: \(error)")
        }
    }
}
