import HaliCore
import HaliWire

@testable import HaliTerminal

/// Literal values shared by the tests.
enum Fixtures {
    static let classes = [
        ClassDef(name: "tumour", color: "#ff0000", key: "1"),
        ClassDef(name: "stroma", color: "#0000ff", key: "2"),
    ]
    static let red = RGB(255, 0, 0)
    static let blue = RGB(0, 0, 255)
    static let gray = RGB(200, 200, 200)

    static let welcome = Welcome(
        serverVersion: "0.2.0", annotator: "ann", capabilities: ["ping", "status", "slides", "labels"],
        maxFrameBytes: 1 << 24, serverName: "test")

    static let slide = SlideInfo(id: "s1", name: "slide-one", width: 10_000, height: 8_000, mppX: 0.25, mppY: 0.25, levelCount: 3, vendor: "test")

    static func sessionState(lastAckedSeq: UInt64 = 0, labelsDone: UInt32 = 0, region: Region? = nil) -> SessionState {
        SessionState(
            sessionID: "sess", slide: slide, task: "tum", classes: classes, labelsDone: labelsDone, modelVersion: 3,
            validationAccuracy: 0.875, currentRegion: region, lastAckedSeq: lastAckedSeq)
    }

    /// 4×4 grey pixels; cell 1 (top-left 2×2) labelled tumour, cell 2 (bottom-right 2×2) suggested stroma.
    static func tinyPatch() -> Patch {
        let cells = [
            Cell(
                id: 1, centroid: Point(x: 1, y: 1), bbox: Region(x: 0, y: 0, width: 2, height: 2),
                label: CellLabel(className: "tumour", source: .manual, annotator: "ann")),
            Cell(
                id: 2, centroid: Point(x: 3, y: 3), bbox: Region(x: 2, y: 2, width: 2, height: 2),
                suggestion: Suggestion(className: "stroma", confidence: 0.9)),
        ]
        return Patch(
            patchID: "p-tiny", region: Region(x: 0, y: 0, width: 4, height: 4), level: 0, downsample: 1, mpp: 0.25,
            width: 4, height: 4, pixelFormat: .rgb8, pixels: [UInt8](repeating: 200, count: 4 * 4 * 3), cells: cells,
            modelVersion: 3)
    }

    /// A 400×400 region with cells on a grid (ids 10, 11, …), each with a suggestion unless listed in `plain`.
    static func gridPatch(
        origin: (Int64, Int64) = (1000, 1000), suggestions: [UInt64: String] = [:], labels: [UInt64: String] = [:],
        extraOutside: Bool = false
    ) -> Patch {
        var cells: [Cell] = []
        var id: UInt64 = 10
        for row in 0..<3 {
            for col in 0..<3 {
                let cx = Double(origin.0) + 60 + Double(col) * 140
                let cy = Double(origin.1) + 60 + Double(row) * 140
                var cell = Cell(
                    id: id, centroid: Point(x: cx, y: cy),
                    bbox: Region(x: Int64(cx) - 20, y: Int64(cy) - 20, width: 40, height: 40))
                if let s = suggestions[id] { cell.suggestion = Suggestion(className: s, confidence: 0.8) }
                if let l = labels[id] { cell.label = CellLabel(className: l, source: .manual, annotator: "ann") }
                cells.append(cell)
                id += 1
            }
        }
        if extraOutside {
            // Overlaps the region but its centroid lies outside: not in view.
            cells.append(
                Cell(
                    id: 99, centroid: Point(x: Double(origin.0) + 410, y: Double(origin.1) + 10),
                    bbox: Region(x: origin.0 + 390, y: origin.1, width: 40, height: 20),
                    suggestion: Suggestion(className: "stroma", confidence: 0.7)))
        }
        var pixels = [UInt8](repeating: 230, count: 100 * 100 * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) { pixels[i + 1] = 180 }
        return Patch(
            patchID: "p-grid", region: Region(x: origin.0, y: origin.1, width: 400, height: 400), level: 0,
            downsample: 4, mpp: 1.0, width: 100, height: 100, pixelFormat: .rgb8, pixels: pixels, cells: cells,
            modelVersion: 3)
    }

    /// A client whose session is open and showing `patch`, with the envelopes it produced on the way.
    static func openClient(
        patch: Patch, columns: Int = 80, rows: Int = 24, mode: ColorMode = .trueColor, lastAckedSeq: UInt64 = 0,
        graphics: GraphicsProtocol = .blocks, cellPixels: PixelSize = PixelSize(width: 8, height: 16), welcome: Welcome = Fixtures.welcome
    ) -> LabelClient {
        var c = LabelClient(
            slideID: "s1", task: "tum", columns: columns, rows: rows, colorMode: mode, graphics: graphics, cellPixels: cellPixels)
        var now: Int64 = 1_000_000
        let open = c.handle(.connected(welcome), nowMs: now)
        precondition(open.count == 1)
        now += 10
        let afterState = c.handle(
            .received(Envelope(requestID: open[0].requestID, .sessionState(sessionState(lastAckedSeq: lastAckedSeq)))), nowMs: now)
        // No current region: the client asks for the daemon's pick, then fetches it.
        guard case .nextPatch = afterState.last!.body else { preconditionFailure("expected next_patch, got \(afterState)") }
        let pickReply = c.handle(
            .received(
                Envelope(
                    requestID: afterState.last!.requestID,
                    .nextPatchPick(
                        NextPatchPick(
                            patchID: patch.patchID, region: patch.region, strategy: .coreset, reason: "holds 4 of 20 picks",
                            subsetCells: 4, cellsInRegion: UInt32(patch.cells.count))))), nowMs: now)
        guard pickReply.count == 1, case .getPatch = pickReply[0].body else { preconditionFailure("expected get_patch") }
        _ = c.handle(.received(Envelope(requestID: pickReply[0].requestID, .patch(patch))), nowMs: now)
        return c
    }

    static func labelEvents(_ envelopes: [Envelope]) -> [LabelEvent] {
        envelopes.compactMap { if case .labelEvent(let e) = $0.body { e } else { nil } }
    }
}
