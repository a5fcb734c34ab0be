import DeferredCore
import DeferredStore
import Hummingbird

extension DashboardController {
    /// `POST /jobs/{id}/rerun`, with the admin token: a new job with the ended job's trigger
    /// (the same commit, or the same signed script), linked to it by `rerun_of`. A form from the
    /// job page goes on to the new job's page; anything else gets 202 and the new job's URLs.
    func rerun(_ request: Request, _ context: DeferredRequestContext, json: Bool = false) async throws -> Response {
        let auth = try admit(request, json: json)
        try await checkForm(request, auth: auth)
        let id = JobID(rawValue: context.parameters.get("id") ?? "")
        guard let job = try await store.job(id: id) else { throw Self.unknownJob(id) }
        guard job.status.isFinal else {
            throw APIError(.conflict, "job \(id.rawValue) is \(job.status.rawValue): a job runs again once it has ended")
        }
        guard let project = config.project(named: job.project) else {
            throw APIError(.conflict, "project '\(job.project)' is no longer in deferred.toml, so its job cannot run again")
        }
        let again = Job(project: job.project, trigger: job.trigger, rerunOf: job.id)
        let queued: Job
        switch job.trigger {
        case .push:
            // No delivery id: a rerun is a new job, not a redelivery to be deduplicated.
            switch try await store.enqueue(again, delivery: nil, payload: nil, bodySHA256: nil, maxQueued: project.maxQueued,
                                           detail: "a rerun of job \(job.id.rawValue)") {
            case .created(let created), .duplicate(let created): queued = created
            case .queueFull(let count): throw Self.queueFull(project.name, count)
            }
        case .script:
            switch try await store.enqueueScript(again, idempotency: nil, maxQueued: project.maxQueued) {
            case .created(let created), .replayed(let created), .conflict(let created): queued = created
            case .queueFull(let count): throw Self.queueFull(project.name, count)
            }
        }
        onQueued()
        if !json, Self.wantsHTML(request) { return Response(status: .seeOther, headers: [.location: "/jobs/\(queued.id.rawValue)"]) }
        return JSONBody.response(.accepted, [
            "id": queued.id.rawValue, "rerun_of": job.id.rawValue, "status": queued.status.rawValue,
            "result_url": ResultsController.resultURL(config, queued.token),
        ])
    }

    private static func queueFull(_ project: String, _ count: Int) -> APIError {
        var error = APIError(.serviceUnavailable, "project \(project) already has \(count) jobs waiting (max_queued); try again later")
        error.headers[.retryAfter] = "30"
        return error
    }
}
