import GRDB

/// The schema, as named migrations. Released migrations never change; new ones are appended.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs, events, deliveries, hosts") { db in
            try db.create(table: "job") { t in
                t.primaryKey("id", .text)
                t.column("token", .text).notNull().unique()
                t.column("project", .text).notNull()
                t.column("trigger", .text).notNull()
                t.column("status", .text).notNull()
                t.column("host_name", .text)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("not_before", .double).notNull()
                t.column("queued_at", .double).notNull()
                t.column("started_at", .double)
                t.column("finished_at", .double)
                t.column("delivery", .text)
            }
            try db.create(index: "job_by_status", on: "job", columns: ["status", "not_before", "queued_at"])
            try db.create(index: "job_by_host", on: "job", columns: ["host_name", "status"])
            try db.create(table: "job_event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("job_id", .text).notNull().references("job", onDelete: .cascade)
                t.column("at", .double).notNull()
                t.column("status", .text).notNull()
                t.column("detail", .text)
            }
            try db.create(index: "job_event_by_job", on: "job_event", columns: ["job_id", "id"])
            try db.create(table: "delivery") { t in
                t.primaryKey("guid", .text)
                t.column("job_id", .text).notNull().references("job", onDelete: .cascade)
                t.column("received_at", .double).notNull()
            }
            try db.create(table: "host") { t in
                t.primaryKey("name", .text)
                t.column("provider", .text).notNull()
                t.column("state", .text).notNull()
                t.column("idle_since", .double)
                t.column("last_job_id", .text)
            }
        }
        migrator.registerMigration("v2: idempotency keys of posted scripts") { db in
            try db.create(table: "idempotency_key") { t in
                t.column("project", .text).notNull()
                t.column("key", .text).notNull()
                t.column("body_sha256", .text).notNull()
                t.column("job_id", .text).notNull().references("job", onDelete: .cascade)
                t.column("created_at", .double).notNull()
                t.primaryKey(["project", "key"])
            }
        }
        migrator.registerMigration("v3: hosts made by fleets") { db in
            try db.alter(table: "host") { t in
                t.add(column: "fleet", .text)
                t.add(column: "instance_id", .text)
            }
        }
        migrator.registerMigration("v4: expired results") { db in
            try db.alter(table: "job") { t in t.add(column: "expired_at", .double) }
            try db.create(index: "job_by_finish", on: "job", columns: ["expired_at", "finished_at"])
        }
        migrator.registerMigration("v5: output chunks, host states in events") { db in
            try db.create(table: "job_output") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("job_id", .text).notNull().references("job", onDelete: .cascade)
                t.column("at", .double).notNull()
                t.column("stream", .text).notNull()
                t.column("text", .text).notNull()
            }
            try db.create(index: "job_output_by_job", on: "job_output", columns: ["job_id", "id"])
            try db.alter(table: "job_event") { t in t.add(column: "host_state", .text) }
        }
        migrator.registerMigration("v6: webhook payloads of push jobs, jobs by project") { db in
            // Kept for the job's page; deleted with the job's files at retention.
            try db.create(table: "job_payload") { t in
                t.primaryKey("job_id", .text).references("job", onDelete: .cascade)
                t.column("body", .blob).notNull()
            }
            try db.create(index: "job_by_project", on: "job", columns: ["project", "queued_at"])
        }
        migrator.registerMigration("v7: replayed bodies, starts that found a job running, results waiting for the store") { db in
            // A push replayed with a new (unsigned) delivery id is known by its signed body.
            try db.alter(table: "delivery") { t in t.add(column: "body_sha256", .text) }
            try db.create(index: "delivery_by_body", on: "delivery", columns: ["body_sha256"])
            try db.alter(table: "job") { t in t.add(column: "interrupted_starts", .integer).notNull().defaults(to: 0) }
            // A job whose results.json could not be written yet: it is not ended until it is.
            try db.create(table: "pending_result") { t in
                t.primaryKey("job_id", .text).references("job", onDelete: .cascade)
                t.column("status", .text).notNull()
                t.column("exit_status", .integer)
                t.column("signal", .text)
                t.column("error", .text)
                t.column("started_at", .double).notNull()
                t.column("finished_at", .double).notNull()
                t.column("results", .blob).notNull()
                t.column("since", .double).notNull()
            }
            try db.create(index: "job_by_project_status", on: "job", columns: ["project", "status"])
        }
        migrator.registerMigration("v8: reruns") { db in
            try db.alter(table: "job") { t in t.add(column: "rerun_of", .text) }
            try db.create(index: "job_by_rerun_of", on: "job", columns: ["rerun_of"])
        }
        migrator.registerMigration("v9: how far each job's stored output goes") { db in
            // Updated with each batch of output: a restarted server follows the job from here.
            try db.create(table: "job_output_position") { t in
                t.primaryKey("job_id", .text).references("job", onDelete: .cascade)
                t.column("stdout", .integer).notNull()
                t.column("stderr", .integer).notNull()
                t.column("cut", .boolean).notNull()
            }
        }
        migrator.registerMigration("v10: cancelling jobs") { db in
            try db.alter(table: "job") { t in
                t.add(column: "cancel_token", .text)
                t.add(column: "cancel_requested_by", .text)
            }
        }
        migrator.registerMigration("v11: fleets' boot failures") { db in
            try db.create(table: "fleet_boot_failure") { t in
                t.primaryKey("fleet", .text)
                t.column("count", .integer).notNull()
                t.column("last_reason", .text).notNull()
                t.column("last_at", .double).notNull()
            }
        }
        migrator.registerMigration("v12: a queue as fast when it is long") { db in
            // The lease's candidates in queue order straight from an index: ordering by
            // queued_at after a range on not_before sorted every queued job at each lease.
            try db.drop(index: "job_by_status")
            try db.create(index: "job_by_status_in_order", on: "job", columns: ["status", "queued_at", "id"])
            // It served the count of waiting jobs, which the triggers below keep now; one index
            // fewer to update with every job written.
            try db.drop(index: "job_by_project_status")

            // Each project's count of waiting jobs. The queue limit is checked on every intake;
            // counting the waiting rows made each delivery slower the longer the queue.
            // Triggers keep the count with every change of a job's status, whichever code makes
            // it. The statuses as stored when this was written: a migration stays as it is.
            let waiting = "('queued', 'waiting_for_host')"
            try db.execute(sql: """
                CREATE TABLE project_waiting (project TEXT PRIMARY KEY NOT NULL, jobs INTEGER NOT NULL);
                INSERT INTO project_waiting (project, jobs)
                    SELECT project, COUNT(*) FROM job WHERE status IN \(waiting) GROUP BY project;
                CREATE TRIGGER job_waiting_inserted AFTER INSERT ON job WHEN NEW.status IN \(waiting) BEGIN
                    INSERT INTO project_waiting (project, jobs) VALUES (NEW.project, 1)
                        ON CONFLICT (project) DO UPDATE SET jobs = jobs + 1;
                END;
                CREATE TRIGGER job_waiting_deleted AFTER DELETE ON job WHEN OLD.status IN \(waiting) BEGIN
                    UPDATE project_waiting SET jobs = jobs - 1 WHERE project = OLD.project;
                END;
                CREATE TRIGGER job_waiting_updated AFTER UPDATE OF status, project ON job
                    WHEN (OLD.status IN \(waiting)) != (NEW.status IN \(waiting)) OR OLD.project != NEW.project BEGIN
                    UPDATE project_waiting SET jobs = jobs - 1 WHERE project = OLD.project AND OLD.status IN \(waiting);
                    INSERT INTO project_waiting (project, jobs) SELECT NEW.project, 1 WHERE NEW.status IN \(waiting)
                        ON CONFLICT (project) DO UPDATE SET jobs = jobs + 1;
                END;
                """)
        }
        migrator.registerMigration("v13: compressed webhook payloads") { db in
            // Rows written before stay as they are (0): `StoredPayload` reads both.
            try db.alter(table: "job_payload") { t in t.add(column: "compressed", .boolean).notNull().defaults(to: false) }
        }
        return migrator
    }
}
