import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredProviders
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// Hosts that are EC2 instances, on moto_server as EC2 and the test's sshd as the instance's SSH.
@Suite struct CloudHostTests {
    /// A stopped instance in moto behind the harness's host, and the EC2 client that sees it.
    private func cloudHost(_ harness: ServerHarness, endpoint: String, credentials: AWSCredentials) async throws -> (EC2Client, String) {
        let ec2 = EC2Client(region: "us-east-1", credentials: credentials, endpoint: endpoint)
        let id = try #require(try await ec2.runInstances(EC2LaunchRequest(imageID: "ami-builder", instanceType: "t3.micro")).first?.id)
        try await ec2.stopInstances(ids: [id])
        _ = try await ec2.describeInstances(ids: [id])
        #expect(try await Self.state(id, ec2) == "stopped")
        harness.config.hosts[0].provider = .ec2
        harness.config.hosts[0].instance = CloudInstance(instanceID: id, region: "us-east-1", endpoint: endpoint)
        harness.providers = HostProviders(ec2: EC2HostProvider(credentials: credentials, pollInterval: .milliseconds(100)))
        return (ec2, id)
    }

    /// moto settles stopping → stopped and pending → running at the next describe.
    static func state(_ id: String, _ ec2: EC2Client) async throws -> String? {
        _ = try await ec2.describeInstances(ids: [id])
        return try await ec2.describeInstances(ids: [id]).first?.state
    }

    /// Every request signed with a key moto made and checks (INITIAL_NO_AUTH_ACTION_COUNT).
    @Test func aPushWakesAStoppedInstanceAndIdleSleepStopsItAgain() async throws {
        let moto = try await ThrowawayMoto.start(checkSignaturesAfter: 4)
        defer { moto.stop() }
        let credentials = try await moto.makeUser()
        let harness = try await ServerHarness()
        let (ec2, id) = try await cloudHost(harness, endpoint: moto.endpoint, credentials: credentials)
        let store = harness.store
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho on the woken host\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "on the woken host\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
            #expect(try await Self.state(id, ec2) == "running")
            let job = try #require(try await store.jobs().first)
            let waits = try await store.events(of: job.id).filter { $0.status == .waitingForHost }.compactMap(\.detail)
            #expect(waits.contains { $0.contains("instance \(id) is stopped") }, "\(waits)")
            #expect(waits.contains { $0.contains("starting instance \(id)") }, "\(waits)")
        }
        // Idle past a zero timeout, with no job: idle-sleep stops it.
        harness.config.idle.timeoutMinutes = 0
        let sleeper = IdleSleeper(config: harness.config, store: store, providers: harness.providers)
        #expect(await sleeper.pass(dryRun: true).map(\.slept) == [false])
        #expect(try await Self.state(id, ec2) == "running")
        let reports = await sleeper.pass()
        #expect(reports.map(\.host) == ["loopback"] && reports.allSatisfy(\.slept), "\(reports)")
        #expect(try await Self.state(id, ec2) == "stopped")
        #expect(try await store.hosts().first?.state == .stopped)
        #expect(await sleeper.pass().isEmpty)

        // The next push wakes it again.
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho again\n"])
            #expect(results["stdout"] as? String == "again\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
        }
    }

    /// `serve`'s own timer puts the host to sleep once it is idle, with no cron: the production
    /// 30-minute idle timeout and 1-minute interval, on a clock the test moves by hand.
    @Test func serveStopsAnIdleHostByItself() async throws {
        let moto = try await ThrowawayMoto.account()
        let harness = try await ServerHarness()
        let (ec2, id) = try await cloudHost(harness, endpoint: moto.endpoint, credentials: moto.credentials)
        harness.config.idle.timeoutMinutes = 30
        harness.sleepCheckInterval = .seconds(60)
        let time = ManualTime()
        harness.time = time
        let store = harness.store
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho then idle\n"])
            #expect(results["status"] as? String == "succeeded")
            // Minutes counted from when the host fell idle, which is as late after the clock's
            // start as the machine made the push take.
            let idleSince = try #require(try await store.hosts().first?.idleSince)
            // Idle 29 minutes: not yet.
            time.advance(by: .seconds(idleSince.addingTimeInterval(29 * 60).timeIntervalSince(time.now)))
            try await time.waitUntilSleeping()
            #expect(try await store.hosts().first?.state != .stopped)
            #expect(try await Self.state(id, ec2) == "running")
            time.advance(by: .seconds(2 * 60))
            try await time.waitUntilSleeping()
            let state = try await store.hosts().first?.state
            #expect(state == .stopped)
        }
        #expect(try await Self.state(id, ec2) == "stopped")
    }

    @Test func aHostRunningALongJobIsNotStoppedByIdleSleepBesideIt() async throws {
        let moto = try await ThrowawayMoto.account()
        let harness = try await ServerHarness()
        let (ec2, id) = try await cloudHost(harness, endpoint: moto.endpoint, credentials: moto.credentials)
        try await harness.expectIdleSleepSparesABusyHost(machine: { try await Self.state(id, ec2) }, up: "running", down: "stopped")
    }

    /// The dashboard's buttons, as a program presses them with the bearer token: wake starts
    /// the stopped instance and returns at once, the host's row tells when SSH answered; sleep
    /// stops it.
    @Test func theDashboardsButtonsWakeAndStopTheInstance() async throws {
        let moto = try await ThrowawayMoto.account()
        let harness = try await ServerHarness()
        let (ec2, id) = try await cloudHost(harness, endpoint: moto.endpoint, credentials: moto.credentials)
        harness.config.server.adminToken = DashboardTests.token
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            let before = DashboardTests.text(try await client.execute(uri: "/", method: .get, headers: DashboardTests.bearer))
            #expect(before.contains(#"action="/hosts/loopback/wake""#) && before.contains(#"action="/hosts/loopback/sleep""#))

            let wake = try await client.execute(uri: "/hosts/loopback/wake", method: .post, headers: DashboardTests.bearer)
            #expect(wake.status == .accepted)
            #expect(ServerHarness.json(wake)["status"] as? String == "waking")
            var page = ""
            for _ in 0..<600 where !page.contains("woken by hand") {
                try await Task.sleep(for: .milliseconds(100))
                page = DashboardTests.text(try await client.execute(uri: "/", method: .get, headers: DashboardTests.bearer))
            }
            #expect(page.contains("woken by hand; SSH answers"), "\(page)")
            #expect(try await Self.state(id, ec2) == "running")
            #expect(try await store.host(named: "loopback")?.state == .ready)

            let sleep = try await client.execute(uri: "/hosts/loopback/sleep", method: .post, headers: DashboardTests.bearer)
            #expect(sleep.status == .ok, "\(DashboardTests.text(sleep))")
            #expect(try await Self.state(id, ec2) == "stopped")
            #expect(try await store.host(named: "loopback")?.state == .stopped)
            page = DashboardTests.text(try await client.execute(uri: "/", method: .get, headers: DashboardTests.bearer))
            #expect(page.contains(#"<span class="state stopped">stopped</span>"#) && page.contains("put to sleep by hand"))
        }
    }
}

