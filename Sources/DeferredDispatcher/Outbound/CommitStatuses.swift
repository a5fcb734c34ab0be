import DeferredCore
import Foundation
import Logging

/// GitHub commit statuses for push jobs (with `[github] token_env`): `pending` when the job
/// starts waiting for a host, then `success`, `failure` or `error`, each with the job's page
/// as `target_url` and the project's `status_context`.
struct CommitStatuses: Sendable {
    let github: GitHubConfig
    let post: OutboundPost

    enum State: String { case pending, success, failure, error }

    static func state(for status: JobStatus) -> State {
        switch status {
        case .succeeded: .success
        case .failed, .timedOut: .failure
        case .cancelled, .error: .error
        default: .pending
        }
    }

    /// Posts one status; does nothing for a script job or without a token.
    func report(_ state: State, job: Job, project: ProjectConfig, targetURL: String, description: String, logger: Logger) async {
        guard let token = github.token, case .push(let push) = job.trigger else { return }
        let parts = push.repository.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return }
        let url = "\(github.apiURL)/repos/\(Self.encode(parts[0]))/\(Self.encode(parts[1]))/statuses/\(push.commit)"
        let body: [String: String] = ["state": state.rawValue, "target_url": targetURL, "context": project.statusContext,
                                      "description": String(description.prefix(140))]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        await post.send(url, body: (try? encoder.encode(body)) ?? Data(), headers: [
            (name: "Authorization", value: "Bearer \(token)"),
            (name: "Accept", value: "application/vnd.github+json"),
            (name: "X-GitHub-Api-Version", value: "2022-11-28"),
            (name: "User-Agent", value: "deferred"),
        ], what: "commit status \(state.rawValue) for \(push.repository)@\(push.commit.prefix(12))", logger: logger)
    }

    private static func encode(_ part: Substring) -> String {
        part.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._"))) ?? String(part)
    }
}
