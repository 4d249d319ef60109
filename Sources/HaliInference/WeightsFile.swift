// Weight files of the backbone (.safetensors, PyTorch's names and our metadata) and the error they share with the
// training tools' other formats.

import Foundation
public import HaliNet

/// A file could not be read, written or understood.
public enum FileFormatError: Error, CustomStringConvertible {
    case npy(String)
    case io(String)
    public var description: String {
        switch self {
        case .npy(let m): return "npy: \(m)"
        case .io(let m): return m
        }
    }
}

/// Reading and writing weight files.
public enum WeightsFile {
    public static func load(path: String) throws -> (ResNet, BackboneMetadata) {
        guard let d = FileManager.default.contents(atPath: path) else { throw FileFormatError.io("cannot read weights \(path)") }
        return try ResNet.load(try SafeTensors.parse([UInt8](d)))
    }

    public static func save(_ net: ResNet, metadata: BackboneMetadata, path: String) throws {
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(net.safetensors(metadata: metadata)).write(to: url)
    }
}
