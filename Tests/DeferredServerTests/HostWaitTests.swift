import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import HummingbirdTesting
import Testing

/// A static host whose SSH does not answer (down, sshd restarting) keeps its jobs queued,
/// waiting for it without using up their attempts, for `host_wait_minutes`.
@Suite struct HostWaitTests {
    /// A push whose job appends `name` to the harness's `runs` file.
    static func marking(_ name: String, in harness: ServerHarness) -> [String: String] {
        ["script/job.sh": "#!/bin/sh\necho \(name) >> '\(harness.folder)/runs'\necho \(name) done\n"]
    }

    /// The host goes down: sshd and every connection it serves.
    static func takeDown(_ sshd: ThrowawaySSHD) {
        let served = ReattachTests.connections(of: sshd.pid)
        sshd.stop()
        for pid in served { kill(pid, SIGKILL) }
    }

    /// The host is known to be up (it ran a job marking `first`), then goes down.
    static func runFirstThenTakeDown(_ harness: ServerHarness, _ client: any TestClientProtocol) async throws {
        let first = try await harness.runPush(client, files: marking("first", in: harness))
        #expect(first["status"] as? String == "succeeded", "\(first)")
        takeDown(harness.sshd)
    }

    /// Pushes a commit whose job marks `name`, and returns the job's result URL.
    static func pushMarked(_ name: String, in harness: ServerHarness, _ client: any TestClientProtocol) async throws -> String {
        let commit = try await harness.repo.commit(marking(name, in: harness))
        let answer = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
        return try #require(answer["result_url"] as? String)
    }

