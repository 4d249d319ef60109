import Foundation
import HaliClient
import HaliCore
import HaliIngest
import HaliServer
import HaliWire
import NIOCore
import NIOPosix
import HaliTestFixtures
import Testing

let svsPath = SharedData.cmu1SmallRegion

/// A data directory whose index holds the nuclei the real detector finds in a 1024×1024 window of CMU-1, built once
/// per test run (about a second with the optimised detector). An actor, not a blocking global: tests run on the
/// cooperative pool and must not wait on it synchronously.
actor IndexFixture {
    static let shared = IndexFixture()
    // One build shared by every caller: an actor method that awaits can be re-entered, so the first caller's task is
    // kept and awaited by the others.
    private var build: Task<String, any Error>?

    func indexedDirectory() async throws -> String {
        if build == nil {
            build = Task {
                let built = NSTemporaryDirectory() + "halid-session-fixture-\(getpid())"
                var options = IngestOptions()
                options.region = (x: 700, y: 1000, width: 1024, height: 1024)
                _ = try await IndexBuilder.build(slidePath: svsPath, options: options, outputDirectory: built + "/index")
                return built
            }
        }
        return try await build!.value
    }
}

/// A fresh data directory holding a copy of the fixture's index and no labels.
func freshDataDirectory() async throws -> String {
    let fixture = try await IndexFixture.shared.indexedDirectory()
    let directory = NSTemporaryDirectory() + "halid-session-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: fixture + "/index", toPath: directory + "/index")
    return directory
}

/// The simulated annotator's rule: large nuclei are "positive". Learnable from the measurement features.
func truth(_ cell: Cell, medianArea: Float) -> String { cell.areaUm2 > medianArea ? "positive" : "negative" }

