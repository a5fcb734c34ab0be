import DeferredClient
import DeferredCloud
import Foundation
import Testing

/// What `deferred submit` does, against a live server over loopback, through libcurl.
@Suite struct SubmitClientTests {
    @Test func submitSignsPostsAndFollowsTheJobToItsExitStatus() async throws {
        let harness = try await ServerHarness()
        let key = try harness.addSigner("alice", principal: "alice@example.com")
        let script = "#!/bin/sh\necho submitted\nexit 7\n"
        try await harness.serve { client in
            let port = try #require(client.port)
            // `deferred sign`'s signature, not ssh-keygen's: the server takes it too.
            let signature = try ScriptSubmission.sign(script, key: key).armored
            let submission = ScriptSubmission(server: "http://127.0.0.1:\(port)/", project: "sample", idempotencyKey: "once")
            let accepted = try await submission.post(script, signature: signature)
            #expect(accepted.resultURL.hasPrefix("http://deferred.test/r/"))
            // The harness's public URL is not where it listens; follow at the real address.
            let resultURL = "http://127.0.0.1:\(port)" + (URL(string: accepted.resultURL)?.path ?? "")
            let again = try await submission.post(script, signature: signature)
            #expect(again.id == accepted.id)

            let states = StateLog()
            let results = try await ResultFollower(giveUpAfter: .seconds(60)).follow(resultURL) { states.add($0) }
            #expect(results["stdout"] as? String == "submitted\n")
            #expect(ScriptSubmission.exitCode(of: results) == 7)
            #expect(states.all.allSatisfy { ["queued", "waiting_for_host", "running"].contains($0) })

            let refused = await #expect(throws: ScriptSubmission.Failure.self) {
                try await ScriptSubmission(server: "http://127.0.0.1:\(port)", project: "nope").post(script, signature: signature)
            }
            #expect(refused?.description.contains("(404)") == true)
        }
    }

    @Test func exitCodesForJobsWithoutAnExitStatus() {
        #expect(ScriptSubmission.exitCode(of: ["status": "timed_out"]) == 124)
        #expect(ScriptSubmission.exitCode(of: ["status": "error"]) == 1)
        #expect(ScriptSubmission.exitCode(of: ["status": "failed", "exit_status": 3]) == 3)
    }
}

/// States seen by a follower's callback.
final class StateLog: @unchecked Sendable {
    private var states: [String] = []
    private let lock = NSLock()
    func add(_ state: String) { lock.withLock { states.append(state) } }
    var all: [String] { lock.withLock { states } }
}
