import DeferredCore
import DeferredStore
import Foundation
import Testing

/// A job that was running each time the server stopped may be what stops it: after three such
/// starts (no graceful stop between) it ends as `error`, with its results.json, instead of
/// crashing every start to come.
@Suite struct CrashLoopGuardTests {
    @Test func aJobFoundRunningAtThreeStartsInARowEndsAsError() async throws {
        let harness = try await ServerHarness()
        let job = try await harness.storePush(["script/job.sh": "#!/bin/sh\necho must-not-run\n"], delivery: "d-loop")
        let store = harness.store
        // Two starts find it running and take it up again on its host: each counts.
        let lease = try #require(try await store.leaseNext { _ in [.host(name: "loopback", maxJobs: 1)] })
        try await store.markRunning(lease.job.id)
        for start in 1...2 {
            let recovery = try await store.recoverInterrupted(limit: 3)
            #expect(recovery.resumed.map(\.job.id) == [job.id], "start \(start)")
            #expect(recovery.requeued.isEmpty && recovery.givenUp.isEmpty)
        }
        // The third start finds it running again: the server's own start ends it.
        try await harness.serve { client in
            let results = try await ServerHarness.results(client, resultURL: "http://deferred.test/r/\(job.token.rawValue)/results.json")
            #expect(results["status"] as? String == "error")
            #expect((results["error"] as? String)?.contains("each of the last 3 times the server stopped") == true, "\(results["error"] ?? "")")
            #expect(results["stdout"] as? String == "")
        }
        let host = try #require(try await store.host(named: "loopback"))
        #expect(host.activeJobs == 0 && host.state == .ready)
    }
}
