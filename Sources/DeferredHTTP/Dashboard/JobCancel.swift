import Crypto
import DeferredCore
import DeferredStore
import Foundation
import Hummingbird

extension DashboardController {
    /// `POST /jobs/{id}/cancel`: with the admin token (or the job page's form), or with a posted
    /// script's own cancel token (`?token=`, from the `cancel_url` only its poster got), never
    /// with the result token, which is shared with browsers. A queued or waiting job ends
    /// `cancelled` without running; a running one has its process group killed (SIGTERM, then
    /// SIGKILL after the grace) and ends `cancelled` with its output and artifacts so far.
    /// The dispatcher acts on it; this answers 202 at once.
    func cancel(_ request: Request, _ context: DeferredRequestContext, json: Bool = false) async throws -> Response {
        let id = JobID(rawValue: context.parameters.get("id") ?? "")
        let by: String
        if let presented = request.uri.queryParameters.get("token") {
            guard let job = try await store.job(id: id) else { throw Self.unknownJob(id) }
            // Compared as digests: equal or not, the time taken says nothing about the token.
            guard let token = job.cancelToken, SHA256.hash(data: Data(token.utf8)) == SHA256.hash(data: Data(presented.utf8)) else {
                throw APIError(.forbidden, "the token is not job \(id.rawValue)'s cancel token (a result URL's token cannot cancel)")
            }
            by = "poster"
        } else {
            let auth = try admit(request, json: json)
            try await checkForm(request, auth: auth)
            by = "admin"
        }
        guard let job = try await store.requestCancel(id, by: by) else { throw Self.unknownJob(id) }
        guard !job.status.isFinal else {
            throw APIError(.conflict, "job \(id.rawValue) has already ended (\(job.status.rawValue)): there is nothing to cancel")
        }
        onCancel(id)
        if !json, Self.wantsHTML(request) { return Response(status: .seeOther, headers: [.location: "/jobs/\(id.rawValue)"]) }
        return JSONBody.response(.accepted, [
            "id": id.rawValue, "status": job.status.rawValue, "cancel_requested_by": job.cancelRequestedBy ?? by,
            "result_url": ResultsController.resultURL(config, job.token),
        ])
    }

    static func unknownJob(_ id: JobID) -> APIError {
        APIError(.notFound, "no job has the id '\(id.rawValue)'")
    }
}
