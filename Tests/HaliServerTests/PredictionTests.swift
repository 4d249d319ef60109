import Foundation
import HaliCore
import HaliEngine
import HaliIndex
import HaliStore
import Testing

@Suite struct PredictionTests {
    func label(_ store: LabelStore, _ annotator: String, _ seq: UInt64, cell: UInt64, _ name: String) async throws {
        _ = try await store.append(
            LabelRecord(
                annotator: annotator, slide: "CMU-1-Small-Region", task: "til", cellID: cell, kind: .label, className: name, source: .manual,
                modelVersion: 0, clientSeq: seq, clientTimeMs: 0, serverTimeMs: 0, previousClass: nil))
    }

    @Test func consensusAndWholeSlidePrediction() async throws {
        let data = try await freshDataDirectory()
        let (_, table) = try IndexFile.read(path: data + "/index/CMU-1-Small-Region.hidx")
        let store = try LabelStore(path: data + "/labels.sqlite")
        defer { store.close() }
        // alice labels 30 cells by size; bob agrees on cell 1, disagrees on cell 2 (a tie: left out), adds cell 3000.
        let median = table.areaMicrons2.sorted()[table.count / 2]
        for i in 0..<30 {
            let row = i * 7
            try await label(
                store, "alice", UInt64(i + 1), cell: CellTable.id(ofRow: row), table.areaMicrons2[row] > median ? "inflammatory" : "other")
        }
        let aliceOnCell2 = table.areaMicrons2[7] > median ? "inflammatory" : "other"
        try await label(store, "bob", 1, cell: 1, table.areaMicrons2[0] > median ? "inflammatory" : "other")
        try await label(store, "bob", 2, cell: 8, aliceOnCell2 == "other" ? "inflammatory" : "other")
        try await label(store, "bob", 3, cell: 3000, "other")

        let consensus = try SlidePrediction.labels(store: store, slide: "CMU-1-Small-Region", task: "til", annotator: nil)
        #expect(consensus.count == 30)  // 30 cells of alice − 1 tie + 1 of bob's own
        #expect(consensus[8] == nil && consensus[3000] == "other")
        let alice = try SlidePrediction.labels(store: store, slide: "CMU-1-Small-Region", task: "til", annotator: "alice")
        #expect(alice.count == 30)

        let task = try #require(TaskDefinition.builtIn.first { $0.name == "til" })
        let prediction = try SlidePrediction.run(table: table, task: task, labels: alice)
        #expect(prediction.classOfRow.count == table.count)
        #expect(prediction.counts().reduce(0, +) == table.count)
        #expect(prediction.labelsUsed == 30)
        for (cell, name) in alice {
            let row = try #require(table.row(ofID: cell))
            #expect(prediction.classNames[prediction.classOfRow[row]] == name && prediction.confidence[row] == 1)
        }
        // The size rule is learnable from the measurements: most unlabelled cells follow it.
        let agree = (0..<table.count).filter {
            prediction.classNames[prediction.classOfRow[$0]] == (table.areaMicrons2[$0] > median ? "inflammatory" : "other")
        }.count
        #expect(Double(agree) / Double(table.count) > 0.7)

        #expect(throws: EngineError.self) {
            try SlidePrediction.run(table: table, task: task, labels: [1: "other"])
        }
    }
}
