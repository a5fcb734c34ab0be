import GRDB

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

    func insertPrepared(_ db: Database) throws {
        let statement = try db.cachedStatement(sql: Self.preparedSQL)
        statement.setUncheckedArguments(StatementArguments(insertValues))
        try statement.execute()
    }
}

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
