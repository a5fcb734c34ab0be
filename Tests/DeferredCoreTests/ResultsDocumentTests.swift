@testable import DeferredCore
import Foundation
import Testing

struct ResultsDocumentTests {
    @Test func writesEveryContractKeyWithExplicitNulls() throws {
        let queued = Date(timeIntervalSince1970: 1_700_000_000)
        let job = Job(project: "resume", trigger: .push(PushTrigger(
            repository: "octo-org/resume", ref: "refs/heads/main", commit: String(repeating: "a", count: 40),
            delivery: "d", pusher: "octocat", cloneURL: "file:///tmp/x")), queuedAt: queued)
        let outcome = JobOutcome(status: .succeeded, exitStatus: 0, startedAt: queued.addingTimeInterval(1.5),
                                 finishedAt: queued.addingTimeInterval(4))
        let data = try ResultsDocument(job: job, outcome: outcome, host: .init(name: "builder-1", woke: false),
                                       resultBase: "http://x/r/t", hasOutputLog: false).encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let keys = ["schema", "id", "project", "trigger", "status", "exit_status", "signal", "error", "queued_at",
                    "started_at", "finished_at", "wait_ms", "duration_ms", "host", "stdout", "stderr",
                    "output_truncated", "artifacts", "artifacts_refused", "output_log", "result", "resources", "rerun_of", "attempts", "cancelled_by"]
        #expect(Set(object.keys) == Set(keys))
        #expect(object["signal"] is NSNull)
        #expect(object["result"] is NSNull)
        #expect(object["output_log"] is NSNull)
        #expect(object["resources"] is NSNull)
        #expect(object["rerun_of"] is NSNull)
        #expect(object["cancelled_by"] is NSNull)
        #expect(object["attempts"] as? Int == 1)
        #expect(object["wait_ms"] as? Int == 1500)
        #expect(object["duration_ms"] as? Int == 2500)
        #expect(object["status"] as? String == "succeeded")
        let trigger = try #require(object["trigger"] as? [String: Any])
        #expect(trigger["kind"] as? String == "push")
        #expect(trigger["clone_url"] == nil)
        #expect((object["queued_at"] as? String)?.hasSuffix("Z") == true)
    }

    @Test func listsArtifactsWithTypesAndURLsAndWhatWasRefused() throws {
        let now = Date()
        let job = Job(project: "p", trigger: .push(PushTrigger(
            repository: "o/p", ref: "refs/heads/main", commit: String(repeating: "b", count: 40),
            delivery: "d", pusher: "u", cloneURL: "file:///tmp/x")), queuedAt: now)
        let collected = CollectedArtifacts(
            files: [.init(path: "report.pdf", bytes: 3, sha256: "ab"), .init(path: "logs/a b#1.txt", bytes: 1, sha256: "cd"),
                    .init(path: "bin/tool", bytes: 2, sha256: "ef")],
            refused: [.init(path: "link", reason: "links are not collected")])
        let outcome = JobOutcome(status: .failed, exitStatus: 1, startedAt: now, finishedAt: now, artifacts: collected)
        let data = try ResultsDocument(job: job, outcome: outcome, host: nil, resultBase: "http://x/r/t", hasOutputLog: true).encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let artifacts = try #require(object["artifacts"] as? [[String: Any]])
        #expect(artifacts.map { $0["url"] as? String } == ["http://x/r/t/artifacts/report.pdf",
                                                         "http://x/r/t/artifacts/logs/a%20b%231.txt",
                                                         "http://x/r/t/artifacts/bin/tool"])
        #expect(artifacts.map { $0["content_type"] as? String } == ["application/pdf", "text/plain; charset=utf-8",
                                                                  "application/octet-stream"])
        #expect(artifacts.first?["bytes"] as? Int == 3)
        let refused = try #require(object["artifacts_refused"] as? [[String: String]])
        #expect(refused == [["path": "link", "reason": "links are not collected"]])
        #expect(object["output_log"] as? String == "http://x/r/t/output.log")
    }

    @Test func outputTailKeepsTheLastBytes() {
        var tail = OutputTail(limit: 8)
        tail.append(Array("0123456789".utf8))
        #expect(tail.text == "23456789")
        #expect(tail.truncated)
    }

    @Test func resultTokensHave128RandomBits() {
        let a = ResultToken.make(), b = ResultToken.make()
        // The time it was made (12 hex digits), then 32 random ones.
        #expect(a.rawValue.count == 44)
        #expect(a.rawValue.dropFirst(12) != b.rawValue.dropFirst(12))
        #expect(ResultToken(validating: a.rawValue) == a)
        #expect(ResultToken(validating: "../etc/passwd") == nil)
    }
}
