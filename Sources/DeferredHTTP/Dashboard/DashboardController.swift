import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The dashboard: server-rendered pages behind the admin token. `GET /` shows the hosts (with
/// wake and sleep buttons), the projects and the latest jobs; `/projects/{name}` a project and
/// its jobs; `/jobs/{id}` one job with its live log, results.json, artifacts and the webhook
/// payload it came from. Without `[server] admin_token_env` it is off and answers 404.
public struct DashboardController: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let artifacts: any ArtifactStore
    let auth: AdminAuth?
    let actions: HostActions?
    /// Guesses at the token from one address are slowed down.
    let loginLimiter = RateLimiter(ratePerMinute: 10, burst: 5)
    /// Tells the dispatcher a job was queued (a rerun).
    let onQueued: @Sendable () -> Void
    /// Tells the dispatcher someone asked to cancel a job.
    let onCancel: @Sendable (JobID) -> Void

    /// How much of a job's output its page carries; output.log has the rest.
    static let outputOnPage = 512 << 10
    /// How much of a webhook payload the page shows.
    static let payloadOnPage = 256 << 10

    public init(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore, hostCommands: (any HostCommands)?,
                logger: Logger = Logger(label: "deferred.dashboard"), onQueued: @escaping @Sendable () -> Void = {},
                onCancel: @escaping @Sendable (JobID) -> Void = { _ in }) {
        self.onQueued = onQueued
        self.onCancel = onCancel
        self.config = config
        self.store = store
        self.artifacts = artifacts
        auth = config.server.adminToken.map { AdminAuth(token: $0, secureCookies: config.server.publicURL.hasPrefix("https://")) }
        actions = hostCommands.map { HostActions(commands: $0, logger: logger) }
        // Read now, before any request: no page waits on the disk, and a missing install says so once.
        if auth != nil, case .failure(let error) = DashboardTemplates.shared {
            logger.error("the dashboard cannot serve pages: \(error)")
        }
    }

    public func addRoutes(to router: Router<DeferredRequestContext>) {
        router.get("/") { request, _ in try await overview(request) }
        router.get("/projects/{project}") { request, context in try await project(request, context) }
        router.get("/jobs/{id}") { request, context in try await job(request, context) }
        router.get("/login") { request, _ in try login(request) }
        router.post("/login") { request, context in try await signIn(request, context) }
        router.post("/logout") { request, _ in try await signOut(request) }
        router.post("/jobs/{id}/rerun") { request, context in try await rerun(request, context) }
        router.post("/jobs/{id}/cancel") { request, context in try await cancel(request, context) }
        router.post("/hosts/{host}/wake") { request, context in try await hostAction(request, context, wake: true) }
        router.post("/hosts/{host}/sleep") { request, context in try await hostAction(request, context, wake: false) }
        router.get("/dashboard/{file}") { _, context in try asset(context) }
    }

    // MARK: Pages

    func overview(_ request: Request) async throws -> Response {
        let auth = try admit(request)
        try await store.register(hosts: config.hosts)
        var hosts: [HostRow] = []
        for host in try await store.hosts() where config.host(named: host.name) != nil || host.fleet != nil {
            hosts.append(HostRow(host, note: await actions?.note(for: host.name), waking: await actions?.isWaking(host.name) ?? false))
        }
        var projects: [ProjectRow] = []
        for project in config.projects {
            projects.append(ProjectRow(project, last: try await store.jobs(project: project.name, limit: 1).first))
        }
        let jobs = try await store.jobs(limit: 30).map { JobRow($0) }
        let fleetNotes = try await store.fleetBootFailures().map(\.summary)
        return try templates().page("overview", OverviewPage(formToken: auth.formToken, hosts: hosts, fleetNotes: fleetNotes,
                                                             projects: projects, jobs: jobs))
    }

    func project(_ request: Request, _ context: DeferredRequestContext) async throws -> Response {
        let auth = try admit(request)
        let name = context.parameters.get("project") ?? ""
        guard let project = config.project(named: name) else { throw APIError(.notFound, "no project is named '\(name)'") }
        let jobs = try await store.jobs(project: project.name, limit: 50)
        return try templates().page("project", ProjectPage(
            title: "\(project.name) · deferred", formToken: auth.formToken,
            project: ProjectRow(project, last: jobs.first), jobs: jobs.map { JobRow($0) }))
    }

    func job(_ request: Request, _ context: DeferredRequestContext) async throws -> Response {
        let auth = try admit(request)
        let id = context.parameters.get("id") ?? ""
        guard var job = try await store.job(id: JobID(rawValue: id)) else { throw APIError(.notFound, "no job has the id '\(id)'") }
        // Its events and the end of its output, read in pages: a 100 MiB log costs the page's share.
        let (feed, storeCut) = try await store.recentFeed(of: job.id, outputBytes: Self.outputOnPage)
        // The feed's read says whether the job ended; the row read before it may be older.
        if feed.jobEnded, !job.status.isFinal, let fresh = try await store.job(id: job.id) { job = fresh }
        let cursor = feed.items.last?.cursor ?? FeedCursor()
        let base = "/r/\(job.token.rawValue)"
        var results: String?
        var listed: [JobPage.Artifact] = []
        if feed.jobEnded, job.expiredAt == nil, let data = await artifacts.read(.results, token: job.token) {
            results = Self.pretty(data)
            listed = Self.artifacts(in: data, base: base)
        }
        let (output, pageCut) = Self.output(feed.items)
        let cut = storeCut || pageCut
        return try templates().page("job", JobPage(
            title: "\(job.id.rawValue) · deferred", formToken: auth.formToken, job: JobRow(job), ended: feed.jobEnded,
            facts: Self.facts(job, resultURL: ResultURLs.results(config, job.token)),
            events: feed.items.compactMap { item in
                guard case .state(let event) = item.kind else { return nil }
                let detail = [event.detail, event.hostState.map { "host \($0.rawValue)" }].compactMap { $0 }.filter { !$0.isEmpty }
                return JobPage.Event(at: JobRow.time(event.at), status: event.status.rawValue, detail: detail.joined(separator: "; "))
            },
            output: output, outputCut: cut,
            eventsPath: feed.jobEnded ? nil : "\(base)/events?last_event_id=\(cursor)",
            resultsPath: "\(base)/results.json", outputLogPath: "\(base)/output.log",
            results: results, artifacts: listed, expired: job.expiredAt != nil,
            payload: try await store.payload(of: job.id).map { Self.pretty($0, limit: Self.payloadOnPage) },
            script: { if case .script(let script) = job.trigger { script.script } else { nil } }()))
    }

    // MARK: Signing in and out

    func login(_ request: Request) throws -> Response {
        _ = try enabled()
        return try templates().page("login", LoginPage(next: Self.localPath(request.uri.queryParameters.get("next")), problem: nil))
    }

    func signIn(_ request: Request, _ context: DeferredRequestContext) async throws -> Response {
        let auth = try enabled()
        // A body that is no form guesses nothing: refused before it costs the address a try.
        try Self.requireForm(request)
        if let wait = await loginLimiter.take(for: context.remoteAddress?.ipAddress ?? "unknown") {
            var error = APIError(.tooManyRequests, "too many sign-in attempts from this address; try again in \(wait.components.seconds + 1) s")
            error.headers[.retryAfter] = String(wait.components.seconds + 1)
            throw error
        }
        let form = try await Self.form(request, deadline: config.server.bodyTimeout)
        let next = Self.localPath(form["next"])
        guard let token = form["token"], auth.matches(token) else {
            return try templates().page("login", LoginPage(next: next, problem: "That is not the admin token."), status: .unauthorized)
        }
        return Response(status: .seeOther, headers: [.location: next, .setCookie: auth.sessionCookie().description, .cacheControl: "no-store"])
    }

    func signOut(_ request: Request) async throws -> Response {
        let auth = try admit(request)
        try await checkForm(request, auth: auth)
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: auth.clearedCookie.description, .cacheControl: "no-store"])
    }

    // MARK: Wake and sleep

    /// A wake starts in the background (202); a sleep is waited for. A form from the page is
    /// sent back to the page, whose host row tells what happened.
    func hostAction(_ request: Request, _ context: DeferredRequestContext, wake: Bool) async throws -> Response {
        let auth = try admit(request)
        try await checkForm(request, auth: auth)
        guard let actions else { throw APIError(.serviceUnavailable, "this server cannot wake or stop hosts") }
        let name = context.parameters.get("host") ?? ""
        let known = config.host(named: name) != nil ? true : try await store.host(named: name)?.fleet != nil
        guard known else { throw APIError(.notFound, "no host is named '\(name)'") }
        let page = Self.wantsHTML(request)
        if wake {
            do throws(HostActions.Refusal) {
                try await actions.startWake(name)
            } catch .busy(let why) {
                if page { return Self.backToHosts }
                throw APIError(.conflict, why)
            }
            return page ? Self.backToHosts : JSONBody.response(.accepted, ["host": name, "action": "wake", "status": "waking"])
        }
        let note = await actions.sleep(name)
        if page { return Self.backToHosts }
        if note.failed { throw APIError(.conflict, note.text) }
        return JSONBody.response(.ok, ["host": name, "action": "sleep", "status": "stopped"])
    }

    static let backToHosts = Response(status: .seeOther, headers: [.location: "/#hosts"])

    // MARK: Static files

    func asset(_ context: DeferredRequestContext) throws -> Response {
        _ = try enabled()
        let name = context.parameters.get("file") ?? ""
        guard let asset = try templates().assets[name] else { throw APIError(.notFound, "the dashboard has no file '\(name)'") }
        return Response(status: .ok, headers: [.contentType: asset.contentType, .cacheControl: "max-age=300",
                                               HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
                        body: .init(byteBuffer: ByteBuffer(bytes: asset.body)))
    }

    // MARK: Checks

    private func enabled() throws -> AdminAuth {
        guard let auth else {
            throw APIError(.notFound, "the dashboard is off: set [server] admin_token_env to the name of an environment variable that holds the admin token")
        }
        return auth
    }

    /// The request's credential must be good. A browser is sent to the login form; anything
    /// else gets 401.
    /// `json`: the API's routes, which answer JSON whatever the request accepts.
    func admit(_ request: Request, json: Bool = false) throws -> AdminAuth {
        let auth = try enabled()
        guard auth.credential(of: request) == nil else { return auth }
        if !json, Self.wantsHTML(request) {
            let here = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            let next = here.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "/-._~"))) ?? "/"
            throw LoginRedirect(location: "/login?next=\(next)")
        }
        var refusal = APIError(.unauthorized, "the dashboard needs the admin token: send Authorization: Bearer <token>, or sign in at /login")
        refusal.headers[.wwwAuthenticate] = #"Bearer realm="deferred""#
        throw refusal
    }

    /// A form that changes something carries the form token, unless the caller used a bearer
    /// token, which no browser sends by itself.
    func checkForm(_ request: Request, auth: AdminAuth) async throws {
        guard auth.credential(of: request) != .bearer else { return }
        let form = try await Self.form(request, deadline: config.server.bodyTimeout)
        guard auth.validFormToken(form["form_token"]) else {
            throw APIError(.forbidden, "the form has no valid form_token; reload the dashboard and try again")
        }
    }

    private func templates() throws -> DashboardTemplates {
        switch DashboardTemplates.shared {
        case .success(let templates): return templates
        case .failure(let error): throw APIError(.internalServerError, error.description)
        }
    }

    // MARK: Helpers

    static func wantsHTML(_ request: Request) -> Bool {
        request.headers[.accept]?.contains("text/html") == true
    }

    static func requireForm(_ request: Request) throws {
        guard RequestBody.mediaType(of: request)?.isType(.applicationUrlEncoded) == true else {
            throw APIError(.unsupportedMediaType,
                           "the dashboard's forms are application/x-www-form-urlencoded, not \(RequestBody.mediaTypeName(of: request))")
        }
    }

    /// Fields of an `application/x-www-form-urlencoded` body, which is small.
    static func form(_ request: Request, deadline: Duration) async throws -> [String: String] {
        try requireForm(request)
        let body = try await RequestBody.collect(request, limit: 16 << 10, deadline: deadline)
        struct Fields: Decodable { var token: String?, next: String?, form_token: String? }
        let form = try RequestBody.form(Fields.self, from: body)
        return ["token": form.token, "next": form.next, "form_token": form.form_token].compactMapValues { $0 }
    }

    /// Only a path on this server: a sign-in never sends anyone elsewhere.
    static func localPath(_ text: String?) -> String {
        guard let text, text.hasPrefix("/"), !text.hasPrefix("//"), !text.contains("\\"),
              !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return "/" }
        return text
    }
}

/// A browser without a good credential is sent to the login form, then back.
struct LoginRedirect: HTTPResponseError {
    let location: String
    var status: HTTPResponse.Status { .seeOther }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }
}
