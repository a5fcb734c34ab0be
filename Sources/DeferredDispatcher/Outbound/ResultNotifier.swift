import DeferredCore
import Foundation
import Logging

/// A project's `notify_url`: when a job ends, its results.json is POSTed there, signed the way
/// GitHub signs its hooks: `X-Deferred-Signature-256: sha256=<HMAC-SHA256 of the body>` with
/// the project's `notify_secret_env`.
struct ResultNotifier: Sendable {
    let post: OutboundPost

    func notify(_ results: Data, job: Job, project: ProjectConfig, logger: Logger) async {
        guard let url = project.notifyURL, let secret = project.notifySecret else { return }
        await post.send(url, body: results, headers: [
            (name: "X-Deferred-Signature-256", value: WebhookSignature.sign(body: results, secret: secret)),
            (name: "X-Deferred-Event", value: "job.finished"),
            (name: "X-Deferred-Delivery", value: job.id.rawValue),
            (name: "User-Agent", value: "deferred"),
        ], what: "notify_url \(url) for job \(job.id)", logger: logger)
    }
}
