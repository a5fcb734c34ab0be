import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredProviders
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// Fleets: instances launched from an image on moto_server as EC2, the test's sshd as every
/// instance's SSH (the fleet's `address` override).
@Suite struct FleetTests {
    /// Makes the harness's project run on a fleet instead of its static host.
    private func useFleet(_ harness: ServerHarness, moto: MotoAccount, endpoint: String? = nil, maxHosts: Int, spot: Bool = false,
                          whenIdle: FleetConfig.WhenIdle = .stop, port: Int? = nil, bootTimeoutMinutes: Double = 2) throws {
        let bootstrap = harness.folder + "/bootstrap.sh"
        try "#!/bin/sh\necho bootstrapped $(id -un)\n".write(toFile: bootstrap, atomically: true, encoding: .utf8)
        harness.config.fleets = [FleetConfig(
            name: "builders", region: "us-east-1", endpoint: endpoint ?? moto.endpoint, imageID: "ami-builder", instanceType: "c7i.large",
            spot: spot, maxHosts: maxHosts, whenIdle: whenIdle, bootstrap: bootstrap, userData: "#cloud-config\n",
            address: "127.0.0.1", port: port ?? harness.sshd.port, user: harness.sshd.user, identity: harness.sshd.clientKey,
            knownHosts: harness.sshd.knownHosts, bootTimeoutMinutes: bootTimeoutMinutes)]
        harness.config.projects[0].hosts = ["builders"]
        harness.providers = HostProviders(ec2: EC2HostProvider(credentials: moto.credentials, pollInterval: .milliseconds(100)))
    }

    static func fleetInstances(_ ec2: EC2Client) async throws -> [EC2Instance] {
        _ = try await ec2.describeInstances()
        return try await ec2.describeInstances(filters: ["tag:managed-by": ["deferred"], "tag:deferred-fleet": ["builders"]])
    }

    @Test func aFleetLaunchesTaggedInstancesUpToMaxHostsAndNoMore() async throws {
        let moto = try await ThrowawayMoto.account()
        let ec2 = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let harness = try await ServerHarness()
        try useFleet(harness, moto: moto, maxHosts: 2, whenIdle: .terminate)
        let store = harness.store
        try await harness.serve { client in
            for results in try await harness.runPushes(client, count: 5, files: ["script/job.sh": "#!/bin/sh\nsleep 1\necho built\n"]) {
                #expect(results["status"] as? String == "succeeded", "\(results)")
                #expect(results["stdout"] as? String == "built\n")
            }
            let instances = try await Self.fleetInstances(ec2)
            #expect(instances.count == 2, "\(instances.map(\.id))")
            #expect(instances.allSatisfy { $0.tags["deferred-project"] == "sample" && $0.tags["deferred-host"]?.hasPrefix("builders-") == true })
            #expect(instances.allSatisfy { $0.instanceType == "c7i.large" && $0.imageID == "ami-builder" })
            let hosts = try await store.hosts().filter { $0.fleet == "builders" }
            #expect(Set(hosts.compactMap(\.instanceID)) == Set(instances.map(\.id)))
            // The bootstrap ran before the first job on a new host.
            let job = try #require(try await store.jobs().last)
            let notes = try await store.events(of: job.id).compactMap(\.detail)
            #expect(notes.contains { $0.contains("launching c7i.large from ami-builder") }, "\(notes)")
            #expect(notes.contains { $0.contains("bootstrap") }, "\(notes)")
        }
        // Idle with when_idle = "terminate": the instances go, and so do their hosts.
        harness.config.idle.timeoutMinutes = 0
        let reports = await IdleSleeper(config: harness.config, store: store, providers: harness.providers).pass()
        #expect(reports.count == 2 && reports.allSatisfy { $0.slept && $0.terminated }, "\(reports)")
        let left = try await Self.fleetInstances(ec2)
        #expect(left.allSatisfy { $0.state == "terminated" }, "\(left.map(\.state))")
        #expect(try await store.hosts().filter { $0.fleet != nil }.isEmpty)
    }

