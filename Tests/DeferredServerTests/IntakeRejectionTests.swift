import DeferredCore
import DeferredDemo
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
            // A body announced past the limit is refused before it is read: the answer comes
            // while most of the 26 MiB was never sent.
            let refusal = try await Self.announcedTooLarge(port: try #require(client.port), good: good)
            #expect(refusal.hasPrefix("HTTP/1.1 413"), "\(refusal)")
            #expect(refusal.lowercased().contains("content-type: application/json"), "\(refusal)")
            #expect(refusal.contains("larger than"), "\(refusal)")
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

    /// What the server answers a signed delivery whose headers announce 26 MiB, of which only
    /// the first 64 KiB are sent. Over a socket of its own, on a thread of its own: a test client
    /// would send the whole body, and that alone outlasts its timeout on a machine busy with
    /// the other suites.
    static func announcedTooLarge(port: Int, good: Data) async throws -> String {
        let announced = 26 << 20
        let signature = WebhookSignature.sign(body: good, secret: ServerHarness.secret)
        let head = "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "X-GitHub-Event: push\r\nX-GitHub-Delivery: \(UUID().uuidString)\r\nX-Hub-Signature-256: \(signature)\r\n"
            + "Content-Length: \(announced)\r\nConnection: close\r\n\r\n"
        guard let fd = FreePort.connectLoopback(port: port) else { throw POSIXError(.ECONNREFUSED) }
        defer { close(fd) }
        return await OffPool.run {
            let sent = (Array(head.utf8) + [UInt8](repeating: UInt8(ascii: " "), count: 64 << 10)).withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return "nothing sent: \(String(cString: strerror(errno)))" }
            // Read until the server closes or a minute passes: a bound against hanging, not a speed check.
            var answer: [UInt8] = []
            let until = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < until {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 250) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                answer += buffer[0..<n]
                if String(decoding: answer, as: UTF8.self).contains("larger than") { break }
            }
            return String(decoding: answer, as: UTF8.self)
        }
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
