public import HaliCore
import HaliEngine
import HaliIndex

/// The model learnt from the exported labels (`SlidePrediction`), applied to the cells that have none.
public enum Suggestions {
    public static func forUnlabelled(_ labels: ExportLabels, table: CellTable, task: TaskDefinition) throws -> [UInt64: ExportLabels.Suggested] {
        let prediction = try SlidePrediction.run(table: table, task: task, labels: labels.classOfCell)
        var out: [UInt64: ExportLabels.Suggested] = [:]
        for row in 0..<table.count {
            let id = CellTable.id(ofRow: row)
            guard labels.classOfCell[id] == nil else { continue }
            out[id] = ExportLabels.Suggested(className: prediction.classNames[prediction.classOfRow[row]], confidence: prediction.confidence[row])
        }
        return out
    }
}
