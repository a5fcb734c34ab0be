import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import Testing

/// The built `deferred serve` stops mid-job, killed with SIGKILL or stopped with SIGTERM as a
/// routine restart or an upgrade does, and starts again. The job's command ran on, detached,
/// on its host; the new server follows it from where the stored output ends. Every accepted job
/// ends once with its results.json, its command runs once (a file counts its runs), and its
/// output (results.json, output.log, the stored feed) has no gap and no byte twice.
@Suite(.serialized) struct ServerRestartTests {
    /// A posted script that counts its runs, prints, says it started, waits for `release`, and
    /// prints again; `done` once it has printed everything.
    struct Marked {
        let folder: String
        var runs: String { folder + "/runs" }
        var started: String { folder + "/started" }
        var release: String { folder + "/release" }
        var done: String { folder + "/done" }

        init(_ harness: ServerHarness, _ name: String) throws {
            folder = harness.folder + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }

        var script: String {
            """
            #!/bin/sh
            echo run >> '\(runs)'
            for i in 1 2 3; do echo "before $i"; done
            echo "to stderr" >&2
            touch '\(started)'
            while [ ! -e '\(release)' ]; do sleep 0.1; done
            for i in 1 2 3; do echo "after $i"; done
            touch '\(done)'

            """
        }

        static let stdout = "before 1\nbefore 2\nbefore 3\nafter 1\nafter 2\nafter 3\n"

        var runCount: Int { ((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "").split(separator: "\n").count }

        func letEnd() { FileManager.default.createFile(atPath: release, contents: Data()) }
    }

    /// Where the server is stopped in the job's life.
    enum Moment: String, CaseIterable {
        /// At once once the command started: its first lines may not be stored yet.
        case justStarted
        /// A second later, its first lines stored.
        case outputStored
        /// At once, and the command ends while no server runs: it is collected as usual.
        case endedWhileDown
    }

    static let config = ["[idle]", "check_interval_seconds = 1"]

    /// A host nothing answers on, waited for 6 s (`host_wait_minutes`), and a project on it.
    static func downHost(_ harness: ServerHarness) throws -> [String] {
        ["[[hosts]]", #"name = "down""#, #"address = "127.0.0.1""#, "port = \(try FreePort.find())", #"user = "nobody""#,
         #"identity = "\#(harness.sshd.clientKey)""#, #"known_hosts = "\#(harness.sshd.knownHosts)""#, "host_wait_minutes = 0.1",
         "[[projects]]", #"name = "elsewhere""#, #"repository = "octo-org/elsewhere""#, #"hosts = ["down"]"#,
         #"script_secret_env = "DEFERRED_TEST_SCRIPT_SECRET""#]
    }

    /// With either store: on PostgreSQL the same recovery runs through row locks.
    @Test(arguments: ServedStore.allCases)
    func aServerKilledMidJobFollowsTheJobAgainAfterItsRestart(_ kind: ServedStore) async throws {
        let harness = try await ServerHarness()
        let store = try await kind.make(for: harness)
        let tables = Self.config + (try Self.downHost(harness))
        var ids: [JobID] = []
        for moment in Moment.allCases {
            let marked = try Marked(harness, moment.rawValue), after = try Marked(harness, moment.rawValue + "-queued")
            let stranded = try Marked(harness, moment.rawValue + "-waiting")
            let served = try await BuiltServer.start(harness, tables: tables, store: store.lines)
            let path = try await served.postScript(marked.script)
            // The host takes one job at a time: this one waits in the queue behind the first.
            let queued = try await served.postScript(after.script)
            after.letEnd()
            // This one waits for a host that does not answer.
            let waiting = try await served.postScript(stranded.script, project: "elsewhere")
            try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: marked.started) }
            if moment == .outputStored { try await Task.sleep(for: .seconds(1)) }
            kill(served.process.pid, SIGKILL)
            _ = served.process.waitForExit()
            if moment == .endedWhileDown {
                marked.letEnd()
                try await StalledHostTests.eventually("the command ends") { FileManager.default.fileExists(atPath: marked.done) }
            }

            marked.letEnd()
            let restarted = try await BuiltServer.start(harness, tables: tables, store: store.lines)
            defer { restarted.stop() }
            let results = try await restarted.results(at: path)
            #expect(restarted.said.contains("taking up again the jobs the last server left running"), "\(moment): \(OutOfFilesTests.tail(restarted.said))")
            #expect(results["status"] as? String == "succeeded", "\(moment): \(results)\n\(OutOfFilesTests.tail(restarted.said))")
            #expect(results["stdout"] as? String == Marked.stdout, "\(moment): \(results)")
            #expect(results["stderr"] as? String == "to stderr\n", "\(moment): \(results)")
            #expect(results["attempts"] as? Int == 1, "\(moment): \(results)")
            #expect(marked.runCount == 1, "\(moment): the command ran \(marked.runCount) times")
            try await Self.expectWholeLog(results, in: restarted, moment: moment)

            let next = try await restarted.results(at: queued)
            #expect(next["status"] as? String == "succeeded", "\(moment): \(next)")
            #expect(after.runCount == 1, "\(moment): the queued job's command ran \(after.runCount) times")
            // The job that waited for its host still ends, once: as error, its host never back.
            let gaveUp = try await restarted.results(at: waiting)
            #expect(gaveUp["status"] as? String == "error", "\(moment): \(gaveUp)")
            #expect((gaveUp["error"] as? String)?.contains("host_wait_minutes") == true, "\(moment): \(gaveUp)")
            ids.append(JobID(rawValue: try #require(results["id"] as? String)))
        }
        // The feed a listener reads: each job's stored stdout, whole and once.
        let opened = try await store.open()
        for id in ids {
            let stored = try await Self.storedOutput(of: id, in: opened)
            #expect(stored.stdout == Marked.stdout && stored.stderr == "to stderr\n", "\(id): \(stored)")
        }
    }

    @Test func aServerStoppedWithSIGTERMLeavesTheJobRunningAndFollowsItAfterItsRestart() async throws {
        let harness = try await ServerHarness()
        let marked = try Marked(harness, "job")
        let served = try await BuiltServer.start(harness, tables: Self.config)
        let path = try await served.postScript(marked.script)
        try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: marked.started) }
        served.stop()
        #expect(served.said.contains("leaving 1 job running on their hosts (1 on loopback)"), "\(OutOfFilesTests.tail(served.said))")
        // The command runs on while no server follows it.
        marked.letEnd()
        try await StalledHostTests.eventually("the command goes on alone") { FileManager.default.fileExists(atPath: marked.done) }

