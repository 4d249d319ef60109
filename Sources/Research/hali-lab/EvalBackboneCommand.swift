import ArgumentParser
import Foundation
import HaliInference
import HaliNet
import HaliTraining

/// `hali backbone`: linear probes (logistic regression) on frozen backbone features vs raw pixels.
struct EvalBackboneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backbone",
        abstract: "Linear-probe evaluation of a backbone: CoNSeP train→test, CRC images 1–70→71–100, Ki-67 (5-fold).",
        discussion: "Prints accuracy, balanced accuracy and one-vs-rest AUROC for the backbone's features and for raw pixels.")

    @Option(help: "Weights (.safetensors).") var weights: String
    @Option(help: "The shared data folder (consep/, crc/, ki67/).") var data = "../shared/data"
    @Option(help: "OpenBLAS threads.") var threads = 2
    @Option(help: "L2 penalty of the probe.") var lambda: Float = 1e-3
    @Flag(help: "Print JSON.") var json = false

    struct Split: Codable { var name: String; var train: Int; var test: Int; var results: [ProbeResult]; var cellsPerSecond: Double }

    func run() throws {
        HaliTrainingSetup.blasThreads(threads)
        let (net, meta) = try WeightsFile.load(path: weights)
        let embedder = Embedder(net: net.folded(), metadata: meta)
        let side = meta.patchPixels, mpp = meta.micronsPerPixel
        var splits: [Split] = []

        typealias Measured = (values: [Float], dimension: Int, matched: Double)
        func probe(
            _ name: String, _ tr: PatchSet, _ te: PatchSet, classNames: [String],
            measured: (train: Measured, test: Measured)? = nil
        ) throws -> Split {
            let t0 = Date()
            let ftr = embedder.features(tr, threads: threads), fte = embedder.features(te, threads: threads)
            let rate = Double(tr.count + te.count) / Date().timeIntervalSince(t0)
            let d = net.config.featureDimension
            let a = LinearProbe.evaluate(
                name: "backbone", train: ftr, trainLabels: tr.labels, test: fte, testLabels: te.labels,
                dimension: d, classNames: classNames, lambda: lambda)
            let rtr = LinearProbe.rawPixels(tr), rte = LinearProbe.rawPixels(te)
            let b = LinearProbe.evaluate(
                name: "raw pixels (20×20×3 at \(mpp * 2) µm/px)", train: rtr.values, trainLabels: tr.labels,
                test: rte.values, testLabels: te.labels, dimension: rtr.dimension, classNames: classNames, lambda: lambda)
            // The slide index stores embeddings as float16: the same probe on rounded features says what that costs.
            let half = LinearProbe.evaluate(
                name: "backbone, float16 (as in the index)", train: ftr.map { Float(Float16($0)) },
                trainLabels: tr.labels, test: fte.map { Float(Float16($0)) }, testLabels: te.labels,
                dimension: d, classNames: classNames, lambda: lambda)
            var results = [a, half, b]
            if let m = measured {
                let note = String(format: "%.0f%%/%.0f%% matched", 100 * m.train.matched, 100 * m.test.matched)
                results.append(
                    LinearProbe.evaluate(
                        name: "QuPath-style measurements (\(note))", train: m.train.values, trainLabels: tr.labels,
                        test: m.test.values, testLabels: te.labels, dimension: m.train.dimension, classNames: classNames, lambda: lambda))
                func joined(_ pixels: (values: [Float], dimension: Int), _ meas: Measured, _ n: Int) -> [Float] {
                    var out: [Float] = []
                    out.reserveCapacity(n * (pixels.dimension + meas.dimension))
                    for i in 0..<n {
                        out += pixels.values[(i * pixels.dimension)..<((i + 1) * pixels.dimension)]
                        out += meas.values[(i * meas.dimension)..<((i + 1) * meas.dimension)]
                    }
                    return out
                }
                results.append(
                    LinearProbe.evaluate(
                        name: "raw pixels + measurements", train: joined(rtr, m.train, tr.count), trainLabels: tr.labels,
                        test: joined(rte, m.test, te.count), testLabels: te.labels, dimension: rtr.dimension + m.train.dimension,
                        classNames: classNames, lambda: lambda))
            }
            // The network's own trained head, for reference (no probe); a headless backbone has none.
            if classNames == meta.classes && net.config.hasHead {
                let pred = try embedder.predict(features: fte, count: te.count)  // the features computed above
                let m = ClassificationMetrics(truth: te.labels, predicted: pred, classes: classNames.count)
                results.append(
                    ProbeResult(
                        features: "backbone's own head (no probe)", dimension: d, accuracy: m.accuracy,
                        balancedAccuracy: m.balancedAccuracy, auroc: [:]))
            }
            return Split(name: name, train: tr.count, test: te.count, results: results, cellsPerSecond: rate)
        }

        let consep = data + "/consep"
        if FileManager.default.fileExists(atPath: consep + "/train/cells.csv") {
            let trainSet = try LabelledCells.load(consep + "/train"), testSet = try LabelledCells.load(consep + "/test")
            let tr = try trainSet.patches(side: side, micronsPerPixel: mpp, classNames: NucleusClass.names, label: NucleusClass.index(of:))
            let te = try testSet.patches(side: side, micronsPerPixel: mpp, classNames: NucleusClass.names, label: NucleusClass.index(of:))
            let measured = try (
                trainSet.measurementFeatures(label: NucleusClass.index(of:), threads: threads),
                testSet.measurementFeatures(label: NucleusClass.index(of:), threads: threads)
            )
            splits.append(try probe("CoNSeP train → test", tr, te, classNames: NucleusClass.names, measured: measured))
        }
        if FileManager.default.fileExists(atPath: data + "/crc/cells.csv") {
            let set = try LabelledCells.load(data + "/crc")
            let names = set.imageNames
            let tr = try set.patches(
                images: Array(names.prefix(70)), side: side, micronsPerPixel: mpp, classNames: NucleusClass.names, label: NucleusClass.index(of:))
            let te = try set.patches(
                images: Array(names.dropFirst(70)), side: side, micronsPerPixel: mpp, classNames: NucleusClass.names, label: NucleusClass.index(of:))
            let measured = try (
                set.measurementFeatures(images: Array(names.prefix(70)), label: NucleusClass.index(of:), threads: threads),
                set.measurementFeatures(images: Array(names.dropFirst(70)), label: NucleusClass.index(of:), threads: threads)
            )
            splits.append(try probe("CRC images 1–70 → 71–100", tr, te, classNames: NucleusClass.names, measured: measured))
        }
        if FileManager.default.fileExists(atPath: data + "/ki67/cells.csv") {
            let names = ["positive", "negative"]
            let all = try LabelledCells.load(data + "/ki67").patches(
                side: side, micronsPerPixel: mpp, classNames: names,
                label: { names.firstIndex(of: $0) })
            // 5-fold cross-validation over cells (fold = index mod 5); pooled out-of-fold predictions.
            for (fname, extract) in [("backbone", 0), ("raw pixels (20×20×3)", 1)] {
                var probs = [Double](repeating: 0, count: all.count), preds = [Int](repeating: 0, count: all.count)
                let f: [Float], d: Int
                if extract == 0 {
                    f = embedder.features(all); d = net.config.featureDimension
                } else {
                    let r = LinearProbe.rawPixels(all); f = r.values; d = r.dimension
                }
                for fold in 0..<5 {
                    let te = (0..<all.count).filter { $0 % 5 == fold }, tr = (0..<all.count).filter { $0 % 5 != fold }
                    let m = LogisticRegression.fit(
                        features: tr.flatMap { Array(f[($0 * d)..<(($0 + 1) * d)]) }, count: tr.count, dimension: d,
                        labels: tr.map { all.labels[$0] }, classes: 2, lambda: lambda)
                    let p = m.probabilities(features: te.flatMap { Array(f[($0 * d)..<(($0 + 1) * d)]) }, count: te.count)
                    for (j, i) in te.enumerated() { probs[i] = p[j][0]; preds[i] = p[j][0] > 0.5 ? 0 : 1 }
                }
                let cm = ClassificationMetrics(truth: all.labels, predicted: preds, classes: 2)
                let au = auroc(scores: probs, positive: all.labels.map { $0 == 0 }) ?? .nan
                let r = ProbeResult(
                    features: fname, dimension: d, accuracy: cm.accuracy, balancedAccuracy: cm.balancedAccuracy, auroc: ["positive": au])
                if let k = splits.firstIndex(where: { $0.name.hasPrefix("Ki-67") }) {
                    splits[k].results.append(r)
                } else {
                    splits.append(
                        Split(
                            name: "Ki-67 positive vs negative (5-fold CV)", train: all.count * 4 / 5, test: all.count, results: [r], cellsPerSecond: 0
                        ))
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(splits), as: UTF8.self))
            return
        }
        print("weights: \(weights)  (\(net.config.description); \(meta.patchPixels) px = \(meta.patchMicrons) µm)")
        for s in splits {
            print(
                "\n\(s.name): \(s.train) train / \(s.test) test nuclei"
                    + (s.cellsPerSecond > 0 ? String(format: ", features at %.0f cells/s", s.cellsPerSecond) : ""))
            for r in s.results {
                let au = r.auroc.sorted { $0.key < $1.key }.map { String(format: "%@ %.3f", $0.key, $0.value) }.joined(separator: ", ")
                print(String(format: "  %-34@ acc %.3f  balanced %.3f  AUROC: %@", r.features as NSString, r.accuracy, r.balancedAccuracy, au))
            }
        }
    }
}
