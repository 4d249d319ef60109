import Foundation
import HaliCore
import HaliLearning
import HaliStore
import Testing

@testable import HaliEngine

/// An executor that runs nothing until the test says so: fits wait in arrival order, and `releaseOldest` runs one on
/// the test's thread. Lets a test see how many fits the pool asked for and in which order, without timing.
final class GatedExecutor: BlockingExecutor, @unchecked Sendable {
    private let waiting = LockedValue<[@Sendable () -> Void]>([])

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            waiting.withLock { $0.append { continuation.resume(with: Result { try work() }) } }
        }
    }

    var waitingCount: Int { waiting.withLock { $0.count } }

    /// Waits (up to 10 s) until `count` jobs wait.
    func waitFor(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while waitingCount < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("expected \(count) waiting fits, have \(waitingCount)", sourceLocation: sourceLocation)
                return
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func releaseOldest() {
        let job = waiting.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        job?()
    }
}

/// The training pool's promises and the next-patch pick, driven through sessions with no socket: a burst of labels costs
/// one more fit, on the latest labels; sessions take turns; every window with cells is offered once.
struct TrainingAndPickTests {
    typealias Fixture = EngineSessionTests

    static func registry(store: LabelStore, fits: GatedExecutor, retrainEvery: Int = 1, patchMicrons: Double = 250) async throws
        -> SessionRegistry
    {
        var settings = SessionSettings()
        settings.policy = OnlinePolicy(retrainEvery: retrainEvery, minLabels: 2)
        settings.patchSizeMicrons = patchMicrons
        let registry = SessionRegistry(
            store: store, tasks: [Fixture.task], settings: settings, pool: TrainingPool(width: 1, fits: fits, picks: fits))
        await registry.add(try Fixture.servedSlide())
        return registry
    }

    static func version(_ session: LabellingSession) async -> UInt32 { await session.snapshot().modelVersion }

    /// Labels arriving while a fit runs are coalesced: 18 of them ask for one more fit, not 18, and that fit learns
    /// from all 20 labels.
    @Test func aBurstOfLabelsCostsOneMoreFitOnTheLatestLabels() async throws {
        try await Fixture.withStore { store in
            let fits = GatedExecutor()
            let session = try await Self.registry(store: store, fits: fits).open(
                annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
            _ = try await session.label(Fixture.label(1, 1, "positive"))
            _ = try await session.label(Fixture.label(2, 2, "negative"))
            try await fits.waitFor(1)  // the first fit, on 2 labels, is running
            for cell in UInt64(3)...20 { _ = try await session.label(Fixture.label(cell, cell, cell % 2 == 0 ? "negative" : "positive")) }
            fits.releaseOldest()
            try await fits.waitFor(1)  // the one coalesced fit
            #expect(await Self.version(session) == 1)
            #expect(await session.labelsAtLastFit == 2)
            fits.releaseOldest()
            try await Task.sleep(for: .milliseconds(100))
            #expect(fits.waitingCount == 0, "labels during a fit must not queue one fit each")
            #expect(await Self.version(session) == 2)
            #expect(await session.labelsAtLastFit == 20)
        }
    }

    /// With one fit at a time, a session that asks while another's fit runs is served before that other session's
    /// next fit: no annotator waits behind a busy one's stream of refits.
    @Test func sessionsTakeTurnsForFits() async throws {
        try await Fixture.withStore { store in
            let fits = GatedExecutor()
            let registry = try await Self.registry(store: store, fits: fits)
            let busy = try await registry.open(annotator: Annotator(name: "busy", token: "b"), slideID: "grid", taskName: "ki67")
            let quiet = try await registry.open(annotator: Annotator(name: "quiet", token: "q"), slideID: "grid", taskName: "ki67")
            _ = try await busy.label(Fixture.label(1, 1, "positive"))
            _ = try await busy.label(Fixture.label(2, 2, "negative"))
            try await fits.waitFor(1)  // busy's first fit runs
            _ = try await quiet.label(Fixture.label(1, 30, "positive"))
            _ = try await quiet.label(Fixture.label(2, 31, "negative"))  // quiet asks
            _ = try await busy.label(Fixture.label(3, 3, "positive"))  // then busy asks again
            fits.releaseOldest()
            try await fits.waitFor(1)
            fits.releaseOldest()  // this one must be quiet's
            try await Task.sleep(for: .milliseconds(100))
            #expect(await Self.version(quiet) == 1)
            #expect(await Self.version(busy) == 1)
            try await fits.waitFor(1)
            fits.releaseOldest()
            try await Task.sleep(for: .milliseconds(100))
            #expect(await Self.version(busy) == 2)
        }
    }

    /// Every window that holds cells is offered exactly once, by every strategy, and then the learner says so; the
    /// windows offered cover every cell.
    @Test(arguments: [PickStrategy.coreset, .random, .entropy])
    func everyWindowWithCellsIsOfferedOnce(strategy: PickStrategy) async throws {
        try await Fixture.withStore { store in
            // 50 µm windows (100 px at 0.5 µm/px) over the grid of cells 40 px apart: several windows hold cells.
            let registry = try await Self.registry(store: store, fits: GatedExecutor(), patchMicrons: 50)
            let session = try await registry.open(annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
            var offered: [String] = []
            var covered = Set<Int>()
            var cellsOfWindows = 0  // each cell belongs to one window (a region, rounded out to whole pixels, may touch more)
            while offered.count < 1_000 {
                let pick: PatchPick
                do {
                    pick = try await session.nextPatch(strategy: strategy)
                } catch let error as EngineError {
                    #expect(error.code == .notFound)
                    break
                }
                #expect(!offered.contains(pick.patchID), "\(pick.patchID) offered twice")
                offered.append(pick.patchID)
                let r = pick.region
                let cells = session.slide.cells(inX: r.x, y: r.y, width: r.width, height: r.height)
                #expect(pick.cellsInRegion > 0 && cells.count >= pick.cellsInRegion, "\(pick.patchID): \(pick.cellsInRegion) of \(cells.count)")
                cellsOfWindows += pick.cellsInRegion
                covered.formUnion(cells)
                _ = try await session.cells(in: r, includeContours: false, remember: true)
            }
            #expect(covered.count == 48, "the windows offered cover \(covered.count) of 48 cells")
            #expect(cellsOfWindows == 48)
            // Brute force: the slide cut into whole numbers of ~50 µm windows, and the windows the 48 centroids fall in.
            let slide = session.slide
            let (width, height) = (Double(slide.slide.width), Double(slide.slide.height))
            let side = 50 / slide.micronsPerPixel
            let (nx, ny) = (max(1, (width / side).rounded()), max(1, (height / side).rounded()))
            var windows = Set<Int>()
            for row in 0..<slide.table.count {
                let (x, y) = (Double(slide.table.centroidX[row]), Double(slide.table.centroidY[row]))
                windows.insert(Int(y / (height / ny)) * Int(nx) + Int(x / (width / nx)))
            }
            #expect(offered.count == windows.count)
            #expect(Set(offered) == Set(windows.map { "p\($0)" }))
        }
    }
}
