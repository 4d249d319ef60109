import CHaliProto
import HaliWire
import HaliCore
import Testing

/// Every message type with every field set to a non-default value, so a field dropped in either direction of
/// the protobuf-c mapping changes the decoded value.
let everyMessage: [Envelope] = {
    let region = Region(x: -5, y: 1_000_000_007, width: 640, height: 480)
    let slide = SlideInfo(
        id: "cmu-1", name: "CMU-1-Small-Region.svs", width: 2220, height: 2967, mppX: 0.499, mppY: 0.4991,
        levelCount: 3, vendor: "aperio", cellCount: 12_345, ingested: true, levelDownsamples: [1, 4.0002, 16.5])
    let cell = Cell(
        id: 77, centroid: Point(x: 12.5, y: -3.25), bbox: Region(x: 1, y: 2, width: 3, height: 4),
        contour: [1, 2, 3.5, 4, 5, 6.25], label: CellLabel(className: "positive", source: .correctedSuggestion, annotator: "ann"),
        suggestion: Suggestion(className: "negative", confidence: 0.875), areaUm2: 31.5)
    let bodies: [Body] = [
        .hello(Hello(protocolVersion: 7, clientName: "hali-terminal", clientVersion: "0.1.0", token: "s3cr3t")),
        .listSlides,
        .openSession(OpenSession(slideID: "cmu-1", task: "ki67")),
        .getPatch(GetPatch(target: .region(region), level: 2, includePixels: true, includeContours: true)),
        .getPatch(GetPatch(target: .patchID("p-9"), level: 1, includePixels: false, includeContours: true)),
        .getPatch(GetPatch(target: .region(region), level: 0, includePixels: true, pixelFormat: .jpeg, jpegQuality: 70)),
        .getGallery(
            GetGallery(
                className: "positive", maxCells: 30, offset: 12, order: .mostConfident, cropMicrons: 32.5, pixelFormat: .jpeg, jpegQuality: 90,
                includeContours: true)),
        .gallery(
            Gallery(
                className: "positive", modelVersion: 6, total: 1_234_567, offset: 12,
                crops: [
                    Patch(
                        patchID: "", region: region, level: 0, downsample: 1, mpp: 0.5, width: 1, height: 1, pixelFormat: .jpeg,
                        pixels: [0xFF, 0xD8, 0xFF, 0xD9], cells: [cell], modelVersion: 6),
                    Patch(
                        patchID: "", region: region, level: 0, downsample: 1, mpp: 0.5, width: 1, height: 1, pixelFormat: .rgb8,
                        pixels: [1, 2, 3], cells: [], modelVersion: 6),
                ],
                cellIDs: [77, .max])),
        .getCellPicks(
            GetCellPicks(
                maxCells: 24, strategy: .typiclustMargin, cropMicrons: 30.5, pixelFormat: .jpeg, jpegQuality: 80, includeContours: true,
                skipCellIDs: [3, .max, 1])),
        .gallery(
            Gallery(
                className: "", modelVersion: 2, total: 99, offset: 0,
                crops: [
                    Patch(
                        patchID: "", region: region, level: 0, downsample: 1, mpp: 0.5, width: 1, height: 1, pixelFormat: .rgb8,
                        pixels: [4, 5, 6], cells: [cell], modelVersion: 2)
                ], cellIDs: [77], pickStrategy: .probcover)),
        .labelEvent(
            LabelEvent(
                clientSeq: 42, cellID: 99, className: "positive", source: .acceptedSuggestion, clientTimeMs: 1_700_000_000_123, modelVersionShown: 3)),
        .undo(Undo(clientSeq: 43, cellID: 99)),
        .nextPatch(NextPatch(strategy: .entropy, patchSizeUm: 250)),
        .bye(Bye(reason: "done")),
        .ping(Ping(nonce: .max, clientTimeNs: -1)),
        .getStatus,
        .exportRequest(ExportRequest(format: "geojson", consensus: true, includeSuggestions: true)),
        .exportedFile(ExportedFile(format: "csv", fileName: "s-til.csv", data: Array("x,y\n1,2\n".utf8), cells: 1)),
        .welcome(
            Welcome(
                serverVersion: "0.1.0", protocolVersion: 1, annotator: "alice", capabilities: ["ping", "status"], maxFrameBytes: 1 << 24,
                serverName: "lab-box")),
        .slideList([slide, SlideInfo(id: "b", name: "b.tif", width: 1, height: 2, mppX: 0, mppY: 0, levelCount: 1, vendor: "generic-tiff")]),
        .sessionState(
            SessionState(
                sessionID: "s1", slide: slide, task: "ki67",
                classes: [ClassDef(name: "positive", color: "#a52a2a", key: "1"), ClassDef(name: "negative", color: "#0000ff", key: "2")],
                labelsDone: 25, modelVersion: 4, validationAccuracy: 0.8125, currentRegion: region, lastAckedSeq: 41)),
        .patch(
            Patch(
                patchID: "p-9", region: region, level: 1, downsample: 4.0, mpp: 1.996, width: 2, height: 1, pixelFormat: .rgb8,
                pixels: [255, 0, 7, 1, 2, 3], cells: [cell, Cell(id: 78, centroid: Point(x: 1, y: 1), bbox: region)], modelVersion: 4)),
        .labelAck(LabelAck(clientSeq: 42, cellID: 99, durable: true, eventID: 1001, serverTimeMs: 1_700_000_000_456)),
        .predictions(
            Predictions(
                modelVersion: 5, validationAccuracy: 0.9, labelsUsed: 30, region: region,
                predictions: [
                    CellPrediction(cellID: 1, className: "a", confidence: 0.5), CellPrediction(cellID: 2, className: "b", confidence: 0.25),
                ])),
        .nextPatchPick(
            NextPatchPick(patchID: "p-10", region: region, strategy: .coreset, reason: "holds 41 of 200", subsetCells: 41, cellsInRegion: 180)),
        .error(ErrorReply(code: .frameTooLarge, message: "too big", clientSeq: 9, fatal: true)),
        .pong(Pong(nonce: 5, clientTimeNs: 6, serverTimeNs: 7)),
        .serverStatus(
            ServerStatus(
                serverVersion: "0.1.0", protocolVersion: 1, uptimeSeconds: 12.5, connections: 3, sessions: 2, slides: 1, framesReceived: 100,
                framesRejected: 4, maxFrameBytes: 1 << 24, listen: "127.0.0.1:7070",
                slidesNotServed: ["/slides/a.svs: not a slide OpenSlide can read", "/slides/b.svs: no such file"],
                slidesPending: ["/index/c.hidx: changed on disk"])),
    ]
    return bodies.enumerated().map { Envelope(requestID: UInt64($0.offset + 1) * 1_000_003, $0.element) }
}()

