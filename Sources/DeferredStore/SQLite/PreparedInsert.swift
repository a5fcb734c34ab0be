import GRDB
import GRDBSQLite

/// A row the intake writes for every job, inserted by a statement each connection prepares
/// once, its values given in column order. GRDB's `insert` of a Codable record encodes it
/// through a dictionary and asks SQLite for the row back: in the intake bench that cost more
/// than SQLite's own work on the row.
protocol PreparedInsert {
    /// The table's columns this insert sets, in the order of `insertValues`.
    static var insertColumns: [String] { get }
    static var databaseTableName: String { get }
    /// `insertSQL`, kept by each type in a constant so that it is not built for every row.
    static var preparedSQL: String { get }
    var insertValues: [(any DatabaseValueConvertible)?] { get }
}

extension PreparedInsert {
    static var insertSQL: String {
        "INSERT INTO \(databaseTableName) (\(insertColumns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: insertColumns.count).joined(separator: ", ")))"
    }

    /// Binds the values to SQLite's statement itself and steps it once: the one place beside
    /// GRDB that calls SQLite's C API. GRDB's arguments (`StatementArguments`, which read the
    /// statement's parameter names again at each binding) cost 4–13 µs more a delivery in
    /// `deferred-bench store-intake`. GRDB does not see the statement run: an error of it that
    /// ends the transaction is seen at GRDB's next statement, the intake's savepoint release or
    /// rollback (`GroupCommitTests`), or ends its `write` as it is thrown.
    func insertPrepared(_ db: Database) throws {
        let statement = try db.cachedStatement(sql: Self.preparedSQL)
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        for (offset, value) in insertValues.enumerated() {
            let index = Int32(offset + 1)
            // Bound as GRDB binds each storage class; SQLite copies text and blobs (transient).
            let code = switch value?.databaseValue.storage ?? .null {
            case .null: sqlite3_bind_null(handle, index)
            case .int64(let number): sqlite3_bind_int64(handle, index, number)
            case .double(let number): sqlite3_bind_double(handle, index, number)
            case .string(let text): text.withCString { sqlite3_bind_text(handle, index, $0, -1, transientBinding) }
            case .blob(let bytes) where bytes.isEmpty: sqlite3_bind_zeroblob(handle, index, 0)
            case .blob(let bytes): bytes.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), transientBinding) }
            }
            guard code == SQLITE_OK else { throw Self.failure(code, db) }
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw Self.failure(code, db) }
    }

    private static func failure(_ code: Int32, _ db: Database) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: preparedSQL)
    }
}

/// SQLite's `SQLITE_TRANSIENT`, a macro Swift does not import: the value is copied at binding.
private let transientBinding = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

extension JobRecord: PreparedInsert {
    static let insertColumns = ["id", "token", "project", "trigger", "status", "host_name", "attempts", "not_before", "queued_at",
                                "started_at", "finished_at", "delivery", "expired_at", "interrupted_starts", "rerun_of",
                                "cancel_token", "cancel_requested_by"]
    static let preparedSQL = insertSQL

    var insertValues: [(any DatabaseValueConvertible)?] {
        [id, token, project, trigger, status, hostName, attempts, notBefore, queuedAt, startedAt, finishedAt, delivery, expiredAt,
         interruptedStarts, rerunOf, cancelToken, cancelRequestedBy]
    }
}

extension JobEventRecord: PreparedInsert {
    // The id is the table's own, given by SQLite (here and for output).
    static let insertColumns = ["job_id", "at", "status", "detail", "host_state"]
    static let preparedSQL = insertSQL

    var insertValues: [(any DatabaseValueConvertible)?] { [jobID, at, status, detail, hostState] }
}

extension JobPayloadRecord: PreparedInsert {
    static let insertColumns = ["job_id", "body", "compressed"]
    static let preparedSQL = insertSQL

    var insertValues: [(any DatabaseValueConvertible)?] { [jobID, body, compressed] }
}

extension DeliveryRecord: PreparedInsert {
    static let insertColumns = ["guid", "job_id", "received_at", "body_sha256"]
    static let preparedSQL = insertSQL

    var insertValues: [(any DatabaseValueConvertible)?] { [guid, jobID, receivedAt, bodySHA256] }
}

extension JobOutputRecord: PreparedInsert {
    static let insertColumns = ["job_id", "at", "stream", "text"]
    static let preparedSQL = insertSQL

    var insertValues: [(any DatabaseValueConvertible)?] { [jobID, at, stream, text] }
}
