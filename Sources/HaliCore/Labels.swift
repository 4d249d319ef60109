// Labels as the domain knows them: one event of the audit trail, how it came about, and what a session's or all
// annotators' events amount to. The store persists them; the engine, exports and imports reason with them.

/// One label event as stored: the full audit trail of who labelled what, when, from which suggestion.
public struct LabelRecord: Sendable, Equatable {
    public enum Kind: String, Sendable { case label, undo }

    /// How a stored label event came about: the annotator's own `LabelOrigin` for a label, or an undo.
    public enum Source: String, Sendable, Equatable, CaseIterable {
        case manual, accepted, corrected, imported, undo

        public init(_ origin: LabelOrigin) {
            switch origin {
            case .manual: self = .manual
            case .accepted: self = .accepted
            case .corrected: self = .corrected
            case .imported: self = .imported
            }
        }
    }

    public var annotator: String
    public var slide: String
    public var task: String
    public var cellID: UInt64
    public var kind: Kind
    /// The class given (nil for an undo).
    public var className: String?
    /// How the event came about (stored as its raw value).
    public var source: Source
    /// The model whose suggestion was on screen (0 = none).
    public var modelVersion: UInt32
    /// The client's sequence number; (annotator, slide, task, clientSeq) is unique, so a resent event is stored once.
    public var clientSeq: UInt64
    public var clientTimeMs: Int64
    public var serverTimeMs: Int64
    /// The cell's class before this event (nil = unlabelled): what an undo restores.
    public var previousClass: String?

    public init(
        annotator: String, slide: String, task: String, cellID: UInt64, kind: Kind, className: String?, source: Source,
        modelVersion: UInt32, clientSeq: UInt64, clientTimeMs: Int64, serverTimeMs: Int64, previousClass: String?
    ) {
        self.annotator = annotator
        self.slide = slide
        self.task = task
        self.cellID = cellID
        self.kind = kind
        self.className = className
        self.source = source
        self.modelVersion = modelVersion
        self.clientSeq = clientSeq
        self.clientTimeMs = clientTimeMs
        self.serverTimeMs = serverTimeMs
        self.previousClass = previousClass
    }
}

public struct StoredEvent: Sendable, Equatable {
    public var eventID: Int64
    public var record: LabelRecord
    /// True when this client_seq was already stored (a resend): nothing new was written.
    public var duplicate: Bool

    public init(eventID: Int64, record: LabelRecord, duplicate: Bool) {
        self.eventID = eventID
        self.record = record
        self.duplicate = duplicate
    }
}

/// Majority over annotators: each annotator's labels in force, then per cell the class most of them gave; a tie for
/// first place leaves the cell out. `votes` keeps every annotator's class per cell (for per-person exports).
public struct Consensus: Sendable, Equatable {
    public var classOfCell: [UInt64: String]
    public var votes: [UInt64: [String: String]]

    /// - Parameter events: one slide and task, any annotators, in store order.
    public init(events: [StoredEvent]) {
        var byAnnotator: [String: [StoredEvent]] = [:]
        for event in events { byAnnotator[event.record.annotator, default: []].append(event) }
        var votes: [UInt64: [String: String]] = [:]
        for (annotator, own) in byAnnotator {
            for (cell, className) in LabelState(replaying: own).classOfCell { votes[cell, default: [:]][annotator] = className }
        }
        var classOfCell: [UInt64: String] = [:]
        for (cell, ballots) in votes {
            var counts: [String: Int] = [:]
            for className in ballots.values { counts[className, default: 0] += 1 }
            let best = counts.values.max() ?? 0
            let winners = counts.filter { $0.value == best }
            if winners.count == 1 { classOfCell[cell] = winners.first!.key }
        }
        self.classOfCell = classOfCell
        self.votes = votes
    }
}

/// The labels in force after replaying a session's events: label sets the class, undo restores the previous one.
public struct LabelState: Sendable, Equatable {
    public private(set) var classOfCell: [UInt64: String] = [:]
    public private(set) var lastClientSeq: UInt64 = 0
    public private(set) var eventCount = 0

    public init() {}

    public init(replaying events: [StoredEvent]) {
        self.init()
        for event in events { apply(event.record) }
    }

    public mutating func apply(_ record: LabelRecord) {
        switch record.kind {
        case .label: classOfCell[record.cellID] = record.className
        case .undo: classOfCell[record.cellID] = record.previousClass
        }
        lastClientSeq = max(lastClientSeq, record.clientSeq)
        eventCount += 1
    }
}
