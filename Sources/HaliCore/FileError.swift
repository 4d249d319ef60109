/// A file that cannot be used (read, written, understood): which one and why, in words a person can act on. The one
/// error of the modules that read and write files (index, ingest, interop); the store and the slide reader keep
/// theirs, which carry a kind that their callers act on.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}
