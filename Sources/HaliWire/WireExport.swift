// protobuf-c ⇄ Swift for exports: ExportRequest and ExportedFile. WireCodec.swift owns the envelope and the arena;
// each message here builds its C struct in the arena and reads one back.

import CHaliProto
import CProtobufC
import HaliCore

extension ExportRequest {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__ExportRequest> {
        let m = a.message(hali__v1__export_request__init)
        m.pointee.format = a.string(format)
        m.pointee.consensus = boolean(consensus)
        m.pointee.include_suggestions = boolean(includeSuggestions)
        return m
    }

    init(c m: Hali__V1__ExportRequest) {
        self.init(format: string(m.format), consensus: boolean(m.consensus), includeSuggestions: boolean(m.include_suggestions))
    }
}

extension ExportedFile {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__ExportedFile> {
        let m = a.message(hali__v1__exported_file__init)
        m.pointee.format = a.string(format)
        m.pointee.file_name = a.string(fileName)
        m.pointee.data = a.bytes(data)
        m.pointee.cells = cells
        return m
    }

    init(c m: Hali__V1__ExportedFile) {
        self.init(format: string(m.format), fileName: string(m.file_name), data: array(m.data.data, m.data.len) { $0 }, cells: m.cells)
    }
}
