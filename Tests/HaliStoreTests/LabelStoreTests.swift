import Foundation
import HaliCore
@testable import HaliStore
import Testing

func temporaryStorePath() -> String {
    NSTemporaryDirectory() + "hali-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
}

func record(_ seq: UInt64, cell: UInt64, _ className: String?, kind: LabelRecord.Kind = .label, previous: String? = nil, annotator: String = "alice")
    -> LabelRecord
{
    LabelRecord(
        annotator: annotator, slide: "s1", task: "ki67", cellID: cell, kind: kind, className: className,
        source: kind == .undo ? .undo : .manual, modelVersion: 0, clientSeq: seq, clientTimeMs: 1_000 + Int64(seq),
        serverTimeMs: 2_000 + Int64(seq), previousClass: previous)
}

@Suite struct LabelStoreTests {
    @Test func appendReplayAndUndo() async throws {
        let path = temporaryStorePath()
        let store = try LabelStore(path: path)
        let a = try await store.append(record(1, cell: 10, "positive"))
        let b = try await store.append(record(2, cell: 11, "negative"))
        _ = try await store.append(record(3, cell: 10, "negative", previous: "positive"))
        _ = try await store.append(record(4, cell: 10, nil, kind: .undo, previous: "positive"))
        #expect(a.eventID < b.eventID && !a.duplicate)
        let state = LabelState(replaying: try store.events(annotator: "alice", slide: "s1", task: "ki67"))
        #expect(state.classOfCell == [10: "positive", 11: "negative"])
        #expect(state.lastClientSeq == 4)
        #expect(state.eventCount == 4)
        store.close()

        // Everything is there after reopening: the events were committed before append returned.
        let reopened = try LabelStore(path: path)
        let events = try reopened.events(annotator: "alice", slide: "s1", task: "ki67")
        #expect(
            events.map(\.record) == [
                record(1, cell: 10, "positive"), record(2, cell: 11, "negative"), record(3, cell: 10, "negative", previous: "positive"),
                record(4, cell: 10, nil, kind: .undo, previous: "positive"),
            ])
    }

    @Test func resentClientSeqIsStoredOnce() async throws {
        let store = try LabelStore(path: temporaryStorePath())
        let first = try await store.append(record(7, cell: 1, "positive"))
        let again = try await store.append(record(7, cell: 1, "positive"))
        #expect(again.duplicate)
        #expect(again.eventID == first.eventID)
        #expect(try store.eventCount() == 1)
        // The same number for a different event is refused, never acknowledged as a resend.
        await #expect(throws: StoreError.self) { try await store.append(record(7, cell: 2, "negative")) }
        #expect(try store.eventCount() == 1)
        // Same seq from another annotator is a different event.
        let other = try await store.append(record(7, cell: 1, "positive", annotator: "bob"))
        #expect(!other.duplicate)
        #expect(try store.eventCount() == 2)
    }

    @Test func concurrentAppendsShareCommits() async throws {
        let store = try LabelStore(path: temporaryStorePath())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for annotator in 0..<20 {
                group.addTask {
                    for seq in 1...10 {
                        _ = try await store.append(record(UInt64(seq), cell: UInt64(seq), "positive", annotator: "a\(annotator)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.eventCount() == 200)
        #expect(store.commitCount <= 200)
        for annotator in 0..<20 {
            #expect(try store.events(annotator: "a\(annotator)", slide: "s1", task: "ki67").map(\.record.clientSeq) == Array(1...10))
        }
    }

    @Test func migratesAnOlderStoreKeepingItsEvents() async throws {
        let path = temporaryStorePath()
        let v1 = try LabelStore(path: path, migrateTo: 1)
        #expect(try v1.schemaVersionOnDisk() == 1)
        _ = try await v1.append(record(1, cell: 5, "negative"))
        v1.close()

        let current = try LabelStore(path: path)
        #expect(try current.schemaVersionOnDisk() == LabelStore.schemaVersion)
        #expect(try current.events(annotator: "alice", slide: "s1", task: "ki67").count == 1)
        try current.saveSessionRegion(annotator: "alice", slide: "s1", task: "ki67", region: (1, 2, 3, 4), timeMs: 9)
        let region = try #require(try current.sessionRegion(annotator: "alice", slide: "s1", task: "ki67"))
        #expect(region == (1, 2, 3, 4))
    }

    @Test func refusesAStoreFromANewerHALI() throws {
        let path = temporaryStorePath()
        do {
            let connection = try SQLiteConnection(path: path)
            try connection.execute("PRAGMA user_version = 99")
        }
        #expect { try LabelStore(path: path) } throws: { ($0 as? StoreError)?.message.contains("schema version 99") == true }
    }

    @Test func aSourceThisHALIDoesNotKnowIsRefusedWhenRead() async throws {
        let path = temporaryStorePath()
        do {
            let store = try LabelStore(path: path)
            defer { store.close() }
            _ = try await store.append(record(1, cell: 3, "positive"))
            #expect(try store.events(annotator: "alice", slide: "s1", task: "ki67").map(\.record.source) == [.manual])
        }
        do {
            let connection = try SQLiteConnection(path: path)
            try connection.execute("UPDATE label_events SET source = 'telepathy'")
        }
        let store = try LabelStore(path: path)
        defer { store.close() }
        #expect { try store.events(annotator: "alice", slide: "s1", task: "ki67") } throws: {
            ($0 as? StoreError)?.message.contains("source \"telepathy\"") == true
        }
    }

    @Test func notADatabaseIsAClearError() throws {
        let path = temporaryStorePath()
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect(throws: StoreError.self) { try LabelStore(path: path) }
    }
}
