import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation
import Hummingbird

/// The JSON API, behind the admin token like the dashboard (and off, answering 404, without
/// one): jobs listed with filters and a cursor, one job with its events and results.json, the
/// hosts, and cancel and rerun. `/api/openapi.json` describes every route the server has, and
/// is served to anyone: it holds no data.
struct APIController: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let artifacts: any ArtifactStore
    /// Its sign-in check, and the cancel and rerun it already answers in JSON.
    let dashboard: DashboardController

    static let defaultLimit = 50
    static let maxLimit = 200

    func addRoutes(to router: Router<DeferredRequestContext>) {
        router.get("/api/openapi.json") { _, _ in try OpenAPIDocument.response() }
        router.get("/api/jobs") { request, _ in try await jobs(request) }
        router.get("/api/jobs/{id}") { request, context in try await job(request, context) }
        router.post("/api/jobs/{id}/cancel") { request, context in
            try admit(request)
            return try await dashboard.cancel(request, context, json: true)
        }
        router.post("/api/jobs/{id}/rerun") { request, context in try await dashboard.rerun(request, context, json: true) }
        router.get("/api/hosts") { request, _ in try await hosts(request) }
    }

    func jobs(_ request: Request) async throws -> Response {
        try admit(request)
        var query = try Self.query(request.uri.queryParameters)
        let limit = query.limit
        query.limit += 1
        let found = try await store.jobs(matching: query)
        let page = found.prefix(limit)
        return JSONBody.response(.ok, APIJobPage(jobs: page.map { APIJob($0, config: config) },
                                                 nextCursor: found.count > limit ? page.last.map { JobCursor($0).text } : nil))
    }

    func job(_ request: Request, _ context: DeferredRequestContext) async throws -> Response {
        try admit(request)
        let id = JobID(rawValue: context.parameters.get("id") ?? "")
        guard let job = try await store.job(id: id) else { throw DashboardController.unknownJob(id) }
        let events = try await store.events(of: job.id).map {
            APIJobDetail.Event(sequence: $0.sequence, at: RFC3339.string($0.at), status: $0.status.rawValue, detail: $0.detail,
                               hostState: $0.hostState?.rawValue)
        }
        var results: JSONValue?
        if job.status.isFinal, job.expiredAt == nil, let data = await artifacts.read(.results, token: job.token) {
            results = JSONValue.parse(data)
        }
        return JSONBody.response(.ok, APIJobDetail(job: APIJob(job, config: config), events: events, results: results))
    }

    func hosts(_ request: Request) async throws -> Response {
        try admit(request)
        return JSONBody.response(.ok, try await store.listing(for: config))
    }

    /// The admin token, as the dashboard takes it; a refusal is always JSON, never the login page.
    private func admit(_ request: Request) throws {
        _ = try dashboard.admit(request, json: true)
    }

    /// `/api/jobs`' parameters; a value that cannot be read is refused, naming it.
    static func query(_ parameters: Parameters) throws -> JobQuery {
        var query = JobQuery(limit: defaultLimit)
        query.project = parameters.get("project")
        query.host = parameters.get("host")
        if let text = parameters.get("status") {
            query.statuses = try text.split(separator: ",", omittingEmptySubsequences: false).map { word in
                guard let status = JobStatus(rawValue: String(word)) else {
                    throw APIError(.badRequest, "status: '\(word)' is not a job state (one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return status
            }
        }
        query.since = try parameters.get("since").map { try date($0, "since") }
        query.before = try parameters.get("before").map { try date($0, "before") }
        if let text = parameters.get("limit") {
            guard let limit = Int(text), (1...maxLimit).contains(limit) else {
                throw APIError(.badRequest, "limit: '\(text)' is not a whole number from 1 to \(maxLimit)")
            }
            query.limit = limit
        }
        if let text = parameters.get("cursor") {
            guard let cursor = JobCursor(text: text) else {
                throw APIError(.badRequest, "cursor: not a cursor this server gave (use next_cursor from the page before)")
            }
            query.after = cursor
        }
        return query
    }

    static func date(_ text: String, _ name: String) throws -> Date {
        if let date = RFC3339.date(text) { return date }
        throw APIError(.badRequest, "\(name): '\(text)' is not an RFC 3339 time such as 2026-12-01T09:30:00Z")
    }
}
