import Foundation
import HaliCore
import HaliPNG
import Testing

@testable import HaliInterop
@testable import HaliStore

/// `hali report`'s measures on event lists written with literal times, each answer computed by hand in the comments.
@Suite struct AuditReportTests {
    /// Builds one session's events; `at` is the client's time in seconds.
    struct Session {
        var annotator: String
        var slide = "s1"
        var task = "til"
        var records: [LabelRecord] = []

        init(_ annotator: String, slide: String = "s1", task: String = "til") {
            self.annotator = annotator
            self.slide = slide
            self.task = task
        }

        mutating func label(
            _ seq: UInt64, at seconds: Double, _ source: LabelRecord.Source, cell: UInt64? = nil, _ className: String = "other",
            previous: String? = nil
        ) {
            records.append(
                LabelRecord(
                    annotator: annotator, slide: slide, task: task, cellID: cell ?? seq, kind: .label, className: className, source: source,
                    modelVersion: source == .manual ? 0 : 1, clientSeq: seq, clientTimeMs: Int64(seconds * 1000),
                    serverTimeMs: Int64(seconds * 1000) + 40, previousClass: previous))
        }

        /// An undo, stamped (as the daemon does) with a clock that is not the client's.
        mutating func undo(_ seq: UInt64, cell: UInt64, restoring previous: String?) {
            records.append(
                LabelRecord(
                    annotator: annotator, slide: slide, task: task, cellID: cell, kind: .undo, className: nil, source: .undo, modelVersion: 1,
                    clientSeq: seq, clientTimeMs: 5_000_000_000, serverTimeMs: 5_000_000_000, previousClass: previous))
        }
    }

    static func stored(_ records: [LabelRecord]) -> [StoredEvent] {
        records.enumerated().map { StoredEvent(eventID: Int64($0 + 1), record: $1, duplicate: false) }
    }

    /// Alice: manual labels at 0, 10, 16, 24 s; accepted at 27, 29 and (after a 300 s break) 329 s; corrected at 333 s;
    /// an undo; manual at 340 s. Timed manual gaps 10, 6, 8, 7 (median 7.5 s); assisted 3, 2 (accepted) and 4
    /// (corrected); the 300 s gap is a break. Active 40 s. Bob: accepted only, stored out of clientSeq order.
    static func twoAnnotators() -> [LabelRecord] {
        var alice = Session("alice")
        alice.label(1, at: 0, .manual)
        alice.label(2, at: 10, .manual)
        alice.label(3, at: 16, .manual)
        alice.label(4, at: 24, .manual)
        alice.label(5, at: 27, .accepted)
        alice.label(6, at: 29, .accepted)
        alice.label(7, at: 329, .accepted)
        alice.label(8, at: 333, .corrected, "lymphocyte")
        alice.undo(9, cell: 8, restoring: nil)
        alice.label(10, at: 340, .manual)
        var bob = Session("bob")
        bob.label(3, at: 9, .accepted)
        bob.label(1, at: 0, .accepted)
        bob.label(2, at: 5, .accepted)
        return alice.records + bob.records
    }

