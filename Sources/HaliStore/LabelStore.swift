import Foundation
public import HaliCore
import Synchronization

/// The label store: SQLite in WAL mode with `synchronous = FULL`, so a committed event is on disk (fsync'd) when
/// `append` returns, and the daemon acknowledges a label only after that.
///
/// Writes go through one writer thread that commits everything pending in one transaction (group commit): under
/// load many sessions share one fsync instead of queueing for one each. Reads use a second connection; WAL lets
/// them run beside the writer.
///
/// Schema versions are kept in `PRAGMA user_version` and applied in order by `migrations`; opening a store written
/// by a newer HALI is refused.
public final class LabelStore: @unchecked Sendable {
    public let path: String
    private let reader: SQLiteConnection
    private let readLock = NSLock()
    private let core: WriterCore

    /// Schema migrations; index i takes the store from version i to i + 1.
    static let migrations: [String] = [
        // 1: the event log.
        """
        CREATE TABLE label_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            annotator TEXT NOT NULL,
            slide TEXT NOT NULL,
            task TEXT NOT NULL,
            cell_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('label', 'undo')),
            class TEXT,
            source TEXT NOT NULL,
            model_version INTEGER NOT NULL DEFAULT 0,
            client_seq INTEGER NOT NULL,
            client_time_ms INTEGER NOT NULL,
            server_time_ms INTEGER NOT NULL,
            previous_class TEXT,
            UNIQUE (annotator, slide, task, client_seq)
        );
        CREATE INDEX label_events_by_cell ON label_events (slide, task, cell_id);
        """,
        // 2: where each session was, so a client resumes at its last patch.
        """
        CREATE TABLE sessions (
            annotator TEXT NOT NULL,
            slide TEXT NOT NULL,
            task TEXT NOT NULL,
            region_x INTEGER, region_y INTEGER, region_width INTEGER, region_height INTEGER,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (annotator, slide, task)
        );
        """,
    ]

    public static var schemaVersion: Int { migrations.count }

    /// Opens (creating if needed) and migrates the store at `path`.
    public convenience init(path: String) throws { try self.init(path: path, migrateTo: Self.migrations.count) }

    /// Opens the store migrated only up to `version` (for migration tests).
    init(path: String, migrateTo version: Int) throws {
        self.path = path
        let writer = try SQLiteConnection(path: path)
        try writer.execute("PRAGMA journal_mode = WAL")
        try writer.execute("PRAGMA synchronous = FULL")
        try writer.execute("PRAGMA foreign_keys = ON")
        // Checkpoints copy the WAL into the database file and fsync it; done inside a commit they stall every label
        // waiting on that commit. A separate connection checkpoints in the background instead (see `checkpointLoop`).
        try writer.execute("PRAGMA wal_autocheckpoint = 0")
        let current = try writer.userVersion()
        guard current <= Self.migrations.count else {
            throw StoreError(
                path: path, message: "store has schema version \(current); this HALI knows up to \(Self.migrations.count): upgrade HALI")
        }
        if current < version {
            for v in current..<version {
                try writer.execute("BEGIN IMMEDIATE")
                do {
                    try writer.execute(Self.migrations[v])
                    try writer.execute("PRAGMA user_version = \(v + 1)")
                    try writer.execute("COMMIT")
                } catch {
                    try? writer.execute("ROLLBACK")
                    throw StoreError(path: path, message: "migration to schema version \(v + 1) failed: \(error)")
                }
            }
        }
        reader = try SQLiteConnection(path: path)
        core = WriterCore(path: path, writer: writer, checkpointer: try SQLiteConnection(path: path))
    }

    deinit { close() }

    public func schemaVersionOnDisk() throws -> Int {
        readLock.lock()
        defer { readLock.unlock() }
        return try reader.userVersion()
    }

    /// Transactions committed so far (each may hold many events).
    public var commitCount: UInt64 { core.commits.withLock { $0 } }

