// The one CSV writer of the product's files (`hali export --format csv`, `hali predict`'s regions, `hali report`'s
// tables): RFC 4180 quoting, so names holding commas, quotes or line breaks survive a spreadsheet round trip.

public enum CSV {
    /// A field as RFC 4180 writes it: quoted, with inner quotes doubled, when it holds a comma, a quote or a line
    /// break (CR or LF); as it is otherwise.
    public static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// One line: the fields escaped, joined by commas, ended by LF.
    public static func line(_ fields: [String]) -> String { fields.map(field).joined(separator: ",") + "\n" }
}
