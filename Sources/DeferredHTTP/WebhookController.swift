import Crypto
import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /hooks/github`: verifies, filters, dedupes and queues GitHub pushes, answering in
/// milliseconds; the job itself runs later, in the dispatcher.
public struct WebhookController: Sendable {
    public static let bodyLimit = 25 << 20

    let config: DeferredConfig
    let store: any JobStore
    let onQueued: @Sendable () -> Void
    let signatureKey: WebhookSignature.Key

    public init(config: DeferredConfig, store: any JobStore, onQueued: @escaping @Sendable () -> Void) {
        self.config = config
        self.store = store
        self.onQueued = onQueued
        signatureKey = WebhookSignature.Key(secret: config.github.secret)
    }

    public func addRoutes(to router: Router<DeferredRequestContext>) {
        router.post("/hooks/github") { request, context in try await receive(request, context: context) }
    }

    func receive(_ request: Request, context: DeferredRequestContext) async throws -> Response {
        let delivery = request.headers[.gitHubDelivery]
        let log = IntakeLog(context.logger, kind: "webhook", delivery: delivery)
        return try await log.deciding { try await decide(request, delivery: delivery, context: context, log: log) }
    }

    private func decide(_ request: Request, delivery: String?, context: DeferredRequestContext, log: IntakeLog) async throws -> Response {
        try checkNetwork(context)
        let body = try await RequestBody.collect(request, limit: Self.bodyLimit, deadline: config.server.bodyTimeout)
        do throws(WebhookSignature.Failure) {
            try WebhookSignature.verify(header: request.headers[.hubSignature256], body: body, key: signatureKey)
        } catch {
            throw APIError(.unauthorized, error.description)
        }
        guard let event = request.headers[.gitHubEvent], !event.isEmpty else {
            throw APIError(.badRequest, "the request has no X-GitHub-Event header")
        }
        let payload = try payload(of: request, body: body)
        switch event {
        case "ping":
            log.ignored("a ping")
            return JSONBody.response(.ok, ["ok": "pong"])
        case "push":
            // The signed body names the push; the delivery id is not signed.
            return try await push(payload, delivery: delivery, bodySHA256: Hex.encode(SHA256.hash(data: body)), log: log)
        default:
            let why = "deferred does not act on '\(event)' events"
            log.ignored(why)
            return JSONBody.response(.ok, ["ignored": why])
        }
    }

    private func push(_ payload: Data, delivery: String?, bodySHA256: String, log: IntakeLog) async throws -> Response {
        let event: PushEvent
        do throws(PushRejection) { event = try PushEvent.parse(payload) } catch { throw APIError(.badRequest, error.description) }
        guard let project = config.project(forRepository: event.repository.fullName) else {
            throw APIError(.notFound, "no project is configured for repository '\(event.repository.fullName)'")
        }
        guard let delivery, !delivery.isEmpty, delivery.count <= 200 else {
            throw APIError(.badRequest, "the request has no X-GitHub-Delivery header")
        }
        let decision: PushDecision
        do throws(PushRejection) { decision = try event.decide(for: project, delivery: delivery) } catch { throw APIError(.badRequest, error.description) }
        switch decision {
        case .ignore(let why):
            log.ignored(why)
            return JSONBody.response(.ok, ["ignored": why])
        case .run(let trigger):
            let job = Job(project: project.name, trigger: .push(trigger))
            let stored = try await store.enqueue(job, delivery: delivery, payload: payload, bodySHA256: bodySHA256,
                                                 maxQueued: project.maxQueued, detail: nil)
            switch stored {
            case .created(let job), .duplicate(let job):
                if case .created = stored { onQueued() }
                log.accepted(job, again: stored != .created(job))
                // Keys sorted, as every answer's.
                var queued = FlatJSONObject()
                queued.add("id", job.id.rawValue)
                queued.add("result_url", ResultsController.resultURL(config, job.token))
                return JSONBody.raw(.accepted, Data(queued.text))
            case .queueFull(let waiting):
                throw APIError.queueFull(project: project, waiting: waiting)
            }
        }
    }

    private func payload(of request: Request, body: Data) throws -> Data {
        let type = RequestBody.mediaType(of: request)
        if type?.isType(.applicationJson) == true { return body }
        guard type?.isType(.applicationUrlEncoded) == true else {
            throw APIError(.unsupportedMediaType,
                           "Content-Type must be application/json or application/x-www-form-urlencoded, not \(RequestBody.mediaTypeName(of: request))")
        }
        struct Form: Decodable { var payload: String? }
        guard let payload = try RequestBody.form(Form.self, from: body).payload else {
            throw APIError(.badRequest, "the form body has no payload field")
        }
        return Data(payload.utf8)
    }

    private func checkNetwork(_ context: DeferredRequestContext) throws {
        let networks = config.github.allowedNetworks
        guard !networks.isEmpty else { return }
        let address = context.remoteAddress?.ipAddress ?? ""
        guard networks.contains(where: { $0.contains(address) }) else {
            throw APIError(.forbidden, "\(address.isEmpty ? "this client" : address) is outside [github] allowed_networks")
        }
    }
}

extension HTTPField.Name {
    static let hubSignature256 = Self("X-Hub-Signature-256")!
    static let gitHubEvent = Self("X-GitHub-Event")!
    static let gitHubDelivery = Self("X-GitHub-Delivery")!
}
