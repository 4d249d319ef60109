// What `hali report` measures from the label store's audit trail: how fast real annotators label, by source; how
// often they take the model's suggestion; how much time the suggestions save against each annotator's own manual
// pace; and how well annotators agree on the cells they share. Pure: stored events in, values out (the command reads
// the store; `AuditReport.write` writes the tables and charts).
//
// Timing (all times are the client's clock, `clientTimeMs`: when the key was pressed, not when the daemon heard it):
//  * A session is one (annotator, slide, task). Its labels (sources manual, accepted, corrected) are put in
//    clientSeq order; the time a label took is the gap since the session's previous label, in seconds. The first
//    label of a session has no time taken.
//  * A gap longer than the break cap (default 120 s), or negative (the client's clock stepped back), is a break: it
//    adds nothing to the active time, and the label after it has no time taken. Active time = Σ of the other gaps.
//  * Undo events stay out of the gap sequence because the daemon stamps an undo with its own clock
//    (`LabellingSession.undo`), which need not match the client's; the time spent undoing is charged to the next
//    label. Imported labels (`hali import`) are not work done in HALI and are left out of all timing and rates.
//  * Labels per minute (by source) = label events (of that source) / active minutes. Labels later undone count:
//    the work was done.
//
// Assistance:
//  * A suggestion was on screen for every accepted or corrected label (the client records a label as manual only
//    when no suggestion was shown on the cell), so suggestions shown = accepted + corrected.
//  * Acceptance rate = accepted / (accepted + corrected); corrections per suggestion = corrected / suggestions shown.
//    An accepted suggestion is the model being right, a corrected one the model being wrong, so the acceptance rate
//    is also the model's accuracy on the annotator's labels; `AccuracyOverSession` splits each session's labels into
//    quarters (in clientSeq order) and gives it per quarter, which shows whether the model got better as it learned.
//  * Time saved against the annotator's own manual pace: m = median seconds per timed manual label (the middle
//    value, or the mean of the two middle ones); over the timed assisted labels (accepted or corrected) with times
//    t_i, saved = Σ (m − t_i) seconds and speed-up = (n·m) / Σ t_i (> 1 when suggestions made labelling faster; the
//    paper's efficiency, measured on a real person). Without a timed manual label there is no own pace and neither
//    can be computed: they are nil, never 0.
//
// Agreement (labels in force after replaying each annotator's labels and undos, `Consensus.votes`):
//  * Cohen's kappa (Cohen 1960) for each pair of annotators of a (slide, task), over the n cells both labelled:
//    p_o = agreeing cells / n; p_e = Σ_k a_k·b_k / n² with a_k, b_k the cells each gave class k;
//    κ = (p_o − p_e) / (1 − p_e). Undefined when n = 0, or when p_e = 1 (both gave one and the same class to every
//    shared cell, so chance explains all agreement).
//  * Fleiss' kappa (Fleiss 1971) for each (slide, task) with m ≥ 3 annotators, over the N cells that every one of them
//    labelled: with n_ij the raters giving cell i class j, P_i = (Σ_j n_ij² − m) / (m(m − 1)), P̄ = mean P_i,
//    p_j = Σ_i n_ij / (N·m), P̄_e = Σ_j p_j², κ = (P̄ − P̄_e) / (1 − P̄_e). Undefined when N = 0 or P̄_e = 1.
//    Both p_e = 1 tests are made on integer counts, so no rounding decides them.
//
// References: J. Cohen, "A coefficient of agreement for nominal scales", Educ. Psychol. Meas. 20 (1960) 37–46.
// J. L. Fleiss, "Measuring nominal scale agreement among many raters", Psychol. Bull. 76 (1971) 378–382.
//
// Complexity: E events, S sessions, A annotators per (slide, task), C cells labelled there. Grouping and sorting
// O(E log E); timing O(E) plus the medians' sorts; agreement O(E) for the replay, O(A²·C) for the pairs and O(A·C)
// for Fleiss. Memory O(E).

public import HaliCore

/// Work done, its pace and what suggestions saved: one session, or one annotator's sessions together.
public struct Activity: Sendable, Equatable {
    /// Label events by source (`imported` counted but not timed).
    public var manual = 0, accepted = 0, corrected = 0, imported = 0
    public var undos = 0
    /// Seconds between consecutive labels that were work (gaps within the break cap).
    public var activeSeconds = 0.0
    /// Gaps over the break cap (or negative), left out of `activeSeconds`.
    public var breaks = 0
    /// Seconds each timed label took, by source.
    public var manualSeconds: [Double] = [], acceptedSeconds: [Double] = [], correctedSeconds: [Double] = []

