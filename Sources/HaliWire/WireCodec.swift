import CHaliProto
import CProtobufC
import HaliCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why bytes could not become an `Envelope`.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// protobuf-c refused the bytes (truncated, wrong wire types, …), or a string field holds a NUL byte or
        /// invalid UTF-8 (`StringFieldCheck`).
        case malformed
        /// The envelope decoded but its `body` is unset or a member this build does not know.
        case unknownBody
    }
    public var kind: Kind
    public var description: String

    static func malformed(byteCount: Int) -> WireError {
        WireError(kind: .malformed, description: "\(byteCount)-byte frame is not a valid hali.v1.Envelope")
    }
    static let unknownBody = WireError(
        kind: .unknownBody,
        description: "envelope has no body this daemon understands (empty, or from a newer protocol)"
    )
}

/// Converts `Envelope` values to and from protobuf-c encoded bytes (`Proto/hali.proto`).
///
/// This is the only place in HALI that touches protobuf-c. Encoding builds a temporary C message tree in an
/// `Arena` freed when `encode` returns; decoding pairs every `hali__v1__envelope__unpack` with its
/// `hali__v1__envelope__free_unpacked` before returning, so no C memory outlives a call.
public enum WireCodec {
    /// Serialises one envelope (the frame body, without the length prefix).
    public static func encode(_ envelope: Envelope) -> [UInt8] {
        let arena = Arena()
        let message = envelope.makeC(arena)
        let size = hali__v1__envelope__get_packed_size(message)
        var bytes = [UInt8](repeating: 0, count: size)
        let written = bytes.withUnsafeMutableBufferPointer { hali__v1__envelope__pack(message, $0.baseAddress) }
        precondition(written == size, "protobuf-c packed \(written) bytes, expected \(size)")
        return bytes
    }

