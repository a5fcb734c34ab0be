import DeferredTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Hetzner Cloud's API as its published reference (docs.hetzner.cloud) describes the parts
/// deferred uses; no real peer can run here. Each behaviour and where the reference says it:
/// - Authentication: `Authorization: Bearer <token>`; anything else is 401 with
///   `{"error": {"code": "unauthorized", "message": "unable to authenticate"}}` ("Authentication").
/// - Errors: `{"error": {"code", "message", "details"}}` with the HTTP status ("Errors");
///   `not_found` 404 for an unknown server; `rate_limit_exceeded` 429, `unavailable` 503.
/// - Rate limits: every answer has `RateLimit-Limit`, `RateLimit-Remaining` and
///   `RateLimit-Reset` (a Unix time when the limit is full again) ("Rate Limiting").
/// - `GET /servers/{id}`: `{"server": {"id", "name", "status", "public_net": {"ipv4": {"ip"}},
///   "labels"}}`; status `running`, `off`, `starting`, `stopping`, … ("Get a Server").
/// - `POST /servers/{id}/actions/poweron|shutdown|poweroff`: 201 `{"action": {"id", "command":
///   "start_server"|"shutdown_server"|"stop_server", "status": "running", "progress": 0,
///   "started", "finished": null, "resources": [{"id", "type": "server"}], "error": null}}`
///   ("Power on / Shutdown / Power off a Server"). A shutdown only sends ACPI: a system that
///   ignores it stays running ("the action status only reflects whether the action was sent").
/// - `GET /actions/{id}`: the action, `running` until it ends in `success` or `error` ("Get an Action").
/// Transitions are quick and stepwise: an action succeeds at its next read, and the server moves
/// starting → running or stopping → off at its next read after that.
final class FakeHetzner: @unchecked Sendable {
    actor State {
        struct Server { var name: String; var status: String; var ip: String }
        struct Action { var command: String; var server: Int; var status: String; var then: String }
        var servers: [Int: Server]
        var actions: [Int: Action] = [:]
        var nextAction = 1000
        /// Statuses to answer the next requests with, before any other work.
        var faults: [Int] = []
        var ignoresACPI = false
        var calls: [String] = []
        var remaining = 3600

        init(servers: [Int: Server]) { self.servers = servers }

        func next(_ call: String) -> Int? {
            calls.append(call)
            remaining = max(remaining - 1, 0)
            return faults.isEmpty ? nil : faults.removeFirst()
        }
        func inject(_ statuses: [Int]) { faults += statuses }
        func ignoreACPI() { ignoresACPI = true }
        func status(of id: Int) -> String? { servers[id]?.status }
        func setStatus(_ status: String, of id: Int) { servers[id]?.status = status }

        func readServer(_ id: Int) -> Server? {
            guard var server = servers[id] else { return nil }
            let shown = server
            // A transition settles after it was seen once.
            if server.status == "starting" { server.status = "running" }
            if server.status == "stopping" { server.status = "off" }
            servers[id] = server
            return shown
        }

        func start(_ command: String, on id: Int) -> (Int, String)? {
            guard let server = servers[id] else { return nil }
            let (name, during, after): (String, String?, String)
            switch command {
            case "poweron": (name, during, after) = ("start_server", server.status == "off" ? "starting" : nil, "running")
            case "poweroff": (name, during, after) = ("stop_server", nil, "off")
            case "shutdown": (name, during, after) = ("shutdown_server", nil, ignoresACPI ? server.status : "stopping")
            default: return nil
            }
            nextAction += 1
            actions[nextAction] = Action(command: name, server: id, status: "running", then: after)
            if let during { servers[id]?.status = during }
            return (nextAction, name)
        }

        func readAction(_ id: Int) -> Action? {
            guard var action = actions[id] else { return nil }
            if action.status == "running" {
                action.status = "success"
                actions[id] = action
                if action.then != "running" || servers[action.server]?.status != "starting" { servers[action.server]?.status = action.then }
            }
            return action
        }
    }

    let state: State
    let port: Int
    private let serving: Task<Void, any Error>
    var url: String { "http://127.0.0.1:\(port)/v1" }

    init(token: String, servers: [Int: State.Server]) async throws {
        let state = State(servers: servers)
        self.state = state
        let router = Router()
        router.add(middleware: Gate(token: token, state: state))
        router.get("/v1/servers/:id") { _, context -> Response in
            guard let id = context.parameters.get("id", as: Int.self), let server = await state.readServer(id) else {
                return Self.error(404, "not_found", "server not found")
            }
            return Self.json(200, ["server": ["id": id, "name": server.name, "status": server.status, "labels": [String: String](),
                                              "public_net": ["ipv4": ["ip": server.ip, "blocked": false]]]])
        }
        router.post("/v1/servers/:id/actions/:command") { _, context -> Response in
            guard let id = context.parameters.get("id", as: Int.self), let command = context.parameters.get("command"),
                  let (action, name) = await state.start(command, on: id) else {
                return Self.error(404, "not_found", "server not found")
            }
            return Self.json(201, ["action": Self.action(action, name, id, status: "running")])
        }
        router.get("/v1/actions/:id") { _, context -> Response in
            guard let id = context.parameters.get("id", as: Int.self), let action = await state.readAction(id) else {
                return Self.error(404, "not_found", "action not found")
            }
            return Self.json(200, ["action": Self.action(id, action.command, action.server, status: action.status)])
        }
        (port, serving) = try await FaultInjectingProxy.serveOnLoopback(router)
    }

    func stop() { serving.cancel() }

    static func action(_ id: Int, _ command: String, _ server: Int, status: String) -> [String: Any] {
        ["id": id, "command": command, "status": status, "progress": status == "running" ? 0 : 100, "started": "2026-12-02T10:00:00+00:00",
         "finished": status == "running" ? NSNull() : "2026-12-02T10:00:01+00:00" as Any, "resources": [["id": server, "type": "server"]],
         "error": NSNull()]
    }

    static func json(_ status: Int, _ body: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body)) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        json(status, ["error": ["code": code, "message": message, "details": [String: String]()]])
    }

    /// The token check, planned faults, and the rate-limit headers on every answer.
    struct Gate: RouterMiddleware {
        typealias Context = BasicRequestContext
        let token: String
        let state: State

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            var response: Response
            if request.headers[.authorization] != "Bearer \(token)" {
                _ = await state.next("\(request.method.rawValue) \(request.uri.path) (unauthorized)")
                response = FakeHetzner.error(401, "unauthorized", "unable to authenticate")
            } else if let fault = await state.next("\(request.method.rawValue) \(request.uri.path)") {
                response = fault == 429 ? FakeHetzner.error(429, "rate_limit_exceeded", "limit of 3600 requests per hour reached")
                                        : FakeHetzner.error(fault, "unavailable", "service unavailable")
            } else {
                response = try await next(request, context)
            }
            let remaining = await state.remaining
            response.headers[HTTPField.Name("RateLimit-Limit")!] = "3600"
            response.headers[HTTPField.Name("RateLimit-Remaining")!] = String(remaining)
            // Full again in a second here, so a test waits little for a 429's reset.
            response.headers[HTTPField.Name("RateLimit-Reset")!] = String(Int(Date().timeIntervalSince1970) + 1)
            return response
        }
    }
}