    @Test func paceAcceptanceAndTimeSavedFromKnownTimes() throws {
        let report = AuditReport(events: Self.stored(Self.twoAnnotators()), breakSeconds: 120)
        let alice = try #require(report.sessions.first { $0.key.annotator == "alice" }?.activity)
        #expect(alice.manual == 5 && alice.accepted == 3 && alice.corrected == 1 && alice.undos == 1 && alice.labels == 9)
        #expect(alice.activeSeconds == 40 && alice.breaks == 1)
        #expect(alice.perMinute(alice.labels) == 13.5)  // 9 labels in 40 s
        #expect(alice.perMinute(alice.manual) == 7.5 && alice.perMinute(alice.accepted) == 4.5 && alice.perMinute(alice.corrected) == 1.5)
        #expect(alice.acceptanceRate == 0.75 && alice.correctionsPerSuggestion == 0.25 && alice.suggestionsShown == 4)
        #expect(alice.manualSeconds == [10, 6, 8, 7] && alice.medianManualSeconds == 7.5)
        #expect(alice.acceptedSeconds == [3, 2] && alice.correctedSeconds == [4] && alice.medianAssistedSeconds == 3)
        #expect(alice.timeSavedSeconds == 13.5)  // 3 × 7.5 − (3 + 2 + 4)
        #expect(alice.speedup == 2.5)  // 22.5 / 9
        #expect(alice.timeSavedNote == nil)

        // Bob's gaps follow clientSeq (5 s, 4 s), not store order; with no manual label he has no pace to compare with.
        let bob = try #require(report.annotators.first { $0.annotator == "bob" }?.activity)
        #expect(bob.acceptedSeconds == [5, 4] && bob.activeSeconds == 9 && bob.breaks == 0)
        #expect(bob.timeSavedSeconds == nil && bob.speedup == nil)
        #expect(bob.timeSavedNote == "no timed manual labels: no own manual pace to compare with")
        let bobRow = try #require(report.annotatorsCSV().split(separator: "\n").first { $0.hasPrefix("bob,") })
        #expect(bobRow.hasSuffix(",4.500,2,,,no timed manual labels: no own manual pace to compare with"))
        #expect(report.summaryLines().contains("  time saved cannot be computed: no timed manual labels: no own manual pace to compare with"))
    }

    @Test func theBreakCapDecidesWhatCountsAsWork() {
        // With a 600 s cap Alice's 300 s pause is work, and the accepted label after it took 300 s.
        let report = AuditReport(events: Self.stored(Self.twoAnnotators()), breakSeconds: 600)
        let alice = report.sessions.first { $0.key.annotator == "alice" }!.activity
        #expect(alice.activeSeconds == 340 && alice.breaks == 0 && alice.acceptedSeconds == [3, 2, 300])
    }

    @Test func modelAccuracyByQuarterOfTheSession() {
        // Alice's 9 labels in order: m m | m m | a a | a c m → no suggestion, no suggestion, 100 %, 50 %.
        let report = AuditReport(events: Self.stored(Self.twoAnnotators()))
        let parts = report.accuracyOverSession.filter { $0.session.annotator == "alice" }
        #expect(parts.map(\.part) == [1, 2, 3, 4])
        #expect(parts.map(\.firstLabel) == [1, 3, 5, 7] && parts.map(\.lastLabel) == [2, 4, 6, 9])
        #expect(parts.map(\.accuracy) == [nil, nil, 1, 0.5])
        #expect(report.modelAccuracyCSV().contains("\nalice,s1,til,4,7,9,3,1,1,0.5000\n"))
        #expect(report.modelAccuracyCSV().contains("\nalice,s1,til,1,1,2,2,0,0,\n"))
    }

    @Test func cohensKappaOfTheTextbookTable() throws {
        // 50 cells: both "yes" 20, A yes / B no 5, A no / B yes 10, both no 15: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4.
        var a = Session("a", task: "ki67")
        var b = Session("b", task: "ki67")
        let table = [("yes", "yes", 20), ("yes", "no", 5), ("no", "yes", 10), ("no", "no", 15)]
        var cell: UInt64 = 0
        for (first, second, count) in table {
            for _ in 0..<count {
                cell += 1
                a.label(cell, at: Double(cell), .manual, cell: cell, first)
                b.label(cell, at: Double(cell), .manual, cell: cell, second)
            }
        }
        // Undo is replayed: A's label on cell 100 is undone (no longer shared); A relabels cell 1 and undoes back to "yes".
        a.label(51, at: 60, .manual, cell: 100, "no")
        a.undo(52, cell: 100, restoring: nil)
        b.label(51, at: 60, .manual, cell: 100, "no")
        a.label(53, at: 61, .corrected, cell: 1, "no", previous: "yes")
        a.undo(54, cell: 1, restoring: "yes")
        let report = AuditReport(events: Self.stored(a.records + b.records))
        let pair = try #require(report.pairs.first)
        #expect(report.pairs.count == 1 && pair.first == "a" && pair.second == "b")
        #expect(pair.agreement.items == 50 && pair.agreement.agreeing == 35)
        #expect(abs(pair.agreement.observed! - 0.7) < 1e-12 && abs(pair.agreement.expected! - 0.5) < 1e-12)
        #expect(abs(pair.agreement.kappa.value! - 0.4) < 1e-12)
        #expect(report.pairsCSV().hasSuffix("\ns1,ki67,a,b,50,35,0.7000,0.5000,0.4000,\n"))
        #expect(report.groups.isEmpty)  // two annotators: no Fleiss row
    }

