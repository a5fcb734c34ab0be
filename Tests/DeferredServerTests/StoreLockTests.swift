import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import HTTPTypes
import Logging
import Testing

/// Another process holds an exclusive lock on the state database (a backup, a stuck
/// `sqlite3` shell): webhooks hear 503 with Retry-After instead of waiting past GitHub's
/// patience, and a job that ends meanwhile is recorded once the lock goes.
@Suite struct StoreLockTests {
    /// Holds `BEGIN EXCLUSIVE` on `database` for `seconds`, in a python3 process of its own;
    /// returns once the lock is held. `<marker>.released` is made just before the lock is let
    /// go: the process itself may take a while longer to end.
    static func lock(_ database: String, for seconds: Int, marker: String) async throws -> SpawnedProcess {
        let script = """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
            c.execute("BEGIN EXCLUSIVE")
            open(sys.argv[3], "w").close()
            time.sleep(int(sys.argv[2]))
            open(sys.argv[3] + ".released", "w").close()
            c.execute("COMMIT")
            """
        let process = try SpawnedProcess(executable: "/usr/bin/env", arguments: ["python3", "-c", script, database, String(seconds), marker],
                                         stderrPath: marker + ".log")
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: marker) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(FileManager.default.fileExists(atPath: marker), "the lock was never taken: \((try? String(contentsOfFile: marker + ".log", encoding: .utf8)) ?? "")")
        return process
    }

    @Test func aLongLockGets503WithRetryAfterAndAJobThatEndsMeanwhileIsRecorded() async throws {
        let harness = try await ServerHarness()
        let store = harness.store
        let release = harness.folder + "/release"
        try await harness.serve { client in
            // The job waits for a file, so that it ends while the lock is held.
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\nwhile [ ! -e \(release) ]; do sleep 0.1; done\necho ended-under-lock\n"])
            let queued = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
            let url = try #require(queued["result_url"] as? String)
            let id = try #require((queued["id"] as? String).map(JobID.init(rawValue:)))
            try await StalledHostTests.eventually("the job runs") { try await store.job(id: id)?.status == .running }

            let locker = try await Self.lock(harness.config.store.sqlitePath!, for: 12, marker: harness.folder + "/locked")
            defer { locker.terminate() }
            FileManager.default.createFile(atPath: release, contents: nil)

            let started = ContinuousClock.now
            let refused = try await ServerHarness.post(client, harness.pushPayload(commit: String(repeating: "a", count: 40)))
            print("store lock: a webhook was answered \(refused.status.code) after \(ContinuousClock.now - started)")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "10")
            #expect((ServerHarness.json(refused)["error"] as? String)?.contains("locked") == true, "\(String(buffer: refused.body))")

            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "ended-under-lock\n")
            try await StalledHostTests.eventually("the end is recorded once the lock goes") { try await store.job(id: id)?.status == .succeeded }
            let host = try #require(try await store.host(named: "loopback"))
            #expect(host.activeJobs == 0 && host.state == .ready)
        }
    }

    /// A lock already held when the server starts, longer than a write waits for it: the
    /// dispatcher's start (its hosts registered, the last server's jobs taken up) is tried
    /// again until the lock goes, instead of ending the server (which the soak saw as an exit
    /// with status 1). A push posted after the lock then runs.
    @Test func aLockHeldAtTheStartIsWaitedOutAndJobsRunAfterIt() async throws {
        let harness = try await ServerHarness()
        let locker = try await Self.lock(harness.config.store.sqlitePath!, for: 6, marker: harness.folder + "/locked")
        defer { locker.terminate() }
        try await harness.serve { client in
            for _ in 0..<300 where locker.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!locker.isRunning, "the lock was still held after 15 s")
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho after-the-lock\n"])
            let queued = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
            let url = try #require(queued["result_url"] as? String)
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "after-the-lock\n")
        }
    }

    /// Opening a file that has no WAL (a clean stop removes it) writes to make one: a server
    /// started while another process holds the lock waits for it (it used to end with
    /// "cannot open the state database … database is locked"), then serves the file.
    @Test func aServerOpeningItsStoreUnderALockWaitsForIt() async throws {
        let folder = NSTemporaryDirectory() + "deferred-open-lock-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        do { _ = try SQLiteJobStore(path: path) }
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the closed store left its WAL: opening it would not write")
        let locker = try await Self.lock(path, for: 5, marker: folder + "/locked")
        defer { locker.terminate() }
        let store = try await StoreOpener.open(.sqlite(path), serving: true, logger: Logger(label: "test"))
        #expect(FileManager.default.fileExists(atPath: folder + "/locked.released"), "the store opened while the lock was still held")
        let job = Job(project: "p", trigger: .script(ScriptTrigger(script: "true\n", signer: "ci@example.com", interpreter: .program("/bin/sh"))))
        #expect(try await store.enqueueScript(job, idempotency: nil, maxQueued: 10) == .created(job))
    }
}