    @Test func spotRefusedFallsBackToOnDemand() async throws {
        let moto = try await ThrowawayMoto.account()
        let proxy = try await FaultInjectingProxy(to: moto.endpoint, refusing: (text: "InstanceMarketOptions", answer: FaultInjectingProxy.noSpotCapacity))
        defer { proxy.stop() }
        let ec2 = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let harness = try await ServerHarness()
        try useFleet(harness, moto: moto, endpoint: proxy.endpoint, maxHosts: 1, spot: true)
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho on demand\n"])
            #expect(results["stdout"] as? String == "on demand\n", "\(results)")
            // The job's events say it runs on demand, not on the spot instance the fleet asks for.
            let job = try #require(try await harness.store.jobs().first)
            let notes = try await harness.store.events(of: job.id).compactMap(\.detail)
            #expect(notes.contains { $0.contains("spot refused for c7i.large (InsufficientInstanceCapacity): launched on demand instead") }, "\(notes)")
        }
        #expect(await proxy.faults.injected >= 1)
        let instances = try await Self.fleetInstances(ec2)
        #expect(instances.count == 1)
        #expect(instances.first?.lifecycle == nil, "an on-demand instance has no instanceLifecycle")
    }

    /// One launch, not one per retry: the fleet holds its next launch back (30 s after the
    /// first instance that never answered), the job waits in the queue meanwhile, and the
    /// host list says why. Judged on the job's event log against the hold's end the note
    /// names, so a machine slow enough to let the hold run out still shows only what happened
    /// inside it.
    @Test func anInstanceThatNeverAnswersSSHIsTerminatedAndItsJobQueuedAgain() async throws {
        let moto = try await ThrowawayMoto.account()
        let ec2 = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let harness = try await ServerHarness()
        // Nothing listens on this port: the instance runs but SSH never answers.
        try useFleet(harness, moto: moto, maxHosts: 1, port: try FreePort.find(), bootTimeoutMinutes: 0.03)
        let store = harness.store
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho never\n"])
            _ = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            var requeuedAt: Date?
            for _ in 0..<1200 where requeuedAt == nil {
                try await Task.sleep(for: .milliseconds(50))
                let job = try #require(try await store.jobs().first)
                requeuedAt = try await store.events(of: job.id).first { $0.status == .queued && ($0.detail ?? "").contains("wake timeout") }?.at
            }
            let requeued = try #require(requeuedAt)
            let job = try #require(try await store.jobs().first)
            // The message names the fleet's own setting.
            let notes = try await store.events(of: job.id).compactMap(\.detail)
            #expect(notes.filter { $0.contains("wake timeout") }.allSatisfy { $0.contains("(boot_timeout_minutes)") }, "\(notes)")
            let terminated = try #require(notes.first { $0.contains("never answered and was terminated") }, "\(notes)")
            #expect(terminated.contains("never answered and was terminated (1 in a row); the fleet launches again no sooner than "), "\(terminated)")
            let holdEnds = try #require(terminated.split(separator: " ").last.flatMap { RFC3339.date(String($0)) }, "\(terminated)")
            let discarded = String(terminated.split(separator: " ")[3])
            // Past the job's own requeue backoff (2 s).
            try await Task.sleep(for: .seconds(4))
            let notesOnHostList = try await HostControl(config: harness.config, store: store, providers: harness.providers).fleetNotes()
            #expect(notesOnHostList.count == 1 && notesOnHostList[0].hasPrefix("fleet builders: ")
                        && notesOnHostList[0].contains(" in a row never answered"), "\(notesOnHostList)")

            let events = try await store.events(of: job.id)
            let log = events.map { "\(RFC3339.string($0.at)) \($0.status.rawValue) \($0.detail ?? "")" }.joined(separator: "\n")
            // About 30 s after the instance went: the hold is the fleet's, not the job's 2 s backoff.
            #expect(holdEnds.timeIntervalSince(requeued) > 20, "hold ends \(RFC3339.string(holdEnds))\n\(log)")
            // Until the hold ended, the job stayed in the queue: not leased, not ended.
            #expect(events.filter { $0.at > requeued && $0.at < holdEnds }.allSatisfy { $0.status == .queued }, "\(log)")
            let launches = events.filter { ($0.detail ?? "").contains(": launched instance ") }
            #expect(launches.filter { $0.at < holdEnds }.count == 1, "one launch for the job, not one per retry:\n\(log)")
            // The instance that never answered is gone.
            let instances = try await Self.fleetInstances(ec2)
            let gone = try #require(instances.first { $0.id == discarded }, "\(discarded) not among \(instances.map(\.id))")
            #expect(gone.state == "terminated" || gone.state == "shutting-down", "\(gone.state)")
        }
    }

    @Test func reconciliationStopsTaggedInstancesTheStoreDoesNotKnow() async throws {
        let moto = try await ThrowawayMoto.account()
        let ec2 = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let stray = try #require(try await ec2.runInstances(EC2LaunchRequest(
            imageID: "ami-builder", instanceType: "t3.micro", tags: ["managed-by": "deferred", "deferred-fleet": "builders"])).first?.id)
        let foreign = try #require(try await ec2.runInstances(EC2LaunchRequest(imageID: "ami-other", instanceType: "t3.micro")).first?.id)
        let harness = try await ServerHarness()
        try useFleet(harness, moto: moto, maxHosts: 1)
        try await harness.store.register(hosts: harness.config.hosts)
        let sleeper = IdleSleeper(config: harness.config, store: harness.store, providers: harness.providers)

        let dry = await sleeper.pass(dryRun: true).map(\.description)
        #expect(dry == ["would stop instance \(stray) (fleet builders) is not known to deferred's store"], "\(dry)")
        #expect(try await CloudHostTests.state(stray, ec2) == "running")
        let reports = await sleeper.pass().map(\.description)
        #expect(reports == ["stopped instance \(stray) (fleet builders) is not known to deferred's store"], "\(reports)")
        #expect(try await CloudHostTests.state(stray, ec2) == "stopped")
        // Instances deferred did not tag are not its business.
        #expect(try await CloudHostTests.state(foreign, ec2) == "running")
    }
}