    @Test func fleissKappaOfTheWorkedExample() throws {
        // Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories: P̄ = 0.378, P̄_e = 0.213, κ = 0.210.
        let counts = [
            [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
        ]
        let fleiss = FleissAgreement(counts: counts)
        #expect(fleiss.items == 10 && fleiss.raters == 14)
        #expect(abs(fleiss.observed! - 0.378) < 0.0005 && abs(fleiss.expected! - 0.213) < 0.0005)
        #expect(abs(fleiss.kappa.value! - 0.210) < 0.0005)
        #expect(FleissAgreement(counts: [[2, 1], [1, 1]]).kappa.undefinedReason != nil)  // unequal raters per item
        #expect(FleissAgreement(counts: [[2, 1], [3]]).kappa.undefinedReason != nil)  // unequal classes per item
    }

    @Test func fleissKappaOverTheCellsEveryAnnotatorLabelled() throws {
        // Three annotators, cells 1–4 labelled by all: [A A A], [A A B], [B B B], [A B B] → P̄ = 2/3, P̄_e = 1/2, κ = 1/3.
        // Cell 5 has only two labels and is left out of Fleiss' kappa (not of the pairs).
        let votes: [[String]] = [["A", "A", "A"], ["A", "A", "B"], ["B", "B", "B"], ["A", "B", "B"], ["A", "A"]]
        var sessions = [Session("r1"), Session("r2"), Session("r3")]
        for (c, cellVotes) in votes.enumerated() {
            for (r, className) in cellVotes.enumerated() { sessions[r].label(UInt64(c + 1), at: Double(c), .manual, cell: UInt64(c + 1), className) }
        }
        let report = AuditReport(events: Self.stored(sessions.flatMap(\.records)))
        let group = try #require(report.groups.first)
        #expect(group.annotators == ["r1", "r2", "r3"] && group.agreement.items == 4 && group.classes == 2)
        #expect(abs(group.agreement.observed! - 2.0 / 3) < 1e-12 && abs(group.agreement.expected! - 0.5) < 1e-12)
        #expect(abs(group.agreement.kappa.value! - 1.0 / 3) < 1e-12)
        #expect(report.pairs.count == 3 && report.pairs.first { $0.first == "r1" && $0.second == "r2" }!.agreement.items == 5)
        #expect(report.fleissCSV().hasSuffix("\ns1,til,r1; r2; r3,3,4,2,0.6667,0.5000,0.3333,\n"))
    }

    @Test func kappaWithoutChanceToBeatIsUndefinedNotNaN() throws {
        // Both give "other" to every shared cell: p_e = 1. A third annotator shares no cell with them.
        var a = Session("a"), b = Session("b"), c = Session("c")
        for cell: UInt64 in 1...3 {
            a.label(cell, at: Double(cell), .manual, cell: cell)
            b.label(cell, at: Double(cell), .manual, cell: cell)
        }
        c.label(1, at: 0, .manual, cell: 9)
        let report = AuditReport(events: Self.stored(a.records + b.records + c.records))
        let ab = try #require(report.pairs.first { $0.first == "a" && $0.second == "b" })
        #expect(ab.agreement.kappa == .undefined("expected agreement is 1: both gave one and the same class to every shared cell"))
        let ac = try #require(report.pairs.first { $0.first == "a" && $0.second == "c" })
        #expect(ac.agreement.kappa == .undefined("no shared cells") && ac.agreement.observed == nil)
        #expect(report.groups.first?.agreement.kappa == .undefined("no cell was labelled by every annotator"))
        #expect(FleissAgreement(counts: [[3, 0], [3, 0]]).kappa.undefinedReason?.hasPrefix("expected agreement is 1") == true)
        let csv = report.pairsCSV()
        #expect(!csv.lowercased().contains("nan"))
        #expect(csv.contains("\ns1,til,a,b,3,3,1.0000,1.0000,,expected agreement is 1: both gave one and the same class to every shared cell\n"))
        #expect(csv.contains("\ns1,til,a,c,0,0,,,,no shared cells\n"))
    }

    /// Splits RFC 4180 text into rows of fields (quoted fields may hold commas, quotes and newlines).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var characters = Array(text)[...]
        while let ch = characters.popFirst() {
            if quoted {
                if ch == "\"" {
                    if characters.first == "\"" { field.append(characters.removeFirst()) } else { quoted = false }
                } else {
                    field.append(ch)
                }
            } else if ch == "\"" {
                quoted = true
            } else if ch == "," {
                row.append(field)
                field = ""
            } else if ch == "\n" {
                rows.append(row + [field])
                row = []
                field = ""
            } else {
                field.append(ch)
            }
        }
        return rows
    }

