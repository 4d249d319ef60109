// The safetensors format over bytes (no file I/O here; HaliTraining reads and writes files):
//   8 bytes   little-endian UInt64 N, the header length
//   N bytes   UTF-8 JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
//             "__metadata__": {"key": "value", …}} (offsets relative to the start of the data section)
//   the rest  raw little-endian tensor data
// Every error names the tensor it is about.

/// Why a weights file was refused.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case malformedHeader(String)
    case tensor(name: String, problem: String)
    case missing(name: String, expectedShape: [Int])
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case unexpected(names: [String])
    case metadata(String)

    public var description: String {
        switch self {
        case .truncated(let m): return "truncated safetensors file: \(m)"
        case .malformedHeader(let m): return "malformed safetensors header: \(m)"
        case .tensor(let n, let p): return "tensor '\(n)': \(p)"
        case .missing(let n, let s): return "tensor '\(n)' is missing (expected shape \(s))"
        case .shapeMismatch(let n, let e, let f): return "tensor '\(n)' has shape \(f), expected \(e)"
        case .unexpected(let names): return "unexpected tensors: \(names.map { "'\($0)'" }.joined(separator: ", "))"
        case .metadata(let m): return "weights metadata: \(m)"
        }
    }
}

/// One tensor of a safetensors file, converted to Float32.
public struct SafeTensor: Sendable, Equatable {
    public var dtype: String
    public var shape: [Int]
    /// Values as Float (empty for integer tensors, which HaliNet never uses as weights).
    public var values: [Float]
}

public struct SafeTensors: Sendable {
    public var tensors: [String: SafeTensor]
    public var metadata: [String: String]

