// protobuf-c ⇄ Swift for labels: LabelEvent, Undo and LabelAck. WireCodec.swift owns the envelope and the arena; each
// message here builds its C struct in the arena and reads one back.

import CHaliProto
import CProtobufC
import HaliCore

extension LabelEvent {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__LabelEvent> {
        let m = a.message(hali__v1__label_event__init)
        m.pointee.client_seq = clientSeq
        m.pointee.cell_id = cellID
        m.pointee.class_name = a.string(className)
        m.pointee.source = cEnum(source)
        m.pointee.client_time_ms = clientTimeMs
        m.pointee.model_version_shown = modelVersionShown
        return m
    }

    init(c m: Hali__V1__LabelEvent) {
        self.init(
            clientSeq: m.client_seq, cellID: m.cell_id, className: string(m.class_name), source: openEnum(m.source, default: .unspecified),
            clientTimeMs: m.client_time_ms, modelVersionShown: m.model_version_shown)
    }
}

extension Undo {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Undo> {
        let m = a.message(hali__v1__undo__init)
        m.pointee.client_seq = clientSeq
        m.pointee.cell_id = cellID
        return m
    }

    init(c m: Hali__V1__Undo) {
        self.init(clientSeq: m.client_seq, cellID: m.cell_id)
    }
}

extension LabelAck {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__LabelAck> {
        let m = a.message(hali__v1__label_ack__init)
        m.pointee.client_seq = clientSeq
        m.pointee.cell_id = cellID
        m.pointee.durable = boolean(durable)
        m.pointee.event_id = eventID
        m.pointee.server_time_ms = serverTimeMs
        return m
    }

    init(c m: Hali__V1__LabelAck) {
        self.init(clientSeq: m.client_seq, cellID: m.cell_id, durable: boolean(m.durable), eventID: m.event_id, serverTimeMs: m.server_time_ms)
    }
}
