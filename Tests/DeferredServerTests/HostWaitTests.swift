import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
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

    @Test func jobsThatArriveWhileTheHostIsDownRunOnceWhenItIsBack() async throws {
        let harness = try await ServerHarness()
        let store = harness.store, sshd = harness.sshd
        try await harness.serve { client in
            // The host is known to be up: it ran a job.
            let first = try await harness.runPush(client, files: Self.marking("first", in: harness))
            #expect(first["status"] as? String == "succeeded", "\(first)")

            Self.takeDown(sshd)
            var urls: [String] = []
            for name in ["second", "third"] {
                let commit = try await harness.repo.commit(Self.marking(name, in: harness))
                let answer = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
                urls.append(try #require(answer["result_url"] as? String))
            }
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

    @Test func aHostThatStaysDownEndsItsJobsAfterHostWaitMinutes() async throws {
        let harness = try await ServerHarness()
        harness.config.hosts[0].hostWaitMinutes = 0.05
        let sshd = harness.sshd
        try await harness.serve { client in
            let first = try await harness.runPush(client, files: Self.marking("first", in: harness))
            #expect(first["status"] as? String == "succeeded", "\(first)")
            Self.takeDown(sshd)
            let results = try await harness.runPush(client, files: Self.marking("never", in: harness))
            #expect(results["status"] as? String == "error", "\(results)")
            #expect((results["error"] as? String)?.contains("did not answer for 0.05 minutes (host_wait_minutes)") == true, "\(results)")
        }
        let runs = try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8)
        #expect(runs == "first\n")
    }
}