    @Test func namesWithCommasQuotesAndNewlinesAreEscaped() throws {
        #expect(CSV.field(#"Smith, "Jo""#) == #""Smith, ""Jo""""#)
        #expect(CSV.field("two\nlines") == "\"two\nlines\"" && CSV.field("plain") == "plain")
        var odd = Session(#"Smith, "Jo""#, task: "til\nv2")
        odd.label(1, at: 0, .manual)
        odd.label(2, at: 4, .accepted)
        let report = AuditReport(events: Self.stored(odd.records))
        for csv in [report.sessionsCSV(), report.annotatorsCSV(), report.modelAccuracyCSV()] {
            let rows = Self.parseCSV(csv)
            #expect(rows.count >= 2 && rows.allSatisfy { $0.count == rows[0].count })
            #expect(rows[1][0] == #"Smith, "Jo""#)
        }
        #expect(Self.parseCSV(report.sessionsCSV())[1][2] == "til\nv2")
    }

    @Test func writesEveryTableAndChartsThatDecode() throws {
        let directory = NSTemporaryDirectory() + "hali-report-\(UUID().uuidString)/out"
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let report = AuditReport(events: Self.stored(Self.twoAnnotators()))
        let paths = try report.write(to: directory)
        #expect(paths.map { ($0 as NSString).lastPathComponent } == AuditReport.fileNames)
        for path in paths { #expect(FileManager.default.fileExists(atPath: path)) }
        let header = try String(contentsOfFile: paths[0], encoding: .utf8).prefix { $0 != "\n" }
        #expect(header.hasPrefix("annotator,slide,task,labels,manual,accepted,corrected,imported,undos,active_seconds,breaks,labels_per_minute"))
        let bars = try PNGReader.readRGB(path: paths[5])
        #expect(bars.width == 900 && bars.height == 480)
        // The accepted bars are drawn in (44, 160, 44): Alice's and Bob's.
        var green = 0
        for i in stride(from: 0, to: bars.pixels.count, by: 3) where bars.pixels[i] == 44 && bars.pixels[i + 1] == 160 && bars.pixels[i + 2] == 44 {
            green += 1
        }
        #expect(green > 1000)
        let accuracy = try PNGReader.readRGB(path: paths[6])
        #expect(accuracy.width == 900 && accuracy.height == 480)
    }

    @Test func theStoreIsReadOnlyAndForeignFilesAreRefused() async throws {
        let directory = NSTemporaryDirectory() + "hali-report-store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/labels.sqlite"
        let store = try LabelStore(path: path)
        for record in Self.twoAnnotators() { _ = try await store.append(record) }
        store.close()

        let all = try LabelStore.auditTrail(path: path)
        #expect(all.map(\.record) == Self.twoAnnotators())
        #expect(try LabelStore.auditTrail(path: path, annotator: "bob").count == 3)
        #expect(try LabelStore.auditTrail(path: path, slide: "s1", task: "til").count == 13)
        #expect(try LabelStore.auditTrail(path: path, task: "ki67").isEmpty)

        func refusal(_ path: String) -> String {
            do {
                _ = try LabelStore.auditTrail(path: path)
                return "read"
            } catch { return "\(error)" }
        }
        #expect(refusal(directory + "/missing.sqlite").hasSuffix("no such file (no label store here)"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/missing.sqlite"))
        let text = directory + "/notes.txt"
        try String(repeating: "not a database\n", count: 100).write(toFile: text, atomically: true, encoding: .utf8)
        #expect(refusal(text).contains("not a HALI label store (not an SQLite database"))
        let foreign = directory + "/other.sqlite"
        try SQLiteConnection(path: foreign).execute("CREATE TABLE photos (id INTEGER)")
        #expect(refusal(foreign).hasSuffix("not a HALI label store (no label_events table)"))
        let reader = try SQLiteConnection(path: foreign, readOnly: true)
        #expect(try reader.userVersion() == 0)  // reading did not migrate it into a label store
    }

    /// A store like a morning's work on one slide, written through `LabelStore`: alice and bob label 12 cells by hand
    /// and then take or correct suggestions from a model that errs less as it learns; carol only reviews suggestions
    /// (no manual labels). All three label cells 1–40, disagreeing on a few. Times are scripted, not measured. Kept at
    /// $HALI_REPORT_EXAMPLE_STORE when that is set (docs/user-guide.md's example runs `hali report` on it).
    @Test func exampleStoreForTheGuide() async throws {
        let keep = ProcessInfo.processInfo.environment["HALI_REPORT_EXAMPLE_STORE"]
        let directory = NSTemporaryDirectory() + "hali-report-example-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = keep ?? directory + "/labels.sqlite"
        let store = try LabelStore(path: path)
        // A fixed pseudo-random number per (annotator, cell, purpose), so the store is the same on every run.
        func draw(_ annotator: Int, _ cell: Int, _ purpose: Int) -> Double {
            var x = UInt64(annotator * 1_000_003 + cell * 7_919 + purpose * 104_729) &* 0x9E37_79B9_7F4A_7C15
            x ^= x >> 29
            x = x &* 0xBF58_476D_1CE4_E5B9
            x ^= x >> 32
            return Double(x % 10_000) / 10_000
        }
        let truth = (1...40).map { draw(0, $0, 0) < 0.35 ? "inflammatory" : "other" }
        for (a, name) in ["alice", "bob", "carol"].enumerated() {
            var session = Session(name, slide: "CMU-1-Small-Region", task: "til")
            var seq: UInt64 = 0, clock = 0.0
            for cell in 1...40 {
                // Each annotator reads a few cells differently from the others.
                let own = draw(a + 1, cell, 1) < 0.08 ? (truth[cell - 1] == "other" ? "inflammatory" : "other") : truth[cell - 1]
                let manual = name != "carol" && cell <= 12
                // The model is wrong on 40 % of cells at first, 5 % by the end.
                let modelRight = draw(a + 1, cell, 2) >= 0.40 - 0.35 * Double(cell - 1) / 39
                let suggestion = modelRight ? own : (own == "other" ? "inflammatory" : "other")
                let source: LabelRecord.Source = manual ? .manual : (suggestion == own ? .accepted : .corrected)
                let seconds =
                    switch source {
                    case .manual: 6 + 6 * draw(a + 1, cell, 3)
                    case .accepted: 1.5 + 2 * draw(a + 1, cell, 3)
                    default: 4 + 4 * draw(a + 1, cell, 3)
                    }
                clock += seconds + (name == "bob" && cell == 25 ? 600 : 0)  // bob's coffee break
                seq += 1
                session.label(seq, at: clock, source, cell: UInt64(cell), own)
                if name == "alice" && cell == 30 {
                    seq += 1
                    session.undo(seq, cell: 30, restoring: nil)
                    seq += 1
                    clock += 5
                    session.label(seq, at: clock, .manual, cell: 30, own)
                }
            }
            for record in session.records { _ = try await store.append(record) }
        }
        store.close()
        let report = AuditReport(events: try LabelStore.auditTrail(path: path))
        #expect(report.sessions.count == 3 && report.pairs.count == 3 && report.groups.count == 1)
        #expect(report.groups[0].agreement.items == 40)
        #expect(report.annotators.first { $0.annotator == "carol" }?.activity.timeSavedSeconds == nil)
        #expect(report.annotators.first { $0.annotator == "bob" }?.activity.breaks == 1)
    }
}