    @Test func jobsThatArriveWhileTheHostIsDownRunOnceWhenItIsBack() async throws {
        let harness = try await ServerHarness()
        let store = harness.store, sshd = harness.sshd
        try await harness.serve { client in
            try await Self.runFirstThenTakeDown(harness, client)
            var urls: [String] = []
            for name in ["second", "third"] { urls.append(try await Self.pushMarked(name, in: harness, client)) }
            try await StalledHostTests.eventually("the host is seen as unreachable") {
                try await store.host(named: "loopback")?.state == .unreachable
            }
            // Down a while longer: the jobs keep waiting, none fails.
            try await Task.sleep(for: .seconds(6))
            #expect(try await store.jobs().allSatisfy { !$0.status.isFinal || $0.status == .succeeded })
            try await sshd.startAgain()

            for url in urls {
                let results = try await ServerHarness.results(client, resultURL: url)
                #expect(results["status"] as? String == "succeeded", "\(results)")
            }
            // A job that met the broken connection was looked for on the host (never started
            // there) and run as its second attempt; no job used up its attempts waiting.
            let jobs = try await store.jobs()
            #expect(jobs.allSatisfy { $0.attempts <= 1 }, "\(jobs.map(\.attempts))")
            var waited: [String] = []
            for job in jobs { waited += try await store.events(of: job.id).compactMap(\.detail) }
            #expect(waited.contains { $0.contains("does not answer") && $0.contains("host_wait_minutes") }, "\(waited)")
            #expect(try await store.host(named: "loopback")?.state != .unreachable)
        }
        let runs = try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8).split(separator: "\n").sorted()
        #expect(runs == ["first", "second", "third"], "\(runs)")
    }

    /// The case as a user meets it: the host is down two whole minutes (past the
    /// backoff's one-minute cap) while jobs keep arriving; each runs once when it is back, and
    /// none used up its attempts waiting.
    @Test func aHostDownForTwoMinutesWhileJobsArriveRunsEachOnceWhenBack() async throws {
        let harness = try await ServerHarness()
        let store = harness.store, sshd = harness.sshd
        try await harness.serve { client in
            try await Self.runFirstThenTakeDown(harness, client)
            let down = ContinuousClock.now
            var urls: [String] = []
            for (index, name) in ["at-0s", "at-40s", "at-80s"].enumerated() {
                try await Task.sleep(until: down + .seconds(40 * index))
                urls.append(try await Self.pushMarked(name, in: harness, client))
            }
            try await Task.sleep(until: down + .seconds(120))
            #expect(try await store.jobs().allSatisfy { !$0.status.isFinal || $0.status == .succeeded }, "no job failed while waiting")
            try await sshd.startAgain()
            // A job may be a whole backoff (a minute at most) from its next try.
            try await StalledHostTests.eventually("every job ends", seconds: 150) {
                try await store.jobs().allSatisfy(\.status.isFinal)
            }
            for url in urls {
                let results = try await ServerHarness.results(client, resultURL: url)
                #expect(results["status"] as? String == "succeeded", "\(results)")
            }
            #expect(try await store.jobs().allSatisfy { $0.attempts <= 1 })
        }
        let runs = try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8).split(separator: "\n").sorted()
        #expect(runs == ["at-0s", "at-40s", "at-80s", "first"], "\(runs)")
    }

    /// The tries that met the host not answering, in time order: each sends its job back to
    /// the queue with an event saying so.
    static func missedTries(_ store: any JobStore) async throws -> [(job: JobID, at: Date)] {
        var tries: [(job: JobID, at: Date)] = []
        for job in try await store.jobs() {
            tries += try await store.events(of: job.id).filter { $0.status == .queued && ($0.detail ?? "").contains("does not answer") }
                .map { (job.id, $0.at) }
        }
        return tries.sorted { $0.at < $1.at }
    }

    /// A host that does not answer is tried once per step of its backoff, not once per job
    /// behind it: ten jobs wait while it is down (down from the start: no connection to it
    /// breaks under a job, which would hold its one slot while it waits), a few tries are
    /// made, and each job runs once when it is back.
    @Test func aHostThatDoesNotAnswerIsTriedOncePerBackoffNotOncePerJob() async throws {
        let harness = try await ServerHarness()
        let store = harness.store, sshd = harness.sshd
        Self.takeDown(sshd)
        try await harness.serve { client in
            var urls: [String] = []
            for index in 0..<10 { urls.append(try await Self.pushMarked("job-\(index)", in: harness, client)) }
            try await StalledHostTests.eventually("the host is seen as unreachable") {
                try await store.host(named: "loopback")?.state == .unreachable
            }
            // Tries 2 s, then 4 s after a miss: three in the 5 s from the first (without the hold
            // one for each job as it arrives, and each again after its own backoff: ten or more,
            // or five or more if pushes came a second apart on a loaded machine).
            try await Task.sleep(for: .seconds(6))
            let tries = try await Self.missedTries(store)
            let first = try #require(tries.first).at
            let early = tries.filter { $0.at < first.addingTimeInterval(5) }
            #expect((1...4).contains(early.count), "\(early.count) tries at the host in the 5 s from the first: \(tries)")
            #expect(try await store.jobs().allSatisfy { !$0.status.isFinal || $0.status == .succeeded })
            try await sshd.startAgain()
            for url in urls {
                let results = try await ServerHarness.results(client, resultURL: url)
                #expect(results["status"] as? String == "succeeded", "\(results)")
            }
        }
        let runs = try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8).split(separator: "\n").sorted()
        #expect(runs == (0..<10).map { "job-\($0)" }.sorted(), "\(runs)")
    }

    /// Jobs held back behind a host that does not answer still end when their wait is up,
    /// each after a try of its own, not one per step of the host's backoff (2 + 4 + 8 + 16 s
    /// for the fifth).
    @Test func jobsBehindAHeldHostEndAfterHostWaitMinutes() async throws {
        let harness = try await ServerHarness()
        harness.config.hosts[0].hostWaitMinutes = 0.05
        Self.takeDown(harness.sshd)
        try await harness.serve { client in
            var urls: [String] = []
            for index in 0..<5 { urls.append(try await Self.pushMarked("never-\(index)", in: harness, client)) }
            for url in urls {
                let results = try await ServerHarness.results(client, resultURL: url)
                #expect(results["status"] as? String == "error", "\(results)")
                #expect((results["error"] as? String)?.contains("did not answer for 0.05 minutes (host_wait_minutes)") == true, "\(results)")
            }
            let waits = try await harness.store.jobs().map { ($0.finishedAt ?? .distantFuture).timeIntervalSince($0.queuedAt) }
            #expect(waits.allSatisfy { $0 < 20 }, "seconds from queued to ended: \(waits)")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.folder + "/runs"))
    }

    @Test func aHostThatStaysDownEndsItsJobsAfterHostWaitMinutes() async throws {
        let harness = try await ServerHarness()
        harness.config.hosts[0].hostWaitMinutes = 0.05
        try await harness.serve { client in
            try await Self.runFirstThenTakeDown(harness, client)
            let results = try await harness.runPush(client, files: Self.marking("never", in: harness))
            #expect(results["status"] as? String == "error", "\(results)")
            #expect((results["error"] as? String)?.contains("did not answer for 0.05 minutes (host_wait_minutes)") == true, "\(results)")
        }
        let runs = try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8)
        #expect(runs == "first\n")
    }
}
