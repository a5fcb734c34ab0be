import DeferredCore
import DeferredDispatcher
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Commit statuses and notify_url posts, against a recording server standing in for GitHub's
/// API and for the receiver: URL, body, auth or signature, order and retries.
@Suite struct OutboundReportTests {
    /// With the dashboard on (an admin token), statuses link to the job's page; else to results.json.
    @Test(arguments: [false, true])
    func aPushPostsPendingThenItsEndAsCommitStatusesRetryingA502(dashboard: Bool) async throws {
        // The first answer is a 502: that status is sent again.
        let github = try await RecordingServer(answers: [502])
        defer { github.stop() }
        let harness = try await ServerHarness()
        harness.config.server.adminToken = dashboard ? "admin" : nil
        harness.config.github.token = "ghp_test_token"
        harness.config.github.apiURL = github.url + "/api/v3"
        harness.outboundRetryBase = .milliseconds(20)
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho fine\n"])
            _ = try await ServerHarness.results(client, resultURL: ServerHarness.json(
                try await ServerHarness.post(client, harness.pushPayload(commit: commit)))["result_url"] as? String ?? "")
            let failing = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\nexit 4\n"])
            _ = try await ServerHarness.results(client, resultURL: ServerHarness.json(
                try await ServerHarness.post(client, harness.pushPayload(commit: failing)))["result_url"] as? String ?? "")
            let requests = try await github.requests(atLeast: 5)
            #expect(requests.count == 5)
            let first = requests.filter { $0.path.hasSuffix(commit) }.map { $0.json["state"] as? String }
            #expect(first == ["pending", "pending", "success"], "the 502 pending is sent again, before the end")
            let second = requests.filter { $0.path.hasSuffix(failing) }.map { $0.json["state"] as? String }
            #expect(second == ["pending", "failure"])
            for request in requests {
                #expect(request.method == "POST")
                #expect(request.path.hasPrefix("/api/v3/repos/octo-org/sample/statuses/"))
                #expect(request.headers[.authorization] == "Bearer ghp_test_token")
                #expect(request.headers[.accept] == "application/vnd.github+json")
                #expect(request.json["context"] as? String == "deferred/sample")
                let target = request.json["target_url"] as? String ?? ""
                if dashboard {
                    let job = try #require(try await harness.store.jobs().first { job in
                        if case .push(let push) = job.trigger { request.path.hasSuffix(push.commit) } else { false }
                    })
                    #expect(target == "http://deferred.test/jobs/\(job.id)")
                } else {
                    #expect(target.hasPrefix("http://deferred.test/r/") && target.hasSuffix("/results.json"), "\(target)")
                }
            }
            #expect((requests.last?.json["description"] as? String)?.contains("exit status 4") == true)
        }
    }

    @Test func aScriptJobPostsNoStatusButItsResultsGoToNotifyURLSigned() async throws {
        let receiver = try await RecordingServer(answers: [500, 503])
        defer { receiver.stop() }
        let harness = try await ServerHarness()
        harness.config.github.token = "ghp_test_token"
        harness.config.github.apiURL = receiver.url + "/github"
        harness.config.projects[0].notifyURL = receiver.url + "/hooks/deferred"
        harness.config.projects[0].notifySecret = "notify secret"
        harness.outboundRetryBase = .milliseconds(20)
        let key = try await harness.addSigner("notify", principal: "ci@example.com")
        let script = "echo notified\n"
        let signature = try await harness.sign(script, key: key)
        try await harness.serve { client in
            let accepted = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            let results = try await ServerHarness.results(client, resultURL: ServerHarness.json(accepted)["result_url"] as? String ?? "")
            let requests = try await receiver.requests(atLeast: 3)
            // Two failures, then the post that went through; no commit status for a script.
            #expect(requests.count == 3)
            #expect(requests.allSatisfy { $0.path == "/hooks/deferred" && $0.method == "POST" })
            let delivered = try #require(requests.last)
            #expect(delivered.headers[HTTPField.Name("X-Deferred-Signature-256")!] == WebhookSignature.sign(body: delivered.body, secret: "notify secret"))
            #expect(delivered.headers[.contentType] == "application/json")
            #expect(delivered.json["id"] as? String == results["id"] as? String)
            #expect((delivered.json["stdout"] as? String) == "notified\n")
            #expect(requests.map(\.body).allSatisfy { $0 == delivered.body })
        }
    }
}