    /// Parses one frame body. Throws `WireError` for anything that is not a complete, known envelope.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Envelope {
        // protobuf-c reads `len` bytes from `data`; an empty buffer is a valid (empty) envelope, but needs a pointer.
        let zero: [UInt8] = [0]
        let unpacked = zero.withUnsafeBufferPointer { zeroPointer in
            hali__v1__envelope__unpack(
                nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? zeroPointer.baseAddress)
        }
        guard let message = unpacked else { throw WireError.malformed(byteCount: bytes.count) }
        defer { hali__v1__envelope__free_unpacked(message, nil) }
        try StringFieldCheck.check(bytes, envelope: hali__v1__envelope__descriptor)
        guard let envelope = Envelope(c: message.pointee) else { throw WireError.unknownBody }
        return envelope
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Envelope {
        let result = bytes.withUnsafeBytes { raw -> Result<Envelope, WireError> in
            do throws(WireError) { return .success(try decode(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

// MARK: - Arena

/// Owns every C allocation of one encode: structs, strings, arrays. Freed together in `deinit`.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for block in blocks { free(block) } }

    private func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        guard let block = calloc(1, max(bytes, 1)) else { fatalError("out of memory encoding a message") }
        blocks.append(block)
        return block
    }

    /// A zeroed `T`, initialised by the generated `…__init` function.
    func message<T>(_ initialise: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(bytes: MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
        initialise(pointer)
        return pointer
    }

    /// A NUL-terminated copy; nil for the empty string (protobuf-c treats NULL as "" and skips it in proto3).
    func string(_ value: String) -> UnsafeMutablePointer<CChar>? {
        if value.isEmpty { return nil }
        let utf8 = Array(value.utf8CString)
        let pointer = allocate(bytes: utf8.count).bindMemory(to: CChar.self, capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        return pointer
    }

    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        if values.isEmpty { return nil }
        let pointer = allocate(bytes: MemoryLayout<T>.stride * values.count).bindMemory(to: T.self, capacity: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    func bytes(_ values: [UInt8]) -> ProtobufCBinaryData {
        ProtobufCBinaryData(len: values.count, data: array(values))
    }
}

// MARK: - Helpers for decoding

@inline(__always) private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

@inline(__always) private func array<T, U>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int, _ transform: (T) -> U) -> [U] {
    guard let pointer, count > 0 else { return [] }
    return UnsafeBufferPointer(start: pointer, count: count).map(transform)
}

@inline(__always) private func boolean(_ value: protobuf_c_boolean) -> Bool { value != 0 }
@inline(__always) private func boolean(_ value: Bool) -> protobuf_c_boolean { value ? 1 : 0 }

private func openEnum<E: RawRepresentable<UInt32>, C: RawRepresentable>(_ c: C, default fallback: E) -> E
where C.RawValue: BinaryInteger {
    E(rawValue: UInt32(truncatingIfNeeded: c.rawValue)) ?? fallback
}

private func cEnum<C: RawRepresentable, E: RawRepresentable<UInt32>>(_ value: E) -> C where C.RawValue: BinaryInteger {
    C(rawValue: C.RawValue(truncatingIfNeeded: value.rawValue))!
}

// MARK: - Shared values

extension Region {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Region> {
        let m = a.message(hali__v1__region__init)
        m.pointee.x = x
        m.pointee.y = y
        m.pointee.width = width
        m.pointee.height = height
        return m
    }
    init(c: Hali__V1__Region) { self.init(x: c.x, y: c.y, width: c.width, height: c.height) }
    init?(c: UnsafeMutablePointer<Hali__V1__Region>?) {
        guard let c else { return nil }
        self.init(c: c.pointee)
    }
}

extension Point {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Point> {
        let m = a.message(hali__v1__point__init)
        m.pointee.x = x
        m.pointee.y = y
        return m
    }
    init(c: UnsafeMutablePointer<Hali__V1__Point>?) { self.init(x: c?.pointee.x ?? 0, y: c?.pointee.y ?? 0) }
}

extension ClassDef {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__ClassDef>? {
        let m = a.message(hali__v1__class_def__init)
        m.pointee.name = a.string(name)
        m.pointee.color = a.string(color)
        m.pointee.key = a.string(key)
        return m
    }
    init(c: UnsafeMutablePointer<Hali__V1__ClassDef>?) {
        self.init(name: string(c?.pointee.name), color: string(c?.pointee.color), key: string(c?.pointee.key))
    }
}

extension Cell {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Cell>? {
        let m = a.message(hali__v1__cell__init)
        m.pointee.id = id
        m.pointee.centroid = centroid.makeC(a)
        m.pointee.bbox = bbox.makeC(a)
        m.pointee.n_contour = contour.count
        m.pointee.contour = a.array(contour)
        if let label {
            let l = a.message(hali__v1__cell_label__init)
            l.pointee.class_name = a.string(label.className)
            l.pointee.source = cEnum(label.source)
            l.pointee.annotator = a.string(label.annotator)
            m.pointee.label = l
        }
        if let suggestion {
            let s = a.message(hali__v1__suggestion__init)
            s.pointee.class_name = a.string(suggestion.className)
            s.pointee.confidence = suggestion.confidence
            m.pointee.suggestion = s
        }
        m.pointee.area_um2 = areaUm2
        return m
    }
    init(c: UnsafeMutablePointer<Hali__V1__Cell>?) {
        let c = c!.pointee
        var label: CellLabel?
        if let l = c.label?.pointee {
            label = CellLabel(
                className: string(l.class_name), source: openEnum(l.source, default: .unspecified),
                annotator: string(l.annotator))
        }
        var suggestion: Suggestion?
        if let s = c.suggestion?.pointee {
            suggestion = Suggestion(className: string(s.class_name), confidence: s.confidence)
        }
        self.init(
            id: c.id, centroid: Point(c: c.centroid), bbox: Region(c: c.bbox) ?? Region(x: 0, y: 0, width: 0, height: 0),
            contour: array(c.contour, c.n_contour) { $0 }, label: label, suggestion: suggestion, areaUm2: c.area_um2)
    }
}

extension SlideInfo {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__SlideInfo>? {
        let m = a.message(hali__v1__slide_info__init)
        m.pointee.id = a.string(id)
        m.pointee.name = a.string(name)
        m.pointee.width = width
        m.pointee.height = height
        m.pointee.mpp_x = mppX
        m.pointee.mpp_y = mppY
        m.pointee.level_count = levelCount
        m.pointee.vendor = a.string(vendor)
        m.pointee.cell_count = cellCount
        m.pointee.ingested = boolean(ingested)
        m.pointee.n_level_downsamples = levelDownsamples.count
        m.pointee.level_downsamples = a.array(levelDownsamples)
        return m
    }
    init(c: UnsafeMutablePointer<Hali__V1__SlideInfo>?) {
        let c = c!.pointee
        self.init(
            id: string(c.id), name: string(c.name), width: c.width, height: c.height, mppX: c.mpp_x, mppY: c.mpp_y,
            levelCount: c.level_count, vendor: string(c.vendor), cellCount: c.cell_count, ingested: boolean(c.ingested),
            levelDownsamples: array(c.level_downsamples, c.n_level_downsamples) { $0 })
    }
}

// MARK: - Envelope

extension Envelope {
    // swift-format-ignore: one case per message keeps the mapping reviewable against the .proto
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Envelope> {
        let e = a.message(hali__v1__envelope__init)
        e.pointee.request_id = requestID
        switch body {
        case .hello(let v):
            let m = a.message(hali__v1__hello__init)
            m.pointee.protocol_version = v.protocolVersion
            m.pointee.client_name = a.string(v.clientName)
            m.pointee.client_version = a.string(v.clientVersion)
            m.pointee.token = a.string(v.token)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_HELLO
            e.pointee.hello = m
        case .listSlides:
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_LIST_SLIDES
            e.pointee.list_slides = a.message(hali__v1__list_slides__init)
        case .openSession(let v):
            let m = a.message(hali__v1__open_session__init)
            m.pointee.slide_id = a.string(v.slideID)
            m.pointee.task = a.string(v.task)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_OPEN_SESSION
            e.pointee.open_session = m
        case .getPatch(let v):
            let m = a.message(hali__v1__get_patch__init)
            switch v.target {
            case .region(let r):
                m.pointee.target_case = HALI__V1__GET_PATCH__TARGET_REGION
                m.pointee.region = r.makeC(a)
            case .patchID(let id):
                m.pointee.target_case = HALI__V1__GET_PATCH__TARGET_PATCH_ID
                // A oneof string is present even when empty, so encode "" as a real empty string.
                m.pointee.patch_id = a.string(id) ?? a.array([CChar(0)])
            case nil:
                break
            }
            m.pointee.level = v.level
            m.pointee.include_pixels = boolean(v.includePixels)
            m.pointee.include_contours = boolean(v.includeContours)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GET_PATCH
            e.pointee.get_patch = m
        case .labelEvent(let v):
            let m = a.message(hali__v1__label_event__init)
            m.pointee.client_seq = v.clientSeq
            m.pointee.cell_id = v.cellID
            m.pointee.class_name = a.string(v.className)
            m.pointee.source = cEnum(v.source)
            m.pointee.client_time_ms = v.clientTimeMs
            m.pointee.model_version_shown = v.modelVersionShown
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_LABEL_EVENT
            e.pointee.label_event = m
        case .undo(let v):
            let m = a.message(hali__v1__undo__init)
            m.pointee.client_seq = v.clientSeq
            m.pointee.cell_id = v.cellID
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_UNDO
            e.pointee.undo = m
        case .nextPatch(let v):
            let m = a.message(hali__v1__next_patch__init)
            m.pointee.strategy = cEnum(v.strategy)
            m.pointee.patch_size_um = v.patchSizeUm
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_NEXT_PATCH
            e.pointee.next_patch = m
        case .bye(let v):
            let m = a.message(hali__v1__bye__init)
            m.pointee.reason = a.string(v.reason)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_BYE
            e.pointee.bye = m
        case .ping(let v):
            let m = a.message(hali__v1__ping__init)
            m.pointee.nonce = v.nonce
            m.pointee.client_time_ns = v.clientTimeNs
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PING
            e.pointee.ping = m
        case .getStatus:
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GET_STATUS
            e.pointee.get_status = a.message(hali__v1__get_status__init)
        case .exportRequest(let v):
            let m = a.message(hali__v1__export_request__init)
            m.pointee.format = a.string(v.format)
            m.pointee.consensus = boolean(v.consensus)
            m.pointee.include_suggestions = boolean(v.includeSuggestions)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_EXPORT_REQUEST
            e.pointee.export_request = m
        case .exportedFile(let v):
            let m = a.message(hali__v1__exported_file__init)
            m.pointee.format = a.string(v.format)
            m.pointee.file_name = a.string(v.fileName)
            m.pointee.data = a.bytes(v.data)
            m.pointee.cells = v.cells
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_EXPORTED_FILE
            e.pointee.exported_file = m
        case .welcome(let v):
            let m = a.message(hali__v1__welcome__init)
            m.pointee.server_version = a.string(v.serverVersion)
            m.pointee.protocol_version = v.protocolVersion
            m.pointee.annotator = a.string(v.annotator)
            m.pointee.n_capabilities = v.capabilities.count
            m.pointee.capabilities = a.array(v.capabilities.map { a.string($0) ?? a.array([CChar(0)]) })
            m.pointee.max_frame_bytes = v.maxFrameBytes
            m.pointee.server_name = a.string(v.serverName)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_WELCOME
            e.pointee.welcome = m
        case .slideList(let slides):
            let m = a.message(hali__v1__slide_list__init)
            m.pointee.n_slides = slides.count
            m.pointee.slides = a.array(slides.map { $0.makeC(a) })
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_SLIDE_LIST
            e.pointee.slide_list = m
        case .sessionState(let v):
            let m = a.message(hali__v1__session_state__init)
            m.pointee.session_id = a.string(v.sessionID)
            m.pointee.slide = v.slide?.makeC(a)
            m.pointee.task = a.string(v.task)
            m.pointee.n_classes = v.classes.count
            m.pointee.classes = a.array(v.classes.map { $0.makeC(a) })
            m.pointee.labels_done = v.labelsDone
            m.pointee.model_version = v.modelVersion
            m.pointee.validation_accuracy = v.validationAccuracy
            m.pointee.current_region = v.currentRegion?.makeC(a)
            m.pointee.last_acked_seq = v.lastAckedSeq
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_SESSION_STATE
            e.pointee.session_state = m
        case .patch(let v):
            let m = a.message(hali__v1__patch__init)
            m.pointee.patch_id = a.string(v.patchID)
            m.pointee.region = v.region.makeC(a)
            m.pointee.level = v.level
            m.pointee.downsample = v.downsample
            m.pointee.mpp = v.mpp
            m.pointee.width = v.width
            m.pointee.height = v.height
            m.pointee.pixel_format = cEnum(v.pixelFormat)
            m.pointee.pixels = a.bytes(v.pixels)
            m.pointee.n_cells = v.cells.count
            m.pointee.cells = a.array(v.cells.map { $0.makeC(a) })
            m.pointee.model_version = v.modelVersion
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PATCH
            e.pointee.patch = m
        case .labelAck(let v):
            let m = a.message(hali__v1__label_ack__init)
            m.pointee.client_seq = v.clientSeq
            m.pointee.cell_id = v.cellID
            m.pointee.durable = boolean(v.durable)
            m.pointee.event_id = v.eventID
            m.pointee.server_time_ms = v.serverTimeMs
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_LABEL_ACK
            e.pointee.label_ack = m
        case .predictions(let v):
            let m = a.message(hali__v1__predictions__init)
            m.pointee.model_version = v.modelVersion
            m.pointee.validation_accuracy = v.validationAccuracy
            m.pointee.labels_used = v.labelsUsed
            m.pointee.region = v.region?.makeC(a)
            m.pointee.n_predictions = v.predictions.count
            m.pointee.predictions = a.array(
                v.predictions.map { p -> UnsafeMutablePointer<Hali__V1__CellPrediction>? in
                    let c = a.message(hali__v1__cell_prediction__init)
                    c.pointee.cell_id = p.cellID
                    c.pointee.class_name = a.string(p.className)
                    c.pointee.confidence = p.confidence
                    return c
                })
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PREDICTIONS
            e.pointee.predictions = m
        case .nextPatchPick(let v):
            let m = a.message(hali__v1__next_patch_pick__init)
            m.pointee.patch_id = a.string(v.patchID)
            m.pointee.region = v.region.makeC(a)
            m.pointee.strategy = cEnum(v.strategy)
            m.pointee.reason = a.string(v.reason)
            m.pointee.subset_cells = v.subsetCells
            m.pointee.cells_in_region = v.cellsInRegion
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_NEXT_PATCH_PICK
            e.pointee.next_patch_pick = m
        case .error(let v):
            let m = a.message(hali__v1__error__init)
            m.pointee.code = cEnum(v.code)
            m.pointee.message = a.string(v.message)
            m.pointee.client_seq = v.clientSeq
            m.pointee.fatal = boolean(v.fatal)
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_ERROR
            e.pointee.error = m
        case .pong(let v):
            let m = a.message(hali__v1__pong__init)
            m.pointee.nonce = v.nonce
            m.pointee.client_time_ns = v.clientTimeNs
            m.pointee.server_time_ns = v.serverTimeNs
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PONG
            e.pointee.pong = m
        case .serverStatus(let v):
            let m = a.message(hali__v1__server_status__init)
            m.pointee.server_version = a.string(v.serverVersion)
            m.pointee.protocol_version = v.protocolVersion
            m.pointee.uptime_s = v.uptimeSeconds
            m.pointee.connections = v.connections
            m.pointee.sessions = v.sessions
            m.pointee.slides = v.slides
            m.pointee.frames_received = v.framesReceived
            m.pointee.frames_rejected = v.framesRejected
            m.pointee.max_frame_bytes = v.maxFrameBytes
            m.pointee.listen = a.string(v.listen)
            m.pointee.n_slides_not_served = v.slidesNotServed.count
            m.pointee.slides_not_served = a.array(v.slidesNotServed.map { a.string($0) ?? a.array([CChar(0)]) })
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_SERVER_STATUS
            e.pointee.server_status = m
        }
        return e
    }

    /// nil when the body is unset or unknown to this build.
    init?(c e: Hali__V1__Envelope) {
        let body: Body
        switch e.body_case {
        case HALI__V1__ENVELOPE__BODY_HELLO:
            let m = e.hello.pointee
            body = .hello(
                Hello(
                    protocolVersion: m.protocol_version, clientName: string(m.client_name),
                    clientVersion: string(m.client_version), token: string(m.token)))
        case HALI__V1__ENVELOPE__BODY_LIST_SLIDES:
            body = .listSlides
        case HALI__V1__ENVELOPE__BODY_OPEN_SESSION:
            let m = e.open_session.pointee
            body = .openSession(OpenSession(slideID: string(m.slide_id), task: string(m.task)))
        case HALI__V1__ENVELOPE__BODY_GET_PATCH:
            let m = e.get_patch.pointee
            let target: GetPatch.Target?
            switch m.target_case {
            case HALI__V1__GET_PATCH__TARGET_REGION: target = Region(c: m.region).map { .region($0) }
            case HALI__V1__GET_PATCH__TARGET_PATCH_ID: target = .patchID(string(m.patch_id))
            default: target = nil
            }
            body = .getPatch(
                GetPatch(
                    target: target, level: m.level, includePixels: boolean(m.include_pixels),
                    includeContours: boolean(m.include_contours)))
        case HALI__V1__ENVELOPE__BODY_LABEL_EVENT:
            let m = e.label_event.pointee
            body = .labelEvent(
                LabelEvent(
                    clientSeq: m.client_seq, cellID: m.cell_id, className: string(m.class_name),
                    source: openEnum(m.source, default: .unspecified), clientTimeMs: m.client_time_ms,
                    modelVersionShown: m.model_version_shown))
        case HALI__V1__ENVELOPE__BODY_UNDO:
            let m = e.undo.pointee
            body = .undo(Undo(clientSeq: m.client_seq, cellID: m.cell_id))
        case HALI__V1__ENVELOPE__BODY_NEXT_PATCH:
            let m = e.next_patch.pointee
            body = .nextPatch(NextPatch(strategy: openEnum(m.strategy, default: .default), patchSizeUm: m.patch_size_um))
        case HALI__V1__ENVELOPE__BODY_BYE:
            body = .bye(Bye(reason: string(e.bye.pointee.reason)))
        case HALI__V1__ENVELOPE__BODY_PING:
            let m = e.ping.pointee
            body = .ping(Ping(nonce: m.nonce, clientTimeNs: m.client_time_ns))
        case HALI__V1__ENVELOPE__BODY_GET_STATUS:
            body = .getStatus
        case HALI__V1__ENVELOPE__BODY_EXPORT_REQUEST:
            let m = e.export_request.pointee
            body = .exportRequest(
                ExportRequest(format: string(m.format), consensus: boolean(m.consensus), includeSuggestions: boolean(m.include_suggestions)))
        case HALI__V1__ENVELOPE__BODY_EXPORTED_FILE:
            let m = e.exported_file.pointee
            body = .exportedFile(
                ExportedFile(format: string(m.format), fileName: string(m.file_name), data: array(m.data.data, m.data.len) { $0 }, cells: m.cells))
        case HALI__V1__ENVELOPE__BODY_WELCOME:
            let m = e.welcome.pointee
            body = .welcome(
                Welcome(
                    serverVersion: string(m.server_version), protocolVersion: m.protocol_version,
                    annotator: string(m.annotator), capabilities: array(m.capabilities, m.n_capabilities) { string($0) },
                    maxFrameBytes: m.max_frame_bytes, serverName: string(m.server_name)))
        case HALI__V1__ENVELOPE__BODY_SLIDE_LIST:
            let m = e.slide_list.pointee
            body = .slideList(array(m.slides, m.n_slides) { SlideInfo(c: $0) })
        case HALI__V1__ENVELOPE__BODY_SESSION_STATE:
            let m = e.session_state.pointee
            body = .sessionState(
                SessionState(
                    sessionID: string(m.session_id), slide: m.slide.map { SlideInfo(c: $0) }, task: string(m.task),
                    classes: array(m.classes, m.n_classes) { ClassDef(c: $0) }, labelsDone: m.labels_done,
                    modelVersion: m.model_version, validationAccuracy: m.validation_accuracy,
                    currentRegion: Region(c: m.current_region), lastAckedSeq: m.last_acked_seq))
        case HALI__V1__ENVELOPE__BODY_PATCH:
            let m = e.patch.pointee
            body = .patch(
                Patch(
                    patchID: string(m.patch_id), region: Region(c: m.region) ?? Region(x: 0, y: 0, width: 0, height: 0),
                    level: m.level, downsample: m.downsample, mpp: m.mpp, width: m.width, height: m.height,
                    pixelFormat: openEnum(m.pixel_format, default: .none),
                    pixels: array(m.pixels.data, m.pixels.len) { $0 }, cells: array(m.cells, m.n_cells) { Cell(c: $0) },
                    modelVersion: m.model_version))
        case HALI__V1__ENVELOPE__BODY_LABEL_ACK:
            let m = e.label_ack.pointee
            body = .labelAck(
                LabelAck(
                    clientSeq: m.client_seq, cellID: m.cell_id, durable: boolean(m.durable), eventID: m.event_id,
                    serverTimeMs: m.server_time_ms))
        case HALI__V1__ENVELOPE__BODY_PREDICTIONS:
            let m = e.predictions.pointee
            body = .predictions(
                Predictions(
                    modelVersion: m.model_version, validationAccuracy: m.validation_accuracy, labelsUsed: m.labels_used,
                    region: Region(c: m.region),
                    predictions: array(m.predictions, m.n_predictions) {
                        let p = $0!.pointee
                        return CellPrediction(cellID: p.cell_id, className: string(p.class_name), confidence: p.confidence)
                    }))
        case HALI__V1__ENVELOPE__BODY_NEXT_PATCH_PICK:
            let m = e.next_patch_pick.pointee
            body = .nextPatchPick(
                NextPatchPick(
                    patchID: string(m.patch_id), region: Region(c: m.region) ?? Region(x: 0, y: 0, width: 0, height: 0),
                    strategy: openEnum(m.strategy, default: .default), reason: string(m.reason),
                    subsetCells: m.subset_cells, cellsInRegion: m.cells_in_region))
        case HALI__V1__ENVELOPE__BODY_ERROR:
            let m = e.error.pointee
            body = .error(
                ErrorReply(
                    code: openEnum(m.code, default: .unspecified), message: string(m.message), clientSeq: m.client_seq,
                    fatal: boolean(m.fatal)))
        case HALI__V1__ENVELOPE__BODY_PONG:
            let m = e.pong.pointee
            body = .pong(Pong(nonce: m.nonce, clientTimeNs: m.client_time_ns, serverTimeNs: m.server_time_ns))
        case HALI__V1__ENVELOPE__BODY_SERVER_STATUS:
            let m = e.server_status.pointee
            body = .serverStatus(
                ServerStatus(
                    serverVersion: string(m.server_version), protocolVersion: m.protocol_version,
                    uptimeSeconds: m.uptime_s, connections: m.connections, sessions: m.sessions, slides: m.slides,
                    framesReceived: m.frames_received, framesRejected: m.frames_rejected,
                    maxFrameBytes: m.max_frame_bytes, listen: string(m.listen),
                    slidesNotServed: array(m.slides_not_served, m.n_slides_not_served) { string($0) }))
        default:
            return nil
        }
        self.init(requestID: e.request_id, body)
    }
}
