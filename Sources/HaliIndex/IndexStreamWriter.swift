import Foundation
import HaliCompression
public import HaliCore

#if canImport(Glibc)
import Glibc
#endif

/// Writes a `.hidx` file from cells that arrive in parts (an ingest's bands of tiles, in id order), holding none of
/// them: each part's columns are appended to one spill file per column beside the index, and `finish` compresses
/// each spill as one zstd frame in 4 MiB chunks, then writes header, frames and trailer to a temporary file that is
/// fsync'd and renamed over `path` (the format and the guarantees of `IndexFile`).
///
/// Memory: O(one part + 4 MiB) whatever the slide's size; disk: the raw columns plus the compressed ones until
/// `finish` (a few hundred bytes per cell). `IndexFile.write` is this with one part, so every index is written the
/// same way. Not for concurrent use; the spill folder is removed on `finish` or when the writer goes away.
public final class IndexStreamWriter {
    private struct Column {
        var name: String
        var type: String
        var elementSize: Int
        var path: String
        var handle: FileHandle
        var count = 0
    }

    private let path: String
    private let spillFolder: String
    private var columns: [Column] = []
    private let stainNames: [String]
    /// Taken from the first part with rows (-1 until then); its column is made then.
    private var embeddingDimension = -1
    private let embeddingSource: String
    private var rows = 0
    private var contourPoints: UInt32 = 0
    private var classNames: [String] = []
    private var finished = false

