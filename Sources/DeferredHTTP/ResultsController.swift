import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore

/// A job's result URL and event stream. `GET /r/{token}/results.json` answers 202 with the
/// status while the job runs and 200 with the file once it ended; `GET /r/{token}/events`
/// streams its state changes as Server-Sent Events. The token is the secret: CORS answers
/// every origin unless the job's project lists its `allowed_origins`.
public struct ResultsController: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let artifacts: any ArtifactStore
    private let fileIO = FileIO()
    /// How long an event stream may be quiet before a keepalive comment.
    let heartbeatInterval: Duration
    private let formatted = FormattedEvents()
    /// The streams served below the router that wait for their job's next change.
    let caughtUp: CaughtUpListeners

    public init(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore, heartbeat: Duration = .seconds(15),
                caughtUp: CaughtUpListeners = CaughtUpListeners()) {
        self.caughtUp = caughtUp
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.heartbeatInterval = heartbeat
    }

    public static func resultURL(_ config: DeferredConfig, _ token: ResultToken) -> String {
        ResultURLs.results(config, token)
    }

    public static func eventsURL(_ config: DeferredConfig, _ token: ResultToken) -> String {
        ResultURLs.base(config, token) + "/events"
    }

    public func addRoutes(to router: Router<DeferredRequestContext>) {
        router.get("/r/{token}/results.json") { request, context in try await answer(request, context, results) }
        router.get("/r/{token}/events") { request, context in
            let last = Self.lastEventID(header: request.headers[HTTPField.Name("Last-Event-ID")!], request.uri)
            return try await answer(request, context) { job in try await events(job, lastEventID: last) }
        }
        router.get("/r/{token}/output.log") { request, context in
            try await answer(request, context) { job in try await stored(.outputLog, of: job, context: context) }
        }
        router.get("/r/{token}/artifacts/**") { request, context in
            // Each part decoded on its own: `%2F` inside a part must not pass as a separator unseen.
            let path = context.parameters.getCatchAll().map { $0.removingPercentEncoding ?? String($0) }.joined(separator: "/")
            return try await answer(request, context) { job in
                // A path that climbs or is empty names nothing.
                guard let artifact = ArtifactPath(validating: path) else {
                    throw APIError(.notFound, "'\(path)' is not an artifact path")
                }
                return try await stored(.artifact(artifact), of: job, context: context)
            }
        }
        for path in ["/r/{token}/results.json", "/r/{token}/events", "/r/{token}/output.log", "/r/{token}/artifacts/**"] {
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

    /// Past retention the files are gone for good: 410, not 404.
    private func refuseExpired(_ job: Job) throws {
        guard let expired = job.expiredAt else { return }
        throw APIError(.gone, "the job's results and artifacts were deleted on \(RFC3339.string(expired)), \(config.artifacts.retentionDays) days after it ended ([artifacts] retention_days)")
    }

    func results(_ job: Job) async throws -> Response {
        try refuseExpired(job)
        guard job.status.isFinal else {
            return JSONBody.response(.accepted, ["status": job.status.rawValue])
        }
        return try await stored(.results, of: job, context: nil)
    }

    /// A finished job's object: streamed from a local file, or a redirect to a presigned URL.
    func stored(_ object: StoredObject, of job: Job, context: DeferredRequestContext?) async throws -> Response {
        try refuseExpired(job)
        guard job.status.isFinal else {
            throw APIError(.notFound, "the job is \(job.status.rawValue); its files are there once it ends")
        }
        guard let location = try await artifacts.locate(object, token: job.token) else {
            if object == .results {
                // A job ends only once its results.json is stored: a file that cannot be read
                // now (no descriptors left, a disk being swapped) is a passing trouble.
                var error = APIError(.serviceUnavailable, "the job ended but its results.json cannot be read right now; try again shortly")
                error.headers[.retryAfter] = "5"
                throw error
            }
            throw APIError(.notFound, "the job has no \(object.key)")
        }
        switch location {
        case .redirect(let url):
            return Response(status: .found, headers: [.location: url, .cacheControl: "no-store"])
        case .file(let path, let contentType):
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
                throw APIError(.notFound, "the job has no \(object.key)")
            }
            var headers: HTTPFields = [.contentType: contentType, .contentLength: String(size)]
            if object == .results { headers[.cacheControl] = "no-store" }
            guard let context, size > 0 else {
                // results.json is small: read whole; an empty file has no body to stream.
                let data = size > 0 ? (FileManager.default.contents(atPath: path) ?? Data()) : Data()
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
            }
            return Response(status: .ok, headers: headers, body: try await fileIO.loadFile(path: path, context: context))
        }
    }

    /// The job's feed as Server-Sent Events (see `EventStream`): a listener that sends
    /// `Last-Event-ID`, or `?last_event_id=`, gets only what it missed.
    func events(_ job: Job, lastEventID: String?) async throws -> Response {
        let stream = eventStream(job, lastEventID: lastEventID)
        return Response(status: .ok, headers: EventStream.headers, body: ResponseBody { writer in
            try await stream.run { try await writer.write($0) }
            try await writer.finish(nil)
        })
    }

    private func eventStream(_ job: Job, lastEventID: String?) -> EventStream {
        EventStream(job: job.id, token: job.token, status: job.status, start: lastEventID.flatMap(FeedCursor.init) ?? FeedCursor(),
                    store: store, artifacts: artifacts,
                    heartbeat: heartbeatInterval, formatted: formatted, resultURL: Self.resultURL(config, job.token))
    }

    /// EventSource sends Last-Event-ID when it reconnects; a page may pass it in the query.
    private static func lastEventID(header: String?, _ uri: URI) -> String? {
        header ?? uri.queryParameters.get("last_event_id")
    }

    /// For connections served below the router (`EventStreamChannel`): the stream a GET of
    /// `target` opens and the headers of its answer, when it is a job's event stream that the
    /// job's origin rule lets the page read. nil for everything else, which the router answers
    /// as ever, its errors included.
    func openEventStream(target: String, origin: String?, lastEventID: String?) async -> (headers: HTTPFields, stream: EventStream)? {
        let uri = URI(target)
        let parts = uri.path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, parts[1] == "r", parts[3] == "events",
              let token = ResultToken(validating: String(parts[2])),
              let job = (try? await store.job(token: token)) ?? nil else { return nil }
        let policy = policy(for: job)
        guard policy.permits(origin) else { return nil }
        var headers = EventStream.headers
        headers.append(contentsOf: policy.headers(for: origin))
        return (headers, eventStream(job, lastEventID: Self.lastEventID(header: lastEventID, uri)))
    }
}
