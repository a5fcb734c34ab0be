import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import Synchronization
import Testing

/// Intake commits deliveries that arrive together in one transaction; a 202 must still mean
/// the job is on disk. Pushes pour in over many connections and the server is killed with
/// SIGKILL while they do: every job it answered 202 for is in the store afterwards, once.
@Suite struct IntakeDurabilityTests {
    @Test func everyPushAnswered202IsStoredWhenTheServerIsKilledMidStream() async throws {
        let harness = try await ServerHarness()
        let served = try await BuiltServer.start(harness, project: ["max_queued = 10000"])
        final class Accepted: Sendable { let ids = Mutex<[JobID]>([]) }
        let accepted = Accepted()
        let killAfter = 150, connections = 16, perConnection = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for connection in 0..<connections {
                group.addTask {
                    for index in 0..<perConnection {
                        let commit = String(format: "%040lx", connection * 1000 + index + 1)
                        let body = harness.pushPayload(commit: commit)
                        let request = HTTPClientRequest(
                            method: "POST", url: served.base + "/hooks/github",
                            headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"),
                                      ("X-GitHub-Delivery", "durable-\(connection)-\(index)"),
                                      ("X-Hub-Signature-256", WebhookSignature.sign(body: body, secret: BuiltServer.webhookSecret))],
                            body: body, timeout: .seconds(30))
                        // Once the server is gone, requests fail: those were never answered.
                        guard let answer = try? await HTTPClient().send(request) else { return }
                        guard answer.status == 202 else {
                            Issue.record("\(answer.status): \(String(decoding: answer.body, as: UTF8.self))")
                            return
                        }
                        let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
                        guard let id = json?["id"] as? String else { Issue.record("a 202 with no id"); return }
                        let count = accepted.ids.withLock { $0.append(JobID(rawValue: id)); return $0.count }
                        if count == killAfter {
                            kill(served.process.pid, SIGKILL)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        _ = served.process.waitForExit()
        let answered = accepted.ids.withLock { $0 }
        #expect(answered.count >= killAfter, "only \(answered.count) pushes were answered before the kill")
        #expect(Set(answered).count == answered.count, "a job id was answered twice")
        let store = try SQLiteJobStore(path: harness.folder + "/serve.sqlite")
        var missing: [JobID] = []
        for id in answered where try await store.job(id: id) == nil { missing.append(id) }
        #expect(missing.isEmpty, "\(missing.count) of \(answered.count) jobs answered 202 are not stored: \(missing.prefix(5))")
        // Each stored job has its delivery and starts with its queued event.
        #expect(try await store.deliveryCount() == (try await store.jobCount()))
        for id in answered.prefix(20) {
            #expect(try await store.events(of: id, after: 0).first?.status == .queued)
        }
    }
}