    /// - Parameters:
    ///   - stainNames, embeddingSource: what every appended table has (the stains are checked, and so is the
    ///     embedding size against the first part with rows).
    public init(path: String, stainNames: [String], embeddingSource: String) throws {
        self.path = path
        self.stainNames = stainNames
        self.embeddingSource = embeddingSource
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try Directories.ensure(directory, purpose: "the output directory") }
        spillFolder = "\(path).spill-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do { try FileManager.default.createDirectory(atPath: spillFolder, withIntermediateDirectories: false) } catch {
            throw FileError(path: spillFolder, message: "cannot create the spill folder: \((error as NSError).localizedDescription)")
        }
        var names: [(String, String, Int)] = [
            "centroid_x", "centroid_y", "min_x", "min_y", "max_x", "max_y", "area_um2", "perimeter_um", "circularity", "solidity",
            "eccentricity", "major_axis_um", "minor_axis_um",
        ].map { ($0, "f32", 4) }
        for k in 0..<(stainNames.count * 4) { names.append(("od_\(stainNames[k / 4])_\(["mean", "std", "min", "max"][k % 4])", "f32", 4)) }
        names += [("contour_start", "u32", 4), ("contour_points", "f32", 4), ("class_index", "i16", 2), ("class_probability", "f32", 4)]
        for (name, type, size) in names { try addColumn(name, type, size) }
        // contour_start holds one offset more than there are rows: the first, 0.
        try append([UInt32(0)], to: names.firstIndex { $0.0 == "contour_start" }!)
    }

    private func addColumn(_ name: String, _ type: String, _ elementSize: Int) throws {
        let spill = "\(spillFolder)/\(columns.count)"
        guard FileManager.default.createFile(atPath: spill, contents: nil), let handle = FileHandle(forWritingAtPath: spill) else {
            throw FileError(path: spill, message: "cannot create a spill file")
        }
        columns.append(Column(name: name, type: type, elementSize: elementSize, path: spill, handle: handle))
    }

    deinit {
        for column in columns { try? column.handle.close() }
        try? FileManager.default.removeItem(atPath: spillFolder)
    }

    /// Appends `table`'s rows after those appended before (ids continue; the caller keeps id order).
    public func append(_ table: CellTable) throws {
        precondition(!finished, "append after finish")
        guard table.stainNames == stainNames else { throw FileError(path: path, message: "a part with other stains than the index") }
        if table.count > 0 {
            if embeddingDimension < 0 {
                embeddingDimension = table.embeddingDimension
                if embeddingDimension > 0 { try addColumn("embedding", "f16", 2) }
            }
            guard table.embeddingDimension == embeddingDimension else {
                throw FileError(path: path, message: "a part with \(table.embeddingDimension)-d embeddings in a \(embeddingDimension)-d index")
            }
        }
        var c = 0
        for values in [
            table.centroidX, table.centroidY, table.minX, table.minY, table.maxX, table.maxY, table.areaMicrons2, table.perimeterMicrons,
            table.circularity, table.solidity, table.eccentricity, table.majorAxisMicrons, table.minorAxisMicrons,
        ] + table.stainStatistics {
            try append(values.map(\.bitPattern), to: c)
            c += 1
        }
        try append(table.contourStart.dropFirst().map { $0 + contourPoints }, to: c)
        try append(table.contourPoints.map(\.bitPattern), to: c + 1)
        // Class indexes name this table's classes: renumber them into the index's list.
        let renumber = table.classNames.map { name -> Int16 in
            if let known = classNames.firstIndex(of: name) { return Int16(known) }
            classNames.append(name)
            return Int16(classNames.count - 1)
        }
        try append(table.classIndex.map { $0 < 0 ? -1 : renumber[Int($0)] }, to: c + 2)
        try append(table.classProbability.map(\.bitPattern), to: c + 3)
        if embeddingDimension > 0, table.count > 0 { try append(table.embeddings.map { Float16($0).bitPattern }, to: c + 4) }
        contourPoints += table.contourStart.last ?? 0
        rows += table.count
    }

    private func append<T: FixedWidthInteger>(_ values: [T], to index: Int) throws {
        guard !values.isEmpty else { return }
        // The file is little-endian; on a little-endian machine (every one Swift runs on Linux) that is memory as is.
        let bytes = values.map(\.littleEndian).withUnsafeBytes { Data($0) }
        do { try columns[index].handle.write(contentsOf: bytes) } catch {
            throw FileError(path: columns[index].path, message: "spill write failed: \((error as NSError).localizedDescription)")
        }
        columns[index].count += values.count
    }

    /// Compresses the columns and writes the index atomically; the spill folder is removed.
    public func finish(manifest: IndexManifest) throws {
        precondition(!finished, "finish twice")
        finished = true
        for column in columns { try column.handle.close() }
        let frames = "\(spillFolder)/frames"
        guard FileManager.default.createFile(atPath: frames, contents: nil), let framesOut = FileHandle(forWritingAtPath: frames) else {
            throw FileError(path: frames, message: "cannot create")
        }
        var directory: [IndexFile.Header.Column] = []
        for column in columns {
            let compressor = try Zstd.StreamCompressor(contentSize: column.count * column.elementSize, level: 6)
            var written = 0
            let sink: (UnsafeRawBufferPointer) throws -> Void = { piece in
                try framesOut.write(contentsOf: Data(piece))
                written += piece.count
            }
            guard let input = FileHandle(forReadingAtPath: column.path) else { throw FileError(path: column.path, message: "cannot reopen") }
            while let chunk = try input.read(upToCount: 4 << 20), !chunk.isEmpty {
                try chunk.withUnsafeBytes { try compressor.add($0, to: sink) }
            }
            try input.close()
            try compressor.finish(to: sink)
            try? FileManager.default.removeItem(atPath: column.path)
            directory.append(.init(name: column.name, type: column.type, count: column.count, bytes: written))
        }
        try framesOut.close()
        let header = IndexFile.Header(
            manifest: manifest, rows: rows, stainNames: stainNames, classNames: classNames, columns: directory,
            embeddingDimension: embeddingDimension > 0 ? embeddingDimension : nil, embeddingSource: embeddingDimension > 0 ? embeddingSource : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let headerBytes = Array(try encoder.encode(header))
        var head = IndexFile.magic
        withUnsafeBytes(of: UInt32(headerBytes.count).littleEndian) { head += $0 }
        head += headerBytes
        let framesSize = (try FileManager.default.attributesOfItem(atPath: frames)[.size] as? NSNumber)?.intValue ?? 0
        var tail = IndexFile.trailerMagic
        withUnsafeBytes(of: UInt64(head.count + framesSize + IndexFile.trailerMagic.count + 8).littleEndian) { tail += $0 }
        try IndexFile.writeAtomically(to: path) { write in
            try write(head)
            guard let input = FileHandle(forReadingAtPath: frames) else { throw FileError(path: frames, message: "cannot reopen") }
            defer { try? input.close() }
            while let chunk = try input.read(upToCount: 4 << 20), !chunk.isEmpty { try write(Array(chunk)) }
            try write(tail)
        }
        try? FileManager.default.removeItem(atPath: spillFolder)
    }
}
