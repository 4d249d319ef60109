// NumPy .npy files of the CNN tools (uint8 patches in, float32 features out). Weight files are HaliInference's.

import Foundation
import HaliInference

/// A NumPy array as read from / written to .npy (version 1.0/2.0, C order, little-endian).
public struct NPYArray: Sendable {
    public var shape: [Int]
    /// "|u1" or "<f4".
    public var dtype: String
    public var bytes: [UInt8]

    public init(shape: [Int], uint8 values: [UInt8]) { self.shape = shape; dtype = "|u1"; bytes = values }

    public init(shape: [Int], float32 values: [Float]) {
        self.shape = shape; dtype = "<f4"
        bytes = values.withUnsafeBytes { Array($0) }  // little-endian hosts (x86-64, arm64)
    }

    public var uint8Values: [UInt8] { bytes }
    public var float32Values: [Float] {
        bytes.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }

    public static func read(path: String) throws -> NPYArray {
        guard let d = FileManager.default.contents(atPath: path) else { throw FileFormatError.io("cannot read \(path)") }
        return try parse([UInt8](d), name: path)
    }

    public static func parse(_ b: [UInt8], name: String = "npy") throws -> NPYArray {
        guard b.count >= 10, b[0] == 0x93, Array(b[1...5]) == Array("NUMPY".utf8) else {
            throw FileFormatError.npy("\(name) is not a .npy file (bad magic)")
        }
        let major = b[6]
        let (hlen, start) =
            major == 1
            ? (Int(b[8]) | Int(b[9]) << 8, 10)
            : (Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24, 12)
        guard start + hlen <= b.count else { throw FileFormatError.npy("\(name): truncated header") }
        let header = String(decoding: b[start..<(start + hlen)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr"), let q1 = descr.firstIndex(of: "'") else { throw FileFormatError.npy("\(name): no descr") }
        let rest = descr[descr.index(after: q1)...]
        let dtype = String(rest[..<rest.firstIndex(of: "'")!])
        guard let fo = field("fortran_order"), fo.hasPrefix("False") else {
            throw FileFormatError.npy("\(name): Fortran-order arrays are not supported")
        }
        guard let sh = field("shape"), let open = sh.firstIndex(of: "("), let close = sh.firstIndex(of: ")") else {
            throw FileFormatError.npy("\(name): no shape")
        }
        let shape = sh[sh.index(after: open)..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let size: Int
        switch dtype {
        case "|u1", "<u1", "u1": size = 1
        case "<f4": size = 4
        default: throw FileFormatError.npy("\(name): dtype \(dtype) not supported (need uint8 or little-endian float32)")
        }
        let count = shape.reduce(1, *)
        let dataStart = start + hlen
        guard b.count - dataStart >= count * size else {
            throw FileFormatError.npy("\(name): truncated data (\(b.count - dataStart) bytes for shape \(shape) of \(dtype))")
        }
        return NPYArray(shape: shape, dtype: size == 1 ? "|u1" : "<f4", bytes: Array(b[dataStart..<(dataStart + count * size)]))
    }

    init(shape: [Int], dtype: String, bytes: [UInt8]) { self.shape = shape; self.dtype = dtype; self.bytes = bytes }

    public func serialized() -> [UInt8] {
        let shp = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var h = "{'descr': '\(dtype)', 'fortran_order': False, 'shape': \(shp), }"
        while (10 + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = h.utf8.count
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(h.utf8)
        out += bytes
        return out
    }

    public func write(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(serialized())) else {
            throw FileFormatError.io("cannot write \(path)")
        }
    }
}
