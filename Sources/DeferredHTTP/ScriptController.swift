import Crypto
import DeferredCore
import DeferredSignatures
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird

/// `POST /projects/{project}/scripts`: takes a signed script, checks who signed it, and
/// queues it. Every refusal is answered before anything is stored.
public struct ScriptController: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let limiter: RateLimiter
    let onQueued: @Sendable () -> Void

    static let allowedRequestHeaders = "Content-Type, Idempotency-Key"

    public init(config: DeferredConfig, store: any JobStore, limiter: RateLimiter, onQueued: @escaping @Sendable () -> Void) {
        self.config = config
        self.store = store
        self.limiter = limiter
        self.onQueued = onQueued
    }

    public func addRoutes(to router: Router<DeferredRequestContext>) {
        router.post("/projects/{project}/scripts") { request, context in try await receive(request, context: context) }
        router.on("/projects/{project}/scripts", method: .options) { request, context in try preflight(request, context: context) }
    }

    struct Queued: Encodable {
        var id: String
        var status: String
        var result_url: String
        var events_url: String
        /// Only the poster gets it: `POST` to it cancels the job (the result URL cannot).
        var cancel_url: String?
    }

    func receive(_ request: Request, context: DeferredRequestContext) async throws -> Response {
        let log = IntakeLog(context.logger, kind: "script", project: context.parameters.get("project"),
                            idempotencyKey: request.headers[.idempotencyKey])
        return try await log.deciding { try await decide(request, context: context, log: log) }
    }

    private func decide(_ request: Request, context: DeferredRequestContext, log: IntakeLog) async throws -> Response {
        let project = try project(context)
        let origin = request.headers[.origin]
        let policy = OriginPolicy(allowed: project.allowedOrigins, openWhenUnconfigured: false)
        guard policy.permits(origin) else {
            throw APIError(.forbidden, "pages from \(origin ?? "") may not post scripts to project '\(project.name)'; add the origin to its allowed_origins")
        }
        do {
            var response = try await accept(request, context: context, project: project, log: log)
            response.headers.append(contentsOf: policy.headers(for: origin))
            return response
        } catch var error as APIError {
            // The page that posted must be able to read why it was refused.
            error.headers.append(contentsOf: policy.headers(for: origin))
            throw error
        }
    }

    func preflight(_ request: Request, context: DeferredRequestContext) throws -> Response {
        let project = try project(context)
        let origin = request.headers[.origin]
        let policy = OriginPolicy(allowed: project.allowedOrigins, openWhenUnconfigured: false)
        guard policy.permits(origin) else {
            throw APIError(.forbidden, "pages from \(origin ?? "") may not post scripts to project '\(project.name)'; add the origin to its allowed_origins")
        }
        return Response(status: .noContent, headers: policy.preflightHeaders(
            for: origin, methods: "POST, OPTIONS", requestHeaders: Self.allowedRequestHeaders))
    }

    private func project(_ context: DeferredRequestContext) throws -> ProjectConfig {
        guard let name = context.parameters.get("project"), let project = config.project(named: name) else {
            throw APIError(.notFound, "no project is named '\(context.parameters.get("project") ?? "")'")
        }
        return project
    }

    /// The checks in order of cost: rate, form, size, signature; then the store's own checks.
    private func accept(_ request: Request, context: DeferredRequestContext, project: ProjectConfig, log: IntakeLog) async throws -> Response {
        let client = context.remoteAddress?.ipAddress ?? "unknown"
        if let wait = await limiter.take(for: client) {
            var error = APIError(.tooManyRequests, "too many scripts from \(client); try again later")
            error.headers[.retryAfter] = String(max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0)))
            throw error
        }
        guard RequestBody.mediaType(of: request)?.isType(.applicationJson) == true else {
            throw APIError(.unsupportedMediaType, "post the script as application/json: {\"script\", \"signature\", \"interpreter\"?}")
        }
        // JSON escaping can double a script's size; the script itself is checked below.
        let body = try await RequestBody.collect(request, limit: project.maxScriptBytes * 2 + 64 * 1024,
                                                 deadline: config.server.bodyTimeout)
        guard let posted = ScriptPost.parse(body) else {
            throw APIError(.badRequest, "the body is not a JSON object of the form {\"script\", \"signature\", \"interpreter\"?}")
        }
        guard let script = posted.script, !script.isEmpty else { throw APIError(.badRequest, "\"script\" is missing or empty") }
        guard let signature = posted.signature, !signature.isEmpty else {
            throw APIError(.badRequest, "\"signature\" is missing; sign with `deferred sign FILE --key KEY` or `ssh-keygen -Y sign -n deferred`")
        }
        guard script.utf8.count <= project.maxScriptBytes else {
            throw APIError(.contentTooLarge, "the script is \(script.utf8.count) bytes; project '\(project.name)' takes at most \(project.maxScriptBytes) (max_script_bytes)")
        }
        let interpreter: Interpreter
        do throws(Interpreter.Refusal) {
            interpreter = try Interpreter.choose(for: script, requested: posted.interpreter, allowed: project.interpreters)
        } catch {
            throw APIError(.badRequest, error.description)
        }
        let signer: String
        do throws(SignatureError) {
            signer = try ScriptVerifier(project: project).signer(of: script, signature: signature)
        } catch {
            throw APIError(error.isForbidden ? .forbidden : .unauthorized, error.description)
        }
        let idempotency = try idempotencyClaim(request, posted: posted)
        let job = Job(project: project.name, trigger: .script(ScriptTrigger(script: script, signer: signer, interpreter: interpreter)),
                      cancelToken: Job.makeCancelToken())
        switch try await store.enqueueScript(job, idempotency: idempotency, maxQueued: project.maxQueued) {
        case .created(let job):
            onQueued()
            log.accepted(job)
            return JSONBody.response(.accepted, queued(job))
        case .replayed(let job):
            log.accepted(job, again: true)
            return JSONBody.response(.accepted, queued(job))
        case .conflict(let job):
            throw APIError(.conflict, "the Idempotency-Key was used for another body (job \(job.id.rawValue)); use a new key for a new script")
        case .queueFull(let waiting):
            throw APIError.queueFull(project: project, waiting: waiting)
        }
    }

    /// "The same body" means the same script, signature and interpreter, however the JSON
    /// that carried them was spaced or ordered.
    private func idempotencyClaim(_ request: Request, posted: ScriptPost) throws -> IdempotencyClaim? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        guard (1...255).contains(key.count), key.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            throw APIError(.badRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters")
        }
        return IdempotencyClaim(key: key, bodySHA256: Hex.encode(SHA256.hash(data: posted.canonical)))
    }

    private func queued(_ job: Job) -> Queued {
        Queued(id: job.id.rawValue, status: job.status.rawValue,
               result_url: ResultsController.resultURL(config, job.token),
               events_url: ResultsController.eventsURL(config, job.token),
               cancel_url: job.cancelToken.map { ResultURLs.cancel(config, job.id, token: $0) })
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
}