    public init() {}

    /// Labels made in HALI (imports excluded).
    public var labels: Int { manual + accepted + corrected }
    public var suggestionsShown: Int { accepted + corrected }

    /// Labels per active minute of `count` labels; nil when there is no active time to divide by.
    public func perMinute(_ count: Int) -> Double? { activeSeconds > 0 ? Double(count) * 60 / activeSeconds : nil }

    public var acceptanceRate: Double? { suggestionsShown > 0 ? Double(accepted) / Double(suggestionsShown) : nil }
    public var correctionsPerSuggestion: Double? { suggestionsShown > 0 ? Double(corrected) / Double(suggestionsShown) : nil }

    public var medianManualSeconds: Double? { median(manualSeconds) }
    public var medianAcceptedSeconds: Double? { median(acceptedSeconds) }
    public var medianCorrectedSeconds: Double? { median(correctedSeconds) }
    public var assistedSeconds: [Double] { acceptedSeconds + correctedSeconds }
    public var medianAssistedSeconds: Double? { median(assistedSeconds) }

    /// Σ (own manual median − time taken) over the timed assisted labels; nil without a timed manual label.
    public var timeSavedSeconds: Double? {
        guard let manualMedian = medianManualSeconds else { return nil }
        return assistedSeconds.reduce(0) { $0 + (manualMedian - $1) }
    }

    /// (timed assisted labels × own manual median) / their total time; nil without timed labels of both kinds or
    /// when the assisted labels took no time at all.
    public var speedup: Double? {
        guard let manualMedian = medianManualSeconds, !assistedSeconds.isEmpty else { return nil }
        let taken = assistedSeconds.reduce(0, +)
        return taken > 0 ? Double(assistedSeconds.count) * manualMedian / taken : nil
    }

    /// Why the time saved is missing, in words; nil when it was computed.
    public var timeSavedNote: String? {
        if manualSeconds.isEmpty { return "no timed manual labels: no own manual pace to compare with" }
        if assistedSeconds.isEmpty { return "no timed accepted or corrected labels" }
        return nil
    }

    /// The activity of one session's events (any order; sorted by clientSeq here).
    public init(session events: [LabelRecord], breakSeconds: Double) {
        let ordered = events.sorted { $0.clientSeq < $1.clientSeq }
        var previousLabelMs: Int64?
        for record in ordered {
            switch (record.kind, record.source) {
            case (.undo, _), (_, .undo):
                undos += 1
                continue
            case (_, .imported):
                imported += 1
                continue
            case (_, .manual): manual += 1
            case (_, .accepted): accepted += 1
            case (_, .corrected): corrected += 1
            }
            defer { previousLabelMs = record.clientTimeMs }
            guard let previous = previousLabelMs else { continue }
            let gap = Double(record.clientTimeMs - previous) / 1000
            guard gap >= 0, gap <= breakSeconds else {
                breaks += 1
                continue
            }
            activeSeconds += gap
            switch record.source {
            case .manual: manualSeconds.append(gap)
            case .accepted: acceptedSeconds.append(gap)
            default: correctedSeconds.append(gap)
            }
        }
    }

    /// Two activities as one (an annotator over several sessions): counts and times add, samples pool.
    public func merged(with other: Activity) -> Activity {
        var out = self
        out.manual += other.manual
        out.accepted += other.accepted
        out.corrected += other.corrected
        out.imported += other.imported
        out.undos += other.undos
        out.activeSeconds += other.activeSeconds
        out.breaks += other.breaks
        out.manualSeconds += other.manualSeconds
        out.acceptedSeconds += other.acceptedSeconds
        out.correctedSeconds += other.correctedSeconds
        return out
    }
}

/// A kappa statistic, or why it has no value.
public enum Kappa: Sendable, Equatable {
    case value(Double)
    case undefined(String)

    public var value: Double? {
        if case .value(let kappa) = self { return kappa }
        return nil
    }

    public var undefinedReason: String? {
        if case .undefined(let reason) = self { return reason }
        return nil
    }
}

/// Cohen's kappa of two raters over the same items (see the file's header for the formulas).
public struct CohenAgreement: Sendable, Equatable {
    public var items: Int
    public var agreeing: Int
    public var observed: Double?
    public var expected: Double?
    public var kappa: Kappa

