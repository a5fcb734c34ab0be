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

/// Each exec starts the remote user's shell, so an ended job's folder goes with the next exec
/// to its host, the next job's start, and only on its own when no job comes.
@Suite struct FolderForgetTests {
    static func folders(_ harness: ServerHarness) -> Set<String> {
        let jobs = (harness.sshd.home ?? NSHomeDirectory()) + "/.deferred/jobs"
        return Set((try? FileManager.default.contentsOfDirectory(atPath: jobs)) ?? [])
    }

    @Test func anEndedJobsFolderGoesWithTheNextStartOnItsHost() async throws {
        let harness = try await ServerHarness()
        harness.config.hosts[0].maxJobs = 1
        // Never on their own within the test: only a start takes them.
        harness.forgetDelay = .seconds(3600)
        let store = harness.store
        try await harness.serve { client in
            var urls: [String] = []
            for name in ["one", "two", "three"] { urls.append(try await HostWaitTests.pushMarked(name, in: harness, client)) }
            for url in urls { _ = try await ServerHarness.results(client, resultURL: url) }
            let jobs = try await store.jobs().sorted { ($0.startedAt ?? .distantFuture) < ($1.startedAt ?? .distantFuture) }
            try #require(jobs.count == 3 && jobs.allSatisfy { $0.status == .succeeded }, "\(jobs)")
            // The first went with a later start (the second's, or the third's if the first's end
            // was told after the second had started); the last waits, as no start came after it.
            try await StalledHostTests.eventually("the last job's folder waits for a start") {
                Self.folders(harness).contains(jobs[2].id.rawValue)
            }
            #expect(!Self.folders(harness).contains(jobs[0].id.rawValue), "\(Self.folders(harness))")
            let fourth = try await HostWaitTests.pushMarked("four", in: harness, client)
            _ = try await ServerHarness.results(client, resultURL: fourth)
            let left = Self.folders(harness)
            #expect(jobs.allSatisfy { !left.contains($0.id.rawValue) }, "\(left)")
        }
    }

    @Test func anEndedJobsFolderGoesOnItsOwnWhenNoJobFollows() async throws {
        let harness = try await ServerHarness()
        harness.forgetDelay = .milliseconds(200)
        try await harness.serve { client in
            let url = try await HostWaitTests.pushMarked("alone", in: harness, client)
            let results = try await ServerHarness.results(client, resultURL: url)
            let id = try #require(results["id"] as? String)
            try await StalledHostTests.eventually("the folder goes") { !Self.folders(harness).contains(id) }
        }
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
        wakeup.signal()
        let waited = Task { await wakeup.wait(upTo: .seconds(3600)); return true }
        #expect(await waited.value)
    }

    /// A wait ended by a signal leaves nothing behind: its timer, cancelled, does not signal
    /// later, so the next wait lasts its time instead of returning at once (an extra turn of
    /// the dispatcher's loop, a lease for nothing, after every delivery).
    @Test(.timeLimit(.minutes(1))) func aWaitEndedBySignalLeavesNoSignalBehind() async throws {
        let wakeup = Wakeup()
        let first = Task { await wakeup.wait(upTo: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        wakeup.signal()
        await first.value
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        await wakeup.wait(upTo: .milliseconds(300))
        #expect(ContinuousClock.now - started >= .milliseconds(290))
    }
}
