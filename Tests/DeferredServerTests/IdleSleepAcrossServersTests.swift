import DeferredCore
import DeferredDispatcher
import DeferredProviders
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// The idle sleeper run by three servers and by cron at once, on one PostgreSQL database: jobs
/// start and end on three cloud hosts while the four passes run, in 1,000 random interleavings
/// on a clock the test moves. Each pass's choice of idle hosts and their `stopping` mark is one
/// transaction, so however the passes and leases interleave, an idle host is stopped once and a
/// host with a job never.
///
/// The three servers are three stores with their own connection pools and server rows, as three
/// `deferred serve` processes have; cron's is a store that serves nothing, as `deferred
/// idle-sleep`'s. Every server runs the pass, not only the housekeeper: the turn is held by one
/// server at a time, but cron takes no turn and a turn can run out while a slow pass goes on,
/// so the store's claim is what must hold. The cloud here is a ledger of stop calls that looks
/// at the host's row as each call is made; stopping a real EC2 instance is CloudHostTests' part.
@Suite struct IdleSleepAcrossServersTests {
    static let hosts = ["h1", "h2", "h3"]
    static let maxJobs = 2

    @Test func threeServersAndCronStopEachIdleHostOnceAndNeverABusyOne() async throws {
        let postgres = try await ThrowawayPostgres.shared()
        let url = postgres.url(database: try await postgres.makeDatabase())
        let settings = try PostgresSettings(url: url, password: ThrowawayPostgres.password)
        var servers: [PostgresJobStore] = []
        for _ in 0..<3 { servers.append(try await PostgresJobStore(settings: settings, serving: true)) }
        let cron = try await PostgresJobStore(settings: settings)
        let config = Self.config()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        try await cron.register(hosts: config.hosts, at: start)

        let ledger = StopLedger(store: cron)
        let providers = HostProviders(ec2: ledger)
        let sleepers = (servers.map { $0 as any JobStore } + [cron]).map { IdleSleeper(config: config, store: $0, providers: providers) }
        let running = RunningJobs()
        var random = SeededGenerator(seed: 0x1D1E_5EE9)
        var now = start
        var stopsSeen = 0

        for round in 0..<1_000 {
            now = now.addingTimeInterval(Double(Int.random(in: 0...20, using: &random)) * 60)
            await ledger.begin(round: round)
            var steps: [Step] = []
            for sleeper in sleepers where Bool.random(using: &random) || Bool.random(using: &random) { steps.append(.pass(sleeper)) }
            for job in await running.take(upTo: Int.random(in: 0...3, using: &random), using: &random) { steps.append(.end(job)) }
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                steps.append(.start(servers.randomElement(using: &random)!, project: Self.hosts.randomElement(using: &random)!))
            }
            steps.shuffle(using: &random)
            let delays = steps.map { _ in Int.random(in: 0...3, using: &random) }
            let clock = now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (step, delay) in zip(steps, delays) {
                    group.addTask {
                        // A few turns of the pool first, so the steps' transactions overlap differently.
                        for _ in 0..<delay { await Task.yield() }
                        try await step.run(at: clock, running: running)
                    }
                }
                try await group.waitForAll()
            }
            // Once the dust settles, one more pass leaves no idle host up past the timeout.
            _ = await sleepers[3].pass(now: now)
            let cutoff = now.addingTimeInterval(-config.idle.timeoutMinutes * 60)
            for host in try await cron.hosts() {
                if host.activeJobs > 0 {
                    #expect(host.state != .stopping && host.state != .stopped, "round \(round): \(host.name) has a job but is \(host.state)")
                } else if host.state == .ready || host.state == .unknown {
                    #expect(host.idleSince.map { $0 > cutoff } ?? true, "round \(round): \(host.name) idle past the timeout and still up")
                }
            }
            let ledgered = await ledger.end()
            stopsSeen += ledgered.stops.count
            #expect(ledgered.problems.isEmpty)
            for host in Self.hosts { #expect(ledgered.stops.filter { $0 == host }.count <= 1, "round \(round): \(host) stopped twice") }
            if !ledgered.problems.isEmpty { break }
        }
        // The interleavings did put hosts to sleep, not only keep them busy.
        #expect(stopsSeen > 100)
        for server in servers { await server.resign() }
    }

    /// One thing that happens during a round, each on its own task.
    enum Step: Sendable {
        case pass(IdleSleeper)
        case end(RunningJobs.Running)
        case start(PostgresJobStore, project: String)

        func run(at now: Date, running: RunningJobs) async throws {
            switch self {
            case .pass(let sleeper):
                for report in await sleeper.pass(now: now) where report.problem != nil { Issue.record("\(report)") }
            case .end(let job):
                try await job.server.finish(job.id, outcome: JobOutcome(status: .succeeded, exitStatus: 0, startedAt: now, finishedAt: now))
            case .start(let server, let project):
                _ = try await server.enqueue(IdleSleepAcrossServersTests.job(project: project, at: now), delivery: UUID().uuidString)
                // The oldest waiting job is leased, as the dispatcher does: perhaps one that
                // waited for a host that was being stopped, perhaps none (hosts full or stopping).
                let targets: @Sendable (String) -> [LeaseTarget] = { [.host(name: $0, maxJobs: IdleSleepAcrossServersTests.maxJobs)] }
                guard let lease = try await server.leaseNext(now: now, targetsFor: targets) else { return }
                // A host that was not up is woken by the job, as a job's attempt does.
                if !lease.hostWasUp { try await server.markHost(lease.hostName, .busy) }
                try await server.markRunning(lease.job.id, at: now)
                await running.add(.init(id: lease.job.id, server: server))
            }
        }
    }

    static func job(project: String, at now: Date) -> Job {
        Job(project: project, trigger: .push(PushTrigger(
            repository: "octo/\(project)", ref: "refs/heads/main", commit: String(repeating: "b", count: 40),
            delivery: UUID().uuidString, pusher: "octo", cloneURL: "https://github.com/octo/\(project).git")), queuedAt: now)
    }

    static func config() -> DeferredConfig {
        let hosts = Self.hosts.enumerated().map { index, name in
            HostConfig(name: name, provider: .ec2, address: "", user: "build", identity: nil, knownHosts: "/dev/null",
                       maxJobs: maxJobs, instance: CloudInstance(instanceID: "i-\(index)", region: "eu-west-1"))
        }
        return DeferredConfig(
            server: ServerConfig(listenHost: "127.0.0.1", listenPort: 0, publicURL: "http://deferred.test", adminToken: nil),
            store: .sqlite("/dev/null"), github: GitHubConfig(secret: "unused"), artifacts: ArtifactsConfig(directory: "/dev/null"),
            idle: IdleConfig(timeoutMinutes: 30), hosts: hosts,
            projects: Self.hosts.map { ProjectConfig(name: $0, repository: "octo/\($0)", branches: ["main"], command: "true", hosts: [$0]) })
    }
}

