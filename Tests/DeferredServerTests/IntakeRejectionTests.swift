import DeferredCore
import DeferredStore
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing

/// Bad input gets the right status and a JSON error, and leaves no job, delivery or file.
@Suite struct IntakeRejectionTests {
    @Test func badDeliveriesAreRefusedAndChangeNothing() async throws {
        let harness = try await ServerHarness(branches: ["main"])
        let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\ntouch /tmp/deferred-should-not-run\n"])
        let good = harness.pushPayload(commit: commit)
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/fixtures/github")
        var tagDeleted = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("push-tag-deleted.json"))) as! [String: Any]
        var repository = tagDeleted["repository"] as! [String: Any]
        repository["full_name"] = ServerHarness.repository
        tagDeleted["repository"] = repository
        let tagDeletedBody = try JSONSerialization.data(withJSONObject: tagDeleted)
        let otherBranch = harness.pushPayload(commit: commit, ref: "refs/heads/feature/x")
        let unknownRepo = harness.repo.pushPayload(repository: "someone/else", ref: "refs/heads/main", commit: commit)
        let badRef = harness.pushPayload(commit: commit, ref: "refs/heads/a b;touch x")
        let big = Data(count: 26 << 20)

        struct Case: Sendable {
            var name: String
            var body: Data
            var signature: String?? = .none
            var contentType = "application/json"
            var status: HTTPResponse.Status
            var words: String
        }
        let wrongBodySignature = WebhookSignature.sign(body: Data("another body".utf8), secret: ServerHarness.secret)
        let cases: [Case] = [
            Case(name: "no signature", body: good, signature: .some(nil), status: .unauthorized, words: "X-Hub-Signature-256"),
            Case(name: "wrong secret", body: good, signature: WebhookSignature.sign(body: good, secret: "wrong"), status: .unauthorized, words: "does not match"),
            Case(name: "signature for another body", body: good, signature: wrongBodySignature, status: .unauthorized, words: "does not match"),
            Case(name: "malformed JSON", body: Data("{\"ref\": ".utf8), status: .badRequest, words: "not valid JSON"),
            Case(name: "unknown repository", body: unknownRepo, status: .notFound, words: "someone/else"),
            Case(name: "26 MiB body", body: big, status: .contentTooLarge, words: "larger than"),
            Case(name: "other content type", body: good, contentType: "text/plain", status: .unsupportedMediaType, words: "Content-Type"),
            Case(name: "ref git refuses", body: badRef, status: .badRequest, words: "not a valid git ref"),
            Case(name: "tag deletion", body: tagDeletedBody, status: .ok, words: "deletes"),
            Case(name: "branch outside the globs", body: otherBranch, status: .ok, words: "does not match project"),
        ]
        try await harness.serve { client in
            for c in cases {
                var headers = ServerHarness.headers(signature: nil, contentType: c.contentType)
                let signature: String? = switch c.signature {
                case .none: WebhookSignature.sign(body: c.body, secret: ServerHarness.secret)
                case .some(let s): s
                }
                if let signature { headers[HTTPField.Name("X-Hub-Signature-256")!] = signature }
                let response = try await client.execute(uri: "/hooks/github", method: .post, headers: headers, body: ByteBuffer(bytes: c.body))
                #expect(response.status == c.status, "\(c.name)")
                let json = ServerHarness.json(response)
                let said = (json["error"] ?? json["ignored"]) as? String ?? ""
                #expect(said.contains(c.words), "\(c.name): \(said)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(c.name)")
            }
            let ping = try await ServerHarness.post(client, try Data(contentsOf: fixtures.appendingPathComponent("ping.json")), event: "ping")
            #expect(ping.status == .ok)
            let unknown = try await client.execute(uri: "/r/\(ResultToken.make().rawValue)/results.json", method: .get)
            #expect(unknown.status == .notFound)
            #expect(ServerHarness.json(unknown)["error"] != nil)
            let traversal = try await client.execute(uri: "/r/..%2F..%2Fetc/results.json", method: .get)
            #expect(traversal.status == .notFound)
        }
        #expect(try await harness.store.jobCount() == 0)
        #expect(try await harness.store.deliveryCount() == 0)
        let stored = (try? FileManager.default.contentsOfDirectory(atPath: harness.config.artifacts.directory)) ?? []
        #expect(stored.isEmpty)
    }

    @Test func resultURLsAnswerPagesOnOtherOrigins() async throws {
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\nsleep 1\n"])
            let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            let url = try #require(ServerHarness.json(response)["result_url"] as? String)
            let path = String(url.dropFirst("http://deferred.test".count))
            let pending = try await client.execute(uri: path, method: .get, headers: [.origin: "https://example.com"])
            #expect(pending.status == .accepted)
            #expect(["queued", "waiting_for_host", "running"].contains(ServerHarness.json(pending)["status"] as? String ?? ""))
            #expect(pending.headers[.accessControlAllowOrigin] == "*")
            let preflight = try await client.execute(uri: path, method: .options, headers: [
                .origin: "https://example.com", .accessControlRequestMethod: "GET"])
            #expect(preflight.headers[.accessControlAllowOrigin] == "*")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("GET") == true)
            _ = try await ServerHarness.results(client, resultURL: url)
        }
    }
}
