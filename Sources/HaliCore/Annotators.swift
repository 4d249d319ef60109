/// Who may talk to the daemon. Tokens are kept only as SHA-256 hex digests (`tokenDigest`), so a leaked
/// configuration file does not leak working tokens.
public struct Annotator: Sendable, Equatable {
    public var name: String
    public var tokenDigest: String
    /// Task names this annotator may open; empty means every task.
    public var tasks: [String]
    /// Slide ids this annotator may open; empty means every slide.
    public var slides: [String]

    public init(name: String, tokenDigest: String, tasks: [String] = [], slides: [String] = []) {
        self.name = name
        self.tokenDigest = tokenDigest.lowercased()
        self.tasks = tasks
        self.slides = slides
    }

    public init(name: String, token: String, tasks: [String] = [], slides: [String] = []) {
        self.init(name: name, tokenDigest: SHA256.hexDigest(token), tasks: tasks, slides: slides)
    }

    public func mayOpen(task: String) -> Bool { tasks.isEmpty || tasks.contains(task) }
    public func mayOpen(slide: String) -> Bool { slides.isEmpty || slides.contains(slide) }
}

/// Looks annotators up by token. Comparison is over digests and in constant time per entry, so the time taken
/// does not reveal how much of a token matched.
public struct AnnotatorRegistry: Sendable {
    public private(set) var annotators: [Annotator]

    public init(_ annotators: [Annotator]) throws(ConfigurationError) {
        var seen = Set<String>()
        for annotator in annotators {
            guard !annotator.name.isEmpty else { throw ConfigurationError("an annotator has an empty name") }
            guard seen.insert(annotator.name).inserted else {
                throw ConfigurationError("annotator \"\(annotator.name)\" is defined twice")
            }
            guard annotator.tokenDigest.count == 64, annotator.tokenDigest.allSatisfy(\.isHexDigit) else {
                throw ConfigurationError("annotator \"\(annotator.name)\": token digest must be 64 hex digits (SHA-256)")
            }
        }
        self.annotators = annotators
    }

    /// The annotator whose token this is, or nil. An empty token never matches.
    public func authenticate(token: String) -> Annotator? {
        guard !token.isEmpty else { return nil }
        let digest = Array(SHA256.hexDigest(token).utf8)
        var match: Annotator?
        for annotator in annotators {
            let stored = Array(annotator.tokenDigest.utf8)
            var difference: UInt8 = stored.count == digest.count ? 0 : 1
            for i in 0..<min(stored.count, digest.count) { difference |= stored[i] ^ digest[i] }
            if difference == 0 { match = annotator }
        }
        return match
    }
}

public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
