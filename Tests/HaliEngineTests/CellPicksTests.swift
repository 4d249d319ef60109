import Foundation
import HaliCore
import HaliLearning
import HaliStore
import Testing

@testable import HaliEngine

/// The learner's cell picks as a session serves them: checked against brute force over the session's own features and
/// suggestions, kept in step with labels and undos, and refused when malformed.
struct CellPicksTests {
    typealias Fixture = EngineSessionTests

    /// Brute-force farthest-first: the unlabelled row farthest (squared Euclidean) from every labelled row, ties to the
    /// lower row.
    static func farthestRow(_ session: LabellingSession, labelled: Set<UInt64>) -> UInt64 {
        let features = session.slide.features
        let rows = labelled.compactMap { session.slide.table.row(ofID: $0) }
        var best = (distance: -Float.infinity, row: -1)
        for row in 0..<features.rows where !labelled.contains(CellTable.id(ofRow: row)) {
            let nearest = rows.map { other in
                (0..<features.columns).reduce(Float(0)) { sum, c in
                    let d = features[row, c] - features[other, c]
                    return sum + d * d
                }
            }.min()!
            if nearest > best.distance { best = (nearest, row) }
        }
        return CellTable.id(ofRow: best.row)
    }

    @Test func marginPicksAreTheUnlabelledCellsTheModelIsLeastSureOfAndSkippedOnesStayOut() async throws {
        try await Fixture.withStore { store in
            let session = try await GalleryTests.trainedSession(store: store)
            // Two classes: the smallest margin p1 − p2 = 2·p1 − 1 is the lowest confidence.
            let whole = Region(x: 0, y: 0, width: session.slide.slide.width, height: session.slide.slide.height)
            let (cells, version) = try await session.cells(in: whole, includeContours: false, remember: false)
            let unsure = cells.filter { $0.label == nil }.sorted { a, b in
                let (ca, cb) = (a.suggestion!.confidence, b.suggestion!.confidence)
                return ca != cb ? ca < cb : a.id < b.id
            }.map(\.id)
            let page = try await session.cellPicks(CellPicksRequest(strategy: .margin, maxCells: 5))
            #expect(page.pickStrategy == .margin && page.modelVersion == version && page.className == "")
            #expect(Set(page.cellIDs) == Set(unsure.prefix(5)))
            #expect(page.total == 48 - 6)
            #expect(page.crops.count == 5)
            for (crop, id) in zip(page.crops, page.cellIDs) {
                #expect(crop.cells.contains { $0.id == id && $0.suggestion != nil })
            }
            // The session's default is margin; skipped cells are left out of this pick only.
            let skipping = try await session.cellPicks(CellPicksRequest(maxCells: 5, skip: Array(page.cellIDs.prefix(2))))
            #expect(skipping.pickStrategy == .margin)
            #expect(Set(skipping.cellIDs) == Set(unsure.filter { !page.cellIDs.prefix(2).contains($0) }.prefix(5)))
        }
    }

    @Test func coresetPicksFollowLabelsAndUndos() async throws {
        try await Fixture.withStore { store in
            let session = try await GalleryTests.trainedSession(store: store)
            var labelled: Set<UInt64> = [1, 2, 3, 46, 47, 48]
            let first = try await session.cellPicks(CellPicksRequest(strategy: .coreset, maxCells: 1))
            #expect(first.cellIDs == [Self.farthestRow(session, labelled: labelled)])
            // Labelling the pick moves the next pick elsewhere at once (no refit needed).
            _ = try await session.label(Fixture.label(7, first.cellIDs[0], "negative"))
            labelled.insert(first.cellIDs[0])
            let second = try await session.cellPicks(CellPicksRequest(strategy: .coreset, maxCells: 1))
            #expect(second.cellIDs == [Self.farthestRow(session, labelled: labelled)])
            #expect(second.cellIDs != first.cellIDs)
            // An undo takes the cell out of the labelled set: the picker is rebuilt, and the cell is farthest again.
            _ = try await session.undo(UndoCommand(clientSeq: 8))
            labelled.remove(first.cellIDs[0])
            let third = try await session.cellPicks(CellPicksRequest(strategy: .coreset, maxCells: 1))
            #expect(third.cellIDs == first.cellIDs)
        }
    }

    @Test func beforeAnyModelMarginPicksByTypicalityAndNeverALabelledCell() async throws {
        try await Fixture.withStore { store in
            let session = try await PatchTests.session(store)  // minLabels 1,000: never trains
            _ = try await session.label(Fixture.label(1, 5, "negative"))
            let page = try await session.cellPicks(CellPicksRequest(maxCells: 8))
            #expect(page.pickStrategy == .typiclust && page.modelVersion == 0)
            #expect(page.cellIDs.count == 8 && Set(page.cellIDs).count == 8 && !page.cellIDs.contains(5))
            #expect(page.crops.allSatisfy { $0.cells.allSatisfy { $0.suggestion == nil } })
            let random = try await session.cellPicks(CellPicksRequest(strategy: .random, maxCells: 64))
            #expect(random.cellIDs.count == 47 && !random.cellIDs.contains(5))
        }
    }

    @Test func malformedRequestsAreRefused() async throws {
        try await Fixture.withStore { store in
            let session = try await PatchTests.session(store)
            let refused: [(EngineError.Code, CellPicksRequest)] = [
                (.invalidArgument, CellPicksRequest(maxCells: 0)), (.invalidArgument, CellPicksRequest(maxCells: 65)),
                (.invalidArgument, CellPicksRequest(cropMicrons: 0)), (.invalidArgument, CellPicksRequest(cropMicrons: .nan)),
                (.invalidArgument, CellPicksRequest(cropMicrons: 201)),
                (.invalidArgument, CellPicksRequest(skip: [UInt64](repeating: 1, count: CellPicksRequest.maxSkipped + 1))),
                (.notFound, CellPicksRequest(skip: [3, 49])), (.notFound, CellPicksRequest(skip: [0])),
                (.notFound, CellPicksRequest(skip: [UInt64.max])),
            ]
            for (code, request) in refused {
                await Fixture().expectRefusal(code) { _ = try await session.cellPicks(request) }
            }
        }
    }
}
