import DeferredArtifacts
import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredHTTP
import DeferredProviders
import DeferredRunner
import DeferredSignatures
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
    /// Static hosts only, unless a test gives an EC2 provider.
    var providers = HostProviders(ec2: nil)
    /// How often housekeeping looks for idle cloud hosts, expired jobs and held results.
    var sleepCheckInterval: Duration = .seconds(60)
    /// Tries at storing a finished job's files before its end is held for housekeeping.
    var publishAttempts = 6
    /// How long an event stream may be quiet before a keepalive comment.
    var heartbeat: Duration = .seconds(15)
    /// The event streams served below the router that wait for their job's next change.
    let caughtUp = CaughtUpListeners()
    /// Before the first retry of a commit status or notify_url post.
    var outboundRetryBase: Duration = .seconds(1)
    /// The clock of housekeeping and wake timeouts; tests of minutes and days move one by hand.
    var time: any TimeSource = SystemTime()
    /// How long a timed-out job's silent host is waited for past the kill grace.
    var stallGrace: Duration = .seconds(3)
    /// Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
    var killGrace = 1
    /// How often the dispatcher looks at the queue without being woken.
    var pollInterval: Duration = .seconds(1)
    /// How long an ended job's folder waits for the next exec to its host before it goes alone.
    var forgetDelay: Duration = .seconds(1)
    let store: SQLiteJobStore
    var artifacts: any ArtifactStore

    init(command: String? = "./script/job.sh", branches: [String] = ["main"], timeoutMinutes: Double = 5,
         knownHosts: String? = nil) async throws {
        folder = NSTemporaryDirectory() + "deferred-test-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
        repo = try await SampleRepository.create(at: folder + "/repo")
        let host = HostConfig(name: "loopback", address: "127.0.0.1", port: sshd.port, user: sshd.user,
                              identity: sshd.clientKey, knownHosts: knownHosts ?? sshd.knownHosts)
        let project = ProjectConfig(name: "sample", repository: Self.repository, branches: branches, command: command,
                                    cloneURL: repo.path, hosts: ["loopback"], timeoutMinutes: timeoutMinutes)
        config = DeferredConfig(
            server: ServerConfig(listenHost: "127.0.0.1", listenPort: 0, publicURL: "http://deferred.test",
                                 adminToken: nil),
            store: .sqlite(folder + "/state.sqlite"), github: GitHubConfig(secret: Self.secret), artifacts: ArtifactsConfig(directory: folder + "/artifacts"),
            idle: IdleConfig(), hosts: [host], projects: [project])
        store = try SQLiteJobStore(path: config.store.sqlitePath!)
        artifacts = FileArtifactStore(directory: config.artifacts.directory)
    }

    deinit {
        sshd.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    func makeDispatcher() -> Dispatcher {
        Dispatcher(config: config, store: store, artifacts: artifacts, runner: JobRunner(killGrace: killGrace, stallGrace: stallGrace),
                   providers: providers, outboundRetryBase: outboundRetryBase, publishAttempts: publishAttempts,
                   pollInterval: pollInterval, forgetDelay: forgetDelay, time: time, logger: Logger(label: "test"))
    }

    /// Serves the routes over a real loopback socket with a running dispatcher, for `body`.
    /// With `dispatching: false` jobs stay queued, for tests of the intake alone.
    func serve<T: Sendable>(dispatching: Bool = true, _ body: @Sendable @escaping (any TestClientProtocol) async throws -> T) async throws -> T {
        let dispatcher = makeDispatcher()
        let housekeeping = dispatcher.housekeeping(every: sleepCheckInterval, time: time)
        let running = Task {
            guard dispatching else { return }
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await dispatcher.run() }
                group.addTask { try await housekeeping.run() }
            }
        }
        defer { running.cancel() }
        let router = ServerApplication.router(config: config, store: store, artifacts: artifacts, heartbeat: heartbeat,
                                              hostCommands: HostControl(config: config, store: store, providers: providers,
                                                                        waker: dispatcher.waker),
                                              onQueued: { dispatcher.jobQueued() }, onCancel: { dispatcher.cancelRequested($0) })
        // The test client keeps one connection for a whole test, and some tests wait minutes
        // between requests: no idle timeout here (ConnectionLimitTests checks it on the built server).
        var served = config
        served.server.idleTimeoutSeconds = 24 * 3600
        let app = Application(router: router, server: ServerApplication.server(config: served, store: store, artifacts: artifacts, heartbeat: heartbeat,
                                                                                       caughtUp: caughtUp),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: ServerApplication.serverName))
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
            // An S3 store answers with a presigned URL: fetched like any browser would.
            if response.status == .found, let location = response.headers[.location] {
                let stored = try await DeferredCloud.HTTPClient().send(HTTPClientRequest(url: location))
                #expect(stored.status == 200)
                return (try? JSONSerialization.jsonObject(with: stored.body)) as? [String: Any] ?? [:]
            }
            #expect(response.status == .accepted, "\(response.status): \(String(buffer: response.body))")
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("no results.json at \(resultURL) after a minute")
        return [:]
    }

    /// An ed25519 key made by ssh-keygen, listed in the project's allowed_signers as `principal`.
    func addSigner(_ name: String, principal: String, options: String = "") async throws -> String {
        let key = folder + "/" + name
        let publicKey = try await LocalKey.makeEd25519(at: key, comment: principal)
        let line = "\(principal) \(options) \(publicKey)\n"
        signersText += line
        config.projects[0].allowedSigners = try AllowedSigners(text: signersText)
        return key
    }

    private var signersText = ""

    /// `ssh-keygen -Y sign` of `script`: the armored signature.
    func sign(_ script: String, key: String, namespace: String = "deferred") async throws -> String {
        let file = folder + "/script-" + UUID().uuidString.prefix(8)
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        try await LocalCommand.runOffPool(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", key, file])
        return try String(contentsOfFile: file + ".sig", encoding: .utf8)
    }

    static func postScript(_ client: any TestClientProtocol, project: String = "sample", _ fields: [String: String],
                           headers extra: HTTPFields = [:]) async throws -> TestResponse {
        let body = try JSONSerialization.data(withJSONObject: fields)
        return try await postScript(client, project: project, body: body, headers: extra)
    }

    static func postScript(_ client: any TestClientProtocol, project: String = "sample", body: Data,
                           contentType: String = "application/json", headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType]
        headers.append(contentsOf: extra)
        return try await client.execute(uri: "/projects/\(project)/scripts", method: .post, headers: headers,
                                        body: ByteBuffer(bytes: body))
    }

    func pushPayload(commit: String, ref: String = "refs/heads/main") -> Data {
        repo.pushPayload(repository: Self.repository, ref: ref, commit: commit)
    }

    /// A deferred.toml for the built executable, as an operator writes one: this harness's sshd
    /// as host `loopback`, project `sample`, the webhook secret in DEFERRED_TEST_SECRET, and
    /// the given lines added to `[server]`, `[artifacts]` and the project. Returns its path.
    func writeConfig(server: [String], store: [String] = [], artifacts: [String], host: [String] = [], project: [String] = [],
                     github: [String] = []) throws -> String {
        let path = folder + "/deferred.toml"
        try ((["[server]"] + server + (store.isEmpty ? [] : ["[store]"] + store) + ["[github]", #"secret_env = "DEFERRED_TEST_SECRET""#] + github
              + ["[artifacts]"] + artifacts + [
            "[[hosts]]", #"name = "loopback""#, #"address = "127.0.0.1""#, "port = \(sshd.port)", #"user = "\#(sshd.user)""#,
            #"identity = "\#(sshd.clientKey)""#, #"known_hosts = "\#(sshd.knownHosts)""#] + host + [
            "[[projects]]", #"name = "sample""#, #"repository = "octo-org/sample""#, #"hosts = ["loopback"]"#,
        ] + project).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A push job of a new commit holding `files`, put straight into the store as the intake
    /// would, with the configured hosts registered: for tests of what a server start finds.
    func storePush(_ files: [String: String], delivery: String) async throws -> Job {
        let commit = try await repo.commit(files)
        let job = Job(project: "sample", trigger: .push(PushTrigger(
            repository: Self.repository, ref: "refs/heads/main", commit: commit, delivery: delivery,
            pusher: "octocat", cloneURL: repo.path)))
        _ = try await store.enqueue(job, delivery: delivery)
        try await store.register(hosts: config.hosts)
        return job
    }

    /// Runs a push of `files` end to end and returns results.json.
    /// Pushes a job that runs until the test releases it, and returns once it runs: "while it
    /// runs" does not depend on how fast a loaded machine gets there (the host is this machine).
    /// Its output is "long done".
    func startHeldJob(_ client: any TestClientProtocol) async throws -> (resultURL: String, release: @Sendable () -> Void) {
        let release = folder + "/release-long-job"
        let commit = try await repo.commit(["script/job.sh": "#!/bin/sh\nwhile [ ! -e '\(release)' ]; do sleep 0.1; done\necho long done\n"])
        let response = try await Self.post(client, pushPayload(commit: commit))
        let url = try #require(Self.json(response)["result_url"] as? String)
        for _ in 0..<1200 where try await store.jobs().first?.status != .running { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await store.jobs().first?.status == .running)
        return (url, { _ = FileManager.default.createFile(atPath: release, contents: Data()) })
    }

    /// The details of the first job's events, once one of them is `found` (or after 30 s).
    func firstJobsEventDetails(until found: (String) -> Bool) async throws -> [String] {
        var said: [String] = []
        for _ in 0..<600 {
            if let job = try await store.jobs().first {
                said = try await store.events(of: job.id).compactMap(\.detail)
                if said.contains(where: found) { break }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return said
    }

    /// Idle sleep (idle timeout 0) beside a running job leaves the job's host up; once the job
    /// has ended, the host goes. `machine` says what the provider's side has it as.
    func expectIdleSleepSparesABusyHost(machine: @escaping @Sendable () async throws -> String?, up: String, down: String) async throws {
        config.idle.timeoutMinutes = 0
        // The test's own passes decide: the serve timer's pass, coming due as the job ends on a
        // slow machine, would stop the host first and leave the test's pass nothing to do.
        sleepCheckInterval = .seconds(24 * 3600)
        let store = self.store, config = self.config, providers = self.providers
        try await serve { client in
            let (url, release) = try await self.startHeldJob(client)
            let sleeper = IdleSleeper(config: config, store: store, providers: providers)
            #expect(await sleeper.pass(now: Date().addingTimeInterval(3600)).isEmpty)
            #expect(try await machine() == up)
            release()
            let results = try await Self.results(client, resultURL: url)
            #expect(results["stdout"] as? String == "long done\n")
            #expect(await sleeper.pass(now: Date().addingTimeInterval(1)).map(\.slept) == [true])
            #expect(try await machine() == down)
        }
    }

    func runPush(_ client: any TestClientProtocol, files: [String: String], ref: String = "refs/heads/main") async throws -> [String: Any] {
        let commit = try await repo.commit(files)
        let response = try await Self.post(client, pushPayload(commit: commit, ref: ref))
        #expect(response.status == .accepted)
        let answer = Self.json(response)
        let url = try #require(answer["result_url"] as? String)
        return try await Self.results(client, resultURL: url)
    }

    /// `count` pushes of one commit holding `files`, all sent before any is waited for, and
    /// each one's results. Distinct pushes (each its pusher), not one sent again: the same
    /// body again is a replay, deduplicated.
    func runPushes(_ client: any TestClientProtocol, count: Int, files: [String: String]) async throws -> [[String: Any]] {
        let commit = try await repo.commit(files)
        var urls: [String] = []
        for n in 0..<count {
            let body = repo.pushPayload(repository: Self.repository, ref: "refs/heads/main", commit: commit, pusher: "octocat\(n)")
            let response = try await Self.post(client, body)
            urls.append(try #require(Self.json(response)["result_url"] as? String))
        }
        var results: [[String: Any]] = []
        for url in urls { results.append(try await Self.results(client, resultURL: url)) }
        return results
    }
}

extension Data {
    init(buffer: ByteBuffer) {
        self.init(buffer.readableBytesView)
    }
}
