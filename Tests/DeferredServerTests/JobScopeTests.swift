import Foundation
import Testing

/// A job that starts a child in a session of its own (`setsid`), out of its process group:
/// at the timeout the child is killed with the job, through the job's cgroup on the host.
@Suite struct JobScopeTests {
    @Test func aChildThatCalledSetsidIsKilledAtTheTimeoutToo() async throws {
        // The timeout counts the checkout too: 30 s leaves room for it while the whole suite starts at once.
        let harness = try await ServerHarness(timeoutMinutes: 0.5)
        let childFile = harness.folder + "/child.pid"
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: [
                "script/job.sh": "#!/bin/sh\nsetsid sh -c 'echo $$ > \(childFile); exec sleep 300' &\nsleep 300\n",
            ])
            #expect(results["status"] as? String == "timed_out", "\(results)")
            let child = try #require(pid_t((try String(contentsOfFile: childFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
            try await StalledHostTests.eventually("the setsid child is gone", seconds: 30) { !StalledHostTests.isAlive(child) }
            // Its session was its own: the process group alone would have missed it.
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/unified"))?.filter { $0.hasPrefix("deferred-") } ?? []
            #expect(!leftovers.contains { $0.contains(results["id"] as? String ?? "?") }, "the job's cgroup is removed: \(leftovers)")
        }
    }
}
