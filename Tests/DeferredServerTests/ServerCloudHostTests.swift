import DeferredCloud
import DeferredCore
import DeferredDispatcher
import DeferredProviders
import Foundation
import Testing

/// A cloud whose API a fake plays here: Hetzner Cloud or DigitalOcean.
enum CloudUnderTest: String, CustomTestStringConvertible, Sendable, CaseIterable {
    case hetzner, digitalocean

    var testDescription: String { rawValue }
    var kind: ProviderKind { self == .hetzner ? .hetzner : .digitalocean }
    var tokenEnv: String { self == .hetzner ? "HCLOUD_TOKEN" : "DIGITALOCEAN_TOKEN" }
    var cloud: String { self == .hetzner ? "Hetzner" : "DigitalOcean" }
    var words: FakeServerCloud.Words { self == .hetzner ? FakeHetzner.words : FakeDigitalOcean.words }
    /// Where new servers go, and what they are made of, in the cloud's own names.
    var location: String { self == .hetzner ? "fsn1" : "fra1" }
    var image: String { self == .hetzner ? "debian-12" : "123456" }
    var serverType: String { self == .hetzner ? "cx22" : "s-1vcpu-1gb" }
    var serverPath: String { self == .hetzner ? "/v1/servers/42" : "/v2/droplets/42" }

    func fake(token: String, servers: [Int: FakeServerCloud.State.Server]) async throws -> FakeServerCloud {
        switch self {
        case .hetzner: try await FakeHetzner.start(token: token, servers: servers)
        case .digitalocean: try await FakeDigitalOcean.start(token: token, servers: servers)
        }
    }

    /// The providers with quick polls, a short shutdown grace and quick retries.
    static var quickProviders: HostProviders {
        let retry = RetryPolicy(base: .milliseconds(20), cap: .milliseconds(200))
        // Quick polls; but an ACPI shutdown that works is given long enough that a busy machine
        // (the whole suite on two cores starves a test for seconds) never sees its grace run out
        // and a power-off follow. The grace running out is tested with a provider of its own.
        return HostProviders(
            ec2: nil,
            hetzner: ServerHostProvider(.hetzner, pollInterval: .milliseconds(50), shutdownGrace: .seconds(30), retry: retry),
            digitalocean: ServerHostProvider(.digitalocean, pollInterval: .milliseconds(50), shutdownGrace: .seconds(30), retry: retry))
    }
}

/// Hosts that are Hetzner Cloud servers or DigitalOcean droplets, on fakes written from each
/// published API reference (no real peer runs here) as the API, and the test's sshd as every
/// server's SSH. Every test runs against both clouds: one provider drives them.
@Suite struct ServerCloudHostTests {
    static let token = "cloud-test-token"

    private func cloudHost(_ harness: ServerHarness, _ cloud: CloudUnderTest, status: String,
                           token: String = ServerCloudHostTests.token) async throws -> FakeServerCloud {
        let api = try await cloud.fake(token: Self.token, servers: [42: .init(name: "builder", status: status, ip: "127.0.0.1")])
        harness.config.hosts[0].provider = cloud.kind
        harness.config.hosts[0].server = CloudServer(id: "42", account: CloudAccount(token: token, tokenEnv: cloud.tokenEnv, endpoint: api.url))
        harness.providers = CloudUnderTest.quickProviders
        return api
    }

