import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// What the intake refuses so that one sender or one project cannot crowd out the rest: a
/// project's full backlog, a replayed push under a new delivery id, a body past its limit.
@Suite struct IntakeBackpressureTests {
    static func commit(_ n: Int) -> String { String(format: "%040x", n + 1) }

    @Test func aPushFloodOnOneProjectRefusesItsOwnPushesButNotAnotherProjectsScripts() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].maxQueued = 3
        harness.config.projects.append(ProjectConfig(
            name: "other", repository: "other-org/other", command: "true", hosts: ["loopback"], scriptSecret: "other-secret"))
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            var statuses: [HTTPResponse.Status] = []
            var refusal: TestResponse?
            for n in 0..<8 {
                let response = try await ServerHarness.post(client, harness.pushPayload(commit: Self.commit(n)))
                statuses.append(response.status)
                if response.status != .accepted, refusal == nil { refusal = response }
            }
            #expect(statuses == Array(repeating: .accepted, count: 3) + Array(repeating: .serviceUnavailable, count: 5))
            let refused = try #require(refusal)
            #expect(refused.headers[.retryAfter] == "30")
            let message = ServerHarness.json(refused)["error"] as? String ?? ""
            #expect(message.contains("project 'sample'") && message.contains("max_queued = 3"), "\(message)")

            // Another project's script still gets in while the first one's backlog is full.
            let script = "#!/bin/sh\necho other\n"
            let posted = try await ServerHarness.postScript(client, project: "other", [
                "script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: "other-secret"),
            ])
            #expect(posted.status == .accepted, "\(String(buffer: posted.body))")
            #expect(try await store.jobCount() == 4)
        }
    }

    @Test func aPushReplayedUnderANewDeliveryIDGetsTheFirstJob() async throws {
        let harness = try await ServerHarness()
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            let body = harness.pushPayload(commit: Self.commit(7))
            let first = try await ServerHarness.post(client, body, delivery: "delivery-1")
            let replay = try await ServerHarness.post(client, body, delivery: "delivery-2")
            #expect(first.status == .accepted && replay.status == .accepted)
            let id = ServerHarness.json(first)["id"] as? String
            #expect(id != nil && ServerHarness.json(replay)["id"] as? String == id)
            // The first delivery id still names its job; a new push is a new job.
            let again = try await ServerHarness.post(client, body, delivery: "delivery-1")
            #expect(ServerHarness.json(again)["id"] as? String == id)
            let other = try await ServerHarness.post(client, harness.pushPayload(commit: Self.commit(8)), delivery: "delivery-3")
            #expect(ServerHarness.json(other)["id"] as? String != id)
            #expect(try await store.jobCount() == 2)
        }
    }

    @Test func aBodyPastASmallLimitSaysTheLimitInBytesItCanShow() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].maxScriptBytes = 1000
        try await harness.serve(dispatching: false) { client in
            let body = Data(("{\"script\": \"" + String(repeating: "x", count: 100_000) + "\"}").utf8)
            let response = try await ServerHarness.postScript(client, body: body)
            #expect(response.status == .contentTooLarge)
            let message = ServerHarness.json(response)["error"] as? String ?? ""
            #expect(message == "the body is larger than 65.9 KiB", "\(message)") // 2 × 1000 + 64 KiB
        }
    }

    @Test(arguments: [(0, "0 bytes"), (1, "1 byte"), (900, "900 bytes"), (1024, "1 KiB"), (66_536, "64.9 KiB"),
                      (25 << 20, "25 MiB"), (3 << 29, "1.5 GiB")])
    func sizesReadAsPeopleWriteThem(_ bytes: Int, _ text: String) {
        #expect(ByteCount.text(bytes) == text)
    }
}
