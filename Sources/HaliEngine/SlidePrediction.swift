public import HaliCore
import HaliIndex
import HaliLearning
import HaliMath
public import HaliStore

/// An annotator's model (or a consensus of annotators' labels) applied to every cell of a slide.
public struct SlidePrediction: Sendable {
    public var classNames: [String]
    /// Predicted class index and its probability, per cell row (labelled cells keep their label, probability 1).
    public var classOfRow: [Int]
    public var confidence: [Float]
    public var labelsUsed: Int
    public var validationAccuracy: Double?
    public var featureKind: String

    public func counts() -> [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for c in classOfRow { counts[c] += 1 }
        return counts
    }

    /// Labels in force for (slide, task): one annotator's, or the majority over annotators (`annotator` nil; a tie
    /// leaves the cell out).
    public static func labels(store: LabelStore, slide: String, task: String, annotator: String?) throws -> [UInt64: String] {
        if let annotator { return LabelState(replaying: try store.events(annotator: annotator, slide: slide, task: task)).classOfCell }
        return Consensus(events: try store.events(slide: slide, task: task)).classOfCell
    }

    /// Fits the fast head (L2 logistic regression, L-BFGS) on the labelled cells and predicts the rest.
    ///
    /// - Complexity: one fit on the labels, then one O(N·D·K) pass over the cells.
    public static func run(table: CellTable, task: TaskDefinition, labels: [UInt64: String], seed: UInt64 = 0) throws -> SlidePrediction {
        let features: Matrix
        let kind: String
        if table.embeddingDimension > 0 {
            features = Matrix(rows: table.count, columns: table.embeddingDimension, values: table.embeddings)
            kind = "cnn:\(table.embeddingSource)"
        } else {
            features = SlideFeatures.measurements(table)
            kind = "measurements"
        }
        let names = task.classes.map(\.name)
        var rows: [Int] = []
        var classes: [Int] = []
        for (cell, name) in labels.sorted(by: { $0.key < $1.key }) {
            guard let row = table.row(ofID: cell), let c = names.firstIndex(of: name) else { continue }
            rows.append(row)
            classes.append(c)
        }
        guard Set(classes).count >= 2 else {
            throw EngineError(.invalidArgument, "need labels of at least two classes of task \(task.name) to predict (have \(rows.count) labels)")
        }
        var head = HeadKind.logistic.make(classCount: names.count, featureCount: features.columns)
        var rng = SeededRandom(seed: seed)
        let report = head.fit(features: features, rows: rows, labels: classes, rng: &rng)
        var classOfRow = [Int](repeating: 0, count: table.count)
        var confidence = [Float](repeating: 0, count: table.count)
        let block = 65_536
        var start = 0
        while start < table.count {
            let chunk = Array(start..<min(start + block, table.count))
            for (i, p) in head.predict(features: features, rows: chunk).enumerated() {
                classOfRow[chunk[i]] = p.label
                confidence[chunk[i]] = p.confidence
            }
            start += block
        }
        for (row, c) in zip(rows, classes) {
            classOfRow[row] = c
            confidence[row] = 1
        }
        return SlidePrediction(
            classNames: names, classOfRow: classOfRow, confidence: confidence, labelsUsed: rows.count,
            validationAccuracy: report.validationAccuracy, featureKind: kind)
    }
}