    @Test(arguments: CloudUnderTest.allCases)
    func aPushPowersOnAServerThatIsOffAndIdleSleepShutsItDown(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let api = try await cloudHost(harness, cloud, status: "off")
        defer { api.stop() }
        let store = harness.store
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho on the \(cloud) server\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "on the \(cloud) server\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
            #expect(await api.state.status(of: 42) == cloud.words.running)
            let job = try #require(try await store.jobs().first)
            let waits = try await store.events(of: job.id).filter { $0.status == .waitingForHost }.compactMap(\.detail)
            #expect(waits.contains { $0.contains("server 42 is off") }, "\(waits)")
            #expect(waits.contains { $0.contains("powering on server 42") }, "\(waits)")
        }
        #expect(await api.state.powered == ["on 42"])
        harness.config.idle.timeoutMinutes = 0
        let sleeper = IdleSleeper(config: harness.config, store: store, providers: harness.providers)
        let reports = await sleeper.pass()
        #expect(reports.map(\.host) == ["loopback"] && reports.allSatisfy(\.slept), "\(reports)")
        #expect(await api.state.status(of: 42) == "off")
        let powered = await api.state.powered
        #expect(powered == ["on 42", "shutdown 42"], "an ACPI shutdown that worked needs no power-off: \(powered)")
        #expect(try await store.hosts().first?.state == .stopped)
    }

    /// A system that ignores ACPI is powered off once the grace has passed.
    @Test(arguments: CloudUnderTest.allCases)
    func aServerThatIgnoresTheShutdownIsPoweredOffAfterTheGrace(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let api = try await cloudHost(harness, cloud, status: cloud.words.running)
        defer { api.stop() }
        await api.state.ignoreACPI()
        try await ServerHostProvider(cloud == .hetzner ? .hetzner : .digitalocean, pollInterval: .milliseconds(50), shutdownGrace: .milliseconds(500))
            .sleep(harness.config.hosts[0], terminate: false)
        #expect(await api.state.status(of: 42) == "off")
        #expect(await api.state.powered == ["shutdown 42", "off 42"])
    }

    @Test(arguments: CloudUnderTest.allCases)
    func aMachineRunningAJobIsNotShutDownBesideIt(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let api = try await cloudHost(harness, cloud, status: "off")
        defer { api.stop() }
        try await harness.expectIdleSleepSparesABusyHost(machine: { await api.state.status(of: 42) }, up: cloud.words.running, down: "off")
    }

    /// 429 with RateLimit-Reset, and 503, are tried again; the job runs once.
    @Test(arguments: CloudUnderTest.allCases)
    func throttlingAndOutagesAreRetried(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let api = try await cloudHost(harness, cloud, status: "off")
        defer { api.stop() }
        await api.state.inject([429, 503, 429])
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho through the limits\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "through the limits\n")
        }
        let calls = await api.state.calls
        #expect(calls.prefix(4).allSatisfy { $0 == "GET \(cloud.serverPath)" }, "\(calls)")
        #expect(await api.state.powered == ["on 42"])
    }

    /// Once an answer says no request is left (`RateLimit-Remaining: 0`), the next waits for
    /// `RateLimit-Reset` instead of spending itself on a 429.
    @Test(arguments: CloudUnderTest.allCases)
    func aSpentRateLimitIsWaitedOutNotRunInto(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let api = try await cloudHost(harness, cloud, status: "off")
        defer { api.stop() }
        await api.state.limit(to: 2, per: 1)
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho within the limit\n"])
            #expect(results["stdout"] as? String == "within the limit\n")
        }
        #expect(await api.state.calls.count >= 4, "the wake took more requests than one window allows")
        let calls = await api.state.calls
        #expect(await api.state.throttled == 0, "\(calls)")
    }

    /// A refused token is said with the variable it came from, never the token, and the job
    /// waits in the queue rather than fail.
    @Test(arguments: CloudUnderTest.allCases)
    func aBadTokenNamesTokenEnvAndTheJobWaits(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let api = try await cloudHost(harness, cloud, status: "off", token: "wrong-token")
        defer { api.stop() }
        let store = harness.store
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho with the right token\n"])
            let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            #expect(ServerHarness.json(response)["result_url"] is String)
            let said = try await harness.firstJobsEventDetails { $0.contains(cloud.tokenEnv) }
            #expect(said.contains { $0.contains("\(cloud.cloud) refused the API token in \(cloud.tokenEnv) (401 unauthorized)") }, "\(said)")
            #expect(!said.contains { $0.contains("wrong-token") })
            let job = try #require(try await store.jobs().first)
            #expect(!job.status.isFinal, "the job ended as \(job.status) instead of waiting")
        }
        #expect(await api.state.status(of: 42) == "off")
        #expect(await api.state.powered.isEmpty)
    }
}
