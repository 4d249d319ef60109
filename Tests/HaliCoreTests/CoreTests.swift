import HaliCore
import Testing

@Suite struct SHA256Tests {
    // FIPS 180-4 / NIST example vectors.
    @Test func knownAnswers() {
        #expect(SHA256.hexDigest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hexDigest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // 1,000,000 × "a" crosses many blocks.
        #expect(
            SHA256.hexDigest(String(repeating: "a", count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

@Suite struct AnnotatorRegistryTests {
    @Test func authenticatesByToken() throws {
        let registry = try AnnotatorRegistry([
            Annotator(name: "alice", token: "alpha-token", tasks: ["ki67"]),
            Annotator(name: "bob", token: "bravo-token"),
        ])
        #expect(registry.authenticate(token: "alpha-token")?.name == "alice")
        #expect(registry.authenticate(token: "bravo-token")?.name == "bob")
        #expect(registry.authenticate(token: "alpha-token ") == nil)
        #expect(registry.authenticate(token: "") == nil)
        #expect(registry.authenticate(token: "ALPHA-TOKEN") == nil)
        #expect(registry.authenticate(token: "alpha-token")?.mayOpen(task: "ki67") == true)
        #expect(registry.authenticate(token: "alpha-token")?.mayOpen(task: "til") == false)
    }

    @Test func rejectsBadConfigurations() {
        #expect(throws: ConfigurationError.self) {
            try AnnotatorRegistry([Annotator(name: "a", token: "x"), Annotator(name: "a", token: "y")])
        }
        #expect(throws: ConfigurationError.self) { try AnnotatorRegistry([Annotator(name: "a", tokenDigest: "abc")]) }
        #expect(throws: ConfigurationError.self) { try AnnotatorRegistry([Annotator(name: "", token: "x")]) }
    }

    @Test func tasksValidateTheirClasses() {
        #expect(throws: ConfigurationError.self) {
            try TaskDefinition(name: "t", classes: [LabelClass(name: "a", color: "#000000", key: "1")])
        }
        #expect(throws: ConfigurationError.self) {
            try TaskDefinition(
                name: "t",
                classes: [LabelClass(name: "a", color: "", key: "1"), LabelClass(name: "b", color: "", key: "1")])
        }
        #expect(TaskDefinition.builtIn.map(\.name) == ["til", "tumour", "ki67", "phenotype"])
    }
}

@Suite struct PercentileTests {
    @Test func lowerNearestRankOfLiteralSamples() {
        #expect(percentile([4, 1, 3, 2], 0.5) == 2)
        #expect(percentile([4, 1, 3, 2], 0) == 1 && percentile([4, 1, 3, 2], 1) == 4)
        #expect(percentile(Array(1...100), 0.95) == 95)  // index ⌊99 × 0.95⌋ = 94
        #expect(percentile(Array(1...100), 0.99) == 99)
        #expect(percentile([7.5], 0.99) == 7.5)
        #expect(percentile([Int](), 0.5) == nil && percentile([1, 2], 1.5) == nil && percentile([1, 2], -0.1) == nil)
    }

    @Test func medianIsTheMiddleOrTheMeanOfTheTwoMiddleValues() {
        #expect(median([4, 1, 3]) == 3)
        #expect(median([4, 1, 3, 2]) == 2.5)
        #expect(median([7.5]) == 7.5 && median([]) == nil)
    }

    @Test func agreesWithBruteForceOnSeededSamples() {
        var state: UInt64 = 12345
        for n in 1...40 {
            let values = (0..<n).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int(state >> 40) % 1000
            }
            for p in stride(from: 0.0, through: 1.0, by: 0.05) {
                // The value whose sorted position covers rank ⌊(n − 1)·p⌋, found by counting, without sorting.
                let rank = Int(Double(n - 1) * p)
                let expected = values.first { v in values.filter { $0 < v }.count <= rank && values.filter { $0 <= v }.count > rank }
                #expect(percentile(values, p) == expected, "n \(n) p \(p)")
            }
        }
    }
}