    public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata
    }

    static let floatSizes = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8]
    static let otherSizes = ["I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8]

    /// Parses and validates a whole file's bytes.
    public static func parse(_ bytes: [UInt8]) throws -> SafeTensors {
        guard bytes.count >= 8 else { throw SafeTensorsError.truncated("\(bytes.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError.truncated("header length is \(n) bytes but only \(bytes.count - 8) bytes follow")
        }
        let headerEnd = 8 + Int(n)
        var parser = JSONParser(bytes: bytes[8..<headerEnd])
        let root: JSON
        do { root = try parser.parseDocument() } catch let e as JSONParser.Failure {
            throw SafeTensorsError.malformedHeader(e.message)
        }
        guard case .object(let entries) = root else { throw SafeTensorsError.malformedHeader("the header is not a JSON object") }
        let dataCount = bytes.count - headerEnd
        var out = SafeTensors()
        var seen = Set<String>()
        for (name, value) in entries {
            guard seen.insert(name).inserted else { throw SafeTensorsError.malformedHeader("duplicate key '\(name)'") }
            if name == "__metadata__" {
                guard case .object(let kv) = value else { throw SafeTensorsError.malformedHeader("__metadata__ is not an object") }
                for (k, v) in kv {
                    guard case .string(let s) = v else { throw SafeTensorsError.malformedHeader("__metadata__ value of '\(k)' is not a string") }
                    out.metadata[k] = s
                }
                continue
            }
            func bad(_ p: String) -> SafeTensorsError { .tensor(name: name, problem: p) }
            guard case .object(let fields) = value else { throw bad("header entry is not an object") }
            let f = Dictionary(fields, uniquingKeysWith: { a, _ in a })
            guard case .string(let dtype)? = f["dtype"] else { throw bad("no dtype") }
            guard case .array(let sh)? = f["shape"] else { throw bad("no shape") }
            let shape = try sh.map { v -> Int in
                guard case .number(let d) = v, d >= 0, d == d.rounded(), d < 1e15 else {
                    throw bad("shape \(sh) is not a list of non-negative integers")
                }
                return Int(d)
            }
            guard case .array(let off)? = f["data_offsets"], off.count == 2,
                case .number(let b0) = off[0], case .number(let e0) = off[1], b0 >= 0, e0 >= b0, e0 < 1e15,
                b0 == b0.rounded(), e0 == e0.rounded()
            else { throw bad("data_offsets must be [begin, end] with 0 ≤ begin ≤ end") }
            let begin = Int(b0), end = Int(e0)
            guard let size = floatSizes[dtype] ?? otherSizes[dtype] else { throw bad("unknown dtype \(dtype)") }
            let count = shape.reduce(1, *)
            guard end - begin == count * size else {
                throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtype) needs \(count * size)")
            }
            guard end <= dataCount else {
                throw SafeTensorsError.truncated("tensor '\(name)' ends at byte \(end) of the data section, which has only \(dataCount) bytes")
            }
            var values: [Float] = []
            if floatSizes[dtype] != nil {
                values = [Float](repeating: 0, count: count)
                let base = headerEnd + begin
                bytes.withUnsafeBufferPointer { p in
                    for i in 0..<count {
                        let o = base + i * size
                        switch dtype {
                        case "F32":
                            values[i] = Float(bitPattern: UInt32(p[o]) | UInt32(p[o + 1]) << 8 | UInt32(p[o + 2]) << 16 | UInt32(p[o + 3]) << 24)
                        case "F64":
                            var u: UInt64 = 0
                            for j in 0..<8 { u |= UInt64(p[o + j]) << (8 * UInt64(j)) }
                            values[i] = Float(Double(bitPattern: u))
                        case "BF16":
                            values[i] = Float(bitPattern: (UInt32(p[o]) | UInt32(p[o + 1]) << 8) << 16)
                        default:
                            values[i] = halfToFloat(UInt16(p[o]) | UInt16(p[o + 1]) << 8)
                        }
                    }
                }
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw SafeTensorsError.tensor(name: name, problem: "value \(bad) is \(values[bad]) (not finite)")
                }
            }
            out.tensors[name] = SafeTensor(dtype: dtype, shape: shape, values: values)
        }
        return out
    }

    /// Serialises F32 tensors (sorted by name, as the reference implementation does) and string metadata.
    public static func serialize(
        _ tensors: [(name: String, shape: [Int], values: [Float])],
        metadata: [String: String] = [:]
    ) -> [UInt8] {
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            precondition(t.values.count == t.shape.reduce(1, *), "\(t.name): \(t.values.count) values for shape \(t.shape)")
            let bytes = t.values.count * 4
            header +=
                (first ? "" : ",")
                + "\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            first = false
            offset += bytes
        }
        header += "}"
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }  // pad with spaces so the data section is 8-byte aligned
        var out: [UInt8] = []
        out.reserveCapacity(8 + h.count + offset)
        let n = UInt64(h.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        out += h
        for t in sorted {
            for v in t.values {
                let u = v.bitPattern
                out.append(UInt8(truncatingIfNeeded: u)); out.append(UInt8(truncatingIfNeeded: u >> 8))
                out.append(UInt8(truncatingIfNeeded: u >> 16)); out.append(UInt8(truncatingIfNeeded: u >> 24))
            }
        }
        return out
    }
}

func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exp = Int((h >> 10) & 0x1F), frac = UInt32(h & 0x3FF)
    if exp == 0 {
        let v = Float(frac) * Float(sign != 0 ? -1 : 1) / 16_777_216  // subnormal: frac · 2^-24
        return v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (frac << 13))
}

func jsonString(_ s: String) -> String {
    var o = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": o += "\\\""
        case "\\": o += "\\\\"
        case "\n": o += "\\n"
        case "\t": o += "\\t"
        case "\r": o += "\\r"
        default:
            if u.value < 0x20 {
                o += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            } else {
                o.unicodeScalars.append(u)
            }
        }
    }
    return o + "\""
}

// MARK: - A small JSON parser (enough for safetensors headers)

indirect enum JSON: Equatable {
    case object([(String, JSON)])
    case array([JSON])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }
}

struct JSONParser {
    struct Failure: Error { var message: String }
    let b: ArraySlice<UInt8>
    var i: Int

    init(bytes: ArraySlice<UInt8>) { b = bytes; i = bytes.startIndex }

    mutating func parseDocument() throws -> JSON {
        let v = try value(depth: 0)
        skip()
        guard i == b.endIndex else { throw Failure(message: "trailing bytes after the JSON value at offset \(i - 8)") }
        return v
    }

