import DeferredCore
import Foundation
import GRDB

/// Rows as stored, in SQLite (through GRDB) and PostgreSQL alike. Times are seconds since 1970
/// so SQL can compare them.
struct JobRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "job"
    var id: String
    var token: String
    var project: String
    var trigger: String
    var status: String
    var hostName: String?
    var attempts: Int
    var notBefore: Double
    var queuedAt: Double
    var startedAt: Double?
    var finishedAt: Double?
    var delivery: String?
    var expiredAt: Double?
    /// Server starts that found this job holding a lease (the crash-loop guard counts them).
    var interruptedStarts = 0
    var rerunOf: String?
    var cancelToken: String?
    var cancelRequestedBy: String?

    enum CodingKeys: String, CodingKey {
        case id, token, project, trigger, status, attempts, delivery
        case rerunOf = "rerun_of", cancelToken = "cancel_token", cancelRequestedBy = "cancel_requested_by"
        case hostName = "host_name", notBefore = "not_before", queuedAt = "queued_at"
        case startedAt = "started_at", finishedAt = "finished_at", expiredAt = "expired_at"
        case interruptedStarts = "interrupted_starts"
    }
}

// Outside the struct: the memberwise initializer stays, for rows read from PostgreSQL.
extension JobRecord {
    /// A new job's row, made before the store's writer is taken, not while it is held.
    init(_ job: Job, delivery: String?) throws(StoreError) {
        id = job.id.rawValue
        token = job.token.rawValue
        project = job.project
        do {
            trigger = try Self.storedText(of: job.trigger)
        } catch {
            throw .database("job \(job.id) cannot be stored: \(error)")
        }
        status = job.status.rawValue
        hostName = job.hostName
        attempts = job.attempts
        notBefore = job.notBefore.timeIntervalSince1970
        queuedAt = job.queuedAt.timeIntervalSince1970
        startedAt = job.startedAt?.timeIntervalSince1970
        finishedAt = job.finishedAt?.timeIntervalSince1970
        expiredAt = job.expiredAt?.timeIntervalSince1970
        self.delivery = delivery
        rerunOf = job.rerunOf?.rawValue
        cancelToken = job.cancelToken
        cancelRequestedBy = job.cancelRequestedBy
    }

    /// Shared (both are safe to use from several threads): one made for every job written or
    /// read cost more than the small trigger they code.
    private static let triggerEncoder = JSONEncoder()
    private static let triggerDecoder = JSONDecoder()

    /// The trigger's JSON as JSONEncoder writes it; a push's, which every webhook's job has,
    /// written without the encoder's generic walk (the same fields: StoredTriggerTests).
    static func storedText(of trigger: Trigger) throws -> String {
        guard case .push(let push) = trigger else { return String(decoding: try triggerEncoder.encode(trigger), as: UTF8.self) }
        var object = FlatJSONObject()
        for (key, value) in [("kind", "push"), ("repository", push.repository), ("ref", push.ref), ("commit", push.commit),
                             ("delivery", push.delivery), ("pusher", push.pusher), ("clone_url", push.cloneURL)] {
            object.add(key, value)
        }
        return String(decoding: object.text, as: UTF8.self)
    }

    func job() throws -> Job {
        guard let status = JobStatus(rawValue: status) else {
            throw StoreError.corrupt("job \(id) has unknown status '\(status)'")
        }
        return Job(
            id: JobID(rawValue: id), token: ResultToken(rawValue: token), project: project,
            trigger: try Self.triggerDecoder.decode(Trigger.self, from: Data(trigger.utf8)),
            status: status, hostName: hostName, attempts: attempts,
            queuedAt: Date(timeIntervalSince1970: queuedAt), notBefore: Date(timeIntervalSince1970: notBefore),
            startedAt: startedAt.map(Date.init(timeIntervalSince1970:)),
            finishedAt: finishedAt.map(Date.init(timeIntervalSince1970:)),
            expiredAt: expiredAt.map(Date.init(timeIntervalSince1970:)),
            rerunOf: rerunOf.map(JobID.init(rawValue:)), cancelToken: cancelToken, cancelRequestedBy: cancelRequestedBy
        )
    }
}

