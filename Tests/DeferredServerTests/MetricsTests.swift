import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredTestSupport
import Foundation
import Testing

/// `/metrics` as a real Prometheus (Debian's) scrapes it: with the bearer token of
/// `[metrics] token_env`, and its counters moving after a push.
@Suite struct MetricsTests {
    static let tokenVariable = "DEFERRED_TEST_METRICS_TOKEN"
    static let token = "metrics-token-for-tests"

    /// The value of a PromQL query's first series, nil while it has none.
    static func query(_ prometheus: String, _ promQL: String) async throws -> Double? {
        let encoded = promQL.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        // Nil too while Prometheus is still starting.
        guard let answer = try? await HTTPClient().send(HTTPClientRequest(url: "\(prometheus)/api/v1/query?query=\(encoded)", timeout: .seconds(10))) else {
            return nil
        }
        let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
        let result = ((json?["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
        return (result?["value"] as? [Any])?.last.flatMap { ($0 as? String).flatMap(Double.init) }
    }

    @Test(.enabled(if: Programs.path(of: "prometheus") != nil, "prometheus is not installed: run scripts/setup, which installs Debian's prometheus"))
    func aRealPrometheusScrapesTheServerAndSeesAPushCounted() async throws {
        let harness = try await ServerHarness()
        let server = try await BuiltServer.start(harness, project: [#"command = 'echo measured; printf 12345 > "$DEFERRED_ARTIFACTS/five.txt"'"#], tables: ["[metrics]", #"token_env = "\#(Self.tokenVariable)""#],
                                                 environment: BuiltServer.environment().merging([Self.tokenVariable: Self.token]) { $1 })
        defer { server.stop() }
        let http = HTTPClient()
        let refused = try await http.send(HTTPClientRequest(url: server.base + "/metrics", timeout: .seconds(10)))
        #expect(refused.status == 401)
        let scraped = try await http.send(HTTPClientRequest(url: server.base + "/metrics", headers: [("Authorization", "Bearer \(Self.token)")], timeout: .seconds(10)))
        #expect(scraped.status == 200 && String(decoding: scraped.body, as: UTF8.self).contains(#"deferred_hosts{state="ready"} 1"#),
                "\(String(decoding: scraped.body, as: UTF8.self))")

        // Prometheus of its own: a scrape a second, the token in a file, its data in the harness's folder.
        let folder = harness.folder + "/prometheus"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Self.token.write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        try """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: deferred
                authorization:
                  credentials_file: \(folder)/token
                static_configs:
                  - targets: ['127.0.0.1:\(server.port)']

            """.write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        let port = try FreePort.find()
        let prometheus = try SpawnedProcess(executable: try #require(Programs.path(of: "prometheus")), arguments: [
            "--config.file=\(folder)/prometheus.yml", "--storage.tsdb.path=\(folder)/data", "--web.listen-address=127.0.0.1:\(port)",
        ], stderrPath: folder + "/prometheus.log")
        defer { prometheus.terminate() }
        let base = "http://127.0.0.1:\(port)"
        try await StalledHostTests.eventually("Prometheus scrapes the server") { try await Self.query(base, #"up{job="deferred"}"#) == 1 }

        let commit = try await harness.repo.commit(["README.md": "measured\n"])
        let body = harness.repo.pushPayload(repository: ServerHarness.repository, ref: "refs/heads/main", commit: commit)
        let pushed = try await http.send(HTTPClientRequest(
            method: "POST", url: server.base + "/hooks/github",
            headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", UUID().uuidString),
                      ("X-Hub-Signature-256", WebhookSignature.sign(body: body, secret: BuiltServer.webhookSecret))],
            body: body, timeout: .seconds(30)))
        #expect(pushed.status == 202)
        try await StalledHostTests.eventually("Prometheus sees the push accepted") {
            try await Self.query(base, #"deferred_webhooks_received_total{outcome="accepted"}"#) == 1
        }
        try await StalledHostTests.eventually("Prometheus sees the job succeed") {
            try await Self.query(base, #"sum(deferred_jobs_finished_total{status="succeeded"})"#) == 1
        }
        #expect(try await Self.query(base, "deferred_job_run_seconds_count") == 1)
        #expect(try await Self.query(base, #"deferred_artifact_bytes_total{project="sample"}"#) == 5)
        // The host's clocks move at each scrape: awake all along (a static host), busy while its job ran.
        let first = try await Self.query(base, #"deferred_host_awake_seconds_total{host="loopback"}"#) ?? 0
        try await StalledHostTests.eventually("the host's awake time grows") {
            (try await Self.query(base, #"deferred_host_awake_seconds_total{host="loopback"}"#) ?? 0) > first
        }
        #expect(try await Self.query(base, #"deferred_host_busy_seconds_total{host="loopback"}"#) != nil)
        #expect(try await Self.query(base, #"deferred_queue_depth{project="sample"}"#) == 0)
    }

    /// The value of one series of a scrape in Prometheus' text format, nil when it is absent.
    static func series(_ scrape: String, _ name: String, _ labels: [String: String]) -> Double? {
        for line in scrape.split(separator: "\n") where line.hasPrefix(name + "{") {
            guard let close = line.lastIndex(of: "}") else { continue }
            let inside = line[line.index(line.startIndex, offsetBy: name.count + 1)..<close]
            let found = Dictionary(inside.split(separator: ",").compactMap { pair -> (String, String)? in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))) : nil
            }, uniquingKeysWith: { $1 })
            if labels.allSatisfy({ found[$0.key] == $0.value }) {
                return Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// A stopped EC2 instance (moto, behind a proxy that throttles and fails at first) woken for
    /// a job whose SSH connection is dropped midway: `/metrics` counts the wake and how long it
    /// took, every cloud call by outcome and retry, and the reconnect.
    @Test func wakesCloudCallsAndReconnectsAreCounted() async throws {
        let moto = try await ThrowawayMoto.account()
        let direct = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let id = try #require(try await direct.runInstances(EC2LaunchRequest(imageID: "ami-builder", instanceType: "t3.micro")).first?.id)
        try await direct.stopInstances(ids: [id])
        #expect(try await CloudHostTests.state(id, direct) == "stopped")
        let proxy = try await FaultInjectingProxy(to: moto.endpoint, failing: [FaultInjectingProxy.throttling, FaultInjectingProxy.unavailable])
        defer { proxy.stop() }

        let harness = try await ServerHarness()
        let marked = ReattachTests.Marked(folder: harness.folder)
        var environment = BuiltServer.environment()
        environment["AWS_ACCESS_KEY_ID"] = moto.credentials.accessKeyID
        environment["AWS_SECRET_ACCESS_KEY"] = moto.credentials.secretAccessKey
        environment["AWS_SESSION_TOKEN"] = moto.credentials.sessionToken
        let server = try await BuiltServer.start(
            harness, project: [#"command = "sh script/job.sh""#],
            host: [#"provider = "ec2""#, #"instance_id = "\#(id)""#, #"region = "us-east-1""#, #"endpoint = "\#(proxy.endpoint)""#],
            environment: environment)
        defer { server.stop() }

        let commit = try await harness.repo.commit(["script/job.sh": marked.script])
        let body = harness.repo.pushPayload(repository: ServerHarness.repository, ref: "refs/heads/main", commit: commit)
        let pushed = try await HTTPClient().send(HTTPClientRequest(
            method: "POST", url: server.base + "/hooks/github",
            headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", UUID().uuidString),
                      ("X-Hub-Signature-256", WebhookSignature.sign(body: body, secret: BuiltServer.webhookSecret))],
            body: body, timeout: .seconds(30)))
        #expect(pushed.status == 202)
        let answer = (try? JSONSerialization.jsonObject(with: pushed.body)) as? [String: Any] ?? [:]
        let resultURL = try #require(answer["result_url"] as? String)
        try await StalledHostTests.eventually("the job starts") { FileManager.default.fileExists(atPath: marked.started) }
        #expect(ReattachTests.dropConnections(of: harness.sshd.pid) > 0)
        #expect(FileManager.default.createFile(atPath: marked.release, contents: Data()))
        let results = try await server.results(at: String(resultURL.dropFirst(server.base.count)))
        #expect(results["status"] as? String == "succeeded", "\(results)")
        #expect(marked.runCount == 1)

        let scraped = try await HTTPClient().send(HTTPClientRequest(url: server.base + "/metrics", timeout: .seconds(10)))
        let text = String(decoding: scraped.body, as: UTF8.self)
        #expect(Self.series(text, MetricName.hostWakes, ["host": "loopback", "outcome": "woken"]) == 1, "\(text)")
        #expect(Self.series(text, MetricName.hostWake + "_count", ["host": "loopback"]) == 1, "\(text)")
        #expect((Self.series(text, MetricName.sshReconnects, ["host": "loopback"]) ?? 0) >= 1, "\(text)")
        // The proxy's two faults were the first calls: a throttled one and a 5xx, the second a retry.
        let calls = ["service": "ec2"]
        #expect(Self.series(text, MetricName.cloudCalls, calls.merging(["outcome": "throttled", "retry": "false"]) { $1 }) == 1, "\(text)")
        #expect(Self.series(text, MetricName.cloudCalls, calls.merging(["outcome": "server_error", "retry": "true"]) { $1 }) == 1, "\(text)")
        #expect((Self.series(text, MetricName.cloudCalls, calls.merging(["action": "StartInstances", "outcome": "ok"]) { $1 }) ?? 0) >= 1, "\(text)")
        #expect(await proxy.faults.injected == 2)
    }

    /// Hetzner and DigitalOcean hosts are counted as every host is: the wake by outcome, and
    /// each API call by the cloud's own service, its path's shape, outcome and retry.
    @Test(arguments: CloudUnderTest.allCases)
    func aServerCloudsWakeAndCallsAreCountedLikeAnyHosts(_ cloud: CloudUnderTest) async throws {
        let api = try await cloud.fake(token: "metrics-token", servers: [42: .init(name: "builder", status: "off", ip: "127.0.0.1")])
        defer { api.stop() }
        await api.state.inject([503])
        let harness = try await ServerHarness()
        var environment = BuiltServer.environment()
        environment[cloud.tokenEnv] = "metrics-token"
        let server = try await BuiltServer.start(
            harness, project: [#"command = "sh script/job.sh""#], host: [#"provider = "\#(cloud.kind.rawValue)""#, "\(cloud == .hetzner ? "server_id" : "droplet_id") = 42",
                            #"token_env = "\#(cloud.tokenEnv)""#, #"endpoint = "\#(api.url)""#],
            environment: environment)
        defer { server.stop() }
        let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho counted\n"])
        let body = harness.repo.pushPayload(repository: ServerHarness.repository, ref: "refs/heads/main", commit: commit)
        let pushed = try await HTTPClient().send(HTTPClientRequest(
            method: "POST", url: server.base + "/hooks/github",
            headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", UUID().uuidString),
                      ("X-Hub-Signature-256", WebhookSignature.sign(body: body, secret: BuiltServer.webhookSecret))],
            body: body, timeout: .seconds(30)))
        let answer = (try? JSONSerialization.jsonObject(with: pushed.body)) as? [String: Any] ?? [:]
        let resultURL = try #require(answer["result_url"] as? String)
        let results = try await server.results(at: String(resultURL.dropFirst(server.base.count)))
        #expect(results["stdout"] as? String == "counted\n", "\(results)")

        let scraped = try await HTTPClient().send(HTTPClientRequest(url: server.base + "/metrics", timeout: .seconds(10)))
        let text = String(decoding: scraped.body, as: UTF8.self)
        #expect(Self.series(text, MetricName.hostWakes, ["host": "loopback", "outcome": "woken"]) == 1, "\(text)")
        let read = ["service": cloud.rawValue, "action": "GET /\(cloud == .hetzner ? "servers" : "droplets")/{id}"]
        #expect(Self.series(text, MetricName.cloudCalls, read.merging(["outcome": "server_error", "retry": "false"]) { $1 }) == 1, "\(text)")
        #expect((Self.series(text, MetricName.cloudCalls, read.merging(["outcome": "ok", "retry": "true"]) { $1 }) ?? 0) == 1, "\(text)")
        #expect(!text.contains("metrics-token"))
        #expect(await api.state.powered == ["on 42"])
    }
}