@Suite(.serialized) struct SessionTests {
    @Test func labelTrainSuggestPickRestart() async throws {
        let data = try await freshDataDirectory()
        var labelled: [UInt64: String] = [:]
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                #expect(c.welcome.capabilities.contains("labels"))
                guard case .sessionState(let state) = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67"))).body
                else { throw ClientError.unexpectedReply(expected: "session_state", got: "") }
                #expect(state.labelsDone == 0 && state.modelVersion == 0)
                #expect(state.classes.map(\.name) == ["positive", "negative"])
                #expect((state.slide?.cellCount ?? 0) > 200)

                let region = Region(x: 700, y: 1000, width: 1024, height: 1024)
                guard case .patch(let patch) = try await c.request(.getPatch(GetPatch(target: .region(region), includePixels: true))).body
                else { throw ClientError.unexpectedReply(expected: "patch", got: "") }
                #expect(patch.cells.count > 200)
                #expect(patch.pixels.count == 1024 * 1024 * 3 && patch.pixelFormat == .rgb8)
                #expect(patch.cells.allSatisfy { $0.suggestion == nil && $0.label == nil })
                let medianArea = patch.cells.map(\.areaUm2).sorted()[patch.cells.count / 2]

                // 25 manual labels; the 20th trains the first model, the 25th the second.
                var seq: UInt64 = 0
                for cell in patch.cells.prefix(25) {
                    seq += 1
                    let name = truth(cell, medianArea: medianArea)
                    guard
                        case .labelAck(let ack) = try await c.request(
                            .labelEvent(LabelEvent(clientSeq: seq, cellID: cell.id, className: name, source: .manual, clientTimeMs: 0))
                        ).body
                    else { throw ClientError.unexpectedReply(expected: "label_ack", got: "") }
                    #expect(ack.durable && ack.clientSeq == seq && ack.cellID == cell.id)
                    labelled[cell.id] = name
                }
                // Predictions and a pick are pushed after training.
                var predictions: Predictions?
                var pick: NextPatchPick?
                let deadline = ContinuousClock.now + .seconds(120)
                while (predictions == nil || pick == nil), ContinuousClock.now < deadline {
                    guard let pushed = try await c.receive() else { break }
                    if case .predictions(let p) = pushed.body { predictions = p }
                    if case .nextPatchPick(let n) = pushed.body { pick = n }
                }
                let p = try #require(predictions)
                #expect(p.modelVersion >= 1)
                #expect(p.labelsUsed >= 20)
                #expect(p.predictions.count == patch.cells.count)
                #expect(pick != nil)

                // Suggestions now come with the patch; accepting the correct ones and correcting the rest.
                guard case .patch(let suggested) = try await c.request(.getPatch(GetPatch(target: .region(region)))).body
                else { throw ClientError.unexpectedReply(expected: "patch", got: "") }
                let unlabelled = suggested.cells.filter { $0.label == nil }
                #expect(unlabelled.allSatisfy { $0.suggestion != nil })
                let agreement =
                    Double(unlabelled.filter { $0.suggestion?.className == truth($0, medianArea: medianArea) }.count) / Double(unlabelled.count)
                #expect(agreement > 0.7, "suggestions agree with the annotator's rule on \(agreement) of cells")
                for cell in unlabelled.prefix(5) {
                    seq += 1
                    let name = truth(cell, medianArea: medianArea)
                    let source: LabelSource = cell.suggestion?.className == name ? .acceptedSuggestion : .correctedSuggestion
                    _ = try await c.request(
                        .labelEvent(
                            LabelEvent(
                                clientSeq: seq, cellID: cell.id, className: name, source: source, clientTimeMs: 0,
                                modelVersionShown: suggested.modelVersion)))
                    labelled[cell.id] = name
                }
                guard case .nextPatchPick(let next) = try await c.request(.nextPatch(NextPatch())).body
                else { throw ClientError.unexpectedReply(expected: "next_patch_pick", got: "") }
                #expect(next.strategy == .coreset && next.cellsInRegion > 0 && !next.patchID.isEmpty)
                guard case .patch(let picked) = try await c.request(.getPatch(GetPatch(target: .patchID(next.patchID)))).body
                else { throw ClientError.unexpectedReply(expected: "patch", got: "") }
                #expect(picked.region == next.region)
                guard case .nextPatchPick(let small) = try await c.request(.nextPatch(NextPatch(patchSizeUm: 60))).body
                else { throw ClientError.unexpectedReply(expected: "next_patch_pick", got: "") }
                #expect(small.region.width == Int64((60 / 0.499).rounded()) && small.region.height == small.region.width)

                // The labels as a QuPath GeoJSON file, over the protocol.
                guard case .exportedFile(let file) = try await c.request(.exportRequest(ExportRequest(format: "geojson"))).body
                else { throw ClientError.unexpectedReply(expected: "exported_file", got: "") }
                let json = try #require(try JSONSerialization.jsonObject(with: Data(file.data)) as? [String: Any])
                #expect(json["type"] as? String == "FeatureCollection")
                #expect((json["features"] as? [Any])?.count == labelled.count && file.cells == UInt32(labelled.count))
                // With a suggestion and its outline for every cell the file outgrows this daemon's 1 MiB frames:
                // refused, naming the command that has no such limit.
                do {
                    _ = try await c.request(.exportRequest(ExportRequest(format: "geojson", includeSuggestions: true)))
                    Issue.record("an export over the frame limit was sent")
                } catch ClientError.server(let e) {
                    #expect(e.code == .resourceExhausted && e.message.contains("hali export"))
                }
                guard case .exportedFile(let small) = try await c.request(.exportRequest(ExportRequest(format: "csv"))).body
                else { throw ClientError.unexpectedReply(expected: "exported_file", got: "") }
                #expect(small.cells == UInt32(labelled.count))
                do {
                    _ = try await c.request(.exportRequest(ExportRequest(format: "pdf")))
                    Issue.record("an unknown export format was accepted")
                } catch ClientError.server(let e) {
                    #expect(e.code == .invalidArgument)
                }

                // Bad input is refused without ending the session.
                for (bad, code) in [
                    (LabelEvent(clientSeq: 900, cellID: 999_999, className: "positive", source: .manual, clientTimeMs: 0), ErrorCode.notFound),
                    (LabelEvent(clientSeq: 901, cellID: 1, className: "tumour", source: .manual, clientTimeMs: 0), ErrorCode.invalidArgument),
                ] {
                    do {
                        _ = try await c.request(.labelEvent(bad))
                        Issue.record("bad label accepted")
                    } catch ClientError.server(let e) {
                        #expect(e.code == code && e.clientSeq == bad.clientSeq && !e.fatal)
                    }
                }
            }
        }

        // Restart on the same data directory: labels and the model come back.
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            try await HaliConnection.withConnection(to: endpoint, hello: hello()) { c in
                guard case .sessionState(let state) = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67"))).body
                else { throw ClientError.unexpectedReply(expected: "session_state", got: "") }
                #expect(state.labelsDone == UInt32(labelled.count))
                #expect(state.lastAckedSeq == 30)
                #expect(state.modelVersion >= 1, "the model is refitted from the stored labels")
                guard
                    case .patch(let patch) = try await c.request(
                        .getPatch(GetPatch(target: .region(Region(x: 700, y: 1000, width: 1024, height: 1024))))
                    ).body
                else { throw ClientError.unexpectedReply(expected: "patch", got: "") }
                var restored: [UInt64: String] = [:]
                for cell in patch.cells { if let l = cell.label { restored[cell.id] = l.className } }
                #expect(restored == labelled)
                #expect(patch.cells.filter { $0.label == nil }.allSatisfy { $0.suggestion != nil })
            }
        }
    }

    @Test func accessRulesAndUndo() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            // "other" may open only the til task.
            try await HaliConnection.withConnection(to: endpoint, hello: hello("other-token")) { c in
                do {
                    _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67")))
                    Issue.record("a forbidden task opened")
                } catch ClientError.server(let e) {
                    #expect(e.code == .permissionDenied)
                }
                do {
                    _ = try await c.request(.labelEvent(LabelEvent(clientSeq: 1, cellID: 1, className: "other", source: .manual, clientTimeMs: 0)))
                    Issue.record("a label without a session was accepted")
                } catch ClientError.server(let e) {
                    #expect(e.code == .noSession)
                }
                do {
                    _ = try await c.request(.openSession(OpenSession(slideID: "nope", task: "til")))
                    Issue.record("an unknown slide opened")
                } catch ClientError.server(let e) {
                    #expect(e.code == .notFound)
                }
                _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til")))
                // Label, relabel, undo: the cell goes back to its first class; a resent seq is stored once.
                _ = try await c.request(.labelEvent(LabelEvent(clientSeq: 1, cellID: 5, className: "other", source: .manual, clientTimeMs: 0)))
                _ = try await c.request(.labelEvent(LabelEvent(clientSeq: 2, cellID: 5, className: "inflammatory", source: .manual, clientTimeMs: 0)))
                guard
                    case .labelAck(let resent) = try await c.request(
                        .labelEvent(LabelEvent(clientSeq: 2, cellID: 5, className: "inflammatory", source: .manual, clientTimeMs: 0))
                    ).body
                else { throw ClientError.unexpectedReply(expected: "label_ack", got: "") }
                #expect(resent.durable)
                guard case .labelAck(let undone) = try await c.request(.undo(Undo(clientSeq: 3))).body
                else { throw ClientError.unexpectedReply(expected: "label_ack", got: "") }
                #expect(undone.cellID == 5)
                guard case .sessionState(let state) = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til"))).body
                else { throw ClientError.unexpectedReply(expected: "session_state", got: "") }
                #expect(state.labelsDone == 1 && state.lastAckedSeq == 3)
                guard
                    case .patch(let patch) = try await c.request(.getPatch(GetPatch(target: .region(Region(x: 0, y: 0, width: 2220, height: 2967)))))
                        .body
                else { throw ClientError.unexpectedReply(expected: "patch", got: "") }
                #expect(patch.cells.first { $0.id == 5 }?.label?.className == "other")
                do {
                    _ = try await c.request(.getPatch(GetPatch(target: .region(Region(x: 2000, y: 0, width: 500, height: 10)))))
                    Issue.record("a region outside the slide was served")
                } catch ClientError.server(let e) {
                    #expect(e.code == .invalidArgument)
                }
            }
        }
    }

    /// A client that asks for megabytes of pixels and never reads them is held back by TCP and NIO's watermarks; a
    /// second client labelling on the same daemon is answered throughout.
    @Test func stalledReaderDoesNotSlowOthers() async throws {
        let data = try await freshDataDirectory()
        try await withDaemon(slides: [svsPath], dataDirectory: data) { _, endpoint in
            guard case .tcp(let host, let port) = endpoint else { return }
            let stalled = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
            try await stalled.executeThenClose { _, outbound in
                try await outbound.write(framed(Envelope(requestID: 1, .hello(hello()))))
                try await outbound.write(framed(Envelope(requestID: 2, .openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "ki67")))))
                for i in 0..<12 {  // 12 × 3 MiB of pixels requested, none read
                    try await outbound.write(
                        framed(
                            Envelope(
                                requestID: UInt64(3 + i),
                                .getPatch(GetPatch(target: .region(Region(x: 0, y: 0, width: 1024, height: 1024)), includePixels: true)))))
                }
                try await Task.sleep(for: .milliseconds(300))
                try await HaliConnection.withConnection(to: endpoint, hello: hello("other-token")) { c in
                    _ = try await c.request(.openSession(OpenSession(slideID: "CMU-1-Small-Region", task: "til")))
                    var slowest = Duration.zero
                    for seq in 1...30 {
                        let start = ContinuousClock.now
                        _ = try await c.request(
                            .labelEvent(LabelEvent(clientSeq: UInt64(seq), cellID: UInt64(seq), className: "other", source: .manual, clientTimeMs: 0))
                        )
                        slowest = max(slowest, ContinuousClock.now - start)
                    }
                    #expect(slowest < .seconds(2), "a label took \(slowest) while another client stalled")
                }
            }
        }
    }
}