    /// - Parameter pairs: each item's class from the first and the second rater.
    public init(pairs: [(String, String)]) {
        items = pairs.count
        agreeing = pairs.count { $0.0 == $0.1 }
        guard items > 0 else {
            observed = nil
            expected = nil
            kappa = .undefined("no shared cells")
            return
        }
        var first: [String: Int] = [:], second: [String: Int] = [:]
        for (a, b) in pairs {
            first[a, default: 0] += 1
            second[b, default: 0] += 1
        }
        let chanceNumerator = first.reduce(0) { $0 + $1.value * (second[$1.key] ?? 0) }
        let n2 = items * items
        observed = Double(agreeing) / Double(items)
        expected = Double(chanceNumerator) / Double(n2)
        kappa =
            chanceNumerator == n2
            ? .undefined("expected agreement is 1: both gave one and the same class to every shared cell")
            : .value((observed! - expected!) / (1 - expected!))
    }
}

/// Fleiss' kappa of m ≥ 2 raters who each rated every item once (see the file's header for the formulas).
public struct FleissAgreement: Sendable, Equatable {
    public var items: Int
    public var raters: Int
    /// P̄ and P̄_e.
    public var observed: Double?
    public var expected: Double?
    public var kappa: Kappa

    /// - Parameter counts: one row per item, one column per class: how many raters gave the item that class. Every
    ///   row must have the same classes and sum to the same number of raters (checked; else the kappa is undefined).
    public init(counts: [[Int]]) {
        items = counts.count
        raters = counts.first?.reduce(0, +) ?? 0
        observed = nil
        expected = nil
        let m = raters
        guard items > 0 else {
            kappa = .undefined("no cell was labelled by every annotator")
            return
        }
        guard m >= 2, counts.allSatisfy({ $0.reduce(0, +) == m && $0.count == counts[0].count }) else {
            kappa = .undefined("items were not rated by the same number (≥ 2) of raters over the same classes")
            return
        }
        let perItem = counts.map { row in Double(row.reduce(0) { $0 + $1 * $1 } - m) / Double(m * (m - 1)) }
        let classTotals = counts.reduce(into: [Int](repeating: 0, count: counts[0].count)) { totals, row in
            for (j, n) in row.enumerated() { totals[j] += n }
        }
        let all = items * m
        let meanAgreement = perItem.reduce(0, +) / Double(items)
        let chance = classTotals.reduce(0.0) { $0 + Double($1) * Double($1) } / (Double(all) * Double(all))
        observed = meanAgreement
        expected = chance
        kappa =
            classTotals.contains(all)
            ? .undefined("expected agreement is 1: every annotator gave one and the same class to every cell")
            : .value((meanAgreement - chance) / (1 - chance))
    }
}

/// Everything `hali report` computes from a list of stored events.
public struct AuditReport: Sendable {
    public static let defaultBreakSeconds = 120.0
    /// Quarters of a session's labels for the model's accuracy over the session.
    public static let accuracyParts = 4

    public struct SessionKey: Sendable, Hashable, Comparable {
        public var annotator, slide, task: String
        public static func < (a: SessionKey, b: SessionKey) -> Bool { (a.annotator, a.slide, a.task) < (b.annotator, b.slide, b.task) }
    }

    /// The model's accuracy on one part (quarter) of a session's labels in clientSeq order.
    public struct AccuracyPart: Sendable, Equatable {
        public var session: SessionKey
        /// 1-based part number and the 1-based positions of its first and last label in the session.
        public var part: Int
        public var firstLabel: Int, lastLabel: Int
        public var labels: Int
        public var accepted: Int, corrected: Int
        /// accepted / (accepted + corrected); nil when no suggestion was shown in this part.
        public var accuracy: Double? { accepted + corrected > 0 ? Double(accepted) / Double(accepted + corrected) : nil }
    }

    public struct PairAgreement: Sendable, Equatable {
        public var slide, task: String
        public var first, second: String
        public var agreement: CohenAgreement
    }

    public struct GroupAgreement: Sendable, Equatable {
        public var slide, task: String
        public var annotators: [String]
        public var classes: Int
        public var agreement: FleissAgreement
    }

