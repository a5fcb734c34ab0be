import DeferredCore
import DeferredDemo
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// `deferred store copy`, the way from one server's SQLite file to a PostgreSQL database: what
/// the copy reads back is what the file held, ids and cursors included, and new writes go on
/// after it.
@Suite struct StoreCopyTests {
    @Test func aSQLiteStoreCopiedIntoPostgreSQLReadsBackTheSameAndGoesOn() async throws {
        let folder = NSTemporaryDirectory() + "deferred-copy-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        let postgres = try await ThrowawayPostgres.shared()
        let database = try await postgres.makeDatabase()
        let url = postgres.url(database: database)

        var ids: [JobID] = []
        do {
            let sqlite = try SQLiteJobStore(path: path)
            let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            try await sqlite.register(hosts: [HostConfig(name: "h1", address: "127.0.0.1", user: "u", identity: nil, knownHosts: "/dev/null",
                                                         maxJobs: 2)], at: now)
            let push = Job(project: "p", trigger: .push(PushTrigger(repository: "o/r", ref: "refs/heads/main", commit: String(repeating: "b", count: 40),
                                                                     delivery: "d-1", pusher: "o", cloneURL: "https://example.com/o/r.git")),
                           queuedAt: now)
            // Long enough that SQLite keeps it compressed: the copy must carry that over.
            let payload = Data(("{\"commits\":[" + Array(repeating: "{\"message\":\"a change\"}", count: 40).joined(separator: ",") + "]}").utf8)
            _ = try await sqlite.enqueue(push, delivery: "d-1", payload: payload, bodySHA256: "sha-1", maxQueued: 10, detail: "push")
            let script = Job(project: "p", trigger: .script(ScriptTrigger(script: "echo hi\n", signer: "ci", interpreter: .program("/bin/sh"))),
                             queuedAt: now.addingTimeInterval(1))
            _ = try await sqlite.enqueueScript(script, idempotency: IdempotencyClaim(key: "k-1", bodySHA256: "body"), maxQueued: 10)
            let waiting = Job(project: "p", trigger: .script(ScriptTrigger(script: "true\n", signer: "ci", interpreter: .program("/bin/sh"))),
                              queuedAt: now.addingTimeInterval(2))
            _ = try await sqlite.enqueueScript(waiting, idempotency: nil, maxQueued: 10)
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "h1", maxJobs: 2)] }
            let first = try #require(try await sqlite.leaseNext(now: now, targetsFor: targets))
            try await sqlite.markRunning(first.job.id, at: now)
            try await sqlite.appendOutput(first.job.id, [(.stdout, "line 1\n", now), (.stderr, "warn\n", now)],
                                          through: OutputPosition(stdout: 7, stderr: 5, cut: false))
            try await sqlite.finish(first.job.id, outcome: JobOutcome(status: .succeeded, exitStatus: 0, startedAt: now, finishedAt: now))
            let second = try #require(try await sqlite.leaseNext(now: now.addingTimeInterval(1), targetsFor: targets))
            try await sqlite.holdResults(second.job.id, outcome: JobOutcome(status: .failed, exitStatus: 3, startedAt: now, finishedAt: now),
                                         results: Data("{}".utf8), at: now)
            _ = try await sqlite.requestCancel(waiting.id, by: "admin", at: now)
            try await sqlite.recordBootFailure(fleet: "fl", reason: "no answer", at: now)
            ids = [push.id, script.id, waiting.id]
        }
        let sqlite = try SQLiteJobStore(path: path)

        var environment = ProcessInfo.processInfo.environment
        environment["DEFERRED_DB_PASSWORD"] = ThrowawayPostgres.password
        let said = try await LocalCommand.runOffPool([try BuiltServer.executable(), "store", "copy", "--from", "sqlite:" + path, "--to", url],
                                                     environment: environment)
        #expect(said.contains("job: 3 rows") && said.contains("job_event:") && said.contains("job_output: 2 rows"), "\(said)")

        let copy = try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password))
        #expect(try await copy.jobs(project: nil, limit: 10) == (try await sqlite.jobs(project: nil, limit: 10)))
        for id in ids {
            #expect(try await copy.job(id: id) == (try await sqlite.job(id: id)))
            #expect(try await copy.events(of: id, after: 0) == (try await sqlite.events(of: id, after: 0)))
            #expect(try await copy.feed(of: id, after: FeedCursor()) == (try await sqlite.feed(of: id, after: FeedCursor())))
            #expect(try await copy.payload(of: id) == (try await sqlite.payload(of: id)))
            #expect(try await copy.outputPosition(of: id) == (try await sqlite.outputPosition(of: id)))
        }
        #expect(try await copy.hosts() == (try await sqlite.hosts()))
        #expect(try await copy.pendingResults() == (try await sqlite.pendingResults()))
        #expect(try await copy.fleetBootFailures() == (try await sqlite.fleetBootFailures()))
        #expect(try await copy.deliveryCount() == 1)

        // Deliveries and keys seen before are known to the copy; new rows go on after the old.
        let replay = CopySample.push()
        #expect(try await copy.enqueue(replay, delivery: "d-1", payload: nil, bodySHA256: nil, maxQueued: 10, detail: nil).job?.id == ids[0])
        let lastEvent = try await sqlite.events(of: ids[2], after: 0).map(\.sequence).max() ?? 0
        let fresh = CopySample.push()
        _ = try await copy.enqueue(fresh, delivery: "d-2")
        #expect(try await copy.events(of: fresh.id, after: 0).allSatisfy { $0.sequence > lastEvent })

        // A second copy into a database that holds jobs is refused and changes nothing.
        let refusal = await #expect(throws: LocalCommand.Failure.self) {
            _ = try await LocalCommand.runOffPool([try BuiltServer.executable(), "store", "copy", "--from", "sqlite:" + path, "--to", url],
                                                  environment: environment)
        }
        #expect(refusal?.stderr.contains("copy into an empty database") == true, "\(refusal?.stderr ?? "")")
        #expect(try await copy.jobCount() == 4)
    }
}

/// Jobs as the copy test needs them.
private enum CopySample {
    static func push() -> Job {
        Job(project: "p", trigger: .push(PushTrigger(repository: "o/r", ref: "refs/heads/main", commit: String(repeating: "c", count: 40),
                                                     delivery: UUID().uuidString, pusher: "o", cloneURL: "https://example.com/o/r.git")))
    }
}