    /// Stores one event durably. Returns once it is committed and fsync'd; a resend of a stored client_seq returns
    /// the original event with `duplicate = true`.
    public func append(_ record: LabelRecord) async throws -> StoredEvent {
        try await withCheckedThrowingContinuation { continuation in
            if core.enqueue(WriterCore.Pending(record: record, continuation: continuation)) {
                // Queued; the writer thread resumes the continuation after the commit.
            } else {
                continuation.resume(throwing: StoreError(path: path, message: "the label store is closed"))
            }
        }
    }

    /// Flushes pending writes and stops the writer. Appends after this fail.
    public func close() { core.close() }

    // MARK: Reading

    /// Every event of one session, in the order they were stored.
    public func events(annotator: String, slide: String, task: String) throws -> [StoredEvent] {
        try query(
            "WHERE annotator = ?1 AND slide = ?2 AND task = ?3 ORDER BY id", [.text(annotator), .text(slide), .text(task)])
    }

    /// Every event on a slide for a task, all annotators (for consensus and agreement).
    public func events(slide: String, task: String) throws -> [StoredEvent] {
        try query("WHERE slide = ?1 AND task = ?2 ORDER BY id", [.text(slide), .text(task)])
    }

    /// The committed event a session stored under `clientSeq`, if any (to tell a resend from a reused number).
    public func event(annotator: String, slide: String, task: String, clientSeq: UInt64) throws -> StoredEvent? {
        try query(
            "WHERE annotator = ?1 AND slide = ?2 AND task = ?3 AND client_seq = ?4",
            [.text(annotator), .text(slide), .text(task), .int(Int64(bitPattern: clientSeq))]
        ).first
    }

    public func eventCount() throws -> Int {
        readLock.lock()
        defer { readLock.unlock() }
        let statement = try reader.prepare("SELECT count(*) FROM label_events")
        try statement.bind([])
        return try statement.step() ? Int(statement.int(0)) : 0
    }

    private func query(_ clause: String, _ values: [SQLiteConnection.Statement.Value]) throws -> [StoredEvent] {
        readLock.lock()
        defer { readLock.unlock() }
        return try Self.readEvents(reader, path: path, clause: clause, values)
    }

    /// The stored events `clause` selects, decoded; one home for the row layout, used by the store and `auditTrail`.
    static func readEvents(
        _ connection: SQLiteConnection, path: String, clause: String, _ values: [SQLiteConnection.Statement.Value]
    ) throws -> [StoredEvent] {
        let statement = try connection.prepare(
            """
            SELECT id, annotator, slide, task, cell_id, kind, class, source, model_version, client_seq, client_time_ms,
                   server_time_ms, previous_class FROM label_events \(clause)
            """)
        try statement.bind(values)
        var out: [StoredEvent] = []
        while try statement.step() {
            let id = statement.int(0)
            guard let sourceText = statement.text(7), let source = LabelRecord.Source(rawValue: sourceText) else {
                throw StoreError(
                    path: path,
                    message: "event \(id) has the source \"\(statement.text(7) ?? "")\", which this HALI does not know (written by a newer version?)")
            }
            let record = LabelRecord(
                annotator: statement.text(1) ?? "", slide: statement.text(2) ?? "", task: statement.text(3) ?? "",
                cellID: UInt64(bitPattern: statement.int(4)), kind: LabelRecord.Kind(rawValue: statement.text(5) ?? "") ?? .label,
                className: statement.text(6), source: source, modelVersion: UInt32(truncatingIfNeeded: statement.int(8)),
                clientSeq: UInt64(bitPattern: statement.int(9)), clientTimeMs: statement.int(10), serverTimeMs: statement.int(11),
                previousClass: statement.text(12))
            out.append(StoredEvent(eventID: id, record: record, duplicate: false))
        }
        return out
    }

