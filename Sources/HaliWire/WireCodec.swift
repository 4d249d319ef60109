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

@inline(__always) func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

@inline(__always) func array<T, U>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int, _ transform: (T) -> U) -> [U] {
    guard let pointer, count > 0 else { return [] }
    return UnsafeBufferPointer(start: pointer, count: count).map(transform)
}

@inline(__always) func boolean(_ value: protobuf_c_boolean) -> Bool { value != 0 }
@inline(__always) func boolean(_ value: Bool) -> protobuf_c_boolean { value ? 1 : 0 }

func openEnum<E: RawRepresentable<UInt32>, C: RawRepresentable>(_ c: C, default fallback: E) -> E
where C.RawValue: BinaryInteger {
    E(rawValue: UInt32(truncatingIfNeeded: c.rawValue)) ?? fallback
}

func cEnum<C: RawRepresentable, E: RawRepresentable<UInt32>>(_ value: E) -> C where C.RawValue: BinaryInteger {
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
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Envelope> {
        let e = a.message(hali__v1__envelope__init)
        e.pointee.request_id = requestID
        switch body {
        case .hello(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_HELLO
            e.pointee.hello = v.makeC(a)
        case .listSlides:
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_LIST_SLIDES
            e.pointee.list_slides = a.message(hali__v1__list_slides__init)
        case .openSession(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_OPEN_SESSION
            e.pointee.open_session = v.makeC(a)
        case .getPatch(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GET_PATCH
            e.pointee.get_patch = v.makeC(a)
        case .labelEvent(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_LABEL_EVENT
            e.pointee.label_event = v.makeC(a)
        case .undo(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_UNDO
            e.pointee.undo = v.makeC(a)
        case .nextPatch(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_NEXT_PATCH
            e.pointee.next_patch = v.makeC(a)
        case .bye(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_BYE
            e.pointee.bye = v.makeC(a)
        case .ping(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PING
            e.pointee.ping = v.makeC(a)
        case .getStatus:
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GET_STATUS
            e.pointee.get_status = a.message(hali__v1__get_status__init)
        case .exportRequest(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_EXPORT_REQUEST
            e.pointee.export_request = v.makeC(a)
        case .exportedFile(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_EXPORTED_FILE
            e.pointee.exported_file = v.makeC(a)
        case .getGallery(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GET_GALLERY
            e.pointee.get_gallery = v.makeC(a)
        case .getCellPicks(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GET_CELL_PICKS
            e.pointee.get_cell_picks = v.makeC(a)
        case .gallery(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_GALLERY
            e.pointee.gallery = v.makeC(a)
        case .welcome(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_WELCOME
            e.pointee.welcome = v.makeC(a)
        case .slideList(let slides):
            let m = a.message(hali__v1__slide_list__init)
            m.pointee.n_slides = slides.count
            m.pointee.slides = a.array(slides.map { $0.makeC(a) })
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_SLIDE_LIST
            e.pointee.slide_list = m
        case .sessionState(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_SESSION_STATE
            e.pointee.session_state = v.makeC(a)
        case .patch(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PATCH
            e.pointee.patch = v.makeC(a)
        case .labelAck(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_LABEL_ACK
            e.pointee.label_ack = v.makeC(a)
        case .predictions(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PREDICTIONS
            e.pointee.predictions = v.makeC(a)
        case .nextPatchPick(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_NEXT_PATCH_PICK
            e.pointee.next_patch_pick = v.makeC(a)
        case .error(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_ERROR
            e.pointee.error = v.makeC(a)
        case .pong(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_PONG
            e.pointee.pong = v.makeC(a)
        case .serverStatus(let v):
            e.pointee.body_case = HALI__V1__ENVELOPE__BODY_SERVER_STATUS
            e.pointee.server_status = v.makeC(a)
        }
        return e
    }

    /// nil when the body is unset or unknown to this build.
    init?(c e: Hali__V1__Envelope) {
        let body: Body
        switch e.body_case {
        case HALI__V1__ENVELOPE__BODY_HELLO:
            body = .hello(Hello(c: e.hello.pointee))
        case HALI__V1__ENVELOPE__BODY_LIST_SLIDES:
            body = .listSlides
        case HALI__V1__ENVELOPE__BODY_OPEN_SESSION:
            body = .openSession(OpenSession(c: e.open_session.pointee))
        case HALI__V1__ENVELOPE__BODY_GET_PATCH:
            body = .getPatch(GetPatch(c: e.get_patch.pointee))
        case HALI__V1__ENVELOPE__BODY_LABEL_EVENT:
            body = .labelEvent(LabelEvent(c: e.label_event.pointee))
        case HALI__V1__ENVELOPE__BODY_UNDO:
            body = .undo(Undo(c: e.undo.pointee))
        case HALI__V1__ENVELOPE__BODY_NEXT_PATCH:
            body = .nextPatch(NextPatch(c: e.next_patch.pointee))
        case HALI__V1__ENVELOPE__BODY_BYE:
            body = .bye(Bye(reason: string(e.bye.pointee.reason)))
        case HALI__V1__ENVELOPE__BODY_PING:
            body = .ping(Ping(c: e.ping.pointee))
        case HALI__V1__ENVELOPE__BODY_GET_STATUS:
            body = .getStatus
        case HALI__V1__ENVELOPE__BODY_EXPORT_REQUEST:
            body = .exportRequest(ExportRequest(c: e.export_request.pointee))
        case HALI__V1__ENVELOPE__BODY_EXPORTED_FILE:
            body = .exportedFile(ExportedFile(c: e.exported_file.pointee))
        case HALI__V1__ENVELOPE__BODY_GET_GALLERY:
            body = .getGallery(GetGallery(c: e.get_gallery.pointee))
        case HALI__V1__ENVELOPE__BODY_GET_CELL_PICKS:
            body = .getCellPicks(GetCellPicks(c: e.get_cell_picks.pointee))
        case HALI__V1__ENVELOPE__BODY_GALLERY:
            body = .gallery(Gallery(c: e.gallery.pointee))
        case HALI__V1__ENVELOPE__BODY_WELCOME:
            body = .welcome(Welcome(c: e.welcome.pointee))
        case HALI__V1__ENVELOPE__BODY_SLIDE_LIST:
            let m = e.slide_list.pointee
            body = .slideList(array(m.slides, m.n_slides) { SlideInfo(c: $0) })
        case HALI__V1__ENVELOPE__BODY_SESSION_STATE:
            body = .sessionState(SessionState(c: e.session_state.pointee))
        case HALI__V1__ENVELOPE__BODY_PATCH:
            body = .patch(Patch(c: e.patch.pointee))
        case HALI__V1__ENVELOPE__BODY_LABEL_ACK:
            body = .labelAck(LabelAck(c: e.label_ack.pointee))
        case HALI__V1__ENVELOPE__BODY_PREDICTIONS:
            body = .predictions(Predictions(c: e.predictions.pointee))
        case HALI__V1__ENVELOPE__BODY_NEXT_PATCH_PICK:
            body = .nextPatchPick(NextPatchPick(c: e.next_patch_pick.pointee))
        case HALI__V1__ENVELOPE__BODY_ERROR:
            body = .error(ErrorReply(c: e.error.pointee))
        case HALI__V1__ENVELOPE__BODY_PONG:
            body = .pong(Pong(c: e.pong.pointee))
        case HALI__V1__ENVELOPE__BODY_SERVER_STATUS:
            body = .serverStatus(ServerStatus(c: e.server_status.pointee))
        default:
            return nil
        }
        self.init(requestID: e.request_id, body)
    }
}