@Suite struct CloudFaultTests {
    /// The EC2 API throttles and fails with 503 at first; the wake retries and the job succeeds.
    @Test func aWakeThroughThrottlingAndOutagesStillRunsTheJob() async throws {
        let moto = try await ThrowawayMoto.account()
        let credentials = moto.credentials
        let direct = EC2Client(region: "us-east-1", credentials: credentials, endpoint: moto.endpoint)
        let id = try #require(try await direct.runInstances(EC2LaunchRequest(imageID: "ami-builder", instanceType: "t3.micro")).first?.id)
        try await direct.stopInstances(ids: [id])
        #expect(try await CloudHostTests.state(id, direct) == "stopped")

        let proxy = try await FaultInjectingProxy(to: moto.endpoint, failing: [
            FaultInjectingProxy.throttling, FaultInjectingProxy.unavailable, FaultInjectingProxy.throttling,
            FaultInjectingProxy.unavailable, FaultInjectingProxy.throttling,
        ])
        defer { proxy.stop() }
        let harness = try await ServerHarness()
        harness.config.hosts[0].provider = .ec2
        harness.config.hosts[0].instance = CloudInstance(instanceID: id, region: "us-east-1", endpoint: proxy.endpoint)
        harness.providers = HostProviders(ec2: EC2HostProvider(credentials: credentials, pollInterval: .milliseconds(100)))
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho despite the weather\n"])
            #expect(results["status"] as? String == "succeeded", "\(results)")
            #expect(results["stdout"] as? String == "despite the weather\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
        }
        #expect(await proxy.faults.injected == 5)
        #expect(await proxy.faults.passed >= 2)
        #expect(try await CloudHostTests.state(id, direct) == "running")
    }
}

@Suite struct HostControlTests {
    /// `deferred hosts`, `hosts wake` and `hosts sleep` against moto and the test's sshd.
    @Test func listsWakesAndSleepsAHostButNeverOneWithAJob() async throws {
        let moto = try await ThrowawayMoto.account()
        let credentials = moto.credentials
        let ec2 = EC2Client(region: "us-east-1", credentials: credentials, endpoint: moto.endpoint)
        let id = try #require(try await ec2.runInstances(EC2LaunchRequest(imageID: "ami-builder", instanceType: "t3.micro")).first?.id)
        let harness = try await ServerHarness()
        harness.config.hosts[0].provider = .ec2
        harness.config.hosts[0].instance = CloudInstance(instanceID: id, region: "us-east-1", endpoint: moto.endpoint)
        harness.providers = HostProviders(ec2: EC2HostProvider(credentials: credentials, pollInterval: .milliseconds(100)))
        let control = HostControl(config: harness.config, store: harness.store, providers: harness.providers)

        var rows = try await control.table()
        #expect(rows.first == ["NAME", "PROVIDER", "STATE", "JOBS", "IDLE FOR", "LAST JOB"])
        #expect(rows.dropFirst().map { Array($0.prefix(4)) } == [["loopback", "ec2", "unknown", "0"]])

        try await control.sleep("loopback")
        #expect(try await CloudHostTests.state(id, ec2) == "stopped")
        await #expect(throws: HostControl.Refusal.self) { try await control.sleep("loopback") }

        let steps = StateLog()
        let wake = try await control.wake("loopback") { steps.add($0) }
        #expect(wake.woke)
        #expect(steps.all.contains("starting instance \(id)"))
        #expect(try await CloudHostTests.state(id, ec2) == "running")
        rows = try await control.table()
        #expect(rows[1][2] == "ready")

        // A host with a job on it stays up whatever is asked.
        let job = Job(project: "sample", trigger: .script(ScriptTrigger(script: "sleep 1", signer: "t", interpreter: .program("/bin/sh"))))
        _ = try await harness.store.enqueue(job, delivery: nil)
        _ = try #require(try await harness.store.leaseNext { _ in [.host(name: "loopback", maxJobs: 1)] })
        let refusal = await #expect(throws: HostControl.Refusal.self) { try await control.sleep("loopback") }
        #expect(refusal?.description.contains("has a job") == true)
        #expect(try await CloudHostTests.state(id, ec2) == "running")
        await #expect(throws: HostControl.Refusal.self) { try await control.wake("nope") { _ in } }
    }
}
