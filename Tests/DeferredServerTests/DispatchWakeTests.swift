import DeferredCore
@testable import DeferredDispatcher
import Foundation
import Testing

/// The dispatcher is woken by what frees a slot, never left to its poll: with the poll an hour
/// apart, jobs queued behind a one-slot host each start once the one before has ended.
@Suite struct DispatchWakeTests {
    @Test func aJobsEndStartsTheNextQueuedJobWithoutAPoll() async throws {
        let harness = try await ServerHarness()
        harness.config.hosts[0].maxJobs = 1
        harness.pollInterval = .seconds(3600)
        let store = harness.store
        try await harness.serve { client in
            var urls: [String] = []
            for name in ["one", "two", "three"] { urls.append(try await HostWaitTests.pushMarked(name, in: harness, client)) }
            for url in urls {
                let results = try await ServerHarness.results(client, resultURL: url)
                #expect(results["status"] as? String == "succeeded", "\(results)")
            }
            // One slot: each job started after the one before it had ended, so it was an end
            // that started it.
            let jobs = try await store.jobs().sorted { ($0.startedAt ?? .distantFuture) < ($1.startedAt ?? .distantFuture) }
            #expect(jobs.count == 3)
            for (before, after) in zip(jobs, jobs.dropFirst()) {
                #expect(try #require(after.startedAt) >= (try #require(before.finishedAt)), "\(jobs)")
            }
        }
        let runs = try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8).split(separator: "\n").sorted()
        #expect(runs == ["one", "three", "two"], "\(runs)")
    }
}

@Suite struct WakeupTests {
    /// A shutdown cancels the dispatcher's loop while it waits out its poll: the wait must end
    /// then, not an hour later.
    @Test func aCancelledWaitEndsAtOnce() async throws {
        let wakeup = Wakeup()
        let started = ContinuousClock.now
        let waiting = Task { await wakeup.wait(upTo: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await waiting.value
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test(.timeLimit(.minutes(1))) func aSignalBeforeTheWaitIsNotLost() async {
        let wakeup = Wakeup()
        await wakeup.signal()
        let waited = Task { await wakeup.wait(upTo: .seconds(3600)); return true }
        #expect(await waited.value)
    }
}
