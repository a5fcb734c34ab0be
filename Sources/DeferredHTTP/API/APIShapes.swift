import DeferredCore
import DeferredStore
import Foundation

/// A job as the JSON API shows it (`/api/jobs`, `/api/jobs/{id}`): what it is, where it stands
/// and its URLs. Times are RFC 3339; a field without a value is left out. Its schema is
/// `Job` in openapi.json.
struct APIJob: Encodable, Sendable {
    struct Push: Encodable, Sendable {
        let repository: String, ref: String, commit: String, delivery: String, pusher: String
    }

    struct Script: Encodable, Sendable {
        let signer: String, interpreter: String, sha256: String
    }

    let id: String
    let project: String
    let status: String
    let trigger: String
    let push: Push?
    let script: Script?
    let host: String?
    let attempts: Int
    let queuedAt: String
    let startedAt: String?
    let finishedAt: String?
    let expiredAt: String?
    let rerunOf: String?
    let cancelRequestedBy: String?
    let resultURL: String
    let eventsURL: String

    enum CodingKeys: String, CodingKey {
        case id, project, status, trigger, push, script, host, attempts
        case queuedAt = "queued_at", startedAt = "started_at", finishedAt = "finished_at", expiredAt = "expired_at"
        case rerunOf = "rerun_of", cancelRequestedBy = "cancel_requested_by", resultURL = "result_url", eventsURL = "events_url"
    }

    init(_ job: Job, config: DeferredConfig) {
        id = job.id.rawValue
        project = job.project
        status = job.status.rawValue
        switch job.trigger {
        case .push(let push):
            trigger = "push"
            self.push = Push(repository: push.repository, ref: push.ref, commit: push.commit, delivery: push.delivery, pusher: push.pusher)
            script = nil
        case .script(let script):
            trigger = "script"
            push = nil
            self.script = Script(signer: script.signer, interpreter: script.interpreter.name, sha256: script.sha256)
        }
        host = job.hostName
        attempts = job.attempts
        queuedAt = RFC3339.string(job.queuedAt)
        startedAt = job.startedAt.map(RFC3339.string)
        finishedAt = job.finishedAt.map(RFC3339.string)
        expiredAt = job.expiredAt.map(RFC3339.string)
        rerunOf = job.rerunOf?.rawValue
        cancelRequestedBy = job.cancelRequestedBy
        resultURL = ResultURLs.results(config, job.token)
        eventsURL = ResultURLs.base(config, job.token) + "/events"
    }
}

/// One page of `/api/jobs`: `next_cursor` is there when more jobs follow.
struct APIJobPage: Encodable, Sendable {
    let jobs: [APIJob]
    let nextCursor: String?

    enum CodingKeys: String, CodingKey { case jobs, nextCursor = "next_cursor" }
}

/// `/api/jobs/{id}`: the job, its state changes in order, and its results.json once stored.
struct APIJobDetail: Encodable, Sendable {
    struct Event: Encodable, Sendable {
        let sequence: Int64, at: String, status: String, detail: String?, hostState: String?
        enum CodingKeys: String, CodingKey { case sequence, at, status, detail, hostState = "host_state" }
    }

    let job: APIJob
    let events: [Event]
    let results: JSONValue?

    enum CodingKeys: String, CodingKey { case job, events, results }
}
