import DeferredCore
import DeferredDemo
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Retention runs by itself in `serve` (on the idle timer) and in `deferred idle-sleep` (cron).
@Suite struct RetentionWiringTests {
    /// A script job that ended `daysAgo` days ago, with files in the harness's file store.
    static func oldJob(in harness: ServerHarness, daysAgo: Double) async throws -> Job {
        let ended = Date().addingTimeInterval(-daysAgo * 86_400)
        let job = Job(project: "sample", trigger: .script(ScriptTrigger(
            script: "true\n", signer: "ci@example.com", interpreter: .program("/bin/sh"))), queuedAt: ended.addingTimeInterval(-60))
        _ = try await harness.store.enqueue(job, delivery: nil, payload: Data(#"{"old": true}"#.utf8))
        try await harness.store.finish(job.id, outcome: JobOutcome(status: .succeeded, exitStatus: 0, startedAt: ended.addingTimeInterval(-30), finishedAt: ended))
        let folder = harness.config.artifacts.directory + "/" + job.token.rawValue
        try FileManager.default.createDirectory(atPath: folder + "/artifacts", withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/results.json"))
        try Data("old".utf8).write(to: URL(fileURLWithPath: folder + "/artifacts/old.txt"))
        return job
    }

    @Test func serveExpiresOldJobsOnItsOwnTimer() async throws {
        let harness = try await ServerHarness()
        harness.sleepCheckInterval = .milliseconds(100)
        let old = try await Self.oldJob(in: harness, daysAgo: 20)
        let recent = try await Self.oldJob(in: harness, daysAgo: 1)
        try await harness.serve { client in
            var status = HTTPResponse.Status.ok
            for _ in 0..<600 where status != .gone {
                status = try await client.execute(uri: "/r/\(old.token.rawValue)/results.json", method: .get).status
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(status == .gone)
            #expect(try await client.execute(uri: "/r/\(recent.token.rawValue)/results.json", method: .get).status == .ok)
        }
        #expect(!FileManager.default.fileExists(atPath: harness.config.artifacts.directory + "/" + old.token.rawValue))
        #expect(FileManager.default.fileExists(atPath: harness.config.artifacts.directory + "/" + recent.token.rawValue + "/artifacts/old.txt"))
        // The stored webhook payload goes with the files; the recent job keeps its own.
        #expect(try await harness.store.payload(of: old.id) == nil)
        #expect(try await harness.store.payload(of: recent.id) == Data(#"{"old": true}"#.utf8))
    }

    /// The built `deferred` executable, as cron runs it.
    @Test func idleSleepFromCronExpiresOldJobsToo() async throws {
        let executable = try BuiltServer.executable()
        let harness = try await ServerHarness()
        let old = try await Self.oldJob(in: harness, daysAgo: 15)
        let config = try harness.writeConfig(
            server: [], store: [#"url = "sqlite:\#(harness.config.store.sqlitePath!)""#],
            artifacts: [#"store = "file:\#(harness.config.artifacts.directory)""#, "retention_days = 14"])
        let output = try await LocalCommand.runOffPool([executable, "idle-sleep", "--config", config], environment: BuiltServer.environment())
        #expect(output.contains("expired 1 job"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: harness.config.artifacts.directory + "/" + old.token.rawValue))
        #expect(try await harness.store.job(id: old.id)?.expiredAt != nil)
    }
}
