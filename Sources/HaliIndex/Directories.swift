import Foundation
public import HaliCore

#if canImport(Glibc)
import Glibc
#endif

/// Directories the tools write into (`--data-dir`, `--out`), created with a message a person can act on instead of
/// Foundation's ("The operation could not be completed. (Cocoa error 512.)").
public enum Directories {
    /// Creates `path` and its parents when missing. Throws when a component is a file, or the directory cannot be
    /// created or written (with the reason from the system).
    /// - Parameter purpose: how the message names the directory, e.g. "--out" or "the data directory"; the error's
    ///   description reads "PATH: PURPOSE is a file, not a directory".
    public static func ensure(_ path: String, purpose: String) throws(FileError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw FileError(path: path, message: "\(purpose) is a file, not a directory") }
        } else {
            // Walk up to the deepest existing ancestor, so the message names the component that is in the way.
            var ancestor = (path as NSString).deletingLastPathComponent
            while !ancestor.isEmpty, ancestor != "/", !FileManager.default.fileExists(atPath: ancestor, isDirectory: &isDirectory) {
                ancestor = (ancestor as NSString).deletingLastPathComponent
            }
            if !ancestor.isEmpty, FileManager.default.fileExists(atPath: ancestor, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw FileError(path: path, message: "cannot create \(purpose): \(ancestor) is a file, not a directory")
            }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw FileError(path: path, message: "cannot create \(purpose): \(reason(ancestor.isEmpty ? "." : ancestor))")
            }
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw FileError(path: path, message: "\(purpose) is not writable: \(String(cString: strerror(errno)))")
        }
    }

    /// Why a directory cannot be written into, as the system says it.
    private static func reason(_ directory: String) -> String {
        access(directory, W_OK | X_OK) == 0
            ? "the system refused (\(String(cString: strerror(errno))))" : "\(directory): \(String(cString: strerror(errno)))"
    }
}