@Suite struct WireCodecTests {
    @Test(arguments: everyMessage)
    func roundTripsThroughProtobufC(_ envelope: Envelope) throws {
        let bytes = WireCodec.encode(envelope)
        #expect(!bytes.isEmpty)
        let decoded = try WireCodec.decode(bytes)
        #expect(decoded == envelope, "\(envelope.body.name) changed in a round trip")
    }

    @Test func coversEveryBodyCase() {
        // One body per oneof member of Envelope (25); a new member must get a case in `everyMessage`.
        let names = Set(everyMessage.map(\.body.name))
        #expect(names.count == 25)
    }

    @Test func nanAccuracyRoundTrips() throws {
        let state = SessionState(
            sessionID: "", slide: nil, task: "t", classes: [], labelsDone: 0, modelVersion: 0, validationAccuracy: .nan,
            currentRegion: nil, lastAckedSeq: 0)
        let decoded = try WireCodec.decode(WireCodec.encode(Envelope(.sessionState(state))))
        guard case .sessionState(let s) = decoded.body else {
            Issue.record("wrong body")
            return
        }
        #expect(s.validationAccuracy.isNaN)
        #expect(s.slide == nil && s.currentRegion == nil)
    }

    @Test func knownBytesForAHello() throws {
        // Hand-encoded: field 1 varint 3; field 10 (len 5) { field 1 varint 1; field 4 "x" }.
        let bytes: [UInt8] = [0x08, 0x03, 0x52, 0x05, 0x08, 0x01, 0x22, 0x01, 0x78]
        let decoded = try WireCodec.decode(bytes)
        #expect(decoded == Envelope(requestID: 3, .hello(Hello(protocolVersion: 1, clientName: "", token: "x"))))
        #expect(WireCodec.encode(decoded) == bytes)
    }

