import CHaliProto
import CProtobufC

/// Refuses string fields that protobuf-c would silently change: a NUL byte or invalid UTF-8.
///
/// protobuf-c gives each string field to C as a NUL-terminated `char *` and keeps no length, so `"other\0junk"`
/// reaches Swift as `"other"` — a label would be stored under a class the client never sent, and a token followed
/// by `"\0anything"` would authenticate. protobuf-c does not check UTF-8 either (proto3 requires it), and
/// `String(cString:)` would replace bad bytes with U+FFFD. So before any field is read, the raw frame is walked once
/// with the generated descriptors as the map: every length-delimited field the schema types as `string` is checked,
/// every sub-message is entered, everything else is skipped. The walk runs only after `…__unpack` has accepted the
/// bytes, so the structure is already known to be sound; its own bounds checks are a second line.
///
/// Cost: one pass over the frame, O(bytes); no allocation but the field path of an error.
enum StringFieldCheck {
    /// Throws `WireError` (malformed) naming the first bad field, as a dotted path such as `label_event.class_name`.
    static func check(_ bytes: UnsafeRawBufferPointer, envelope descriptor: ProtobufCMessageDescriptor) throws(WireError) {
        var copy = descriptor
        try withUnsafePointer(to: &copy) { (pointer) throws(WireError) in
            try walk(bytes, descriptor: pointer, path: "")
        }
    }

    private static func walk(_ bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, path: String)
        throws(WireError)
    {
        var reader = VarintReader(bytes: bytes)
        while !reader.atEnd {
            guard let key = reader.varint() else { throw malformed(path, "truncated field key") }
            let number = UInt32(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0: guard reader.varint() != nil else { throw malformed(path, "truncated varint") }
            case 1: guard reader.skip(8) else { throw malformed(path, "truncated fixed64") }
            case 5: guard reader.skip(4) else { throw malformed(path, "truncated fixed32") }
            case 2:
                guard let length = reader.varint(), let body = reader.take(length) else { throw malformed(path, "truncated length-delimited field") }
                guard let field = field(number, of: descriptor) else { continue }  // unknown field: protobuf-c keeps it aside
                // Names are built only on the way to an error or into a sub-message, not for every string.
                func name() -> String { path.isEmpty ? String(cString: field.pointee.name) : path + "." + String(cString: field.pointee.name) }
                switch field.pointee.type {
                case PROTOBUF_C_TYPE_STRING:
                    if body.contains(0) { throw malformed(name(), "holds a NUL byte") }
                    if String(validating: body, as: UTF8.self) == nil { throw malformed(name(), "is not valid UTF-8") }
                case PROTOBUF_C_TYPE_MESSAGE:
                    guard let nested = field.pointee.descriptor?.assumingMemoryBound(to: ProtobufCMessageDescriptor.self) else { continue }
                    try walk(body, descriptor: nested, path: name())
                default:
                    continue  // bytes, or a packed repeated scalar
                }
            default:
                throw malformed(path, "wire type \(key & 7) is not used by this protocol")
            }
        }
    }

    private static func field(_ number: UInt32, of descriptor: UnsafePointer<ProtobufCMessageDescriptor>)
        -> UnsafePointer<ProtobufCFieldDescriptor>?
    {
        let d = descriptor.pointee
        guard let fields = d.fields else { return nil }
        for i in 0..<Int(d.n_fields) where fields[i].id == number { return fields + i }
        return nil
    }

    private static func malformed(_ path: String, _ reason: String) -> WireError {
        WireError(kind: .malformed, description: "\(path.isEmpty ? "envelope" : path) \(reason)")
    }
}

/// Bounded reads over protobuf's base-128 varints and length-delimited bodies.
private struct VarintReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    /// At most ten bytes, as the encoding allows for 64 bits.
    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard offset < bytes.count else { return nil }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count <= bytes.count - offset else { return false }
        offset += count
        return true
    }

    /// The next `length` bytes; nil when fewer remain (a length near 2^64 is compared, never added).
    mutating func take(_ length: UInt64) -> UnsafeRawBufferPointer? {
        guard length <= UInt64(bytes.count - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }
}
