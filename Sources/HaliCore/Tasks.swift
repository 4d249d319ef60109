/// A labelling task: a name and the closed set of classes an annotator chooses from.
public struct LabelClass: Sendable, Equatable {
    public var name: String
    /// "#rrggbb", used by the terminal client and the exports.
    public var color: String
    /// The key that assigns this class in the terminal client.
    public var key: String

    public init(name: String, color: String, key: String) {
        self.name = name
        self.color = color
        self.key = key
    }
}

public struct TaskDefinition: Sendable, Equatable {
    public var name: String
    public var classes: [LabelClass]

    public init(name: String, classes: [LabelClass]) throws(ConfigurationError) {
        guard !name.isEmpty else { throw ConfigurationError("a task has an empty name") }
        guard classes.count >= 2 else { throw ConfigurationError("task \"\(name)\" needs at least two classes") }
        let names = classes.map(\.name)
        guard Set(names).count == names.count else { throw ConfigurationError("task \"\(name)\" repeats a class name") }
        let keys = classes.map(\.key).filter { !$0.isEmpty }
        guard Set(keys).count == keys.count else { throw ConfigurationError("task \"\(name)\" binds one key to two classes") }
        self.name = name
        self.classes = classes
    }

    public func hasClass(_ className: String) -> Bool { classes.contains { $0.name == className } }

    /// The tasks a daemon offers when its configuration names none: the paper's three use cases and a
    /// four-class H&E phenotype task (the CoNSeP/CRC class sets).
    public static let builtIn: [TaskDefinition] = [
        try! TaskDefinition(
            name: "til",
            classes: [
                LabelClass(name: "inflammatory", color: "#e6194b", key: "1"),
                LabelClass(name: "other", color: "#4363d8", key: "2"),
            ]),
        try! TaskDefinition(
            name: "tumour",
            classes: [
                LabelClass(name: "epithelial", color: "#f58231", key: "1"),
                LabelClass(name: "other", color: "#4363d8", key: "2"),
            ]),
        try! TaskDefinition(
            name: "ki67",
            classes: [
                LabelClass(name: "positive", color: "#a52a2a", key: "1"),
                LabelClass(name: "negative", color: "#3cb4e6", key: "2"),
            ]),
        try! TaskDefinition(
            name: "phenotype",
            classes: [
                LabelClass(name: "epithelial", color: "#f58231", key: "1"),
                LabelClass(name: "inflammatory", color: "#e6194b", key: "2"),
                LabelClass(name: "spindle", color: "#3cb44b", key: "3"),
                LabelClass(name: "other", color: "#4363d8", key: "4"),
            ]),
    ]
}