    @Test func garbageIsMalformed() {
        // A length-delimited field whose length runs past the end of the buffer.
        #expect(throws: WireError.self) { try WireCodec.decode([0x52, 0x7f, 0x01]) }
        // Field number 0 is invalid in protobuf.
        #expect(throws: WireError.self) { try WireCodec.decode([0x00, 0x01]) }
    }

    @Test func emptyOrUnknownBodyIsReported() {
        do {
            _ = try WireCodec.decode([])
            Issue.record("an empty envelope decoded")
        } catch {
            #expect(error.kind == .unknownBody)
        }
        // Field 90 (reserved, unknown to v1) as a varint: key = (90 << 3) | 0 = 720 = 0xd0 0x05.
        do {
            _ = try WireCodec.decode([0xd0, 0x05, 0x01])
            Issue.record("an unknown body decoded")
        } catch {
            #expect(error.kind == .unknownBody)
        }
    }

    @Test func seededRandomBytesNeverCrash() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        var decodedCount = 0
        for _ in 0..<5_000 {
            let count = Int(next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
            if (try? WireCodec.decode(bytes)) != nil { decodedCount += 1 }
        }
        // Random bytes rarely form an envelope with a known body; the point is that none crashed or leaked.
        #expect(decodedCount < 5_000)
    }
}

/// protobuf-c keeps no length for strings: without `StringFieldCheck`, a NUL would cut them short and bad UTF-8 would
/// come through repaired. The frames are made by encoding a placeholder and overwriting its bytes, since a Swift
/// string with a NUL cannot be encoded (the C side would cut it) and one with bad UTF-8 cannot exist.
@Suite struct StringFieldCheckTests {
    /// The encoded envelope with the first occurrence of `marker`'s bytes replaced by `replacement`.
    func patched(_ envelope: Envelope, _ marker: String, _ replacement: [UInt8]) -> [UInt8] {
        var bytes = WireCodec.encode(envelope)
        let needle = Array(marker.utf8)
        precondition(needle.count == replacement.count)
        let at = (0...(bytes.count - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle }!
        bytes.replaceSubrange(at..<at + needle.count, with: replacement)
        return bytes
    }

    func refusal(_ bytes: [UInt8]) -> String? {
        do {
            _ = try WireCodec.decode(bytes)
            return nil
        } catch {
            #expect(error.kind == .malformed)
            return error.description
        }
    }

    @Test func nulInATopLevelStringIsRefused() {
        let hello = Envelope(.hello(Hello(clientName: "t", token: "secretXanything")))
        #expect(refusal(patched(hello, "secretXanything", Array("secret\0anything".utf8))) == "hello.token holds a NUL byte")
        // The same frame without the NUL decodes (the check does not refuse everything).
        #expect(refusal(patched(hello, "secretXanything", Array("secret-anything".utf8))) == nil)
    }

    @Test func nulAndBadUTF8InNestedStringsAreRefused() {
        let label = Envelope(
            requestID: 3, .labelEvent(LabelEvent(clientSeq: 1, cellID: 5, className: "otherXjunk", source: .manual, clientTimeMs: 0)))
        #expect(refusal(patched(label, "otherXjunk", Array("other\0junk".utf8))) == "label_event.class_name holds a NUL byte")
        #expect(
            refusal(patched(label, "otherXjunk", Array("other".utf8) + [0xff] + Array("junk".utf8))) == "label_event.class_name is not valid UTF-8")
        // Overlong encoding of "/" (C0 AF) is not UTF-8 either.
        #expect(
            refusal(patched(label, "otherXjunk", Array("othe".utf8) + [0xc0, 0xaf] + Array("junk".utf8)))
                == "label_event.class_name is not valid UTF-8")
        // Multi-byte UTF-8 passes.
        let accented = Envelope(.openSession(OpenSession(slideID: "lésion-µm", task: "ki67")))
        #expect(refusal(WireCodec.encode(accented)) == nil)
    }

    @Test func bytesFieldsMayHoldNul() {
        // ExportedFile.data is `bytes`: zeros are content, not an attack.
        let file = Envelope(.exportedFile(ExportedFile(format: "sliderunner", fileName: "a.sqlite", data: [0, 0, 1, 0], cells: 1)))
        #expect(refusal(WireCodec.encode(file)) == nil)
    }
}
