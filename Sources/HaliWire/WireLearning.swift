// protobuf-c ⇄ Swift for the model and the learner: Predictions, NextPatch and NextPatchPick. WireCodec.swift owns
// the envelope and the arena; each message here builds its C struct in the arena and reads one back.

import CHaliProto
import CProtobufC
import HaliCore

extension NextPatch {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__NextPatch> {
        let m = a.message(hali__v1__next_patch__init)
        m.pointee.strategy = cEnum(strategy)
        m.pointee.patch_size_um = patchSizeUm
        return m
    }

    init(c m: Hali__V1__NextPatch) {
        self.init(strategy: openEnum(m.strategy, default: .default), patchSizeUm: m.patch_size_um)
    }
}

extension NextPatchPick {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__NextPatchPick> {
        let m = a.message(hali__v1__next_patch_pick__init)
        m.pointee.patch_id = a.string(patchID)
        m.pointee.region = region.makeC(a)
        m.pointee.strategy = cEnum(strategy)
        m.pointee.reason = a.string(reason)
        m.pointee.subset_cells = subsetCells
        m.pointee.cells_in_region = cellsInRegion
        return m
    }

    init(c m: Hali__V1__NextPatchPick) {
        self.init(
            patchID: string(m.patch_id), region: Region(c: m.region) ?? Region(x: 0, y: 0, width: 0, height: 0),
            strategy: openEnum(m.strategy, default: .default), reason: string(m.reason), subsetCells: m.subset_cells, cellsInRegion: m.cells_in_region
        )
    }
}

extension Predictions {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Predictions> {
        let m = a.message(hali__v1__predictions__init)
        m.pointee.model_version = modelVersion
        m.pointee.validation_accuracy = validationAccuracy
        m.pointee.labels_used = labelsUsed
        m.pointee.region = region?.makeC(a)
        m.pointee.n_predictions = predictions.count
        m.pointee.predictions = a.array(
            predictions.map { p -> UnsafeMutablePointer<Hali__V1__CellPrediction>? in
                let c = a.message(hali__v1__cell_prediction__init)
                c.pointee.cell_id = p.cellID
                c.pointee.class_name = a.string(p.className)
                c.pointee.confidence = p.confidence
                return c
            })
        return m
    }

    init(c m: Hali__V1__Predictions) {
        self.init(
            modelVersion: m.model_version, validationAccuracy: m.validation_accuracy, labelsUsed: m.labels_used, region: Region(c: m.region),
            predictions: array(m.predictions, m.n_predictions) {
                let p = $0!.pointee
                return CellPrediction(cellID: p.cell_id, className: string(p.class_name), confidence: p.confidence)
            })
    }
}