        let restarted = try await BuiltServer.start(harness, tables: Self.config)
        defer { restarted.stop() }
        let results = try await restarted.results(at: path)
        #expect(results["status"] as? String == "succeeded", "\(results)\n\(OutOfFilesTests.tail(restarted.said))")
        #expect(results["stdout"] as? String == Marked.stdout, "\(results)")
        #expect(results["attempts"] as? Int == 1, "\(results)")
        #expect(marked.runCount == 1, "the command ran \(marked.runCount) times")
        try await Self.expectWholeLog(results, in: restarted, moment: nil)
        // The job's folder on the host goes once its end is stored.
        let jobs = try #require(harness.sshd.home) + "/.deferred/jobs"
        try await StalledHostTests.eventually("the job's folder is removed") {
            ((try? FileManager.default.contentsOfDirectory(atPath: jobs)) ?? []).isEmpty
        }
    }

    /// A job's timeout counts from its own start, not from the restart: a job whose timeout
    /// passed while no server ran is killed as soon as it is followed again.
    @Test func aJobsTimeoutCountsFromItsOwnStartAcrossARestart() async throws {
        let harness = try await ServerHarness()
        let marked = try Marked(harness, "endless")
        let timeout = 12.0
        let served = try await BuiltServer.start(harness, project: ["timeout_minutes = \(timeout / 60)"], tables: Self.config)
        let path = try await served.postScript(marked.script)
        try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: marked.started) }
        let started = Date()
        kill(served.process.pid, SIGKILL)
        _ = served.process.waitForExit()
        try await Task.sleep(for: .seconds(timeout + 1))

        let restartedAt = Date()
        #expect(restartedAt.timeIntervalSince(started) > timeout)
        let restarted = try await BuiltServer.start(harness, project: ["timeout_minutes = \(timeout / 60)"], tables: Self.config)
        defer { restarted.stop() }
        let results = try await restarted.results(at: path)
        #expect(results["status"] as? String == "timed_out", "\(results)\n\(OutOfFilesTests.tail(restarted.said))")
        #expect(marked.runCount == 1, "the command ran \(marked.runCount) times")
        // Counted from the restart, it would have run a whole timeout more.
        let finished = try #require((results["finished_at"] as? String).flatMap { try? Date($0, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) })
        #expect(finished.timeIntervalSince(restartedAt) < timeout, "finished \(finished.timeIntervalSince(restartedAt)) s after the restart")
    }

    /// output.log holds every line once (stdout and stderr may interleave either way).
    static func expectWholeLog(_ results: [String: Any], in served: BuiltServer, moment: Moment?) async throws {
        // The URL the server that wrote results.json had: the path is what counts.
        let path = try #require((results["output_log"] as? String).flatMap(URL.init(string:))?.path)
        let log = try await HTTPClient().send(HTTPClientRequest(url: served.base + path, timeout: .seconds(10)))
        #expect(log.status == 200)
        let lines = String(decoding: log.body, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.sorted() == (Marked.stdout + "to stderr\n").split(separator: "\n", omittingEmptySubsequences: false).sorted(),
                "\(moment.map { "\($0)" } ?? ""): \(lines)")
    }

    /// The job's output as the store keeps it for the event stream, every page of it.
    static func storedOutput(of id: JobID, in store: any JobStore) async throws -> (stdout: String, stderr: String) {
        var cursor = FeedCursor(), stdout = "", stderr = ""
        while true {
            let feed = try await store.feed(of: id, after: cursor)
            for item in feed.items {
                cursor = item.cursor
                guard case .output(let chunk) = item.kind else { continue }
                if chunk.stream == .stdout { stdout += chunk.text } else { stderr += chunk.text }
            }
            if !feed.hasMore { return (stdout, stderr) }
        }
    }
}
