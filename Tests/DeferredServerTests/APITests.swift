import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredHTTP
import DeferredStore
import DeferredTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing

/// The JSON API behind the admin token, and openapi.json, the description of every route.
@Suite struct APITests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/DeferredHTTP/API/openapi.json")

    /// Every route the router serves is an operation of the document, and every operation a
    /// route (a catch-all `**` is the document's `{path}`): the document cannot drift from the server.
    @Test func theDocumentDescribesEveryRouteAndNoOther() async throws {
        let harness = try await ServerHarness()
        let router = ServerApplication.router(config: harness.config, store: harness.store, artifacts: harness.artifacts, onQueued: {})
        let served = Set(router.routes.map { "\($0.method.rawValue) \("\($0.path)".replacingOccurrences(of: "**", with: "{path}"))" })
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.document)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(served.subtracting(documented).isEmpty, "served but not in openapi.json: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "in openapi.json but not served: \(documented.subtracting(served).sorted())")
        #expect(served.count > 20)
    }

    /// Jobs as a program reads them: newest first, a page at a time through `next_cursor`,
    /// filtered; one job with its events; the hosts. Without the token 401, and a parameter
    /// that cannot be read 400 naming it; a path served with other methods 405.
    @Test func jobsAreListedPagedFilteredAndShownWithTheAdminToken() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        try await harness.store.register(hosts: harness.config.hosts)
        var queued: [Job] = []
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<7 {
            let job = Job(project: "sample", trigger: .push(PushTrigger(
                repository: ServerHarness.repository, ref: "refs/heads/main", commit: String(repeating: "c", count: 40),
                delivery: "d-\(index)", pusher: "octocat", cloneURL: harness.repo.path)), queuedAt: start.addingTimeInterval(Double(index / 2)))
            _ = try await harness.store.enqueue(job, delivery: "d-\(index)")
            queued.append(job)
        }
        let newestFirst = queued.sorted { ($0.queuedAt, $0.id.rawValue) > ($1.queuedAt, $1.id.rawValue) }.map(\.id.rawValue)
        try await harness.serve(dispatching: false) { client in
            func get(_ uri: String, _ headers: HTTPFields = DashboardTests.bearer) async throws -> (HTTPResponse.Status, [String: Any]) {
                let response = try await client.execute(uri: uri, method: .get, headers: headers)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(uri)")
                return (response.status, ServerHarness.json(response))
            }
            let (refused, why) = try await get("/api/jobs", [:])
            #expect(refused == .unauthorized && (why["error"] as? String)?.contains("Bearer") == true)

            var listed: [String] = [], cursor: String?
            repeat {
                let (status, page) = try await get("/api/jobs?limit=3" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(status == .ok)
                let jobs = try #require(page["jobs"] as? [[String: Any]])
                listed += jobs.compactMap { $0["id"] as? String }
                cursor = page["next_cursor"] as? String
            } while cursor != nil && listed.count < 20
            #expect(listed == newestFirst)

            let (_, first) = try await get("/api/jobs?limit=1&project=sample&status=queued,running&since=2027-01-15T08:00:00Z")
            let job = try #require((first["jobs"] as? [[String: Any]])?.first)
            #expect(job["id"] as? String == newestFirst.first && job["status"] as? String == "queued" && job["trigger"] as? String == "push")
            #expect((job["push"] as? [String: Any])?["delivery"] as? String == "d-6")
            #expect((job["result_url"] as? String)?.hasPrefix("http://deferred.test/r/") == true)
            #expect(job["started_at"] == nil)
            let (_, none) = try await get("/api/jobs?status=succeeded")
            #expect((none["jobs"] as? [Any])?.isEmpty == true && none["next_cursor"] == nil)
            let (_, window) = try await get("/api/jobs?since=2027-01-15T08:00:01Z&before=2027-01-15T08:00:02.000Z")
            #expect((window["jobs"] as? [[String: Any]])?.count == 2)

            for (query, word) in [("status=done", "status"), ("status=", "status"), ("status=queued,,running", "status"), ("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
                                  ("cursor=bm90LWEtY3Vyc29y", "cursor"), ("since=yesterday", "since"), ("before=2026-13-01T00:00:00Z", "before")] {
                let (status, error) = try await get("/api/jobs?\(query)")
                #expect(status == .badRequest && (error["error"] as? String)?.hasPrefix(word) == true, "\(query): \(error)")
            }

            let (found, detail) = try await get("/api/jobs/\(newestFirst[0])")
            #expect(found == .ok)
            #expect((detail["job"] as? [String: Any])?["id"] as? String == newestFirst[0])
            #expect((detail["events"] as? [[String: Any]])?.first?["status"] as? String == "queued")
            #expect(detail["results"] == nil)
            let (missing, _) = try await get("/api/jobs/j-nope")
            #expect(missing == .notFound)

            let (_, hosts) = try await get("/api/hosts")
            let host = try #require((hosts["hosts"] as? [[String: Any]])?.first)
            #expect(host["name"] as? String == "loopback" && host["state"] as? String == "ready" && host["active_jobs"] as? Int == 0)

            // Cancel and rerun answer JSON, whatever the caller accepts.
            let html: HTTPFields = [.authorization: "Bearer \(DashboardTests.token)", .accept: "text/html"]
            let rerun = try await client.execute(uri: "/api/jobs/\(newestFirst[0])/rerun", method: .post, headers: html)
            #expect(rerun.status == .conflict && ServerHarness.json(rerun)["error"] != nil)
            let cancel = try await client.execute(uri: "/api/jobs/\(newestFirst[0])/cancel", method: .post, headers: html)
            #expect(cancel.status == .accepted && ServerHarness.json(cancel)["cancel_requested_by"] as? String == "admin")
            let unsigned = try await client.execute(uri: "/api/jobs/\(newestFirst[1])/cancel", method: .post, headers: [.accept: "text/html"])
            #expect(unsigned.status == .unauthorized)

            let trace = try await client.execute(uri: "/api/hosts", method: .init("TRACE")!, headers: DashboardTests.bearer)
            #expect(trace.status == .methodNotAllowed && trace.headers[.allow] == "GET")
            let put = try await client.execute(uri: "/r/whatever/artifacts/a/b.txt", method: .put)
            #expect(put.status == .methodNotAllowed && put.headers[.allow] == "GET, OPTIONS")
            let nowhere = try await client.execute(uri: "/api/nothing", method: .get)
            #expect(nowhere.status == .notFound)

            let served = try await client.execute(uri: "/api/openapi.json", method: .get)
            let file = try Data(contentsOf: Self.document)
            #expect(served.status == .ok && Data(buffer: served.body) == file)
        }
        // Without an admin token the API is off, as the dashboard is.
        harness.config.server.adminToken = nil
        try await harness.serve(dispatching: false) { client in
            let off = try await client.execute(uri: "/api/jobs", method: .get, headers: DashboardTests.bearer)
            #expect(off.status == .notFound && ServerHarness.json(off)["error"] != nil)
        }
    }

    /// schemathesis (PyPI) runs the built server against openapi.json: every operation with
    /// generated requests, and with the values of a real ended job (its result token, its id,
    /// the project and host), so that requests reach past the 404s. It finds no 5xx, and no
    /// answer whose status, content type, headers or JSON the document does not describe.
    /// Left out: its check that every request the schema allows is accepted, which an opaque
    /// `cursor` (valid only as the server gave it) cannot meet by design.
    @Test(.enabled(if: Programs.path(of: "st") != nil, "schemathesis (st) is not installed: run scripts/setup, which installs it from PyPI"))
    func schemathesisFindsNoServerErrorAndNoAnswerOutsideTheDocument() async throws {
        let harness = try await ServerHarness()
        // Its reruns of the job pile up: a full queue answers 503 by design (come back later),
        // which is not the server failing, so the queue here has room for every one.
        let server = try await BuiltServer.start(harness, server: [#"admin_token_env = "\#(BuiltServer.adminTokenVariable)""#],
                                                 project: ["max_queued = 100000"])
        defer { server.stop() }
        let path = try await server.postScript("#!/bin/sh\necho hello\nmkdir -p artifacts && echo kept > artifacts/kept.txt\n")
        let results = try await server.results(at: path)
        #expect(results["status"] as? String == "succeeded", "\(results)")
        let token = try #require(path.split(separator: "/").dropFirst().first.map(String.init))
        let listed = try await HTTPClient().send(HTTPClientRequest(
            url: server.base + "/api/jobs?limit=1", headers: [("Authorization", "Bearer \(DashboardTests.token)")], timeout: .seconds(30)))
        let page = (try? JSONSerialization.jsonObject(with: listed.body)) as? [String: Any]
        let id = try #require((page?["jobs"] as? [[String: Any]])?.first?["id"] as? String)

        let config = harness.folder + "/schemathesis.toml"
        try """
            [parameters]
            "path.token" = "\(token)"
            "path.id" = "\(id)"
            "path.project" = "sample"
            "path.host" = "loopback"

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let st = try #require(Programs.path(of: "st"))
        // A few examples an operation here; scripts/fuzz-api runs many more.
        let examples = ProcessInfo.processInfo.environment["DEFERRED_API_FUZZ_EXAMPLES"] ?? "15"
        let report = harness.folder + "/schemathesis.txt"
        let arguments = ["--config-file", config, "run", server.base + "/api/openapi.json", "--url", server.base,
                         "-H", "Authorization: Bearer \(DashboardTests.token)", "--checks", "all",
                         "--exclude-checks", "positive_data_acceptance", "--max-examples", examples, "--seed", "20261202",
                         "--request-timeout", "30", "--workers", "1", "--no-color"]
        // Its report goes to a file, its exit status to this test.
        let status = try await LocalCommand.runOffPool(["/bin/sh", "-c", #""$0" "$@" > "$REPORT" 2>&1; echo $?"#, st] + arguments,
                                                       in: harness.folder, environment: ProcessInfo.processInfo.environment.merging(["REPORT": report]) { $1 })
        let said = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(said.suffix(6000))")
        // Every operation of the document was tried but the document's own: schemathesis
        // (4.32) leaves out the operation at the path it loads the document from (the same
        // file served from another path counts all 30).
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.document)) as? [String: Any])
        let operations = (document["paths"] as? [String: [String: Any]] ?? [:]).filter { $0.key != "/api/openapi.json" }.values.map(\.count).reduce(0, +)
        let selected = said.split(separator: "\n").first { $0.contains("Selected: ") }.map { String($0.split(separator: " ").last ?? "") } ?? ""
        let parts = selected.split(separator: "/").compactMap { Int($0) }
        #expect(parts.count == 2 && parts[0] == parts[1] && parts[0] == operations && said.contains("Tested: \(operations)"), "\(said.suffix(3000))")
    }
}
