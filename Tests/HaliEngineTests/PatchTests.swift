import Foundation
import HaliCore
import HaliSlide
import HaliStore
import HaliTestFixtures
import Testing

@testable import HaliEngine

/// What a session shows of a region or a picked window: its pixels as OpenSlide reads them, its cells, and refusals
/// for levels the slide lacks, windows that do not exist and images over 4,096 pixels a side.
struct PatchTests {
    typealias Fixture = EngineSessionTests

    static func session(_ store: LabelStore) async throws -> LabellingSession {
        try await Fixture.registry(store: store, slide: try Fixture.servedSlide()).open(
            annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
    }

    @Test func aRegionsPixelsAreTheSlidesAndItsCellsAreListed() async throws {
        try await Fixture.withStore { store in
            let session = try await Self.session(store)
            let region = Region(x: 90, y: 90, width: 64, height: 56)
            let view = try await session.patch(PatchRequest(target: .region(region), includePixels: true))
            #expect(view.width == 64 && view.height == 56 && view.windowID == "")
            let direct = try Slide(path: session.slide.slide.path).readRegion(x: 90, y: 90, level: 0, width: 64, height: 56)
            #expect(view.pixels == direct)
            // Cells at (100, 100), (140, 100), (100, 140) and (140, 140) of the grid lie inside; ids in row order.
            #expect(view.cells.map(\.id) == [1, 2, 9, 10])
            #expect(await session.snapshot().currentRegion == region)
            let withoutPixels = try await session.patch(PatchRequest(target: .region(region)))
            #expect(withoutPixels.pixels == nil && withoutPixels.width == 0)
        }
    }

    @Test func aPickedWindowIsNamedAndMarkedVisited() async throws {
        try await Fixture.withStore { store in
            let session = try await Self.session(store)
            let pick = try await session.nextPatch(strategy: .coreset)
            let view = try await session.patch(PatchRequest(target: .window(pick.patchID)))
            #expect(view.windowID == pick.patchID && view.region == pick.region)
            // The grid's 48 cells lie in one 250 µm window: visited, nothing is left to offer.
            await #expect(throws: EngineError.self) { try await session.nextPatch(strategy: .coreset) }
        }
    }

    @Test func levelsAndSizesOutsideTheLimitsAreRefused() async throws {
        try await Fixture.withStore { store in
            let session = try await Self.session(store)
            let levels = session.slide.slide.levelCount
            let small = Region(x: 0, y: 0, width: 64, height: 64)
            let refused: [(PatchRequest, EngineError.Code)] = [
                (PatchRequest(target: .region(small), level: levels, includePixels: true), .invalidArgument),
                (PatchRequest(target: .region(small), level: -1), .invalidArgument),
                (PatchRequest(target: .window("p99999")), .notFound),
            ]
            for (request, code) in refused {
                do {
                    _ = try await session.patch(request)
                    Issue.record("\(request) was served")
                } catch let error as EngineError {
                    #expect(error.code == code, "\(error.message)")
                }
            }
            // The whole slide (2220 × 2967) is under the limit at level 0.
            let whole = try await session.patch(PatchRequest(target: .region(Region(x: 0, y: 0, width: 2220, height: 2967)), includePixels: true))
            #expect(whole.pixels?.count == 2220 * 2967 * 3)
        }
    }

    @Test func anImageOver4096PixelsASideIsRefused() async throws {
        try await Fixture.withStore { store in
            let registry = await Fixture.registry(store: store, slide: try Fixture.servedSlide(path: SharedData.crcMosaic))  // 5000 × 5000
            let session = try await registry.open(annotator: Annotator(name: "ann", token: "t"), slideID: "grid", taskName: "ki67")
            let widest = try await session.patch(PatchRequest(target: .region(Region(x: 0, y: 0, width: 4096, height: 8)), includePixels: true))
            #expect(widest.width == 4096)
            do {
                _ = try await session.patch(PatchRequest(target: .region(Region(x: 0, y: 0, width: 4097, height: 8)), includePixels: true))
                Issue.record("a 4097-pixel image was served")
            } catch let error as EngineError {
                #expect(error.code == .invalidArgument && error.message.contains("over 4096 per side"), "\(error.message)")
            }
        }
    }
}