    /// Every stored event, optionally only one annotator's, slide's or task's, in store order, read through a
    /// read-only connection: for reports over a store that a running daemon may be writing, and that must never be
    /// created or migrated by reading it. A missing file, a file that is not SQLite, or an SQLite file without
    /// HALI's schema is refused with a message that says which.
    public static func auditTrail(path: String, annotator: String? = nil, slide: String? = nil, task: String? = nil) throws -> [StoredEvent] {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError(path: path, message: "no such file (no label store here)") }
        let connection = try SQLiteConnection(path: path, readOnly: true)
        let version: Int
        let hasEvents: Bool
        do {
            version = try connection.userVersion()
            let table = try connection.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'label_events'")
            try table.bind([])
            hasEvents = try table.step() && table.int(0) == 1
        } catch {
            throw StoreError(path: path, message: "not a HALI label store (not an SQLite database: \((error as? StoreError)?.message ?? "\(error)"))")
        }
        guard version >= 1, hasEvents else { throw StoreError(path: path, message: "not a HALI label store (no label_events table)") }
        guard version <= migrations.count else {
            throw StoreError(path: path, message: "store has schema version \(version); this HALI knows up to \(migrations.count): upgrade HALI")
        }
        var conditions: [String] = []
        var values: [SQLiteConnection.Statement.Value] = []
        for (column, value) in [("annotator", annotator), ("slide", slide), ("task", task)] {
            guard let value else { continue }
            values.append(.text(value))
            conditions.append("\(column) = ?\(values.count)")
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ") + " "
        return try readEvents(connection, path: path, clause: filter + "ORDER BY id", values)
    }

    /// Remembers where a session was (its last patch).
    public func saveSessionRegion(
        annotator: String, slide: String, task: String, region: (x: Int64, y: Int64, width: Int64, height: Int64), timeMs: Int64
    ) throws {
        readLock.lock()
        defer { readLock.unlock() }
        // Position is a convenience, not an acknowledged label: the read connection's autocommit is enough.
        let statement = try reader.prepare(
            """
            INSERT INTO sessions (annotator, slide, task, region_x, region_y, region_width, region_height, updated_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            ON CONFLICT (annotator, slide, task) DO UPDATE SET region_x = ?4, region_y = ?5, region_width = ?6,
                region_height = ?7, updated_ms = ?8
            """)
        try statement.run([
            .text(annotator), .text(slide), .text(task), .int(region.x), .int(region.y), .int(region.width), .int(region.height), .int(timeMs),
        ])
    }

    public func sessionRegion(annotator: String, slide: String, task: String) throws -> (x: Int64, y: Int64, width: Int64, height: Int64)? {
        readLock.lock()
        defer { readLock.unlock() }
        let statement = try reader.prepare(
            "SELECT region_x, region_y, region_width, region_height FROM sessions WHERE annotator = ?1 AND slide = ?2 AND task = ?3")
        try statement.bind([.text(annotator), .text(slide), .text(task)])
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return (statement.int(0), statement.int(1), statement.int(2), statement.int(3))
    }
}

/// The writer and checkpoint threads and everything they touch. Owned by `LabelStore`, and referenced strongly by
/// its threads until `close()` ends them, so no thread ever reaches into a store that is being deinitialised.
final class WriterCore: @unchecked Sendable {
    struct Pending {
        var record: LabelRecord
        var continuation: CheckedContinuation<StoredEvent, any Error>
    }

    struct WriterQueue {
        var pending: [Pending] = []
        var closed = false
    }

    let path: String
    let writer: SQLiteConnection
    let checkpointer: SQLiteConnection
    let queue = Mutex(WriterQueue())
    let wakeUp = NSCondition()
    let commits = Mutex<UInt64>(0)
    private var thread: Thread?
    private var checkpointThread: Thread?

    init(path: String, writer: SQLiteConnection, checkpointer: SQLiteConnection) {
        self.path = path
        self.writer = writer
        self.checkpointer = checkpointer
        let thread = Thread { self.writerLoop() }
        thread.name = "hali-label-store"
        self.thread = thread
        let checkpoints = Thread { self.checkpointLoop() }
        checkpoints.name = "hali-label-store-checkpoint"
        self.checkpointThread = checkpoints
        thread.start()
        checkpoints.start()
    }