    public var breakSeconds: Double
    public var eventCount: Int
    /// One per session, sorted by annotator, slide, task.
    public var sessions: [(key: SessionKey, activity: Activity)]
    /// One per annotator, their sessions merged, sorted by name.
    public var annotators: [(annotator: String, sessions: Int, activity: Activity)]
    public var accuracyOverSession: [AccuracyPart]
    public var pairs: [PairAgreement]
    public var groups: [GroupAgreement]

    /// - Parameters:
    ///   - events: stored events, any mix of annotators, slides and tasks (store order is restored from event ids).
    ///   - breakSeconds: gaps longer than this are breaks, not work.
    public init(events: [StoredEvent], breakSeconds: Double = defaultBreakSeconds) {
        self.breakSeconds = breakSeconds
        eventCount = events.count
        let inStoreOrder = events.sorted { $0.eventID < $1.eventID }
        var bySession: [SessionKey: [LabelRecord]] = [:]
        var bySlideTask: [[String]: [StoredEvent]] = [:]
        for event in inStoreOrder {
            let r = event.record
            bySession[SessionKey(annotator: r.annotator, slide: r.slide, task: r.task), default: []].append(r)
            bySlideTask[[r.slide, r.task], default: []].append(event)
        }
        sessions = bySession.keys.sorted().map { ($0, Activity(session: bySession[$0]!, breakSeconds: breakSeconds)) }
        var perAnnotator: [String: (Int, Activity)] = [:]
        for (key, activity) in sessions {
            let (count, sum) = perAnnotator[key.annotator] ?? (0, Activity())
            perAnnotator[key.annotator] = (count + 1, sum.merged(with: activity))
        }
        annotators = perAnnotator.keys.sorted().map { ($0, perAnnotator[$0]!.0, perAnnotator[$0]!.1) }
        accuracyOverSession = bySession.keys.sorted().flatMap { Self.accuracyParts(of: bySession[$0]!, session: $0) }
        var pairs: [PairAgreement] = []
        var groups: [GroupAgreement] = []
        for slideTask in bySlideTask.keys.sorted(by: { ($0[0], $0[1]) < ($1[0], $1[1]) }) {
            let (slide, task) = (slideTask[0], slideTask[1])
            let votes = Consensus(events: bySlideTask[slideTask]!).votes
            let raters = Set(votes.values.flatMap(\.keys)).sorted()
            for (i, first) in raters.enumerated() {
                for second in raters[(i + 1)...] {
                    let shared = votes.keys.sorted().compactMap { cell -> (String, String)? in
                        guard let a = votes[cell]![first], let b = votes[cell]![second] else { return nil }
                        return (a, b)
                    }
                    pairs.append(PairAgreement(slide: slide, task: task, first: first, second: second, agreement: CohenAgreement(pairs: shared)))
                }
            }
            guard raters.count >= 3 else { continue }
            let classes = Set(votes.values.flatMap(\.values)).sorted()
            let column = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            let counts = votes.keys.sorted().compactMap { cell -> [Int]? in
                let ballots = votes[cell]!
                guard ballots.count == raters.count else { return nil }
                var row = [Int](repeating: 0, count: classes.count)
                for className in ballots.values { row[column[className]!] += 1 }
                return row
            }
            groups.append(
                GroupAgreement(slide: slide, task: task, annotators: raters, classes: classes.count, agreement: FleissAgreement(counts: counts)))
        }
        self.pairs = pairs
        self.groups = groups
    }

    /// A session's labels (imports and undos left out) in clientSeq order, cut into `accuracyParts` parts of as
    /// equal a size as can be (part p holds positions ⌊p·n/4⌋ ..< ⌊(p+1)·n/4⌋); empty parts are left out.
    static func accuracyParts(of records: [LabelRecord], session: SessionKey) -> [AccuracyPart] {
        let labels = records.filter { $0.kind == .label && [.manual, .accepted, .corrected].contains($0.source) }.sorted {
            $0.clientSeq < $1.clientSeq
        }
        let n = labels.count
        return (0..<accuracyParts).compactMap { p in
            let range = (p * n / accuracyParts)..<((p + 1) * n / accuracyParts)
            guard !range.isEmpty else { return nil }
            let part = labels[range]
            return AccuracyPart(
                session: session, part: p + 1, firstLabel: range.lowerBound + 1, lastLabel: range.upperBound, labels: part.count,
                accepted: part.count { $0.source == .accepted }, corrected: part.count { $0.source == .corrected })
        }
    }
}
