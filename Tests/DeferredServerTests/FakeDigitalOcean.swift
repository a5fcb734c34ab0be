import Foundation
import Hummingbird

/// DigitalOcean's API v2 as its published reference (docs.digitalocean.com/reference/api)
/// describes the parts deferred uses; no real peer can run here. Each behaviour and where the
/// reference says it:
/// - Authentication: `Authorization: Bearer <token>`; anything else is 401 with
///   `{"id": "unauthorized", "message": "Unable to authenticate you."}` ("Authentication").
/// - Errors: `{"id", "message", "request_id"}` with the HTTP status; `not_found` 404,
///   `too_many_requests` 429, `unprocessable_entity` 422 for a missing field, 5xx
///   `server_error` ("Errors").
/// - Rate limits: every answer has `RateLimit-Limit`, `RateLimit-Remaining` and
///   `RateLimit-Reset` (a Unix time), and a 429 when the limit is spent ("Rate Limit").
/// - `GET /droplets/{id}`: `{"droplet": {"id", "name", "status", "networks": {"v4": [{"ip_address",
///   "type": "public"|"private"}]}, "tags", "created_at"}}`; status `new`, `active`, `off` or
///   `archive` ("Retrieve an Existing Droplet").
/// - `GET /droplets?tag_name=&page=&per_page=`: `{"droplets": [...], "links": {"pages": {"next",
///   "last"}}, "meta": {"total"}}`, no `next` on the last page ("List All Droplets", "Links").
/// - `POST /droplets` with `name`, `region`, `size`, `image` (an id or a slug), `ssh_keys`,
///   `user_data`, `tags`: 202 `{"droplet" (status new), "links": {"actions": [{"id", "rel":
///   "create", "href"}]}}` ("Create a New Droplet").
/// - `DELETE /droplets/{id}`: 204 with no body ("Delete an Existing Droplet").
/// - `POST /droplets/{id}/actions` with `{"type": "power_on"|"shutdown"|"power_off"}`: 201
///   `{"action": {"id", "status": "in-progress", "type", "started_at", "completed_at": null,
///   "resource_id", "resource_type": "droplet", "region_slug"}}` ("Initiate a Droplet Action").
///   A shutdown is "an attempt": a system that ignores it stays active.
/// - `GET /actions/{id}`: the action, `in-progress` until `completed` or `errored` ("Retrieve an
///   Existing Action"). DigitalOcean has no starting or stopping status: a droplet is `off`
///   until its power_on completes, and `active` until its shutdown does.
enum FakeDigitalOcean {
    static let words = FakeServerCloud.Words(running: "active", off: "off", starting: nil, stopping: nil, new: "new",
                                             actionRunning: "in-progress", actionDone: "completed")