    /// False when the store is closed.
    func enqueue(_ pending: Pending) -> Bool {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            queue.pending.append(pending)
            return true
        }
        if accepted {
            wakeUp.lock()
            wakeUp.signal()
            wakeUp.unlock()
        }
        return accepted
    }

    func close() {
        let alreadyClosed = queue.withLock { queue -> Bool in
            defer { queue.closed = true }
            return queue.closed
        }
        guard !alreadyClosed else { return }
        wakeUp.lock()
        wakeUp.signal()
        wakeUp.unlock()
        while let thread, !thread.isFinished { usleep(1_000) }
        while let checkpointThread, !checkpointThread.isFinished { usleep(1_000) }
        try? checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Every second, copies committed WAL frames into the database (PASSIVE: never waits for the writer), so the WAL
    /// stays small without any commit paying for it.
    func checkpointLoop() {
        while !queue.withLock({ $0.closed }) {
            for _ in 0..<10 where !queue.withLock({ $0.closed }) { usleep(100_000) }
            try? checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        }
    }

    func writerLoop() {
        while true {
            wakeUp.lock()
            var batch: [Pending] = []
            var closed = false
            while true {
                (batch, closed) = queue.withLock { queue in
                    defer { queue.pending = [] }
                    return (queue.pending, queue.closed)
                }
                if !batch.isEmpty || closed { break }
                wakeUp.wait()
            }
            wakeUp.unlock()
            if !batch.isEmpty { commit(batch) }
            if closed && batch.isEmpty { return }
        }
    }

    func commit(_ batch: [Pending]) {
        do {
            let results = try writeTransaction(batch.map(\.record))
            commits.withLock { $0 += 1 }
            for (pending, result) in zip(batch, results) { pending.continuation.resume(returning: result) }
        } catch {
            // One bad event must not fail the others: retry them one transaction each.
            for pending in batch {
                do {
                    let result = try writeTransaction([pending.record])
                    commits.withLock { $0 += 1 }
                    pending.continuation.resume(returning: result[0])
                } catch {
                    pending.continuation.resume(throwing: error)
                }
            }
        }
    }

    func writeTransaction(_ records: [LabelRecord]) throws -> [StoredEvent] {
        try writer.execute("BEGIN IMMEDIATE")
        do {
            let insert = try writer.prepare(
                """
                INSERT OR IGNORE INTO label_events
                (annotator, slide, task, cell_id, kind, class, source, model_version, client_seq, client_time_ms, server_time_ms, previous_class)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                """)
            let existing = try writer.prepare(
                "SELECT id, cell_id, kind, class FROM label_events WHERE annotator = ?1 AND slide = ?2 AND task = ?3 AND client_seq = ?4")
            var results: [StoredEvent] = []
            for r in records {
                try insert.run([
                    .text(r.annotator), .text(r.slide), .text(r.task), .int(Int64(bitPattern: r.cellID)), .text(r.kind.rawValue),
                    r.className.map { .text($0) } ?? .null, .text(r.source.rawValue), .int(Int64(r.modelVersion)),
                    .int(Int64(bitPattern: r.clientSeq)), .int(r.clientTimeMs), .int(r.serverTimeMs),
                    r.previousClass.map { .text($0) } ?? .null,
                ])
                if writer.changes == 1 {
                    results.append(StoredEvent(eventID: writer.lastInsertRowID, record: r, duplicate: false))
                } else {
                    try existing.bind([.text(r.annotator), .text(r.slide), .text(r.task), .int(Int64(bitPattern: r.clientSeq))])
                    guard try existing.step() else { throw writer.error("event vanished") }
                    // A resend is the same event again; the same number for a different event must not be acked.
                    guard UInt64(bitPattern: existing.int(1)) == r.cellID, existing.text(2) == r.kind.rawValue, existing.text(3) == r.className else {
                        throw StoreError(
                            path: path,
                            message:
                                "client_seq \(r.clientSeq) of \(r.annotator)/\(r.slide)/\(r.task) is already used by a different event (cell \(existing.int(1)))",
                            kind: .clientSeqConflict)
                    }
                    results.append(StoredEvent(eventID: existing.int(0), record: r, duplicate: true))
                }
            }
            try writer.execute("COMMIT")
            return results
        } catch {
            try? writer.execute("ROLLBACK")
            throw error
        }
    }

}
