import DeferredClient
import DeferredCloud
import Foundation
import Testing

/// What `deferred submit` does, against a live server over loopback, through libcurl.
@Suite struct SubmitClientTests {
    @Test func submitSignsPostsAndFollowsTheJobToItsExitStatus() async throws {
        let harness = try await ServerHarness()
        let key = try await harness.addSigner("alice", principal: "alice@example.com")
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

    @Test func submitFollowsTheEventStreamAndFallsBackToPollingWhereThereIsNone() async throws {
        let harness = try await ServerHarness()
        let key = try await harness.addSigner("bob", principal: "bob@example.com")
        let script = "#!/bin/sh\necho one\necho two >&2\nsleep 1\necho three\n"
        try await harness.serve { client in
            let port = try #require(client.port)
            let submission = ScriptSubmission(server: "http://127.0.0.1:\(port)", project: "sample")
            let accepted = try await submission.post(script, signature: try ScriptSubmission.sign(script, key: key).armored)
            #expect(accepted.eventsURL == accepted.resultURL.replacingOccurrences(of: "/results.json", with: "/events"))
            let local = { (url: String) in "http://127.0.0.1:\(port)" + (URL(string: url)?.path ?? "") }
            let seen = StateLog()
            let streamed = await EventFollower().follow(local(accepted.eventsURL)) { event in
                switch event {
                case .state(let state): seen.add("state " + state)
                case .output(let stream, let text): seen.add("\(stream) \(text)")
                case .done(let status): seen.add("done " + status)
                }
            }
            #expect(streamed)
            let events = seen.all
            #expect(events.first == "state queued")
            #expect(events.last == "done succeeded")
            // Line by line with its stream. How lines fall into batches depends on the timer, and
            // lines of the two streams printed together may come in either order (they are two
            // pipes); "three", printed a second after the others, comes last.
            let lines = events.filter { $0.hasPrefix("stdout ") || $0.hasPrefix("stderr ") }.flatMap { event in
                let stream = event.prefix(7)
                return event.dropFirst(7).split(separator: "\n").map { stream + $0 }
            }
            #expect(Set(lines) == ["stdout one", "stderr two", "stdout three"] && lines.count == 3, "\(lines)")
            #expect(lines.last == "stdout three", "\(lines)")
            // Running comes before the output it produced.
            #expect((events.firstIndex(of: "state running") ?? .max) < (events.firstIndex { $0.hasPrefix("stdout") } ?? -1))

            // No event stream there (a proxy that strips it, an older server): not followed.
            #expect(await EventFollower().follow(local(accepted.resultURL)) { _ in } == false)
            #expect(await EventFollower().follow("http://127.0.0.1:\(port)/r/\(String(repeating: "0", count: 32))/events") { _ in } == false)
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
