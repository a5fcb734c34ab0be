import Logging
import PostgresNIO

/// The PostgreSQL schema, as numbered migrations. Released migrations never change; new ones
/// are appended. All of them run in one transaction under an advisory lock: servers starting
/// together migrate once, and a migration that fails leaves nothing half done.
///
/// The tables and columns are SQLite's (`Schema`), times as seconds since 1970 in double
/// precision, so one set of rows (`Records.swift`) serves both.
enum PostgresSchema {
    static let migrations: [(version: Int, name: String, sql: [String])] = [
        (1, "jobs, events, deliveries, hosts, keys, output, payloads, pending results, fleets", [
            """
            CREATE TABLE job (
                id TEXT PRIMARY KEY,
                token TEXT NOT NULL UNIQUE,
                project TEXT NOT NULL,
                trigger TEXT NOT NULL,
                status TEXT NOT NULL,
                host_name TEXT,
                attempts BIGINT NOT NULL DEFAULT 0,
                not_before DOUBLE PRECISION NOT NULL,
                queued_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                finished_at DOUBLE PRECISION,
                delivery TEXT,
                expired_at DOUBLE PRECISION,
                interrupted_starts BIGINT NOT NULL DEFAULT 0,
                rerun_of TEXT,
                cancel_token TEXT,
                cancel_requested_by TEXT
            )
            """,
            // The lease's candidates in queue order; the queue limit's count; a host's jobs.
            "CREATE INDEX job_by_status_in_order ON job (status, queued_at, id)",
            "CREATE INDEX job_by_project_status ON job (project, status)",
            "CREATE INDEX job_by_host ON job (host_name, status)",
            "CREATE INDEX job_by_project ON job (project, queued_at)",
            "CREATE INDEX job_by_finish ON job (expired_at, finished_at)",
            "CREATE INDEX job_by_rerun_of ON job (rerun_of)",
            """
            CREATE TABLE job_event (
                id BIGSERIAL PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                detail TEXT,
                host_state TEXT
            )
            """,
            "CREATE INDEX job_event_by_job ON job_event (job_id, id)",
            // A push replayed under a new delivery id is known by its signed body: unique, so
            // two servers given the same replay at once store one job.
            """
            CREATE TABLE delivery (
                guid TEXT PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                received_at DOUBLE PRECISION NOT NULL,
                body_sha256 TEXT
            )
            """,
            "CREATE UNIQUE INDEX delivery_by_body ON delivery (body_sha256) WHERE body_sha256 IS NOT NULL",
            """
            CREATE TABLE host (
                name TEXT PRIMARY KEY,
                provider TEXT NOT NULL,
                state TEXT NOT NULL,
                idle_since DOUBLE PRECISION,
                last_job_id TEXT,
                fleet TEXT,
                instance_id TEXT
            )
            """,
            "CREATE INDEX host_by_fleet ON host (fleet, name)",
            """
            CREATE TABLE idempotency_key (
                project TEXT NOT NULL,
                key TEXT NOT NULL,
                body_sha256 TEXT NOT NULL,
                job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (project, key)
            )
            """,
            """
            CREATE TABLE job_output (
                id BIGSERIAL PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                at DOUBLE PRECISION NOT NULL,
                stream TEXT NOT NULL,
                text TEXT NOT NULL
            )
            """,
            "CREATE INDEX job_output_by_job ON job_output (job_id, id)",
            """
            CREATE TABLE job_payload (
                job_id TEXT PRIMARY KEY REFERENCES job(id) ON DELETE CASCADE,
                body BYTEA NOT NULL
            )
            """,
            """
            CREATE TABLE pending_result (
                job_id TEXT PRIMARY KEY REFERENCES job(id) ON DELETE CASCADE,
                status TEXT NOT NULL,
                exit_status BIGINT,
                signal TEXT,
                error TEXT,
                started_at DOUBLE PRECISION NOT NULL,
                finished_at DOUBLE PRECISION NOT NULL,
                results BYTEA NOT NULL,
                since DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE job_output_position (
                job_id TEXT PRIMARY KEY REFERENCES job(id) ON DELETE CASCADE,
                stdout BIGINT NOT NULL,
                stderr BIGINT NOT NULL,
                cut BOOLEAN NOT NULL
            )
            """,
            """
            CREATE TABLE fleet_boot_failure (
                fleet TEXT PRIMARY KEY,
                count BIGINT NOT NULL,
                last_reason TEXT NOT NULL,
                last_at DOUBLE PRECISION NOT NULL
            )
            """,
        ]),
        (2, "servers sharing the database, the server that leased each job", [
            // Heartbeats in the database's clock; a job's server is the one following it.
            """
            CREATE TABLE server (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                heartbeat_at DOUBLE PRECISION NOT NULL
            )
            """,
            "ALTER TABLE job ADD COLUMN server_id TEXT",
            "CREATE INDEX job_by_server ON job (server_id)",
        ]),
        (3, "the housekeeper's turn", [
            // One row: which server does the shared chores, and until when (the database's clock).
            "CREATE TABLE housekeeper (name TEXT PRIMARY KEY, server_id TEXT NOT NULL, until DOUBLE PRECISION NOT NULL)",
        ]),
        (4, "each project's count of waiting jobs, kept by a trigger", [
            // The queue limit is checked on every delivery: counting the waiting rows made each
            // one slower the longer the queue. The statuses as stored when this was written.
            // New jobs are counted by intake itself, last thing before its commit (the count's
            // row is then held the shortest time); every other change by the trigger.
            "CREATE TABLE project_waiting (project TEXT PRIMARY KEY, jobs BIGINT NOT NULL)",
            """
            INSERT INTO project_waiting (project, jobs)
            SELECT project, count(*) FROM job WHERE status IN ('queued', 'waiting_for_host') GROUP BY project
            """,
            """
            CREATE FUNCTION deferred_job_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    RETURN NULL;
                END IF;
                IF TG_OP = 'UPDATE' AND OLD.project = NEW.project
                    AND (OLD.status IN ('queued', 'waiting_for_host')) = (NEW.status IN ('queued', 'waiting_for_host')) THEN
                    RETURN NULL;
                END IF;
                IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('queued', 'waiting_for_host') THEN
                    UPDATE project_waiting SET jobs = jobs - 1 WHERE project = OLD.project;
                END IF;
                IF TG_OP = 'UPDATE' AND NEW.status IN ('queued', 'waiting_for_host') THEN
                    INSERT INTO project_waiting (project, jobs) VALUES (NEW.project, 1)
                    ON CONFLICT (project) DO UPDATE SET jobs = project_waiting.jobs + 1;
                END IF;
                RETURN NULL;
            END $$
            """,
            """
            CREATE TRIGGER job_waiting AFTER INSERT OR DELETE OR UPDATE OF status, project ON job
            FOR EACH ROW EXECUTE FUNCTION deferred_job_waiting()
            """,
        ]),
        // SQLite's v13. A copied SQLite file brings its compressed payloads as they are.
        (5, "compressed webhook payloads", ["ALTER TABLE job_payload ADD COLUMN compressed BOOLEAN NOT NULL DEFAULT false"]),
    ]

    /// Any number, the same in every server: the advisory lock migrations run under.
    static let migrationLock: Int64 = 0x6465_6665_7272_6564 // "deferred"

    /// The newest schema this deferred knows.
    static var newestKnown: Int { migrations.last?.version ?? 0 }

    /// A database a newer deferred has migrated: this one must not write to it.
    static func tooNew(_ found: Int) -> StoreError {
        .corrupt("the database's schema is version \(found), newer than this deferred knows (\(newestKnown)); run the newer deferred")
    }

    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS deferred_migration (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            var applied: Set<Int> = []
            for try await version in try await connection.query("SELECT version FROM deferred_migration", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > newestKnown { throw tooNew(newest) }
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO deferred_migration (version, name) VALUES (\(migration.version), \(migration.name))",
                                           logger: logger)
                logger.info("store: migrated the PostgreSQL schema to v\(migration.version): \(migration.name)")
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }
}
