import HaliCore
import HaliWire
import Testing

@testable import HaliTerminal

@Suite struct LabelClientTests {
    let now: Int64 = 2_000_000

    @Test func opensSessionAndFetchesThePick() {
        var c = LabelClient(slideID: "s1", task: "tum")
        let open = c.handle(.connected(Fixtures.welcome), nowMs: now)
        #expect(open.map(\.body) == [.openSession(OpenSession(slideID: "s1", task: "tum"))])
        let next = c.handle(.received(Envelope(requestID: open[0].requestID, .sessionState(Fixtures.sessionState()))), nowMs: now)
        #expect(next.map(\.body) == [.nextPatch(NextPatch(strategy: .default, patchSizeUm: 0))])
        let get = c.handle(
            .received(
                Envelope(
                    requestID: next[0].requestID,
                    .nextPatchPick(
                        NextPatchPick(
                            patchID: "pk", region: Region(x: 5, y: 6, width: 7, height: 8), strategy: .coreset, reason: "r",
                            subsetCells: 1, cellsInRegion: 2)))), nowMs: now)
        #expect(get.map(\.body) == [.getPatch(GetPatch(target: .patchID("pk"), level: 0, includePixels: true))])
        #expect(c.modelVersion == 3)
        #expect(c.classes == Fixtures.classes)
    }

    @Test func resumesAtTheSessionsCurrentRegion() {
        var c = LabelClient(slideID: "s1", task: "tum")
        let open = c.handle(.connected(Fixtures.welcome), nowMs: now)
        let region = Region(x: 100, y: 200, width: 300, height: 300)
        let out = c.handle(.received(Envelope(requestID: open[0].requestID, .sessionState(Fixtures.sessionState(region: region)))), nowMs: now)
        #expect(out.map(\.body) == [.getPatch(GetPatch(target: .region(region), level: 0, includePixels: true))])
    }

    @Test func refusesADaemonWithoutLabelling() {
        var c = LabelClient(slideID: "s1", task: "tum")
        var w = Fixtures.welcome
        w.capabilities = ["ping"]
        #expect(c.handle(.connected(w), nowMs: now).isEmpty)
        #expect(c.messageIsError && c.message.contains("labelling"))
    }

