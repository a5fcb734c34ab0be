import Foundation
import Hummingbird

/// Hetzner Cloud's API as its published reference (docs.hetzner.cloud) describes the parts
/// deferred uses; no real peer can run here. Each behaviour and where the reference says it:
/// - Authentication: `Authorization: Bearer <token>`; anything else is 401 with
///   `{"error": {"code": "unauthorized", "message": "unable to authenticate"}}` ("Authentication").
/// - Errors: `{"error": {"code", "message", "details"}}` with the HTTP status ("Errors");
///   `not_found` 404 for an unknown server; `rate_limit_exceeded` 429, `unavailable` 503;
///   `uniqueness_error` 409 for a server name in use; `invalid_input` 400 for a missing field.
/// - Rate limits: every answer has `RateLimit-Limit`, `RateLimit-Remaining` and
///   `RateLimit-Reset` (a Unix time when the limit is full again) ("Rate Limiting").
/// - `GET /servers/{id}`: `{"server": {"id", "name", "status", "public_net": {"ipv4": {"ip"}},
///   "labels", "created"}}`; status `running`, `off`, `starting`, `stopping`, `initializing`, …
///   ("Get a Server").
/// - `GET /servers?label_selector=k=v&page=&per_page=`: `{"servers": [...], "meta": {"pagination":
///   {"page", "per_page", "previous_page", "next_page", "last_page", "total_entries"}}}`, `next_page`
///   null on the last page ("List Servers", "Pagination", "Label Selector").
/// - `POST /servers` with `name`, `server_type`, `image`, `location`, `ssh_keys`, `user_data`,
///   `labels`, `start_after_create`: 201 `{"server" (status initializing), "action" (create_server),
///   "next_actions": [start_server], "root_password"}` ("Create a Server").
/// - `DELETE /servers/{id}`: 200 `{"action": {"command": "delete_server", …}}` ("Delete a Server").
/// - `POST /servers/{id}/actions/poweron|shutdown|poweroff`: 201 `{"action": {"id", "command":
///   "start_server"|"shutdown_server"|"stop_server", "status": "running", "progress": 0,
///   "started", "finished": null, "resources": [{"id", "type": "server"}], "error": null}}`
///   ("Power on / Shutdown / Power off a Server"). A shutdown only sends ACPI: a system that
///   ignores it stays running ("the action status only reflects whether the action was sent").
/// - `GET /actions/{id}`: the action, `running` until it ends in `success` or `error` ("Get an Action").
enum FakeHetzner {
    static let words = FakeServerCloud.Words(running: "running", off: "off", starting: "starting", stopping: "stopping", new: "initializing",
                                             actionRunning: "running", actionDone: "success")

    static func start(token: String, servers: [Int: FakeServerCloud.State.Server]) async throws -> FakeServerCloud {
        try await FakeServerCloud(words: words, prefix: "v1", token: token, servers: servers, errorBody: error) { router, state in
            router.get("/v1/servers/:id") { _, context -> Response in
                guard let id = context.parameters.get("id", as: Int.self), let server = await state.readServer(id) else {
                    return error(404, "not_found", "server not found")
                }
                return FakeServerCloud.json(200, ["server": shape(id, server)])
            }
            router.get("/v1/servers") { request, _ -> Response in
                let query = request.uri.queryParameters
                let selector = query.get("label_selector") ?? ""
                let parts = selector.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { return error(400, "invalid_input", "invalid label_selector") }
                let all = await state.labelled(parts[0], parts[1])
                let perPage = max(1, min(await state.pageSize ?? query.get("per_page", as: Int.self) ?? 25, 50))
                let page = max(1, query.get("page", as: Int.self) ?? 1)
                let slice = all.dropFirst((page - 1) * perPage).prefix(perPage)
                let last = max(1, (all.count + perPage - 1) / perPage)
                var listed: [[String: Any]] = []
                for (id, server) in slice { listed.append(shape(id, server)) }
                return FakeServerCloud.json(200, ["servers": listed, "meta": ["pagination": [
                    "page": page, "per_page": perPage, "previous_page": page > 1 ? page - 1 : NSNull() as Any,
                    "next_page": page < last ? page + 1 : NSNull() as Any, "last_page": last, "total_entries": all.count]]])
            }
            router.post("/v1/servers") { request, _ -> Response in
                let (data, body) = try await FakeServerCloud.body(request)
                guard let name = body["name"] as? String, body["server_type"] is String, body["image"] is String else {
                    return error(400, "invalid_input", "name, server_type and image are required")
                }
                if await state.servers.values.contains(where: { $0.name == name }) { return error(409, "uniqueness_error", "server name is already used") }
                let (id, server) = await state.create(name: name, labels: body["labels"] as? [String: String] ?? [:])
                await state.recordOrder(data)
                if await state.losesThisAnswer() { return error(503, "unavailable", "service unavailable") }
                return FakeServerCloud.json(201, ["server": shape(id, server), "action": action(id * 10, "create_server", id, status: "running"),
                                                  "next_actions": [action(id * 10 + 1, "start_server", id, status: "running")], "root_password": NSNull()])
            }
            router.delete("/v1/servers/:id") { _, context -> Response in
                guard let id = context.parameters.get("id", as: Int.self), await state.delete(id) else { return error(404, "not_found", "server not found") }
                return FakeServerCloud.json(200, ["action": action(id * 10 + 2, "delete_server", id, status: "running")])
            }
            router.post("/v1/servers/:id/actions/:command") { _, context -> Response in
                let steps = ["poweron": "on", "shutdown": "shutdown", "poweroff": "off"]
                guard let id = context.parameters.get("id", as: Int.self), let step = context.parameters.get("command").flatMap({ steps[$0] }),
                      let started = await state.start(step, on: id) else {
                    return error(404, "not_found", "server not found")
                }
                return FakeServerCloud.json(201, ["action": action(started, command(step), id, status: "running")])
            }
            router.get("/v1/actions/:id") { _, context -> Response in
                guard let id = context.parameters.get("id", as: Int.self), let found = await state.readAction(id) else {
                    return error(404, "not_found", "action not found")
                }
                return FakeServerCloud.json(200, ["action": action(id, command(found.command), found.server, status: found.status)])
            }
        }
    }

    static func command(_ step: String) -> String {
        ["on": "start_server", "shutdown": "shutdown_server", "off": "stop_server"][step] ?? step
    }

    static func shape(_ id: Int, _ server: FakeServerCloud.State.Server) -> [String: Any] {
        ["id": id, "name": server.name, "status": server.status, "labels": server.labels, "created": FakeServerCloud.rfc3339(server.created),
         "public_net": ["ipv4": ["ip": server.ip, "blocked": false]]]
    }

    static func action(_ id: Int, _ command: String, _ server: Int, status: String) -> [String: Any] {
        ["id": id, "command": command, "status": status, "progress": status == "running" ? 0 : 100, "started": "2026-12-02T10:00:00+00:00",
         "finished": status == "running" ? NSNull() : "2026-12-02T10:00:01+00:00" as Any, "resources": [["id": server, "type": "server"]],
         "error": NSNull()]
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        FakeServerCloud.json(status, ["error": ["code": code, "message": message, "details": [String: String]()]])
    }
}

extension FakeServerCloud {
    var url: String { "http://127.0.0.1:\(port)/\(prefix)" }
}