    static func start(token: String, servers: [Int: FakeServerCloud.State.Server]) async throws -> FakeServerCloud {
        try await FakeServerCloud(words: words, prefix: "v2", token: token, servers: servers, errorBody: error) { router, state in
            router.get("/v2/droplets/:id") { _, context -> Response in
                guard let id = context.parameters.get("id", as: Int.self), let server = await state.readServer(id) else {
                    return error(404, "not_found", "The resource you were accessing could not be found.")
                }
                return FakeServerCloud.json(200, ["droplet": shape(id, server)])
            }
            router.get("/v2/droplets") { request, _ -> Response in
                let query = request.uri.queryParameters
                let parts = (query.get("tag_name") ?? "").split(separator: ":", maxSplits: 1).map(String.init)
                let all = parts.count == 2 ? await state.labelled(parts[0], parts[1]) : await state.labelled("", "")
                let perPage = max(1, min(await state.pageSize ?? query.get("per_page", as: Int.self) ?? 20, 200))
                let page = max(1, query.get("page", as: Int.self) ?? 1)
                let last = max(1, (all.count + perPage - 1) / perPage)
                var listed: [[String: Any]] = []
                for (id, server) in all.dropFirst((page - 1) * perPage).prefix(perPage) { listed.append(shape(id, server)) }
                var pages: [String: String] = [:]
                if page < last {
                    pages["next"] = "https://api.digitalocean.com/v2/droplets?page=\(page + 1)&per_page=\(perPage)"
                    pages["last"] = "https://api.digitalocean.com/v2/droplets?page=\(last)&per_page=\(perPage)"
                }
                return FakeServerCloud.json(200, ["droplets": listed, "links": ["pages": pages], "meta": ["total": all.count]])
            }
            router.post("/v2/droplets") { request, _ -> Response in
                let (data, body) = try await FakeServerCloud.body(request)
                guard let name = body["name"] as? String, body["region"] is String, body["size"] is String,
                      body["image"] is String || body["image"] is Int else {
                    return error(422, "unprocessable_entity", "name, region, size and image are required")
                }
                var labels: [String: String] = [:]
                for tag in body["tags"] as? [String] ?? [] {
                    let parts = tag.split(separator: ":", maxSplits: 1).map(String.init)
                    if parts.count == 2 { labels[parts[0]] = parts[1] }
                }
                let (id, server) = await state.create(name: name, labels: labels)
                await state.recordOrder(data)
                if await state.losesThisAnswer() { return error(503, "unavailable", "service unavailable") }
                return FakeServerCloud.json(202, ["droplet": shape(id, server), "links": ["actions": [
                    ["id": id * 10, "rel": "create", "href": "https://api.digitalocean.com/v2/actions/\(id * 10)"]]]])
            }
            router.delete("/v2/droplets/:id") { _, context -> Response in
                guard let id = context.parameters.get("id", as: Int.self), await state.delete(id) else {
                    return error(404, "not_found", "The resource you were accessing could not be found.")
                }
                return Response(status: .noContent)
            }
            router.post("/v2/droplets/:id/actions") { request, context -> Response in
                let (_, body) = try await FakeServerCloud.body(request)
                let steps = ["power_on": "on", "shutdown": "shutdown", "power_off": "off"]
                guard let step = (body["type"] as? String).flatMap({ steps[$0] }) else {
                    return error(422, "unprocessable_entity", "type is not a droplet action")
                }
                guard let id = context.parameters.get("id", as: Int.self), let started = await state.start(step, on: id) else {
                    return error(404, "not_found", "The resource you were accessing could not be found.")
                }
                return FakeServerCloud.json(201, ["action": action(started, step, id, status: "in-progress")])
            }
            router.get("/v2/actions/:id") { _, context -> Response in
                guard let id = context.parameters.get("id", as: Int.self), let found = await state.readAction(id) else {
                    return error(404, "not_found", "The resource you were accessing could not be found.")
                }
                return FakeServerCloud.json(200, ["action": action(id, found.command, found.server, status: found.status)])
            }
        }
    }

    static func shape(_ id: Int, _ server: FakeServerCloud.State.Server) -> [String: Any] {
        ["id": id, "name": server.name, "status": server.status, "created_at": FakeServerCloud.rfc3339(server.created),
         "tags": server.labels.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" },
         "networks": ["v4": [["ip_address": "10.114.0.2", "netmask": "255.255.240.0", "gateway": "10.114.0.1", "type": "private"],
                             ["ip_address": server.ip, "netmask": "255.255.240.0", "gateway": "127.0.0.254", "type": "public"]]]]
    }

    static func action(_ id: Int, _ step: String, _ droplet: Int, status: String) -> [String: Any] {
        ["id": id, "status": status, "type": ["on": "power_on", "shutdown": "shutdown", "off": "power_off"][step] ?? step,
         "started_at": "2026-12-02T10:00:00Z", "completed_at": status == "in-progress" ? NSNull() : "2026-12-02T10:00:01Z" as Any,
         "resource_id": droplet, "resource_type": "droplet", "region_slug": "fra1"]
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        let id = ["unauthorized": "unauthorized", "rate_limit_exceeded": "too_many_requests", "unavailable": "server_error"][code] ?? code
        return FakeServerCloud.json(status, ["id": id, "message": status == 401 ? "Unable to authenticate you." : message,
                                             "request_id": "4d9d8375-3c56-4925-a3e7-eb137fed17e9"])
    }
}
