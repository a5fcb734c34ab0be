import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Every refused script post: the right status, a JSON error that says why, and nothing stored.
@Suite struct ScriptRejectionTests {
    static let script = "#!/bin/sh\necho fine\n"

    private func expectRefused(_ response: TestResponse, _ status: HTTPResponse.Status, saying words: String,
                               store: any JobStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
        let message = ServerHarness.json(response)["error"] as? String ?? ""
        #expect(message.contains(words), "\(message)", sourceLocation: sourceLocation)
        #expect(try await store.jobCount() == 0, sourceLocation: sourceLocation)
    }

    @Test func badPostsAreRefusedWithTheRightStatus() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].maxScriptBytes = 1000
        // Every post below counts against the client's rate; leave room for all of them.
        harness.config.scripts = ScriptLimits(ratePerMinute: 60, burst: 100, maxQueued: 100)
        let alice = try await harness.addSigner("alice", principal: "alice@example.com")
        let old = try await harness.addSigner("old", principal: "old@example.com", options: "valid-before=20200101Z")
        let gitOnly = try await harness.addSigner("git", principal: "git@example.com", options: "namespaces=\"git\"")
        let mallory = harness.folder + "/mallory"
        try await LocalKey.makeEd25519(at: mallory)
        let good = try await harness.sign(Self.script, key: alice)
        let store = harness.store
        let fields = (
            otherNamespace: try await harness.sign(Self.script, key: alice, namespace: "file"),
            expired: try await harness.sign(Self.script, key: old),
            gitOnly: try await harness.sign(Self.script, key: gitOnly),
            unknown: try await harness.sign(Self.script, key: mallory),
            big: String(repeating: "# padding\n", count: 101)
        )
        let bigSignature = try await harness.sign(fields.big, key: alice)
        try await harness.serve(dispatching: false) { client in
            try await expectRefused(try await ServerHarness.postScript(client, project: "nope", ["script": Self.script, "signature": good]),
                                    .notFound, saying: "no project is named 'nope'", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, body: Data(Self.script.utf8), contentType: "text/plain"),
                                    .unsupportedMediaType, saying: "application/json", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, body: Data("{\"script\": ".utf8)),
                                    .badRequest, saying: "not a JSON object", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script]),
                                    .badRequest, saying: "\"signature\" is missing", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": fields.big, "signature": bigSignature]),
                                    .contentTooLarge, saying: "at most 1000", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script + "rm -rf /\n", "signature": good]),
                                    .unauthorized, saying: "does not match this script", store: store)
            var flipped = Array(Self.script.utf8)
            flipped[12] ^= 0x20
            try await expectRefused(try await ServerHarness.postScript(client, ["script": String(decoding: flipped, as: UTF8.self), "signature": good]),
                                    .unauthorized, saying: "does not match", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": fields.otherNamespace]),
                                    .unauthorized, saying: "namespace 'file'", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": "not a signature"]),
                                    .unauthorized, saying: "not an SSH signature", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": fields.unknown]),
                                    .forbidden, saying: "is not in the project's allowed_signers", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": fields.expired]),
                                    .forbidden, saying: "valid only before 20200101Z", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": fields.gitOnly]),
                                    .forbidden, saying: "may not sign for namespace 'deferred'", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": good, "interpreter": "perl"]),
                                    .badRequest, saying: "'perl' is not allowed", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": good],
                                                                       headers: [.origin: "https://evil.example"]),
                                    .forbidden, saying: "may not post scripts", store: store)
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": good],
                                                                       headers: [.idempotencyKey: String(repeating: "k", count: 300)]),
                                    .badRequest, saying: "Idempotency-Key", store: store)
            // And the same good post is taken, so the refusals above were about what they said.
            let accepted = try await ServerHarness.postScript(client, ["script": Self.script, "signature": good])
            #expect(accepted.status == .accepted)
            #expect(try await store.jobCount() == 1)
        }
    }

    @Test func aProjectWithoutSignersTakesNoScripts() async throws {
        let harness = try await ServerHarness()
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            try await expectRefused(try await ServerHarness.postScript(client, ["script": Self.script, "signature": "sha256=00"]),
                                    .forbidden, saying: "accepts no scripts", store: store)
        }
    }

    /// Posts a good script three times under `limits`; returns the third answer, after
    /// checking the first two were taken and the third stored nothing.
    private func thirdPost(under limits: ScriptLimits, projectMaxQueued: Int = 100) async throws -> TestResponse {
        let harness = try await ServerHarness()
        harness.config.scripts = limits
        harness.config.projects[0].maxQueued = projectMaxQueued
        let key = try await harness.addSigner("alice", principal: "alice@example.com")
        let signature = try await harness.sign(Self.script, key: key)
        let store = harness.store
        return try await harness.serve(dispatching: false) { client in
            for _ in 0..<2 {
                #expect(try await ServerHarness.postScript(client, ["script": Self.script, "signature": signature]).status == .accepted)
            }
            let refused = try await ServerHarness.postScript(client, ["script": Self.script, "signature": signature])
            #expect(try await store.jobCount() == 2)
            return refused
        }
    }

    @Test func aClientPastItsRateIsToldWhenToComeBack() async throws {
        let refused = try await thirdPost(under: ScriptLimits(ratePerMinute: 1, burst: 2, maxQueued: 100))
        #expect(refused.status == .tooManyRequests)
        let retryAfter = try #require(refused.headers[.retryAfter].flatMap(Int.init))
        #expect((1...60).contains(retryAfter))
        #expect((ServerHarness.json(refused)["error"] as? String)?.contains("too many scripts") == true)
    }

    @Test func aFullQueueRefusesWithRetryAfter() async throws {
        let refused = try await thirdPost(under: ScriptLimits(ratePerMinute: 600, burst: 100), projectMaxQueued: 2)
        #expect(refused.status == .serviceUnavailable)
        #expect(refused.headers[.retryAfter] == "30")
        #expect((ServerHarness.json(refused)["error"] as? String)?.contains("waiting for a host") == true)
    }

    @Test func anIdempotencyKeyGivesTheSameJobForTheSameBodyAndRefusesAnother() async throws {
        let harness = try await ServerHarness()
        let key = try await harness.addSigner("alice", principal: "alice@example.com")
        let other = "#!/bin/sh\necho other\n"
        let signatures = (try await harness.sign(Self.script, key: key), try await harness.sign(other, key: key))
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            let body = try JSONSerialization.data(withJSONObject: ["script": Self.script, "signature": signatures.0])
            let first = try await ServerHarness.postScript(client, body: body, headers: [.idempotencyKey: "run-1"])
            let again = try await ServerHarness.postScript(client, body: body, headers: [.idempotencyKey: "run-1"])
            #expect(first.status == .accepted)
            #expect(again.status == .accepted)
            #expect(ServerHarness.json(again)["id"] as? String == ServerHarness.json(first)["id"] as? String)
            #expect(ServerHarness.json(again)["result_url"] as? String == ServerHarness.json(first)["result_url"] as? String)
            // The same fields in another order and spacing are the same body.
            let reordered = try JSONSerialization.data(withJSONObject: ["signature": signatures.0, "script": Self.script], options: [.prettyPrinted])
            let third = try await ServerHarness.postScript(client, body: Data(" ".utf8) + reordered, headers: [.idempotencyKey: "run-1"])
            #expect(ServerHarness.json(third)["id"] as? String == ServerHarness.json(first)["id"] as? String)
            let conflict = try await ServerHarness.postScript(client, ["script": other, "signature": signatures.1],
                                                              headers: [.idempotencyKey: "run-1"])
            #expect(conflict.status == .conflict)
            #expect((ServerHarness.json(conflict)["error"] as? String)?.contains("another body") == true)
            #expect(try await store.jobCount() == 1)
            // Another key is another job.
            let second = try await ServerHarness.postScript(client, body: body, headers: [.idempotencyKey: "run-2"])
            #expect(second.status == .accepted)
            #expect(try await store.jobCount() == 2)
        }
    }

    @Test func pagesFromAllowedOriginsMayPostAndPollOthersMayNot() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].allowedOrigins = ["https://blog.example"]
        let key = try await harness.addSigner("alice", principal: "alice@example.com")
        let signature = try await harness.sign(Self.script, key: key)
        try await harness.serve(dispatching: false) { client in
            let preflight = try await client.execute(uri: "/projects/sample/scripts", method: .options, headers: [
                .origin: "https://blog.example", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "content-type",
            ])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://blog.example")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("Content-Type") == true)
            let foreignPreflight = try await client.execute(uri: "/projects/sample/scripts", method: .options,
                                                            headers: [.origin: "https://evil.example"])
            #expect(foreignPreflight.status == .forbidden)
            #expect(foreignPreflight.headers[.accessControlAllowOrigin] == nil)

            let posted = try await ServerHarness.postScript(client, ["script": Self.script, "signature": signature],
                                                            headers: [.origin: "https://blog.example"])
            #expect(posted.status == .accepted)
            #expect(posted.headers[.accessControlAllowOrigin] == "https://blog.example")
            #expect(posted.headers[.vary] == "Origin")
            let path = try #require((ServerHarness.json(posted)["result_url"] as? String)?.replacingOccurrences(of: "http://deferred.test", with: ""))
            let poll = try await client.execute(uri: path, method: .get, headers: [.origin: "https://blog.example"])
            #expect(poll.status == .accepted)
            #expect(poll.headers[.accessControlAllowOrigin] == "https://blog.example")
            let foreignPoll = try await client.execute(uri: path, method: .get, headers: [.origin: "https://evil.example"])
            #expect(foreignPoll.status == .forbidden)
            #expect(foreignPoll.headers[.accessControlAllowOrigin] == nil)
            // A refusal the page caused still carries CORS, so the page can read why.
            let refused = try await ServerHarness.postScript(client, ["script": Self.script + "#", "signature": signature],
                                                             headers: [.origin: "https://blog.example"])
            #expect(refused.status == .unauthorized)
            #expect(refused.headers[.accessControlAllowOrigin] == "https://blog.example")
        }
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
}