    mutating func skip() { while i < b.endIndex, [0x20, 0x0A, 0x0D, 0x09].contains(b[i]) { i += 1 } }

    mutating func fail(_ m: String) -> Failure { Failure(message: "\(m) at header offset \(i - b.startIndex)") }

    mutating func value(depth: Int) throws -> JSON {
        guard depth < 64 else { throw fail("nesting too deep") }
        skip()
        guard i < b.endIndex else { throw fail("unexpected end of header") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1; var out: [(String, JSON)] = []
            skip()
            if i < b.endIndex, b[i] == UInt8(ascii: "}") { i += 1; return .object(out) }
            while true {
                skip()
                guard i < b.endIndex, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                skip()
                guard i < b.endIndex, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                out.append((k, try value(depth: depth + 1)))
                skip()
                guard i < b.endIndex else { throw fail("unterminated object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(out) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1; var out: [JSON] = []
            skip()
            if i < b.endIndex, b[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
            while true {
                out.append(try value(depth: depth + 1))
                skip()
                guard i < b.endIndex else { throw fail("unterminated array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            let s = i
            while i < b.endIndex, "+-0123456789.eE".utf8.contains(b[i]) { i += 1 }
            guard i > s, let d = Double(String(decoding: b[s..<i], as: UTF8.self)) else { throw fail("invalid value") }
            return .number(d)
        }
    }

    mutating func literal(_ word: String) throws {
        for u in word.utf8 {
            guard i < b.endIndex, b[i] == u else { throw fail("invalid literal") }
            i += 1
        }
    }

    mutating func string() throws -> String {
        i += 1
        var bytes: [UInt8] = []
        while i < b.endIndex {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; return String(decoding: bytes, as: UTF8.self) }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < b.endIndex else { break }
                switch b[i] {
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 < b.endIndex, let v = UInt32(String(decoding: b[(i + 1)...(i + 4)], as: UTF8.self), radix: 16)
                    else { throw fail("bad \\u escape") }
                    i += 4
                    bytes += Array(String(Unicode.Scalar(v) ?? "?").utf8)
                default: bytes.append(b[i])
                }
                i += 1
                continue
            }
            bytes.append(c); i += 1
        }
        throw fail("unterminated string")
    }
}

// MARK: - Models ⇄ safetensors

/// Pixel preprocessing and patch geometry that travel with the weights (`__metadata__`).
public struct BackboneMetadata: Sendable, Equatable {
    /// Per-channel mean and std of RGB in [0, 1]; input = (pixel/255 − mean) / std.
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]
    public var patchPixels: Int = 40
    /// Microns covered by one patch side (patchPixels × µm/px of the network input).
    public var patchMicrons: Double = 20
    public var classes: [String] = []
    /// Anything else (training command, seed, data, accuracy…), kept verbatim.
    public var extra: [String: String] = [:]

    public init() {}

    public var micronsPerPixel: Double { patchMicrons / Double(patchPixels) }

    public func encode(config: ResNetConfig) -> [String: String] {
        var m = extra
        m["format"] = "pt"
        m["hali.arch"] = config.description
        m["hali.mean"] = mean.map { "\($0)" }.joined(separator: ",")
        m["hali.std"] = std.map { "\($0)" }.joined(separator: ",")
        m["hali.patch_px"] = "\(patchPixels)"
        m["hali.patch_um"] = "\(patchMicrons)"
        if !classes.isEmpty { m["hali.classes"] = classes.joined(separator: ",") }
        return m
    }

    public init(decoding m: [String: String]) throws {
        self.init()
        func floats(_ k: String) throws -> [Float]? {
            guard let s = m[k] else { return nil }
            let v = s.split(separator: ",").compactMap { Float(String($0).trimmingCharacters(in: " ")) }
            guard v.count == 3 else { throw SafeTensorsError.metadata("\(k) must be 3 comma-separated numbers, got '\(s)'") }
            return v
        }
        if let v = try floats("hali.mean") { mean = v }
        if let v = try floats("hali.std") {
            guard v.allSatisfy({ $0 > 0 }) else { throw SafeTensorsError.metadata("hali.std must be positive") }
            std = v
        }
        if let s = m["hali.patch_px"] {
            guard let v = Int(s), v > 0 else { throw SafeTensorsError.metadata("hali.patch_px '\(s)' is not a positive integer") }
            patchPixels = v
        }
        if let s = m["hali.patch_um"] {
            guard let v = Double(s), v > 0 else { throw SafeTensorsError.metadata("hali.patch_um '\(s)' is not a positive number") }
            patchMicrons = v
        }
        if let s = m["hali.classes"] { classes = s.split(separator: ",").map(String.init) }
        for (k, v) in m
        where !k.hasPrefix("hali.") || !["hali.arch", "hali.mean", "hali.std", "hali.patch_px", "hali.patch_um", "hali.classes"].contains(k) {
            if k != "format" { extra[k] = v }
        }
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

extension ResNet {
    /// The state dict as safetensors bytes (PyTorch layouts and names), with `metadata`.
    public func safetensors(metadata: BackboneMetadata) -> [UInt8] {
        SafeTensors.serialize(
            parameters.map { ($0.name, $0.fileShape, $0.fileValues()) },
            metadata: metadata.encode(config: config))
    }

    /// Builds a ResNet from parsed safetensors. The architecture comes from `hali.arch` in the metadata;
    /// without it the file must be a torchvision ResNet-18 (the number of classes is read from fc.weight).
    /// Every expected tensor must be present with the expected shape and a float dtype; extra tensors
    /// other than batch norm's `num_batches_tracked` are refused.
    ///
    /// Two common exports of a backbone load too, since features never use the head: a state dict saved from
    /// `nn.DataParallel` (every name prefixed `module.`, stripped here), and a headless one (no `fc.weight` and
    /// no `fc.bias`, as after `model.fc = nn.Identity()`), which gives a network with `numClasses` 0 whose
    /// `hasHead` is false: features only. Half a head (one of the two fc tensors) is still refused.
    public static func load(_ file: SafeTensors) throws -> (ResNet, BackboneMetadata) {
        var tensors = file.tensors
        if !tensors.isEmpty && tensors.keys.allSatisfy({ $0.hasPrefix("module.") }) {
            tensors = Dictionary(uniqueKeysWithValues: tensors.map { (String($0.key.dropFirst("module.".count)), $0.value) })
        }
        let headless = tensors["fc.weight"] == nil && tensors["fc.bias"] == nil
        var config: ResNetConfig
        if let arch = file.metadata["hali.arch"] {
            guard let c = ResNetConfig(description: arch) else { throw SafeTensorsError.metadata("cannot parse hali.arch '\(arch)'") }
            config = c
        } else if headless {
            config = .resnet18()
        } else {
            guard let fc = tensors["fc.weight"] else { throw SafeTensorsError.missing(name: "fc.weight", expectedShape: [-1, 512]) }
            config = .resnet18(numClasses: fc.shape.first ?? 0)
        }
        if headless { config.numClasses = 0 }
        let meta = try BackboneMetadata(decoding: file.metadata)
        let net = ResNet(config: config, seed: 0)
        var expected = Set<String>()
        for p in net.parameters {
            expected.insert(p.name)
            guard let t = tensors[p.name] else { throw SafeTensorsError.missing(name: p.name, expectedShape: p.fileShape) }
            guard SafeTensors.floatSizes[t.dtype] != nil else {
                throw SafeTensorsError.tensor(name: p.name, problem: "dtype \(t.dtype) is not a float type (F32, F16, BF16, F64)")
            }
            guard t.shape == p.fileShape else { throw SafeTensorsError.shapeMismatch(name: p.name, expected: p.fileShape, found: t.shape) }
            p.setFileValues(t.values)
        }
        let extra = tensors.keys.filter { !expected.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        guard extra.isEmpty else { throw SafeTensorsError.unexpected(names: extra) }
        for p in net.parameters where p.name.hasSuffix("running_var") {
            if let i = p.value.firstIndex(where: { $0 < 0 }) {
                throw SafeTensorsError.tensor(name: p.name, problem: "variance \(i) is negative (\(p.value[i]))")
            }
        }
        return (net, meta)
    }
}
