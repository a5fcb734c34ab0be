import DeferredCore
import Foundation
import GRDB
import Logging
import PostgresNIO

/// `deferred store copy`: a SQLite store's rows into an empty PostgreSQL database, table by
/// table, with their ids (so cursors, result URLs and event sequences stay as they were), in
/// one PostgreSQL transaction: a copy that fails half way leaves the database empty. Rows go
/// a batch at a time, so memory stays bounded however large the file.
public enum StoreCopy {
    /// A column as both schemas keep it.
    enum Kind { case text, integer, real, blob, boolean }

    /// Every table, parents before children, with its columns.
    static let tables: [(name: String, columns: [(String, Kind)])] = [
        ("host", [("name", .text), ("provider", .text), ("state", .text), ("idle_since", .real), ("last_job_id", .text),
                  ("fleet", .text), ("instance_id", .text)]),
        ("job", [("id", .text), ("token", .text), ("project", .text), ("trigger", .text), ("status", .text), ("host_name", .text),
                 ("attempts", .integer), ("not_before", .real), ("queued_at", .real), ("started_at", .real), ("finished_at", .real),
                 ("delivery", .text), ("expired_at", .real), ("interrupted_starts", .integer), ("rerun_of", .text),
                 ("cancel_token", .text), ("cancel_requested_by", .text)]),
        ("job_event", [("id", .integer), ("job_id", .text), ("at", .real), ("status", .text), ("detail", .text), ("host_state", .text)]),
        ("delivery", [("guid", .text), ("job_id", .text), ("received_at", .real), ("body_sha256", .text)]),
        ("idempotency_key", [("project", .text), ("key", .text), ("body_sha256", .text), ("job_id", .text), ("created_at", .real)]),
        ("job_output", [("id", .integer), ("job_id", .text), ("at", .real), ("stream", .text), ("text", .text)]),
        ("job_payload", [("job_id", .text), ("body", .blob), ("compressed", .boolean)]),
        ("pending_result", [("job_id", .text), ("status", .text), ("exit_status", .integer), ("signal", .text), ("error", .text),
                            ("started_at", .real), ("finished_at", .real), ("results", .blob), ("since", .real)]),
        ("job_output_position", [("job_id", .text), ("stdout", .integer), ("stderr", .integer), ("cut", .boolean)]),
        ("fleet_boot_failure", [("fleet", .text), ("count", .integer), ("last_reason", .text), ("last_at", .real)]),
    ]

    /// Rows a batch: 500 rows of at most 17 columns stay well under PostgreSQL's 65,535 binds.
    static let batchRows = 500

    /// Copies every row of the SQLite file at `sqlitePath` into the database `postgres` names,
    /// which must hold no job yet; returns the rows copied by table. The SQLite file is only
    /// read (a server may not use it meanwhile: the copy takes its one-server lock).
    public static func copy(from sqlitePath: String, to postgres: PostgresSettings,
                            logger: Logger = Logger(label: "deferred.store.copy")) async throws(StoreError) -> [(table: String, rows: Int)] {
        guard FileManager.default.fileExists(atPath: sqlitePath) else {
            throw .cannotOpen(path: sqlitePath, reason: "there is no such file")
        }
        // Brings the file's schema up to date and keeps a server off it while it is read.
        let source = try SQLiteJobStore(path: sqlitePath, serving: true)
        // Makes the tables (and checks the connection) as a server's start would.
        let target = try await PostgresJobStore(settings: postgres, logger: logger)
        // A big file's copy may take long: its one transaction is not held to a store request's bounds.
        let counts = try await target.transaction(deadline: PostgresJobStore.Deadline(start: .seconds(60), total: .seconds(24 * 3600))) { c -> [(table: String, rows: Int)] in
            guard try await PostgresJobStore.value(c, "SELECT count(*) FROM job", as: Int.self) == 0,
                  try await PostgresJobStore.value(c, "SELECT count(*) FROM host", as: Int.self) == 0 else {
                throw StoreError.database("\(postgres) already holds jobs or hosts: copy into an empty database")
            }
            var counts: [(table: String, rows: Int)] = []
            for table in tables {
                var copied = 0, offset = 0
                while true {
                    let from = offset
                    let rows = try await source.read { db in
                        try Row.fetchAll(db, sql: "SELECT \(table.columns.map(\.0).joined(separator: ", ")) FROM \(table.name) "
                                            + "ORDER BY rowid LIMIT ? OFFSET ?", arguments: [batchRows, from])
                            .map { row in (0..<row.count).map { row[$0] as DatabaseValue } }
                    }
                    guard !rows.isEmpty else { break }
                    try await c.sql(try insert(into: table.name, columns: table.columns, rows: rows))
                    copied += rows.count
                    offset += rows.count
                }
                counts.append((table.name, copied))
            }
            // Each project's waiting jobs, counted once; from now on kept by intake and the trigger.
            try await c.sql("""
                INSERT INTO project_waiting (project, jobs)
                SELECT project, count(*) FROM job WHERE status IN ('queued', 'waiting_for_host') GROUP BY project
                ON CONFLICT (project) DO UPDATE SET jobs = excluded.jobs
                """)
            // New events and output continue after the copied ids.
            for table in ["job_event", "job_output"] {
                try await c.sql(PostgresQuery(unsafeSQL: """
                    SELECT setval(pg_get_serial_sequence('\(table)', 'id'), GREATEST((SELECT max(id) FROM \(table)), 0) + 1, false)
                    """))
            }
            return counts
        }
        return counts
    }

    /// One multi-row INSERT with every value bound, typed as the target column is.
    static func insert(into table: String, columns: [(String, Kind)], rows: [[DatabaseValue]]) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: rows.count * columns.count)
        var tuples: [String] = []
        for row in rows {
            var placeholders: [String] = []
            for (value, column) in zip(row, columns) {
                placeholders.append("$\(binds.count + 1)")
                if value.isNull { binds.appendNull(); continue }
                switch column.1 {
                case .text: binds.append(String.fromDatabaseValue(value) ?? "")
                case .integer: binds.append(Int.fromDatabaseValue(value) ?? 0)
                case .real: binds.append(Double.fromDatabaseValue(value) ?? 0)
                case .blob: try binds.append(Data.fromDatabaseValue(value) ?? Data())
                case .boolean: binds.append(Bool.fromDatabaseValue(value) ?? false)
                }
            }
            tuples.append("(" + placeholders.joined(separator: ", ") + ")")
        }
        let names = columns.map(\.0).joined(separator: ", ")
        return PostgresQuery(unsafeSQL: "INSERT INTO \(table) (\(names)) VALUES " + tuples.joined(separator: ", "), binds: binds)
    }
}
