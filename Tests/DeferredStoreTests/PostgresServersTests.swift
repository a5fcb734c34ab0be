import DeferredCore
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// What only a store several servers share does: the housekeeper's turn.
@Suite struct PostgresServersTests {
    /// A serving store. These tests are of what is stored, not of time: under the whole test
    /// run a connection may take longer than intake's 3 s to come (seen: 120 enqueues at once).
    static func serving(_ url: String) async throws -> PostgresJobStore {
        try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password), serving: true,
                                   intakeDeadline: .init(start: .seconds(120), total: .seconds(240)))
    }

    static let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "h", maxJobs: 1)] }

    /// Two servers on a new database, and a job the first one leased to host `h`.
    static func twoServersAndALeasedJob() async throws -> (first: PostgresJobStore, second: PostgresJobStore, job: Job) {
        let server = try await ThrowawayPostgres.shared()
        let url = server.url(database: try await server.makeDatabase())
        let first = try await Self.serving(url), second = try await Self.serving(url)
        try await first.register(hosts: [Sample.host("h")], at: Sample.now)
        let job = Sample.push()
        _ = try await first.enqueue(job, delivery: nil)
        #expect(try await first.leaseNext(now: Date(), targetsFor: targets)?.job.id == job.id)
        return (first, second, job)
    }

    @Test func oneServerAtATimeHasTheHousekeepersTurnAndAnotherTakesItWhenItEnds() async throws {
        let server = try await ThrowawayPostgres.shared()
        let url = server.url(database: try await server.makeDatabase())
        let first = try await Self.serving(url), second = try await Self.serving(url)
        #expect(await first.claimHousekeeping(for: .seconds(60)))
        #expect(await !second.claimHousekeeping(for: .seconds(60)))
        // The holder renews its turn; the other still waits.
        #expect(await first.claimHousekeeping(for: .seconds(60)))
        #expect(await !second.claimHousekeeping(for: .seconds(60)))
        // A holder that stops lets go at once.
        await first.resign()
        #expect(await second.claimHousekeeping(for: .seconds(60)))
        #expect(await !first.claimHousekeeping(for: .seconds(60)))
        // One that goes silent lets go when its turn runs out (here renewed short, then waited out:
        // no check races the clock of a busy machine).
        #expect(await second.claimHousekeeping(for: .milliseconds(200)))
        try await Task.sleep(for: .seconds(1))
        #expect(await first.claimHousekeeping(for: .seconds(60)))
        // The command line's store (cron's idle-sleep) does its pass whoever's turn it is.
        let cron = try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password))
        #expect(await cron.claimHousekeeping(for: .seconds(60)))
    }

    /// A server taken for dead while its job waited for the host: the job is taken over and
    /// queued again, and the old server, waking, is refused the step that starts the command.
    @Test func aServerWhoseJobWasTakenOverCannotStartItsCommand() async throws {
        let (first, second, job) = try await Self.twoServersAndALeasedJob()
        let targets = Self.targets
        // The other server finds nothing to take while the first one lives.
        #expect(try await second.recoverInterrupted(limit: 3, at: Date()) == Recovery(requeued: [], givenUp: []))
        // The first one is gone (its row removed, as when its heartbeat is too old): its job is taken.
        await first.resign()
        let taken = try await second.recoverInterrupted(limit: 3, at: Date())
        #expect(taken.requeued == [job.id])
        await #expect(throws: StoreError.self) { try await first.markRunning(job.id, at: Date()) }
        #expect(try await second.job(id: job.id)?.status == .queued)
        // Leased again, by the live server, which runs it.
        #expect(try await second.leaseNext(now: Date(), targetsFor: targets)?.job.id == job.id)
        try await second.markRunning(job.id, at: Date())
        #expect(try await second.job(id: job.id)?.status == .running)
    }

    /// A server that stalled while its job ran, taken for dead meanwhile: the live server takes
    /// the running job up, and whatever the stalled one writes of the job when it wakes (output,
    /// a step, its end, a requeue, held results) is refused and changes nothing. The live one
    /// writes on and ends it.
    @Test func aServerWhoseRunningJobWasTakenOverWritesNothingOfIt() async throws {
        let (stalled, live, job) = try await Self.twoServersAndALeasedJob()
        try await stalled.markRunning(job.id, at: Date())
        try await stalled.appendOutput(job.id, [(.stdout, "before\n", Date())], through: OutputPosition(stdout: 7, stderr: 0, cut: false))
        #expect(try await stalled.follows(job.id))
        // Its row goes, as when its heartbeat is older than takeover_seconds.
        await stalled.resign()
        let taken = try await live.recoverInterrupted(limit: 3, at: Date())
        #expect(taken.resumed.map(\.job.id) == [job.id])
        #expect(taken.resumed.first?.resuming == OutputPosition(stdout: 7, stderr: 0, cut: false))

        #expect(try await !stalled.follows(job.id))
        #expect(try await live.follows(job.id))
        let end = Sample.outcome(.failed)
        await #expect(throws: StoreError.self) {
            try await stalled.appendOutput(job.id, [(.stdout, "after\n", Date())], through: OutputPosition(stdout: 13, stderr: 0, cut: false))
        }
        await #expect(throws: StoreError.self) { try await stalled.note(job.id, waiting: "stale", host: nil, at: Date()) }
        await #expect(throws: StoreError.self) { try await stalled.finish(job.id, outcome: end) }
        await #expect(throws: StoreError.self) {
            try await stalled.requeue(job.id, reason: "stale", notBefore: Date(), countAttempt: true, at: Date())
        }
        await #expect(throws: StoreError.self) { try await stalled.leaveRunning(job.id, detail: "stale", at: Date()) }
        await #expect(throws: StoreError.self) { try await stalled.holdResults(job.id, outcome: end, results: Data("{}".utf8), at: Date()) }
        #expect(try await live.job(id: job.id)?.status == .running)
        #expect(try await live.outputPosition(of: job.id) == OutputPosition(stdout: 7, stderr: 0, cut: false))
        #expect(try await live.pendingResults().isEmpty)

        // The live server writes on from where the stored output goes, and ends the job.
        try await live.appendOutput(job.id, [(.stdout, "after\n", Date())], through: OutputPosition(stdout: 13, stderr: 0, cut: false))
        try await live.finish(job.id, outcome: Sample.outcome(.succeeded))
        #expect(try await live.job(id: job.id)?.status == .succeeded)
        var output = ""
        for item in try await live.feed(of: job.id, after: FeedCursor()).items {
            if case .output(let chunk) = item.kind { output += chunk.text }
        }
        #expect(output == "before\nafter\n")
        // An ended job is no one's to follow: any server may read it, none rewrites it.
        #expect(try await stalled.follows(job.id))
        try await stalled.finish(job.id, outcome: end)
        #expect(try await live.job(id: job.id)?.status == .succeeded)
    }

    /// Two servers given the same deliveries at the same moment (a balancer that sends GitHub's
    /// redelivery to the other one, or a replay of the same body under a new id): each delivery
    /// is one job and both answers name it; and together they never fill a project past its
    /// limit. Each delivery is one statement that commits alone, so what keeps this is the
    /// database's unique keys and the count row's latest version, not a lock held between.
    @Test func twoServersTakingTheSameDeliveriesAtOnceStoreEachOnceAndKeepTheLimit() async throws {
        let server = try await ThrowawayPostgres.shared()
        let url = server.url(database: try await server.makeDatabase())
        let first = try await Self.serving(url), second = try await Self.serving(url)
        let deliveries = (0..<60).map { "d-\($0)" }
        let answers = try await withThrowingTaskGroup(of: (String, EnqueueResult).self) { group in
            for (index, delivery) in deliveries.enumerated() {
                // Every third one reaches the second server replayed under a new id, its body the same.
                let copies = [(first, delivery), (second, index % 3 == 0 ? delivery + "-replayed" : delivery)]
                for (store, id) in copies {
                    group.addTask {
                        (delivery, try await store.enqueue(Sample.push(), delivery: id, payload: Data(delivery.utf8),
                                                           bodySHA256: "body-" + delivery, maxQueued: .max, detail: nil))
                    }
                }
            }
            return try await group.reduce(into: [String: [EnqueueResult]]()) { $0[$1.0, default: []].append($1.1) }
        }
        for delivery in deliveries {
            let mine = answers[delivery] ?? []
            let created = mine.filter { if case .created = $0 { true } else { false } }
            #expect(mine.count == 2 && created.count == 1, "\(delivery): \(mine)")
            #expect(Set(mine.map(\.job?.id)).count == 1, "\(delivery): \(mine)")
        }
        #expect(try await first.jobCount() == deliveries.count)
        #expect(try await second.deliveryCount() == deliveries.count)

        let outcomes = try await withThrowingTaskGroup(of: EnqueueResult.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await (index % 2 == 0 ? first : second).enqueue(Sample.push(project: "tight"), delivery: "tight-\(index)",
                                                                        payload: nil, bodySHA256: nil, maxQueued: 10, detail: nil)
                }
            }
            return try await group.reduce(into: [EnqueueResult]()) { $0.append($1) }
        }
        let created = outcomes.filter { if case .created = $0 { true } else { false } }
        #expect(created.count == 10)
        #expect(outcomes.filter { $0 == .queueFull(queued: 10) }.count == 30, "\(outcomes)")
        #expect(try await first.jobs(project: "tight", limit: 100).count == 10)
        // A refused delivery left nothing behind: its id is free for a later copy.
        #expect(try await second.deliveryCount() == deliveries.count + 10)
    }
}
