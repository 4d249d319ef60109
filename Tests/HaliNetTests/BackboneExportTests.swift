import Foundation
import Testing

@testable import HaliNet

/// Backbones as labs export them for feature extraction: without the classification head (`fc.*` removed, or
/// `model.fc = nn.Identity()`) and from `nn.DataParallel` (every name prefixed `module.`). Each must give the features
/// of the complete file it came from: the same tensors, so equal up to OpenBLAS's summation order (which other suites
/// running at once can change through its global thread count); a tensor loaded wrongly differs by far more.
@Suite struct BackboneExportTests {
    typealias StateDict = [(name: String, shape: [Int], values: [Float])]

    /// A backbone with non-trivial batch-norm statistics, so that any tensor left at its initial value shows.
    static func backbone(_ config: ResNetConfig, seed: UInt64) -> ResNet {
        let net = ResNet(config: config, seed: seed)
        randomizeBatchNorm(net, seed: seed + 1)
        return net
    }

    static func stateDict(_ net: ResNet) -> StateDict { net.parameters.map { (name: $0.name, shape: $0.fileShape, values: $0.fileValues()) } }
    static func headless(_ t: StateDict) -> StateDict { t.filter { !$0.name.hasPrefix("fc.") } }
    static func dataParallel(_ t: StateDict) -> StateDict { t.map { (name: "module." + $0.name, shape: $0.shape, values: $0.values) } }

    static func load(_ t: StateDict, metadata: [String: String] = [:]) throws -> ResNet {
        try ResNet.load(try SafeTensors.parse(SafeTensors.serialize(t, metadata: metadata))).0
    }

    static func message(_ t: StateDict, metadata: [String: String] = [:]) -> String {
        do { _ = try load(t, metadata: metadata); return "loaded" } catch { return "\(error)" }
    }

    /// Features equal up to summation order.
    static func same(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && maxRelativeError(a, b) < 1e-5 }

    let net = backbone(.compact(), seed: 11)
    var meta: [String: String] { BackboneMetadata().encode(config: net.config) }
    let x = randomTensor(3, 40, 40, 3, seed: 12)

    @Test func headlessFileGivesTheSameFeatures() throws {
        let full = try Self.load(Self.stateDict(net), metadata: meta)
        let headless = try Self.load(Self.headless(Self.stateDict(net)), metadata: meta)  // hali.arch still says 4 classes
        #expect(full.config.hasHead && full.config.numClasses == 4)
        #expect(!headless.config.hasHead && headless.config.numClasses == 0)
        #expect(headless.parameters.map(\.name) == full.parameters.map(\.name).filter { !$0.hasPrefix("fc.") })
        for (a, b) in zip(headless.parameters, full.parameters) { #expect(a.value == b.value, "\(a.name)") }
        let f = full.folded().features(x).data
        #expect(f.count == 3 * 128)
        #expect(Self.same(headless.folded().features(x).data, f))
        // The comparison can fail: another backbone's features differ.
        #expect(maxRelativeError(Self.backbone(.compact(), seed: 13).folded().features(x).data, f) > 0.01)
    }

    @Test func dataParallelNamesAreStripped() throws {
        let prefixed = Self.dataParallel(Self.stateDict(net)) + [(name: "module.bn1.num_batches_tracked", shape: [], values: [3])]
        let loaded = try Self.load(prefixed, metadata: meta)
        #expect(loaded.config == net.config)
        for (a, b) in zip(loaded.parameters, net.parameters) { #expect(a.name == b.name && a.value == b.value, "\(a.name)") }
        #expect(Self.same(loaded.folded().features(x).data, net.folded().features(x).data))
        let headless = try Self.load(Self.dataParallel(Self.headless(Self.stateDict(net))), metadata: meta)
        #expect(!headless.config.hasHead && Self.same(headless.folded().features(x).data, net.folded().features(x).data))
    }

    /// The case from the field: torchvision's ResNet-18 saved without metadata, head removed, from DataParallel.
    @Test func torchvisionHeadlessWithoutMetadata() throws {
        let resnet18 = Self.backbone(.resnet18(numClasses: 10), seed: 21)
        let loaded = try Self.load(Self.dataParallel(Self.headless(Self.stateDict(resnet18))))
        #expect(loaded.config == .resnet18(numClasses: 0))
        let input = randomTensor(1, 40, 40, 3, seed: 22)
        let f = resnet18.folded().features(input).data
        #expect(f.count == 512 && Self.same(loaded.folded().features(input).data, f))
    }

    /// A headless network saves without `fc.*` (and `classes=0`) and loads back headless.
    @Test func headlessRoundTrip() throws {
        let headless = try Self.load(Self.headless(Self.stateDict(net)), metadata: meta)
        let file = try SafeTensors.parse(headless.safetensors(metadata: BackboneMetadata()))
        #expect(file.tensors["fc.weight"] == nil && file.tensors["fc.bias"] == nil)
        let (back, _) = try ResNet.load(file)
        #expect(!back.config.hasHead && Self.same(back.folded().features(x).data, net.folded().features(x).data))
    }

    /// Half a head, or `module.` on only some names, is still a broken file, and the message names the tensor.
    @Test func halfAHeadOrMixedNamesAreRefused() {
        let noBias = Self.message(Self.stateDict(net).filter { $0.name != "fc.bias" }, metadata: meta)
        #expect(noBias.contains("'fc.bias' is missing"), "\(noBias)")
        let noWeight = Self.message(Self.stateDict(net).filter { $0.name != "fc.weight" })  // torchvision: no metadata
        #expect(noWeight.contains("'fc.weight' is missing"), "\(noWeight)")
        var mixed = Self.dataParallel(Self.stateDict(net))
        mixed[0].name = "conv1.weight"
        let mixedMessage = Self.message(mixed, metadata: meta)
        #expect(mixedMessage.contains("'bn1.weight' is missing"), "\(mixedMessage)")  // names kept as written
    }
}