    @Test func classKeyOnASuggestedCellIsACorrection() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "stroma"]))
        #expect(c.selectedCellID == 14)
        let out = c.handle(.key(.char("1")), nowMs: now)
        let events = Fixtures.labelEvents(out)
        #expect(events.count == 1)
        #expect(events[0].cellID == 14)
        #expect(events[0].className == "tumour")
        #expect(events[0].source == .correctedSuggestion)
        #expect(events[0].modelVersionShown == 3)
        #expect(events[0].clientSeq == 1)
        #expect(events[0].clientTimeMs == now)
        #expect(c.cells.first { $0.id == 14 }?.label?.className == "tumour")
        #expect(c.unackedCount == 1)
    }

    @Test func classKeyMatchingTheSuggestionAcceptsIt() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "stroma"]))
        let e = Fixtures.labelEvents(c.handle(.key(.char("2")), nowMs: now))
        #expect(e.map(\.source) == [.acceptedSuggestion])
        #expect(e.map(\.className) == ["stroma"])
    }

    @Test func classKeyWithoutSuggestionIsManual() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let e = Fixtures.labelEvents(c.handle(.key(.char("2")), nowMs: now))
        #expect(e.map(\.source) == [.manual])
        #expect(e.map(\.modelVersionShown) == [0])
        // Enter on a cell without suggestion sends nothing.
        #expect(c.handle(.key(.enter), nowMs: now).isEmpty)
        #expect(c.messageIsError)
    }

    @Test func enterAcceptsTheSelectedSuggestion() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "stroma", 15: "tumour"]))
        let e = Fixtures.labelEvents(c.handle(.key(.enter), nowMs: now))
        #expect(e.map(\.cellID) == [14])
        #expect(e.map(\.source) == [.acceptedSuggestion])
        #expect(e.map(\.className) == ["stroma"])
        // The selection moved on to an unlabelled cell; space accepts that one if suggested.
        #expect(c.selectedCellID != 14)
    }

    @Test func acceptAllSendsOneEventPerSuggestedUnlabelledCellInView() {
        let patch = Fixtures.gridPatch(
            suggestions: [10: "stroma", 12: "tumour", 14: "stroma", 18: "tumour"], labels: [18: "stroma"], extraOutside: true)
        var c = Fixtures.openClient(patch: patch)
        let events = Fixtures.labelEvents(c.handle(.key(.char("A")), nowMs: now))
        #expect(events.map(\.cellID).sorted() == [10, 12, 14])  // not 18 (labelled), not 99 (outside the view)
        #expect(events.allSatisfy { $0.source == .acceptedSuggestion && $0.modelVersionShown == 3 })
        #expect(Set(events.map(\.clientSeq)) == [1, 2, 3])
        #expect(c.labelsDone == 3)
        // Nothing left to accept.
        #expect(Fixtures.labelEvents(c.handle(.key(.char("A")), nowMs: now)).isEmpty)
    }

    @Test func acksClearPendingAndCountLabels() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "stroma"]))
        let out = c.handle(.key(.enter), nowMs: now)
        #expect(c.labelsDone == 1 && c.unackedCount == 1)
        _ = c.handle(
            .received(
                Envelope(requestID: out[0].requestID, .labelAck(LabelAck(clientSeq: 1, cellID: 14, durable: true, eventID: 7, serverTimeMs: 0)))),
            nowMs: now)
        #expect(c.pending.isEmpty)
        #expect(c.labelsDone == 1)
    }

    @Test func resendsUnacknowledgedLabelsAfterReconnecting() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let first = c.handle(.key(.char("1")), nowMs: now)  // seq 1
        let second = c.handle(.key(.char("2")), nowMs: now + 1)  // seq 2
        let third = c.handle(.key(.char("1")), nowMs: now + 2)  // seq 3
        #expect(Fixtures.labelEvents(first + second + third).map(\.clientSeq) == [1, 2, 3])
        _ = c.handle(
            .received(
                Envelope(requestID: first[0].requestID, .labelAck(LabelAck(clientSeq: 1, cellID: 0, durable: true, eventID: 1, serverTimeMs: 0)))),
            nowMs: now)
        let sent = Fixtures.labelEvents(second + third)

        _ = c.handle(.disconnected(reason: "connection reset", retryInSeconds: 1), nowMs: now + 10)
        #expect(!c.isConnected)
        // Labelling goes on offline; nothing is sent.
        let offline = c.handle(.key(.char("2")), nowMs: now + 20)  // seq 4
        #expect(offline.isEmpty)
        #expect(c.unackedCount == 3)
        _ = c.handle(.connecting(attempt: 2), nowMs: now + 30)

        let open = c.handle(.connected(Fixtures.welcome), nowMs: now + 40)
        #expect(open.map(\.body) == [.openSession(OpenSession(slideID: "s1", task: "tum"))])
        // The daemon had stored seq 2 (its ack was lost with the connection): only 3 and 4 go again.
        let resent = c.handle(
            .received(Envelope(requestID: open[0].requestID, .sessionState(Fixtures.sessionState(lastAckedSeq: 2, labelsDone: 2)))), nowMs: now + 50)
        let events = Fixtures.labelEvents(resent)
        #expect(events.map(\.clientSeq) == [3, 4])
        #expect(events[0] == sent[1])  // the very same event, same client_seq
        // Then the patch the client was looking at.
        #expect(
            resent.last.map(\.body)
                == .getPatch(GetPatch(target: .region(Region(x: 1000, y: 1000, width: 400, height: 400)), level: 0, includePixels: true)))
        #expect(c.labelsDone == 4)
        for (i, e) in events.enumerated() {
            _ = c.handle(
                .received(
                    Envelope(
                        requestID: resent[i].requestID,
                        .labelAck(LabelAck(clientSeq: e.clientSeq, cellID: e.cellID, durable: true, eventID: 9, serverTimeMs: 0)))), nowMs: now + 60)
        }
        #expect(c.pending.isEmpty)
        #expect(c.labelsDone == 4)
        // The next label continues the sequence.
        #expect(Fixtures.labelEvents(c.handle(.key(.char("1")), nowMs: now + 70)).map(\.clientSeq) == [5])
    }

    @Test func freshClientContinuesAfterTheDaemonsLastAckedSeq() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(), lastAckedSeq: 41)
        #expect(Fixtures.labelEvents(c.handle(.key(.char("1")), nowMs: now)).map(\.clientSeq) == [42])
    }

    @Test func notDurableAckIsResentUnlessTheDaemonStoredIt() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let out = c.handle(.key(.char("1")), nowMs: now)
        _ = c.handle(
            .received(
                Envelope(requestID: out[0].requestID, .labelAck(LabelAck(clientSeq: 1, cellID: 14, durable: false, eventID: 0, serverTimeMs: 0)))),
            nowMs: now)
        #expect(c.unackedCount == 0 && c.pending.count == 1)
        _ = c.handle(.disconnected(reason: "x", retryInSeconds: 1), nowMs: now)
        let open = c.handle(.connected(Fixtures.welcome), nowMs: now)
        let resent = c.handle(.received(Envelope(requestID: open[0].requestID, .sessionState(Fixtures.sessionState(lastAckedSeq: 0)))), nowMs: now)
        #expect(Fixtures.labelEvents(resent).map(\.clientSeq) == [1])
    }

    @Test func undoRevertsLocallyAndSendsUndo() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch(suggestions: [14: "stroma"]))
        _ = c.handle(.key(.char("1")), nowMs: now)
        #expect(c.cells.first { $0.id == 14 }?.label != nil)
        let out = c.handle(.key(.char("u")), nowMs: now)
        #expect(out.map(\.body) == [.undo(Undo(clientSeq: 2, cellID: 14))])
        #expect(c.cells.first { $0.id == 14 }?.label == nil)
        #expect(c.selectedCellID == 14)
        #expect(c.labelsDone == 0)
        // The suggestion shows again, so accepting it is ACCEPTED_SUGGESTION.
        #expect(Fixtures.labelEvents(c.handle(.key(.enter), nowMs: now)).map(\.source) == [.acceptedSuggestion])
        // Nothing more to undo than what was labelled.
        _ = c.handle(.key(.char("u")), nowMs: now)
        #expect(c.handle(.key(.char("u")), nowMs: now).isEmpty)
    }

    @Test func refusedLabelIsTakenBack() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let out = c.handle(.key(.char("1")), nowMs: now)
        _ = c.handle(
            .received(Envelope(requestID: out[0].requestID, .error(ErrorReply(code: .invalidArgument, message: "no such class", clientSeq: 1)))),
            nowMs: now)
        #expect(c.pending.isEmpty)
        #expect(c.cells.first { $0.id == 14 }?.label == nil)
        #expect(c.messageIsError)
    }

    @Test func arrowsSelectTheNearestCellInThatDirection() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        #expect(c.selectedCellID == 14)  // centre of the 3×3 grid
        _ = c.handle(.key(.right), nowMs: now)
        #expect(c.selectedCellID == 15)
        _ = c.handle(.key(.char("k")), nowMs: now)
        #expect(c.selectedCellID == 12)
        _ = c.handle(.key(.up), nowMs: now)
        #expect(c.selectedCellID == 12)  // nothing further up
        _ = c.handle(.key(.char("h")), nowMs: now)
        #expect(c.selectedCellID == 11)
        _ = c.handle(.key(.down), nowMs: now)
        _ = c.handle(.key(.char("j")), nowMs: now)
        #expect(c.selectedCellID == 17)
    }

    @Test func panAndZoomRequestNewRegions() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let right = c.handle(.key(.shiftRight), nowMs: now)
        #expect(
            right.map(\.body) == [
                .getPatch(GetPatch(target: .region(Region(x: 1200, y: 1000, width: 400, height: 400)), level: 0, includePixels: true))
            ])
        let up = c.handle(.key(.char("w")), nowMs: now)
        #expect(
            up.map(\.body) == [.getPatch(GetPatch(target: .region(Region(x: 1200, y: 800, width: 400, height: 400)), level: 0, includePixels: true))])
        let zoomOut = c.handle(.key(.char("-")), nowMs: now)
        #expect(
            zoomOut.map(\.body) == [
                .getPatch(GetPatch(target: .region(Region(x: 1000, y: 600, width: 800, height: 800)), level: 0, includePixels: true))
            ])
        let zoomIn = c.handle(.key(.char("+")), nowMs: now)
        #expect(
            zoomIn.map(\.body) == [
                .getPatch(GetPatch(target: .region(Region(x: 1200, y: 800, width: 400, height: 400)), level: 0, includePixels: true))
            ])
        // Pan clamps at the slide's edge.
        var edge = Fixtures.openClient(patch: Fixtures.gridPatch(origin: (0, 0)))
        #expect(edge.handle(.key(.char("a")), nowMs: now).isEmpty)
    }

    @Test func nextPatchAsksTheDaemon() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let out = c.handle(.key(.char("n")), nowMs: now)
        #expect(out.map(\.body) == [.nextPatch(NextPatch())])
        let get = c.handle(
            .received(
                Envelope(
                    requestID: out[0].requestID,
                    .nextPatchPick(
                        NextPatchPick(
                            patchID: "p2", region: Region(x: 0, y: 0, width: 400, height: 400), strategy: .coreset,
                            reason: "holds 41 of the 200 Coreset picks",
                            subsetCells: 41, cellsInRegion: 90)))), nowMs: now)
        #expect(get.map(\.body) == [.getPatch(GetPatch(target: .patchID("p2"), level: 0, includePixels: true))])
        #expect(c.pick?.reason == "holds 41 of the 200 Coreset picks")
    }

    @Test func predictionsUpdateSuggestionsAndModelVersion() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        _ = c.handle(
            .received(
                Envelope(
                    .predictions(
                        Predictions(
                            modelVersion: 4, validationAccuracy: 0.9, labelsUsed: 12, region: nil,
                            predictions: [CellPrediction(cellID: 14, className: "stroma", confidence: 0.6)])))), nowMs: now)
        #expect(c.modelVersion == 4)
        #expect(c.validationAccuracy == 0.9)
        let e = Fixtures.labelEvents(c.handle(.key(.char("1")), nowMs: now))
        #expect(e.map(\.source) == [.correctedSuggestion])
        #expect(e.map(\.modelVersionShown) == [4])
    }

    @Test func quitWaitsForAcksUnlessAskedTwice() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let out = c.handle(.key(.char("1")), nowMs: now)
        _ = c.handle(.key(.char("q")), nowMs: now)
        #expect(!c.shouldQuit && c.quitRequested)
        _ = c.handle(
            .received(
                Envelope(requestID: out[0].requestID, .labelAck(LabelAck(clientSeq: 1, cellID: 14, durable: true, eventID: 1, serverTimeMs: 0)))),
            nowMs: now)
        #expect(c.shouldQuit)

        var d = Fixtures.openClient(patch: Fixtures.gridPatch())
        _ = d.handle(.key(.char("1")), nowMs: now)
        _ = d.handle(.key(.char("q")), nowMs: now)
        _ = d.handle(.key(.char("q")), nowMs: now)
        #expect(d.shouldQuit)

        var e = Fixtures.openClient(patch: Fixtures.gridPatch())
        _ = e.handle(.key(.char("q")), nowMs: now)
        #expect(e.shouldQuit)
    }

    @Test func cellsPerMinute() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())  // session opened at 1_000_010
        for i in 0..<6 { _ = c.handle(.key(.char("1")), nowMs: 1_000_010 + Int64(i) * 10_000) }
        _ = c.handle(.tick, nowMs: 1_000_010 + 60_000)
        #expect(abs(c.cellsPerMinute - 6) < 1e-9)
    }
    @Test func streamedPickIsAdviceOnly() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let pick = NextPatchPick(
            patchID: "after-retrain", region: Region(x: 0, y: 0, width: 400, height: 400), strategy: .coreset,
            reason: "holds 9 of the 200 Coreset picks", subsetCells: 9, cellsInRegion: 30)
        #expect(c.handle(.received(Envelope(.nextPatchPick(pick))), nowMs: now).isEmpty)
        #expect(c.pick == pick)
        #expect(c.patch?.patchID == "p-grid")
    }

    @Test func pyramidLevelFollowsTheRegionSize() {
        var p = Fixtures.gridPatch()
        p.downsample = 1  // level 0; levels 1 and 2 are estimated at 4 and 16
        var c = Fixtures.openClient(patch: p)
        #expect(c.level(for: Region(x: 0, y: 0, width: 400, height: 400)) == 0)
        #expect(c.level(for: Region(x: 0, y: 0, width: 4000, height: 4000)) == 1)
        #expect(c.level(for: Region(x: 0, y: 0, width: 9000, height: 8000)) == 2)
        _ = c.handle(.key(.char("-")), nowMs: now)  // 800 across: level 1 would give 200 pixels, too few
        let out = c.handle(.key(.char("-")), nowMs: now)  // 1600 across: 400 pixels at level 1
        guard case .getPatch(let get) = out.first?.body else {
            Issue.record("expected get_patch, got \(out)")
            return
        }
        #expect(get.level == 1)
        #expect(get.target == .region(Region(x: 400, y: 400, width: 1600, height: 1600)))
        // The daemon reports level 1's real downsample: estimates follow it.
        var q = p
        q.level = 1
        q.downsample = 2
        q.region = Region(x: 400, y: 400, width: 1600, height: 1600)
        _ = c.handle(.received(Envelope(requestID: out[0].requestID, .patch(q))), nowMs: now)
        #expect(c.estimatedDownsample(2) == 8)
    }

    @Test func refusedPatchIsRetriedOnceAtACoarserLevel() {
        var c = Fixtures.openClient(patch: Fixtures.gridPatch())
        let first = c.handle(.key(.shiftRight), nowMs: now)
        let retry = c.handle(
            .received(Envelope(requestID: first[0].requestID, .error(ErrorReply(code: .invalidArgument, message: "ask a coarser level")))), nowMs: now
        )
        guard case .getPatch(let get) = retry.first?.body else {
            Issue.record("expected a retry, got \(retry)")
            return
        }
        #expect(get.level == 1)
        let none = c.handle(
            .received(Envelope(requestID: retry[0].requestID, .error(ErrorReply(code: .invalidArgument, message: "still too big")))), nowMs: now)
        #expect(none.isEmpty)
        #expect(c.messageIsError && c.message.contains("still too big"))
    }
}
