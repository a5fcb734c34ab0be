import DeferredCore
import DeferredDispatcher
import DeferredProviders
import Foundation
import Testing

/// Fleets of Hetzner servers and DigitalOcean droplets, made on the fakes written from each
/// published API reference, with the test's sshd as every new server's SSH (the fleet's
/// `address` override).
@Suite struct ServerCloudFleetTests {
    static let token = "fleet-test-token"

    private func useFleet(_ harness: ServerHarness, _ cloud: CloudUnderTest, api: FakeServerCloud, maxHosts: Int,
                          whenIdle: FleetConfig.WhenIdle = .terminate) throws {
        let bootstrap = harness.folder + "/bootstrap.sh"
        try "#!/bin/sh\necho bootstrapped $(id -un)\n".write(toFile: bootstrap, atomically: true, encoding: .utf8)
        harness.config.fleets = [FleetConfig(
            name: "builders", provider: cloud.kind, account: CloudAccount(token: Self.token, tokenEnv: cloud.tokenEnv, endpoint: api.url),
            region: cloud.location, image: cloud.image, serverType: cloud.serverType, sshKeys: ["deferred-key"], maxHosts: maxHosts,
            whenIdle: whenIdle, bootstrap: bootstrap, userData: "#cloud-config\n", address: "127.0.0.1", port: harness.sshd.port,
            user: harness.sshd.user, identity: harness.sshd.clientKey, knownHosts: harness.sshd.knownHosts, bootTimeoutMinutes: 2)]
        harness.config.projects[0].hosts = ["builders"]
        harness.providers = CloudUnderTest.quickProviders
    }

