import Foundation
import Testing

@testable import HaliNet

@Suite struct SafeTensorsTests {
    let net = ResNet(config: .compact(), seed: 1)

    func tensors(_ transform: (inout [(name: String, shape: [Int], values: [Float])]) -> Void = { _ in })
        -> [(name: String, shape: [Int], values: [Float])]
    {
        var t = net.parameters.map { (name: $0.name, shape: $0.fileShape, values: $0.fileValues()) }
        transform(&t)
        return t
    }

    func load(_ bytes: [UInt8]) throws { _ = try ResNet.load(try SafeTensors.parse(bytes)) }

    func message(_ bytes: [UInt8]) -> String {
        do { try load(bytes); return "loaded" } catch { return "\(error)" }
    }

    var meta: [String: String] { BackboneMetadata().encode(config: net.config) }

    @Test func roundTrip() throws {
        var m = BackboneMetadata()
        m.mean = [0.1, 0.2, 0.3]; m.patchMicrons = 18; m.classes = ["a", "b", "c", "d"]
        let bytes = net.safetensors(metadata: m)
        let (back, m2) = try ResNet.load(try SafeTensors.parse(bytes))
        #expect(back.config == net.config)
        #expect(m2.mean == m.mean && m2.patchMicrons == 18 && m2.classes == m.classes)
        for (a, b) in zip(back.parameters, net.parameters) { #expect(a.value == b.value, "\(a.name)") }
    }

    @Test func truncatedNamesTensor() {
        let bytes = SafeTensors.serialize(tensors(), metadata: meta)
        let msg = message(Array(bytes.dropLast(10)))
        #expect(msg.contains("truncated") && msg.contains("tensor 'layer"), "\(msg)")
        #expect(message(Array(bytes.prefix(20))).contains("truncated"))
    }

    @Test func wrongShapeNamesTensor() {
        let bytes = SafeTensors.serialize(
            tensors { t in
                let i = t.firstIndex { $0.name == "layer2.0.conv1.weight" }!
                t[i].shape = [64, 32, 9, 1]
            }, metadata: meta)
        let msg = message(bytes)
        #expect(msg.contains("'layer2.0.conv1.weight'") && msg.contains("[64, 32, 3, 3]"), "\(msg)")
    }

    @Test func missingNamesTensor() {
        let msg = message(SafeTensors.serialize(tensors { $0.removeAll { $0.name == "layer3.0.bn2.running_var" } }, metadata: meta))
        #expect(msg.contains("'layer3.0.bn2.running_var' is missing"), "\(msg)")
    }

    @Test func unexpectedNamesTensor() {
        let msg = message(SafeTensors.serialize(tensors { $0.append((name: "head.extra", shape: [1], values: [0])) }, metadata: meta))
        #expect(msg.contains("'head.extra'"), "\(msg)")
    }

    @Test func wrongDtypeNamesTensor() {
        // Rewrite bn1.bias (32 floats = 128 bytes) as I32 in the header: same size, wrong type.
        var bytes = SafeTensors.serialize(tensors(), metadata: meta)
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        var header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        header = header.replacingOccurrences(of: "\"bn1.bias\":{\"dtype\":\"F32\"", with: "\"bn1.bias\":{\"dtype\":\"I32\"")
        bytes.replaceSubrange(8..<(8 + n), with: Array(header.utf8))
        let msg = message(bytes)
        #expect(msg.contains("'bn1.bias'") && msg.contains("I32"), "\(msg)")
    }

    @Test func corruptHeaderAndValues() {
        var bytes = SafeTensors.serialize(tensors(), metadata: meta)
        bytes[9] = UInt8(ascii: "?")
        #expect(message(bytes).contains("malformed"))
        let b2 = SafeTensors.serialize(
            tensors { t in
                let i = t.firstIndex { $0.name == "fc.bias" }!
                t[i].values[1] = .nan
            }, metadata: meta)
        #expect(message(b2).contains("'fc.bias'"))
    }

    @Test func halfPrecisionDecodes() {
        #expect(halfToFloat(0x3C00) == 1)
        #expect(halfToFloat(0xC000) == -2)
        #expect(halfToFloat(0x0001) == Float(1) / 16_777_216)
    }
}

@Suite struct ResNet18ReferenceTests {
    /// ResNet-18 (torchvision layout, random weights from a fixed seed) against an independent NumPy
    /// implementation reading the same safetensors file.
    @Test func resnet18MatchesNumPy() throws {
        let net = ResNet(config: .resnet18(numClasses: 10), seed: 42)
        randomizeBatchNorm(net, seed: 43)
        // torchvision state dict: no hali.* metadata, as a lab's export would be.
        let bytes = SafeTensors.serialize(
            net.parameters.map { ($0.name, $0.fileShape, $0.fileValues()) }
                + [("bn1.num_batches_tracked", [], [0])].prefix(0), metadata: [:])
        let x = randomTensor(2, 40, 40, 3, seed: 44)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hali-resnet18-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let wPath = dir.appendingPathComponent("w.safetensors").path
        let xPath = dir.appendingPathComponent("x.safetensors").path
        let oPath = dir.appendingPathComponent("out.bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: wPath))
        try Data(SafeTensors.serialize([("input", x.shape, x.data)])).write(to: URL(fileURLWithPath: xPath))

        let (loaded, meta) = try ResNet.load(try SafeTensors.parse(bytes))
        #expect(loaded.config == .resnet18(numClasses: 10))
        #expect(meta.mean == [0.485, 0.456, 0.406])
        let folded = loaded.folded()
        let f = folded.features(x), l = folded.logits(features: f)

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("resnet_reference.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, wPath, xPath, oPath]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "python3 resnet_reference.py failed (needs numpy)")
        let out = try Data(contentsOf: URL(fileURLWithPath: oPath))
        let ref = out.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        try #require(ref.count == 2 * 512 + 2 * 10)
        let fe = maxRelativeError(f.data, Array(ref[0..<1024])), le = maxRelativeError(l.data, Array(ref[1024...]))
        #expect(fe < 1e-4, "features: relative error \(fe)")
        #expect(le < 1e-4, "logits: relative error \(le)")
    }
}
