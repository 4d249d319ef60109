import CSQLite

#if canImport(Glibc)
import Glibc
#endif

public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The store could not do what was asked (I/O, SQLite, a closed store).
        case failed
        /// A session's client_seq is already stored for a different event: the client's mistake, not the store's.
        case clientSeqConflict
    }
    public var path: String
    public var message: String
    public var kind: Kind
    public var description: String { "\(path): \(message)" }
    public init(path: String, message: String, kind: Kind = .failed) {
        self.path = path
        self.message = message
        self.kind = kind
    }
}

/// SQLite's "copy the bytes now" destructor, a macro that Swift cannot import.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The one owner of a `sqlite3` connection (closed in `deinit`). Not thread-safe: `LabelStore` confines each
/// connection to one thread. Every call's result code is checked; failures carry `sqlite3_errmsg`.
public final class SQLiteConnection {
    let path: String
    private let db: OpaquePointer

    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        var handle: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close_v2(handle) }
            throw StoreError(path: path, message: "sqlite open: \(message)")
        }
        db = handle
        sqlite3_busy_timeout(db, 5_000)
    }

    deinit { sqlite3_close_v2(db) }

    func error(_ what: String) -> StoreError {
        StoreError(path: path, message: "\(what): \(String(cString: sqlite3_errmsg(db)))")
    }

    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &message) != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(message)
            throw StoreError(path: path, message: "\(text) (in: \(sql.prefix(80)))")
        }
    }

    public func prepare(_ sql: String) throws -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw error("prepare \(sql.prefix(60))")
        }
        return Statement(connection: self, handle: statement)
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }
    public var changes: Int { Int(sqlite3_changes(db)) }

    /// `PRAGMA user_version`: the schema version a file's writer recorded.
    public func userVersion() throws -> Int {
        let statement = try prepare("PRAGMA user_version")
        try statement.bind([])
        return try statement.step() ? Int(statement.int(0)) : 0
    }

    /// A prepared statement, finalised in `deinit`.
    public final class Statement {
        private unowned let connection: SQLiteConnection
        private let handle: OpaquePointer

        init(connection: SQLiteConnection, handle: OpaquePointer) {
            self.connection = connection
            self.handle = handle
        }

        deinit { sqlite3_finalize(handle) }

        public enum Value {
            case int(Int64)
            case double(Double)
            case text(String)
            case null
        }

        /// Binds `values` to ?1, ?2, … after resetting.
        public func bind(_ values: [Value]) throws {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            for (i, value) in values.enumerated() {
                let index = Int32(i + 1)
                let rc: Int32
                switch value {
                case .int(let v): rc = sqlite3_bind_int64(handle, index, v)
                case .double(let v): rc = sqlite3_bind_double(handle, index, v)
                case .text(let v): rc = sqlite3_bind_text(handle, index, v, -1, transient)
                case .null: rc = sqlite3_bind_null(handle, index)
                }
                guard rc == SQLITE_OK else { throw connection.error("bind ?\(index)") }
            }
        }

        /// Steps once: true when a row is available, false when done.
        public func step() throws -> Bool {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default: throw connection.error("step")
            }
        }

        /// Runs to completion, for statements without result rows.
        public func run(_ values: [Value]) throws {
            try bind(values)
            while try step() {}
        }

        public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
        public func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
        public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
        public func text(_ column: Int32) -> String? {
            guard let pointer = sqlite3_column_text(handle, column) else { return nil }
            return String(cString: pointer)
        }
    }
}
