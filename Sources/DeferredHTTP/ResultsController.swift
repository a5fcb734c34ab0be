import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A job's result URL and event stream. `GET /r/{token}/results.json` answers 202 with the
/// status while the job runs and 200 with the file once it ended; `GET /r/{token}/events`
/// streams its state changes as Server-Sent Events. The token is the secret: CORS answers
/// every origin unless the job's project lists its `allowed_origins`.
public struct ResultsController: Sendable {
    let config: DeferredConfig
    let store: JobStore
    let artifacts: FileArtifactStore
    /// How often the event stream looks for new state changes.
    var eventPollInterval: Duration = .milliseconds(250)

    public init(config: DeferredConfig, store: JobStore, artifacts: FileArtifactStore) {
        self.config = config
        self.store = store
        self.artifacts = artifacts
    }

    public static func resultURL(_ config: DeferredConfig, _ token: ResultToken) -> String {
        "\(config.server.publicURL)/r/\(token.rawValue)/results.json"
    }

    public static func eventsURL(_ config: DeferredConfig, _ token: ResultToken) -> String {
        "\(config.server.publicURL)/r/\(token.rawValue)/events"
    }

    public func addRoutes(to router: Router<DeferredRequestContext>) {
        router.get("/r/{token}/results.json") { request, context in try await answer(request, context, results) }
        router.get("/r/{token}/events") { request, context in try await answer(request, context, events) }
        for path in ["/r/{token}/results.json", "/r/{token}/events"] {
            router.on(RouterPath(path), method: .options) { request, context in try await preflight(request, context) }
        }
    }

    /// Finds the job, applies its project's origin rule, and adds the CORS headers to the
    /// answer, errors included.
    private func answer(_ request: Request, _ context: DeferredRequestContext,
                        _ body: (Job) async throws -> Response) async throws -> Response {
        let origin = request.headers[.origin]
        var policy = OriginPolicy(allowed: [], openWhenUnconfigured: true)
        do {
            let job = try await job(context)
            policy = self.policy(for: job)
            guard policy.permits(origin) else {
                throw APIError(.forbidden, "pages from \(origin ?? "") may not read this job's results; its project's allowed_origins does not list them")
            }
            var response = try await body(job)
            response.headers.append(contentsOf: policy.headers(for: origin))
            return response
        } catch var error as APIError {
            error.headers.append(contentsOf: policy.headers(for: origin))
            throw error
        }
    }

    private func preflight(_ request: Request, _ context: DeferredRequestContext) async throws -> Response {
        let origin = request.headers[.origin]
        let policy = (try? await job(context)).map(policy(for:)) ?? OriginPolicy(allowed: [], openWhenUnconfigured: true)
        guard policy.permits(origin) else { throw APIError(.forbidden, "pages from \(origin ?? "") may not read this job's results") }
        return Response(status: .noContent, headers: policy.preflightHeaders(
            for: origin, methods: "GET, HEAD, OPTIONS", requestHeaders: "Accept, Content-Type, Last-Event-ID"))
    }

    private func job(_ context: DeferredRequestContext) async throws -> Job {
        guard let text = context.parameters.get("token"), let token = ResultToken(validating: text),
              let job = try await store.job(token: token) else {
            throw APIError(.notFound, "no job has this result URL")
        }
        return job
    }

    private func policy(for job: Job) -> OriginPolicy {
        OriginPolicy(allowed: config.project(named: job.project)?.allowedOrigins ?? [], openWhenUnconfigured: true)
    }

    func results(_ job: Job) async throws -> Response {
        guard job.status.isFinal else {
            return JSONBody.response(.accepted, ["status": job.status.rawValue])
        }
        guard let data = artifacts.results(token: job.token) else {
            throw APIError(.internalServerError, "the job ended but its results.json is missing from the artifact store")
        }
        return JSONBody.raw(.ok, data)
    }

    /// Each state change as `event: status` with `{"status","at","detail"}`; the stream ends
    /// after the final state. (Output lines join this stream in a later version.)
    func events(_ job: Job) async throws -> Response {
        let store = self.store, interval = eventPollInterval
        let body = ResponseBody { writer in
            var seen: Int64 = 0
            while true {
                let events = try await store.events(of: job.id, after: seen)
                for event in events {
                    seen = event.sequence
                    try await writer.write(ByteBuffer(string: Self.serverSentEvent(event)))
                }
                if events.contains(where: { $0.status.isFinal }) { break }
                try await Task.sleep(for: interval)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    static func serverSentEvent(_ event: JobEvent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let at = event.at.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
        let payload = ["status": event.status.rawValue, "at": at, "detail": event.detail ?? ""]
        let data = (try? encoder.encode(payload)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "id: \(event.sequence)\nevent: status\ndata: \(data)\n\n"
    }
}
