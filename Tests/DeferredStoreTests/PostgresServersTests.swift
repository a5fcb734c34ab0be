import DeferredCore
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// What only a store several servers share does: the housekeeper's turn.
@Suite struct PostgresServersTests {
    static func serving(_ url: String) async throws -> PostgresJobStore {
        try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password), serving: true)
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
        let server = try await ThrowawayPostgres.shared()
        let url = server.url(database: try await server.makeDatabase())
        let first = try await Self.serving(url), second = try await Self.serving(url)
        try await first.register(hosts: [Sample.host("h")], at: Sample.now)
        let job = Sample.push()
        _ = try await first.enqueue(job, delivery: nil)
        let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "h", maxJobs: 1)] }
        #expect(try await first.leaseNext(now: Date(), targetsFor: targets)?.job.id == job.id)
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
}