/// The jobs that run now, for a round to end some of.
actor RunningJobs {
    struct Running: Sendable {
        let id: JobID
        let server: PostgresJobStore
    }

    private var jobs: [Running] = []

    func add(_ job: Running) { jobs.append(job) }

    func take(upTo count: Int, using random: inout SeededGenerator) -> [Running] {
        jobs.shuffle(using: &random)
        let taken = Array(jobs.prefix(count))
        jobs.removeFirst(taken.count)
        return taken
    }
}

/// The cloud's side of idle sleep: each stop call is written down with what the store said of
/// the host at that moment, which must be a host claimed for stopping with no job.
actor StopLedger: HostProvider {
    struct Round: Sendable {
        var stops: [String] = []
        var problems: [String] = []
    }

    let store: any JobStore
    private var round = 0
    private var current = Round()

    init(store: any JobStore) { self.store = store }

    func begin(round: Int) {
        self.round = round
        current = Round()
    }

    func end() -> Round { current }

    func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {
        let row = try? await store.host(named: host.name)
        if row?.state != .stopping || row?.activeJobs != 0 {
            current.problems.append("round \(round): \(host.name) stopped while \(row.map { "\($0.state), \($0.activeJobs) job(s)" } ?? "unknown")")
        }
        current.stops.append(host.name)
    }

    func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        throw ProviderError(host: host.name, reason: "jobs here are woken by the test", isTransient: false)
    }

    func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        throw ProviderError(host: fleet.name, reason: "no fleets here", isTransient: false)
    }
}
