/// How a label came to be: the audit trail's `source`, stored as the raw value.
public enum LabelOrigin: String, Sendable, Equatable, CaseIterable {
    /// The annotator chose the class.
    case manual
    /// The annotator accepted the model's suggestion.
    case accepted
    /// The annotator replaced the model's suggestion with another class.
    case corrected
    /// Read from another viewer's file (`hali import`).
    case imported
}
