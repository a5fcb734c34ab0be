import DeferredCloud
import DeferredCore
import DeferredDispatcher
import DeferredProviders
import Foundation
import Testing

/// Hosts that are Hetzner Cloud servers, on FakeHetzner (written from the published API
/// reference; no real peer runs here) as the API and the test's sshd as the server's SSH.
@Suite struct HetznerHostTests {
    static let token = "hetzner-test-token"

    private func hetznerHost(_ harness: ServerHarness, status: String, token: String = HetznerHostTests.token) async throws -> FakeHetzner {
        let api = try await FakeHetzner(token: Self.token, servers: [42: .init(name: "builder", status: status, ip: "127.0.0.1")])
        harness.config.hosts[0].provider = .hetzner
        harness.config.hosts[0].hetzner = HetznerServer(id: 42, token: token, tokenEnv: "HCLOUD_TOKEN", endpoint: api.url)
        harness.providers = HostProviders(ec2: nil, hetzner: HetznerHostProvider(
            pollInterval: .milliseconds(50), shutdownGrace: .seconds(2), retry: RetryPolicy(base: .milliseconds(20), cap: .milliseconds(200))))
        return api
    }

    @Test func aPushPowersOnAServerThatIsOffAndIdleSleepShutsItDown() async throws {
        let harness = try await ServerHarness()
        let api = try await hetznerHost(harness, status: "off")
        defer { api.stop() }
        let store = harness.store
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho on the Hetzner server\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "on the Hetzner server\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
            #expect(await api.state.status(of: 42) == "running")
            let job = try #require(try await store.jobs().first)
            let waits = try await store.events(of: job.id).filter { $0.status == .waitingForHost }.compactMap(\.detail)
            #expect(waits.contains { $0.contains("server 42 is off") }, "\(waits)")
            #expect(waits.contains { $0.contains("powering on server 42") }, "\(waits)")
        }
        #expect(await api.state.calls.contains("POST /v1/servers/42/actions/poweron"))
        harness.config.idle.timeoutMinutes = 0
        let sleeper = IdleSleeper(config: harness.config, store: store, providers: harness.providers)
        let reports = await sleeper.pass()
        #expect(reports.map(\.host) == ["loopback"] && reports.allSatisfy(\.slept), "\(reports)")
        #expect(await api.state.status(of: 42) == "off")
        let calls = await api.state.calls
        #expect(calls.contains("POST /v1/servers/42/actions/shutdown") && !calls.contains("POST /v1/servers/42/actions/poweroff"), "\(calls)")
        #expect(try await store.hosts().first?.state == .stopped)
    }

    /// A system that ignores ACPI is powered off once the grace has passed.
    @Test func aServerThatIgnoresTheShutdownIsPoweredOffAfterTheGrace() async throws {
        let harness = try await ServerHarness()
        let api = try await hetznerHost(harness, status: "running")
        defer { api.stop() }
        await api.state.ignoreACPI()
        try await HetznerHostProvider(pollInterval: .milliseconds(50), shutdownGrace: .milliseconds(500))
            .sleep(harness.config.hosts[0], terminate: false)
        #expect(await api.state.status(of: 42) == "off")
        let calls = await api.state.calls
        #expect(calls.contains("POST /v1/servers/42/actions/shutdown") && calls.contains("POST /v1/servers/42/actions/poweroff"), "\(calls)")
    }

    @Test func aMachineRunningAJobIsNotShutDownBesideIt() async throws {
        let harness = try await ServerHarness()
        let api = try await hetznerHost(harness, status: "off")
        defer { api.stop() }
        try await harness.expectIdleSleepSparesABusyHost(machine: { await api.state.status(of: 42) }, up: "running", down: "off")
    }

    /// 429 with RateLimit-Reset, and 503, are tried again; the job runs once.
    @Test func throttlingAndOutagesAreRetried() async throws {
        let harness = try await ServerHarness()
        let api = try await hetznerHost(harness, status: "off")
        defer { api.stop() }
        await api.state.inject([429, 503, 429])
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho through the limits\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "through the limits\n")
        }
        let calls = await api.state.calls
        #expect(calls.prefix(4).allSatisfy { $0 == "GET /v1/servers/42" }, "\(calls)")
    }

    /// A refused token is said with the variable it came from, never the token, and the job
    /// waits in the queue rather than fail.
    @Test func aBadTokenNamesTokenEnvAndTheJobWaits() async throws {
        let harness = try await ServerHarness()
        let api = try await hetznerHost(harness, status: "off", token: "wrong-token")
        defer { api.stop() }
        let store = harness.store
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho with the right token\n"])
            let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            #expect(ServerHarness.json(response)["result_url"] is String)
            let said = try await harness.firstJobsEventDetails { $0.contains("HCLOUD_TOKEN") }
            #expect(said.contains { $0.contains("Hetzner refused the API token in HCLOUD_TOKEN (401 unauthorized)") }, "\(said)")
            #expect(!said.contains { $0.contains("wrong-token") })
            let job = try #require(try await store.jobs().first)
            #expect(!job.status.isFinal, "the job ended as \(job.status) instead of waiting")
        }
        #expect(await api.state.status(of: 42) == "off")
    }
}