struct JobEventRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "job_event"
    var id: Int64?
    var jobID: String
    var at: Double
    var status: String
    var detail: String?
    var hostState: String? = nil

    enum CodingKeys: String, CodingKey {
        case id, at, status, detail
        case jobID = "job_id", hostState = "host_state"
    }
}

struct DeliveryRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "delivery"
    var guid: String
    var jobID: String
    var receivedAt: Double
    /// SHA-256 of the signed body: the same push under another delivery id is the same job.
    var bodySHA256: String?

    enum CodingKeys: String, CodingKey {
        case guid
        case jobID = "job_id", receivedAt = "received_at", bodySHA256 = "body_sha256"
    }
}

struct IdempotencyRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "idempotency_key"
    var project: String
    var key: String
    var bodySHA256: String
    var jobID: String
    var createdAt: Double

    enum CodingKeys: String, CodingKey {
        case project, key
        case bodySHA256 = "body_sha256", jobID = "job_id", createdAt = "created_at"
    }
}

struct HostRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "host"
    var name: String
    var provider: String
    var state: String
    var idleSince: Double?
    var lastJobID: String?
    /// Set for a host a fleet made; its instance id once launched.
    var fleet: String? = nil
    var instanceID: String? = nil

    enum CodingKeys: String, CodingKey {
        case name, provider, state, fleet
        case idleSince = "idle_since", lastJobID = "last_job_id", instanceID = "instance_id"
    }
}

struct JobOutputRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "job_output"
    var id: Int64?
    var jobID: String
    var at: Double
    var stream: String
    var text: String

    enum CodingKeys: String, CodingKey {
        case id, at, stream, text
        case jobID = "job_id"
    }
}

/// The webhook payload a push job came from, as `StoredPayload` keeps it.
struct JobPayloadRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "job_payload"
    var jobID: String
    var body: Data
    var compressed: Bool

    init(jobID: String, _ stored: StoredPayload) {
        self.jobID = jobID
        body = stored.body
        compressed = stored.compressed
    }

    var stored: StoredPayload { StoredPayload(body: body, compressed: compressed) }

    enum CodingKeys: String, CodingKey {
        case body, compressed
        case jobID = "job_id"
    }
}

/// A job's end that waits for its results.json to be stored (a full disk, a store that is
/// down): the job is recorded as ended only once the file is there.
struct PendingResultRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "pending_result"
    var jobID: String
    var status: String
    var exitStatus: Int?
    var signal: String?
    var error: String?
    var startedAt: Double
    var finishedAt: Double
    var results: Data
    var since: Double

    enum CodingKeys: String, CodingKey {
        case status, signal, error, results, since
        case jobID = "job_id", exitStatus = "exit_status", startedAt = "started_at", finishedAt = "finished_at"
    }

    /// The outcome as far as the store needs it; the rest is in `results`.
    func outcome() throws -> JobOutcome {
        guard let status = JobStatus(rawValue: status) else { throw StoreError.corrupt("pending result of \(jobID) has status '\(status)'") }
        return JobOutcome(status: status, exitStatus: exitStatus, signal: signal, error: error,
                          startedAt: Date(timeIntervalSince1970: startedAt), finishedAt: Date(timeIntervalSince1970: finishedAt))
    }
}

// Outside the struct, as for JobRecord: the memberwise initializer stays.
extension PendingResultRecord {
    init(_ id: JobID, outcome: JobOutcome, results: Data, since: Date) {
        jobID = id.rawValue
        status = outcome.status.rawValue
        exitStatus = outcome.exitStatus
        signal = outcome.signal
        error = StoredText.kept(outcome.error)
        startedAt = outcome.startedAt.timeIntervalSince1970
        finishedAt = outcome.finishedAt.timeIntervalSince1970
        self.results = results
        self.since = since.timeIntervalSince1970
    }
}
