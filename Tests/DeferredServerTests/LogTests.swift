import DeferredCloud
import DeferredCore
import Foundation
import Testing

/// `serve --log-format json`: one JSON object a line, every intake decision once with its
/// delivery id and reason, and no secret anywhere in the log of a whole run.
@Suite struct LogTests {
    static func secret() -> String { "s" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    @Test func aWholeRunLogsEachDecisionOnceAsJSONAndNoSecret() async throws {
        let harness = try await ServerHarness()
        let github = try await RecordingServer(), notified = try await RecordingServer()
        defer { github.stop(); notified.stop() }
        let secrets = ["DEFERRED_TEST_SECRET": Self.secret(), "DEFERRED_TEST_SCRIPT_SECRET": Self.secret(),
                       BuiltServer.adminTokenVariable: Self.secret(), "LOG_TEST_GITHUB_TOKEN": Self.secret(),
                       "LOG_TEST_NOTIFY_SECRET": Self.secret(), "AWS_SECRET_ACCESS_KEY": Self.secret(), "AWS_ACCESS_KEY_ID": "AKIALOGTEST"]
        let environment = BuiltServer.environment().merging(secrets) { $1 }
        let server = try await BuiltServer.start(
            harness, server: [#"admin_token_env = "\#(BuiltServer.adminTokenVariable)""#],
            project: ["command = 'echo built; echo oops >&2'", #"notify_url = "\#(notified.url)/notify""#, #"notify_secret_env = "LOG_TEST_NOTIFY_SECRET""#],
            arguments: ["--log-format", "json", "--log-level", "debug"], environment: environment, github: [
                #"token_env = "LOG_TEST_GITHUB_TOKEN""#, #"api_url = "\#(github.url)""#,
            ])
        defer { server.stop() }
        let http = HTTPClient()
        let commit = try await harness.repo.commit(["README.md": "logged\n"])
        func push(_ ref: String, delivery: String, secret: String) async throws -> Int {
            let body = harness.repo.pushPayload(repository: ServerHarness.repository, ref: ref, commit: commit)
            return try await http.send(HTTPClientRequest(
                method: "POST", url: server.base + "/hooks/github",
                headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", delivery),
                          ("X-Hub-Signature-256", WebhookSignature.sign(body: body, secret: secret))],
                body: body, timeout: .seconds(30))).status
        }
        #expect(try await push("refs/heads/main", delivery: "delivery-accepted", secret: secrets["DEFERRED_TEST_SECRET"]!) == 202)
        #expect(try await push("refs/heads/other", delivery: "delivery-ignored", secret: secrets["DEFERRED_TEST_SECRET"]!) == 200)
        #expect(try await push("refs/heads/main", delivery: "delivery-forged\tline", secret: "wrong") == 401)
        let script = "#!/bin/sh\necho scripted\n"
        let posted = try await http.send(HTTPClientRequest(
            method: "POST", url: server.base + "/projects/sample/scripts", headers: [("Content-Type", "application/json"), ("Idempotency-Key", "key-1")],
            body: try JSONSerialization.data(withJSONObject: [
                "script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: secrets["DEFERRED_TEST_SCRIPT_SECRET"]!),
            ]), timeout: .seconds(30)))
        #expect(posted.status == 202)
        // The dashboard's sign-in, wrong and right; the API with the token.
        for token in ["wrong-token", secrets[BuiltServer.adminTokenVariable]!] {
            _ = try await http.send(HTTPClientRequest(method: "POST", url: server.base + "/login",
                                                      headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                      body: Data("token=\(token)&next=/".utf8), timeout: .seconds(30)))
        }
        let listed = try await http.send(HTTPClientRequest(url: server.base + "/api/jobs",
                                                           headers: [("Authorization", "Bearer \(secrets[BuiltServer.adminTokenVariable]!)")], timeout: .seconds(30)))
        #expect(listed.status == 200)
        // Both jobs end, and their end went out to GitHub and notify_url, signed.
        _ = try await github.requests(atLeast: 2)
        _ = try await notified.requests(atLeast: 2)

        let lines = server.said.split(separator: "\n").map(String.init)
        let objects = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(objects.count == lines.count && !lines.isEmpty, "lines that are not JSON: \(lines.filter { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) == nil })")
        #expect(objects.allSatisfy { $0["time"] is String && $0["level"] is String && $0["message"] is String })
        func decisions(_ delivery: String) -> [[String: Any]] { objects.filter { $0["intake"] as? String == "webhook" && $0["delivery"] as? String == delivery } }
        #expect(decisions("delivery-accepted").count == 1 && decisions("delivery-accepted").first?["message"] as? String == "accepted", "\(objects)")
        #expect(decisions("delivery-accepted").first?["job"] is String && decisions("delivery-accepted").first?["request_id"] is String)
        #expect(decisions("delivery-ignored").count == 1 && (decisions("delivery-ignored").first?["message"] as? String)?.hasPrefix("ignored") == true)
        // A control character from the request is not written as it came.
        let forged = decisions("delivery-forged?line")
        #expect(forged.count == 1 && (forged.first?["message"] as? String)?.hasPrefix("refused 401") == true, "\(objects.filter { $0["intake"] != nil })")
        let scripted = objects.filter { $0["intake"] as? String == "script" }
        #expect(scripted.count == 1 && scripted.first?["idempotency_key"] as? String == "key-1" && scripted.first?["message"] as? String == "accepted")
        #expect(objects.contains { $0["job"] != nil && $0["host"] as? String == "loopback" })

        let log = server.said
        for (name, value) in secrets where name != "AWS_ACCESS_KEY_ID" {
            #expect(!log.contains(value), "\(name)'s value is in the log")
        }
    }

    /// `serve`'s text log, the default: each line `time level label: key=value … [source] message`
    /// with the keys sorted, as swift-log's stream handler wrote it before deferred wrote its own,
    /// and whole lines only, however many requests log at once.
    @Test func theTextLogWritesWholeLinesInTheStreamHandlersFormat() async throws {
        let harness = try await ServerHarness()
        let server = try await BuiltServer.start(harness, arguments: ["--log-level", "debug"])
        defer { server.stop() }
        let http = HTTPClient()
        let commit = try await harness.repo.commit(["README.md": "logged as text\n"])
        let body = harness.repo.pushPayload(repository: ServerHarness.repository, ref: "refs/heads/main", commit: commit)
        let signature = WebhookSignature.sign(body: body, secret: BuiltServer.webhookSecret)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await http.send(HTTPClientRequest(
                        method: "POST", url: server.base + "/hooks/github",
                        headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "text-\(index)"),
                                  ("X-Hub-Signature-256", signature)],
                        body: body, timeout: .seconds(30))).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 202 }, "\(statuses)")
        try await StalledHostTests.eventually("every delivery is logged") {
            server.said.components(separatedBy: "intake=webhook").count - 1 >= 40
        }
        let line = try Regex(#"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (trace|debug|info|notice|warning|error|critical) deferred:( [^ =]+=.*)? \[[A-Za-z]+\] .+$"#)
        let lines = server.said.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        #expect(lines.allSatisfy { $0.wholeMatch(of: line) != nil }, "not in the format: \(lines.filter { $0.wholeMatch(of: line) == nil })")
        let decisions = lines.filter { $0.contains(" intake=webhook ") }
        #expect(decisions.count == 40, "\(decisions)")
        #expect(decisions.allSatisfy { $0.contains(" info deferred: delivery=text-") && $0.contains(" [DeferredHTTP] accepted") }, "\(decisions)")
        // Keys sorted: delivery, hb.request.id, intake, job.
        let keys = decisions.map { decision in
            decision.split(separator: " ").dropFirst(3).prefix { !$0.hasPrefix("[") }.map { String($0.split(separator: "=")[0]) }
        }
        #expect(keys.allSatisfy { $0 == ["delivery", "hb.request.id", "intake", "job"] }, "\(keys)")
    }
}
