import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredHTTP
import DeferredRunner
import DeferredStore
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import Testing

/// A whole deferred on loopback: a real sshd as the build host, a sample git repository as
/// the project, the store and file artifacts in a temporary folder, the dispatcher running,
/// and the HTTP routes served over a real socket.
final class ServerHarness: @unchecked Sendable {
    static let secret = "test-secret"
    static let repository = "octo-org/sample"

    let folder: String
    let sshd: ThrowawaySSHD
    let repo: SampleRepository
    var config: DeferredConfig
    let store: JobStore
    let artifacts: FileArtifactStore

    init(command: String? = "./script/job.sh", branches: [String] = ["main"], timeoutMinutes: Double = 5,
         knownHosts: String? = nil) async throws {
        folder = NSTemporaryDirectory() + "deferred-test-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        sshd = try await ThrowawaySSHD.start(in: folder + "/sshd")
        repo = try SampleRepository.create(at: folder + "/repo")
        let host = HostConfig(name: "loopback", address: "127.0.0.1", port: sshd.port, user: sshd.user,
                              identity: sshd.clientKey, knownHosts: knownHosts ?? sshd.knownHosts)
        let project = ProjectConfig(name: "sample", repository: Self.repository, branches: branches, command: command,
                                    cloneURL: repo.path, hosts: ["loopback"], timeoutMinutes: timeoutMinutes)
        config = DeferredConfig(
            server: ServerConfig(listenHost: "127.0.0.1", listenPort: 0, publicURL: "http://deferred.test",
                                 statePath: folder + "/state.sqlite", adminToken: nil),
            github: GitHubConfig(secret: Self.secret), artifacts: ArtifactsConfig(directory: folder + "/artifacts"),
            idle: IdleConfig(), hosts: [host], projects: [project])
        store = try JobStore(path: config.server.statePath)
        artifacts = FileArtifactStore(directory: config.artifacts.directory)
    }

    deinit {
        sshd.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    func makeDispatcher() -> Dispatcher {
        Dispatcher(config: config, store: store, artifacts: artifacts, runner: JobRunner(killGrace: 1),
                   logger: Logger(label: "test"))
    }

    /// Serves the routes over a real loopback socket with a running dispatcher, for `body`.
    func serve<T: Sendable>(_ body: @Sendable @escaping (any TestClientProtocol) async throws -> T) async throws -> T {
        let dispatcher = makeDispatcher()
        let running = Task { try await dispatcher.run() }
        defer { running.cancel() }
        let router = ServerApplication.router(config: config, store: store, artifacts: artifacts,
                                              onQueued: { dispatcher.jobQueued() })
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let result = try await app.test(.live) { client in try await body(client) }
        running.cancel()
        _ = await running.result
        return result
    }

    // MARK: Requests

    static func headers(event: String = "push", delivery: String = UUID().uuidString, signature: String?,
                        contentType: String = "application/json") -> HTTPFields {
        var fields: HTTPFields = [.contentType: contentType]
        fields[HTTPField.Name("X-GitHub-Event")!] = event
        fields[HTTPField.Name("X-GitHub-Delivery")!] = delivery
        if let signature { fields[HTTPField.Name("X-Hub-Signature-256")!] = signature }
        return fields
    }

    static func post(_ client: any TestClientProtocol, _ body: Data, event: String = "push", delivery: String = UUID().uuidString,
                     signature: String? = nil, contentType: String = "application/json") async throws -> TestResponse {
        try await client.execute(
            uri: "/hooks/github", method: .post,
            headers: headers(event: event, delivery: delivery,
                             signature: signature ?? WebhookSignature.sign(body: body, secret: secret), contentType: contentType),
            body: ByteBuffer(bytes: body))
    }

    static func json(_ response: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
    }

    /// Polls the result URL until it answers 200 and returns results.json. A bound against
    /// hanging, not a speed check.
    static func results(_ client: any TestClientProtocol, resultURL: String) async throws -> [String: Any] {
        let path = String(resultURL.dropFirst("http://deferred.test".count))
        for _ in 0..<600 {
            let response = try await client.execute(uri: path, method: .get)
            if response.status == .ok { return json(response) }
            #expect(response.status == .accepted)
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("no results.json at \(resultURL) after a minute")
        return [:]
    }

    func pushPayload(commit: String, ref: String = "refs/heads/main") -> Data {
        repo.pushPayload(repository: Self.repository, ref: ref, commit: commit)
    }

    /// Runs a push of `files` end to end and returns results.json.
    func runPush(_ client: any TestClientProtocol, files: [String: String], ref: String = "refs/heads/main") async throws -> [String: Any] {
        let commit = try repo.commit(files)
        let response = try await Self.post(client, pushPayload(commit: commit, ref: ref))
        #expect(response.status == .accepted)
        let answer = Self.json(response)
        let url = try #require(answer["result_url"] as? String)
        return try await Self.results(client, resultURL: url)
    }
}

extension Data {
    init(buffer: ByteBuffer) {
        self.init(buffer.readableBytesView)
    }
}
