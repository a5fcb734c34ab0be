import DeferredCore
import DeferredStore
import Foundation
import HummingbirdTesting
import Testing

/// A host that keeps TCP open but stops answering (its sshd's session processes stopped):
/// the server stays up, and a job's timeout still holds.
@Suite(.serialized) struct StalledHostTests {
    /// Waits for `condition`, a bound against hanging, not a speed check.
    static func eventually(_ what: String, seconds: Int = 60, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<(seconds * 10) {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("never: \(what)")
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        // A zombie has ended; only its parent has not read its status yet.
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    @Test func aChannelThatFailsOnAStalledConnectionDoesNotTakeTheServerDown() async throws {
        let harness = try await ServerHarness()
        harness.config.hosts[0].maxJobs = 2
        let marker = harness.folder + "/started"
        let store = harness.store
        try await harness.serve { client in
            let slow = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho a >> \(marker)\nsleep 5\necho done-a\n"])
            let first = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: slow)))
            let firstID = try #require((first["id"] as? String).map(JobID.init(rawValue:)))
            try await Self.eventually("the first job runs") { FileManager.default.fileExists(atPath: marker) }

            var stall = HostStall(listener: harness.sshd.pid)
            stall.stall()
            #expect(!stall.stopped.isEmpty, "no sshd session process to stop")
            // The second job's channel cannot open on the stalled connection: it fails, and the
            // connection is dropped while the first job still reads from it.
            let quick = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho done-b\n"])
            let second = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: quick)))
            let secondID = try #require((second["id"] as? String).map(JobID.init(rawValue:)))
            try await Self.eventually("the second job is queued again after its channel failed", seconds: 90) {
                try await store.events(of: secondID).contains { $0.status == .queued && ($0.detail ?? "").contains("trying again") }
            }
            stall.resume()

            // The server is still there, and both jobs end on a fresh connection.
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
            let firstResults = try await ServerHarness.results(client, resultURL: try #require(first["result_url"] as? String))
            let secondResults = try await ServerHarness.results(client, resultURL: try #require(second["result_url"] as? String))
            #expect(firstResults["status"] as? String == "succeeded", "\(firstResults)")
            #expect(secondResults["status"] as? String == "succeeded", "\(secondResults)")
            #expect(try await store.job(id: firstID)?.status == .succeeded)
        }
    }

    @Test func aJobOnAStalledHostTimesOutAndIsKilledOnceTheHostAnswers() async throws {
        // The timeout counts the checkout too: 15 s leaves room for it on a loaded machine.
        let harness = try await ServerHarness(timeoutMinutes: 0.25)
        let pidFile = harness.folder + "/job.pid"
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho $$ > \(pidFile)\nexec sleep 300\n"])
            let queued = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
            let url = try #require(queued["result_url"] as? String)
            try await Self.eventually("the job starts") { (try? String(contentsOfFile: pidFile, encoding: .utf8))?.hasSuffix("\n") == true }
            let pid = try #require(pid_t((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))

            var stall = HostStall(listener: harness.sshd.pid)
            stall.stall()
            defer { stall.resume() }
            let started = ContinuousClock.now
            let results = try await ServerHarness.results(client, resultURL: url)
            print("stalled host: timed out \(ContinuousClock.now - started) after the stall (timeout 15 s from the exec, SSH timeout 10 s, grace 1 + 3 s)")
            #expect(results["status"] as? String == "timed_out", "\(results)")
            #expect((results["error"] as? String)?.contains("stopped answering") == true, "\(results["error"] ?? "")")
            #expect(Self.isAlive(pid), "the job's process should still run while its host is stalled")

            stall.resume()
            try await Self.eventually("the job's process is killed once the host answers", seconds: 90) { !Self.isAlive(pid) }
        }
    }
}