    @Test(arguments: CloudUnderTest.allCases)
    func aFleetMakesLabelledServersUpToMaxHostsAndDeletesThemWhenIdle(_ cloud: CloudUnderTest) async throws {
        let api = try await cloud.fake(token: Self.token, servers: [:])
        defer { api.stop() }
        let harness = try await ServerHarness()
        try useFleet(harness, cloud, api: api, maxHosts: 2)
        let store = harness.store
        try await harness.serve { client in
            for results in try await harness.runPushes(client, count: 5, files: ["script/job.sh": "#!/bin/sh\nsleep 1\necho built\n"]) {
                #expect(results["status"] as? String == "succeeded", "\(results)")
                #expect(results["stdout"] as? String == "built\n")
            }
            let made = await api.state.made()
            #expect(made.count == 2, "\(made.keys.sorted())")
            #expect(made.values.allSatisfy { $0.labels["managed-by"] == "deferred" && $0.labels["deferred-fleet"] == "builders"
                && $0.labels["deferred-project"] == "sample" && $0.labels["deferred-host"]?.hasPrefix("builders-") == true }, "\(made)")
            #expect(made.values.allSatisfy { $0.name.hasPrefix("builders-") })
            // What each server was made of, as the cloud was asked.
            let orders = try await api.state.orders.map { try #require(try JSONSerialization.jsonObject(with: $0) as? [String: Any]) }
            #expect(orders.count == 2)
            for order in orders {
                #expect("\(order["image"] ?? "")" == cloud.image, "\(order)")
                #expect(order[cloud == .hetzner ? "server_type" : "size"] as? String == cloud.serverType, "\(order)")
                #expect(order[cloud == .hetzner ? "location" : "region"] as? String == cloud.location, "\(order)")
                #expect(order["ssh_keys"] as? [String] == ["deferred-key"] && order["user_data"] as? String == "#cloud-config\n", "\(order)")
            }
            let hosts = try await store.hosts().filter { $0.fleet == "builders" }
            #expect(Set(hosts.compactMap(\.instanceID)) == Set(made.keys.map(String.init)))
            #expect(hosts.allSatisfy { $0.provider == cloud.kind.rawValue }, "\(hosts.map(\.provider))")
            // `deferred hosts` says what they are.
            let table = try await HostControl(config: harness.config, store: store, providers: harness.providers).table()
            #expect(table.filter { $0[1] == "\(cloud.kind.rawValue) (builders)" }.count == 2, "\(table)")
            let job = try #require(try await store.jobs().last)
            let notes = try await store.events(of: job.id).compactMap(\.detail)
            #expect(notes.contains { $0.contains("launching \(cloud.serverType) from \(cloud.image)") }, "\(notes)")
            #expect(notes.contains { $0.contains("bootstrap") }, "\(notes)")
        }
        // Idle with when_idle = "delete": the servers go, and so do their hosts.
        harness.config.idle.timeoutMinutes = 0
        let reports = await IdleSleeper(config: harness.config, store: store, providers: harness.providers).pass()
        #expect(reports.count == 2 && reports.allSatisfy { $0.slept && $0.terminated }, "\(reports)")
        #expect(await api.state.made().isEmpty)
        #expect(try await store.hosts().filter { $0.fleet != nil }.isEmpty)
        #expect(await api.state.powered.isEmpty, "a server deleted when idle is not shut down first")
    }

    /// A create whose answer is lost (the server made all the same) is not made again: the
    /// server with the host's label is found and used. Hetzner would refuse the name a
    /// second time; DigitalOcean would make a second droplet.
    @Test(arguments: CloudUnderTest.allCases)
    func aCreateWhoseAnswerWasLostMakesOneServer(_ cloud: CloudUnderTest) async throws {
        let api = try await cloud.fake(token: Self.token, servers: [:])
        defer { api.stop() }
        await api.state.loseCreateAnswers(1)
        let harness = try await ServerHarness()
        try useFleet(harness, cloud, api: api, maxHosts: 1)
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho made once\n"])
            #expect(results["stdout"] as? String == "made once\n", "\(results)")
        }
        #expect(await api.state.made().count == 1)
        #expect(await api.state.orders.count == 1)
        let id = try #require(await api.state.made().keys.first)
        #expect(try await harness.store.hosts().first { $0.fleet == "builders" }?.instanceID == String(id))
    }

    /// A token the cloud refuses makes nothing: the job's events name the variable (never
    /// the token) and the job waits in the queue for a launch that can work.
    @Test(arguments: CloudUnderTest.allCases)
    func aRefusedTokenMakesNoServerAndTheJobWaits(_ cloud: CloudUnderTest) async throws {
        let api = try await cloud.fake(token: "the-right-token", servers: [:])
        defer { api.stop() }
        let harness = try await ServerHarness()
        try useFleet(harness, cloud, api: api, maxHosts: 1)
        let store = harness.store
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho never\n"])
            _ = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            let said = try await harness.firstJobsEventDetails { $0.contains(cloud.tokenEnv) }
            #expect(said.contains { $0.contains("\(cloud.cloud) refused the API token in \(cloud.tokenEnv) (401 unauthorized)") }, "\(said)")
            #expect(!said.contains { $0.contains(Self.token) })
            let job = try #require(try await store.jobs().first)
            #expect(!job.status.isFinal, "the job ended as \(job.status) instead of waiting")
        }
        #expect(await api.state.made().isEmpty)
    }

    /// A fleet that stops its idle servers powers them off and on again instead of making more.
    @Test(arguments: CloudUnderTest.allCases)
    func aFleetThatStopsWhenIdlePowersTheSameServerOnAgain(_ cloud: CloudUnderTest) async throws {
        let api = try await cloud.fake(token: Self.token, servers: [:])
        defer { api.stop() }
        let harness = try await ServerHarness()
        try useFleet(harness, cloud, api: api, maxHosts: 1, whenIdle: .stop)
        let store = harness.store
        try await harness.serve { client in
            let first = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho first\n"])
            #expect(first["status"] as? String == "succeeded")
        }
        let id = try #require(await api.state.made().keys.first)
        harness.config.idle.timeoutMinutes = 0
        let reports = await IdleSleeper(config: harness.config, store: store, providers: harness.providers).pass()
        #expect(reports.count == 1 && reports.allSatisfy { $0.slept && !$0.terminated }, "\(reports)")
        #expect(await api.state.status(of: id) == "off")
        harness.config.idle.timeoutMinutes = 30
        try await harness.serve { client in
            let second = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho second\n"])
            #expect(second["stdout"] as? String == "second\n", "\(second)")
        }
        // Powered on again (whether the attempt that ran the job was the one that woke it is
        // the retries' business on a loaded machine), and no second server made.
        #expect(await api.state.made().count == 1)
        let powered = await api.state.powered
        #expect(powered == ["shutdown \(id)", "on \(id)"], "\(powered)")
    }

    /// Servers labelled as deferred's that the store does not know: a stray of a fleet that
    /// deletes its idle servers is deleted, one of a fleet no longer configured is powered off,
    /// one younger than the boot timeout (its launch may not be recorded yet) and one without
    /// deferred's label are left alone. Every page of the listing is read.
    @Test(arguments: CloudUnderTest.allCases)
    func reconciliationDeletesOrStopsStraysByLabel(_ cloud: CloudUnderTest) async throws {
        let hourAgo = Date().addingTimeInterval(-3600)
        let running = cloud.words.running
        let ours = ["managed-by": "deferred", "deferred-fleet": "builders"]
        let api = try await cloud.fake(token: Self.token, servers: [
            4001: .init(name: "stray", status: running, ip: "127.0.0.1", labels: ours, created: hourAgo),
            4002: .init(name: "young", status: running, ip: "127.0.0.1", labels: ours, created: Date()),
            4003: .init(name: "foreign", status: running, ip: "127.0.0.1", labels: ["team": "web"], created: hourAgo),
            4004: .init(name: "orphan", status: running, ip: "127.0.0.1", labels: ["managed-by": "deferred", "deferred-fleet": "gone"], created: hourAgo),
        ])
        defer { api.stop() }
        await api.state.setPageSize(1)
        let harness = try await ServerHarness()
        try useFleet(harness, cloud, api: api, maxHosts: 1)
        try await harness.store.register(hosts: harness.config.hosts)
        let sleeper = IdleSleeper(config: harness.config, store: harness.store, providers: harness.providers)

        let dry = await sleeper.pass(dryRun: true).map(\.description)
        #expect(dry == ["would delete \(cloud.cloud) server 4001 (fleet builders) is not known to deferred's store",
                        "would stop \(cloud.cloud) server 4004 (fleet gone) is not known to deferred's store"], "\(dry)")
        #expect(await api.state.status(of: 4001) == running)
        let reports = await sleeper.pass()
        #expect(reports.map(\.description) == ["deleted \(cloud.cloud) server 4001 (fleet builders) is not known to deferred's store",
                                               "stopped \(cloud.cloud) server 4004 (fleet gone) is not known to deferred's store"], "\(reports)")
        #expect(await api.state.status(of: 4001) == nil)
        #expect(await api.state.status(of: 4004) == "off")
        #expect(await api.state.status(of: 4002) == running)
        #expect(await api.state.status(of: 4003) == running)
        // Off now, the orphan is left be: only a running stray costs more than it did.
        #expect(await sleeper.pass().isEmpty)
    }
}
