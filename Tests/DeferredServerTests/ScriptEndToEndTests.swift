import Crypto
import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Scripts signed by real `ssh-keygen -Y sign`, posted over loopback HTTP and run on a real sshd.
@Suite struct ScriptEndToEndTests {
    @Test func aSignedShellScriptRunsAndItsResultsNameTheSigner() async throws {
        let harness = try await ServerHarness()
        let key = try await harness.addSigner("alice", principal: "alice@example.com")
        let script = """
            #!/bin/sh
            echo "hello from $(basename "$PWD")"
            echo warning >&2
            printf '{"answer": 42}' > "$DEFERRED_ARTIFACTS/result.json"

            """
        let signature = try await harness.sign(script, key: key)
        try await harness.serve { client in
            let response = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            #expect(response.status == .accepted)
            let answer = ServerHarness.json(response)
            #expect(answer["status"] as? String == "queued")
            let id = try #require(answer["id"] as? String)
            let url = try #require(answer["result_url"] as? String)
            #expect(answer["events_url"] as? String == url.replacingOccurrences(of: "/results.json", with: "/events"))
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["id"] as? String == id)
            #expect(results["status"] as? String == "succeeded")
            #expect(results["exit_status"] as? Int == 0)
            #expect(results["stdout"] as? String == "hello from work\n")
            #expect(results["stderr"] as? String == "warning\n")
            #expect((results["result"] as? [String: Any])?["answer"] as? Int == 42)
            let trigger = try #require(results["trigger"] as? [String: Any])
            #expect(trigger["kind"] as? String == "script")
            #expect(trigger["signer"] as? String == "alice@example.com")
            #expect(trigger["sha256"] as? String == Hex.encode(SHA256.hash(data: Data(script.utf8))))
            #expect(trigger["script"] == nil)

            // The event stream tells the same story, and ends with the job.
            let events = try await client.execute(uri: String(answer["events_url"] as! String).replacingOccurrences(of: "http://deferred.test", with: ""), method: .get)
            #expect(events.headers[.contentType] == "text/event-stream")
            let feed = SSE.parse(String(buffer: events.body))
            let statuses = feed.filter { $0.event == "state" }.compactMap { $0.json["status"] as? String }
            #expect(statuses.first == "queued" && statuses.last == "succeeded" && statuses.contains("running"), "\(statuses)")
            #expect(feed.last?.event == "done")
            #expect(feed.last?.json["status"] as? String == "succeeded")
        }
    }

    /// Each exec starts the remote user's shell, rc files and all (root's `.bashrc`: ~120 ms
    /// here): a job's start, output and collect go in one. The host's `.bashrc` counts them.
    @Test func aJobStartsTheRemoteUsersShellOnce() async throws {
        let harness = try await ServerHarness()
        // The ended job's folder goes with the next exec, or alone after this: not in the count.
        harness.forgetDelay = .seconds(600)
        let home = try #require(harness.sshd.home)
        try #"echo start >> "$HOME/shell-starts""#.write(toFile: home + "/.bashrc", atomically: true, encoding: .utf8)
        let key = try await harness.addSigner("alice", principal: "alice@example.com")
        let script = "#!/bin/sh\necho out; echo err >&2; echo 7 > \"$DEFERRED_ARTIFACTS/seven\"; exit 3\n"
        let signature = try await harness.sign(script, key: key)
        try await harness.serve { client in
            let response = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            let results = try await ServerHarness.results(client, resultURL: try #require(ServerHarness.json(response)["result_url"] as? String))
            #expect(results["status"] as? String == "failed")
            #expect(results["exit_status"] as? Int == 3)
            #expect(results["stdout"] as? String == "out\n")
            #expect(results["stderr"] as? String == "err\n")
            let files = (results["artifacts"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            #expect(files == ["seven"], "\(results["artifacts"] ?? "none")")
        }
        let starts = try String(contentsOfFile: home + "/shell-starts", encoding: .utf8).split(separator: "\n")
        #expect(starts.count == 1, "the remote shell started \(starts.count) times for one job")
    }

    @Test func pythonScriptsRunByShebangOrNamedInterpreterWithTheirExitStatus() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].interpreters = ["/bin/sh", "python3"]
        let key = try await harness.addSigner("bob", principal: "bob@example.com")
        let byShebang = "#!/usr/bin/env python3\nimport sys\nprint('py', sys.version_info[0])\nsys.exit(4)\n"
        let byName = "import os\nprint(os.path.basename(os.getcwd()), os.environ['DEFERRED_JOB_ID'][:2])\n"
        let signatures = (try await harness.sign(byShebang, key: key), try await harness.sign(byName, key: key))
        try await harness.serve { client in
            let first = try await ServerHarness.postScript(client, ["script": byShebang, "signature": signatures.0])
            let second = try await ServerHarness.postScript(client, ["script": byName, "signature": signatures.1, "interpreter": "python3"])
            let shebang = try await ServerHarness.results(client, resultURL: try #require(ServerHarness.json(first)["result_url"] as? String))
            #expect(shebang["status"] as? String == "failed")
            #expect(shebang["exit_status"] as? Int == 4)
            #expect(shebang["stdout"] as? String == "py 3\n")
            let named = try await ServerHarness.results(client, resultURL: try #require(ServerHarness.json(second)["result_url"] as? String))
            #expect(named["status"] as? String == "succeeded")
            #expect(named["stdout"] as? String == "work j-\n")
        }
    }

    @Test func anHMACSignedScriptRunsWhenTheProjectHasAScriptSecret() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].scriptSecret = "shared words"
        let script = "echo via hmac\n"
        try await harness.serve { client in
            let wrong = try await ServerHarness.postScript(client, ["script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: "other")])
            #expect(wrong.status == .unauthorized)
            let response = try await ServerHarness.postScript(client, ["script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: "shared words")])
            #expect(response.status == .accepted)
            let results = try await ServerHarness.results(client, resultURL: try #require(ServerHarness.json(response)["result_url"] as? String))
            #expect(results["stdout"] as? String == "via hmac\n")
            #expect((results["trigger"] as? [String: Any])?["signer"] as? String == "script_secret")
        }
    }

    @Test func aScriptWhoseInterpreterIsMissingOnTheHostEndsInError() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].interpreters = ["no-such-interpreter-xyz"]
        let key = try await harness.addSigner("carol", principal: "carol@example.com")
        let script = "anything\n"
        let signature = try await harness.sign(script, key: key)
        try await harness.serve { client in
            let response = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            let results = try await ServerHarness.results(client, resultURL: try #require(ServerHarness.json(response)["result_url"] as? String))
            #expect(results["status"] as? String == "error")
            #expect((results["error"] as? String)?.contains("no-such-interpreter-xyz is not installed") == true)
        }
    }
}
