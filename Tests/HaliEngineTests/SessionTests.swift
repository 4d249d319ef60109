import Foundation
import HaliCore
import HaliIndex
import HaliLearning
import HaliSlide
import HaliStore
import HaliTestFixtures
import Testing

@testable import HaliEngine

/// Drives labelling sessions directly, with no socket and no protocol: a temp-file label store, the real CMU-1 slide
/// (for its OpenSlide handle) and a synthetic grid of 48 cells. Training is kept out of the way (minLabels 1,000),
/// so these tests name the label rules alone.
struct EngineSessionTests {
    static let task = TaskDefinition.builtIn.first { $0.name == "ki67" }!

    /// 48 cells on an 8 × 6 grid, 40 px apart, each 10 px across with a distinct area.
    static func servedSlide(path: String = SharedData.cmu1SmallRegion) throws -> ServedSlide {
        let slide = try Slide(path: path)
        var rows: [CellTable.Row] = []
        for j in 0..<6 {
            for i in 0..<8 {
                let (x, y) = (Double(100 + 40 * i), Double(100 + 40 * j))
                var row = CellTable.Row(centroidX: x, centroidY: y, minX: x - 5, minY: y - 5, maxX: x + 5, maxY: y + 5)
                row.areaMicrons2 = Double(10 + i + 8 * j)
                rows.append(row)
            }
        }
        let table = CellTable(rows: rows, stainNames: [])
        let identity = IndexManifest.SlideIdentity(
            path: slide.path, sizeBytes: 0, modified: 0, fingerprint: "test", vendor: slide.vendor, width: slide.width, height: slide.height,
            micronsPerPixel: 0.5, micronsPerPixelSource: "test")
        let manifest = IndexManifest(
            slide: identity, source: "test", settings: [:], cellCount: table.count, tissueAreaMicrons2: 0, tiles: 0, seconds: 0, created: "")
        return ServedSlide(id: "grid", slide: slide, table: table, manifest: manifest)
    }

    static func registry(store: LabelStore, slide: ServedSlide) async -> SessionRegistry {
        var settings = SessionSettings()
        settings.policy = OnlinePolicy(retrainEvery: 5, minLabels: 1_000)
        let registry = SessionRegistry(store: store, tasks: [task], settings: settings)
        await registry.add(slide)
        return registry
    }

    static func withStore(_ body: (LabelStore) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "hali-engine-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try LabelStore(path: directory + "/labels.sqlite")
        defer { store.close() }
        try await body(store)
    }

    static func label(_ seq: UInt64, _ cell: UInt64, _ className: String) -> LabelCommand {
        LabelCommand(clientSeq: seq, cellID: cell, className: className, origin: .manual, clientTimeMs: 1_700_000_000_000)
    }

    func expectRefusal(_ code: EngineError.Code, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
        } catch let error as EngineError {
            #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected EngineError \(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A label is stored once whatever the resends; a used number for another label, a number out of order, an
    /// unknown class or cell are refused and store nothing.
    @Test func labelsResendsAndRefusals() async throws {
        let slide = try Self.servedSlide()
        try await Self.withStore { store in
            let session = try await Self.registry(store: store, slide: slide).open(
                annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
            let first = try await session.label(Self.label(1, 3, "positive"))
            #expect(first.clientSeq == 1 && first.cellID == 3)
            let again = try await session.label(Self.label(1, 3, "positive"))
            #expect(again.eventID == first.eventID)
            await expectRefusal(.invalidArgument) { _ = try await session.label(Self.label(1, 3, "negative")) }
            await expectRefusal(.invalidArgument) { _ = try await session.label(Self.label(0, 4, "negative")) }
            await expectRefusal(.invalidArgument) { _ = try await session.label(Self.label(2, 4, "tumour")) }
            await expectRefusal(.notFound) { _ = try await session.label(Self.label(2, 49, "negative")) }
            _ = try await session.label(Self.label(5, 4, "negative"))
            await expectRefusal(.invalidArgument) { _ = try await session.label(Self.label(3, 5, "negative")) }
            #expect(try store.eventCount() == 2)
            let snapshot = await session.snapshot()
            #expect(snapshot.labelsDone == 2 && snapshot.lastClientSeq == 5)
        }
    }

    /// Undo restores the class a cell had before, and a resent undo changes nothing more.
    @Test func undoRestoresThePreviousClass() async throws {
        let slide = try Self.servedSlide()
        try await Self.withStore { store in
            let session = try await Self.registry(store: store, slide: slide).open(
                annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
            _ = try await session.label(Self.label(1, 10, "positive"))
            _ = try await session.label(Self.label(2, 10, "negative"))
            let undone = try await session.undo(UndoCommand(clientSeq: 3))
            #expect(undone.cellID == 10)
            let region = Region(x: 0, y: 0, width: 600, height: 400)
            func classOf10() async throws -> String? {
                try await session.cells(in: region, includeContours: false, remember: false).cells.first { $0.id == 10 }?.label
            }
            #expect(try await classOf10() == "positive")
            let resent = try await session.undo(UndoCommand(clientSeq: 3))
            #expect(resent.eventID == undone.eventID)
            #expect(try await classOf10() == "positive")
            _ = try await session.undo(UndoCommand(clientSeq: 4, cellID: 10))
            #expect(try await classOf10() == nil)
            await expectRefusal(.invalidArgument) { _ = try await session.undo(UndoCommand(clientSeq: 5, cellID: 10)) }
        }
    }

    /// A session opened again on the same store (a restart) has the same labels and sequence.
    @Test func aRestartedSessionReplaysItsLabels() async throws {
        let slide = try Self.servedSlide()
        try await Self.withStore { store in
            let annotator = Annotator(name: "ann", token: "t")
            let before = try await Self.registry(store: store, slide: slide).open(annotator: annotator, slideID: "grid", taskName: "ki67")
            for (seq, cell) in [(1, 1), (2, 2), (3, 7)] as [(UInt64, UInt64)] {
                _ = try await before.label(Self.label(seq, cell, cell == 2 ? "negative" : "positive"))
            }
            _ = try await before.undo(UndoCommand(clientSeq: 4, cellID: 7))
            let after = try await Self.registry(store: store, slide: slide).open(annotator: annotator, slideID: "grid", taskName: "ki67")
            let snapshot = await after.snapshot()
            #expect(snapshot.labelsDone == 2 && snapshot.lastClientSeq == 4)
            let labelled = try await after.cells(in: Region(x: 0, y: 0, width: 600, height: 400), includeContours: false, remember: false).cells
                .filter { $0.label != nil }.map { "\($0.id):\($0.label!)" }
            #expect(labelled == ["1:positive", "2:negative"])
        }
    }
}
