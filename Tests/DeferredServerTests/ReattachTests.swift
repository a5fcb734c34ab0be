import DeferredCore
import DeferredStore
import Foundation
import Testing

/// A job's command runs detached on its host: when the connection breaks mid-job, the server
/// connects again and follows the output from the byte it got to. The command runs once (a
/// file counts its runs) and the output has no gap and no byte twice. Only a job the host
/// lost runs again.
@Suite struct ReattachTests {
    /// A job that prints, says it started, waits for `release` (on its first run only), and
    /// prints again.
    struct Marked {
        let folder: String
        var runs: String { folder + "/runs" }
        var started: String { folder + "/started" }
        var release: String { folder + "/release" }
        var pid: String { folder + "/pid" }

        var script: String {
            """
            #!/bin/sh
            echo run >> '\(runs)'
            echo $$ > '\(pid)'
            for i in 1 2 3; do echo "before $i"; done
            echo "to stderr" >&2
            touch '\(started)'
            if [ "$(wc -l < '\(runs)')" -eq 1 ]; then while [ ! -e '\(release)' ]; do sleep 0.1; done; fi
            for i in 1 2 3; do echo "after $i"; done

            """
        }

        var runCount: Int { ((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "").split(separator: "\n").count }
    }

    static let wholeOutput = "before 1\nbefore 2\nbefore 3\nafter 1\nafter 2\nafter 3\n"

    /// The sshd processes serving the connections of the sshd listening as `listener`.
    static func connections(of listener: pid_t) -> [pid_t] {
        HostStall.descendants(of: listener).filter { HostStall.command(of: $0) == "sshd" }
    }

    /// Kills the sshd processes serving connections: every connection drops at once.
    static func dropConnections(of listener: pid_t) -> Int {
        let served = connections(of: listener)
        for pid in served { kill(pid, SIGKILL) }
        return served.count
    }

    /// Posts the marked job, waits until it has started, does `interrupt`, lets the job end,
    /// and returns its results.json (as JSON: what crosses tasks must be Sendable).
    static func runInterrupted(_ harness: ServerHarness, _ marked: Marked,
                               _ interrupt: @escaping @Sendable () async throws -> Void) async throws -> (results: [String: Any], job: JobID) {
        let (data, id) = try await harness.serve { client -> (Data, JobID) in
            let commit = try await harness.repo.commit(["script/job.sh": marked.script])
            let answer = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
            let id = try #require((answer["id"] as? String).map(JobID.init(rawValue:)))
            try await StalledHostTests.eventually("the job starts") { FileManager.default.fileExists(atPath: marked.started) }
            try await interrupt()
            #expect(FileManager.default.createFile(atPath: marked.release, contents: Data()))
            let results = try await ServerHarness.results(client, resultURL: try #require(answer["result_url"] as? String))
            return (try JSONSerialization.data(withJSONObject: results), id)
        }
        return (try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]), id)
    }

    @Test func aDroppedConnectionIsFollowedAgainAndTheJobRunsOnce() async throws {
        let harness = try await ServerHarness()
        let marked = Marked(folder: harness.folder)
        let listener = harness.sshd.pid
        let (results, id) = try await Self.runInterrupted(harness, marked) {
            #expect(Self.dropConnections(of: listener) > 0, "no connection to drop")
            // The job goes on printing while nobody follows it.
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(results["status"] as? String == "succeeded", "\(results)")
        #expect(results["stdout"] as? String == Self.wholeOutput, "\(results)")
        #expect(results["stderr"] as? String == "to stderr\n", "\(results)")
        #expect(results["exit_status"] as? Int == 0)
        #expect(results["attempts"] as? Int == 1)
        #expect(marked.runCount == 1, "the command ran \(marked.runCount) times")
        // Nothing was queued again: the job was followed, not retried.
        let requeued = try await harness.store.events(of: id).filter { $0.status == .queued }.count
        #expect(requeued == 1, "queued \(requeued) times")
    }

    @Test func anSSHDRestartMidJobIsFollowedAgainAndTheJobRunsOnce() async throws {
        let harness = try await ServerHarness()
        let marked = Marked(folder: harness.folder)
        let sshd = harness.sshd
        let (results, _) = try await Self.runInterrupted(harness, marked) {
            // The service stops (its listener and every connection), stays down two seconds,
            // and comes back on the same port.
            let served = Self.connections(of: sshd.pid)
            #expect(!served.isEmpty, "no connection to drop")
            sshd.stop()
            for pid in served { kill(pid, SIGKILL) }
            try await Task.sleep(for: .seconds(2))
            try await sshd.startAgain()
        }
        #expect(results["status"] as? String == "succeeded", "\(results)")
        #expect(results["stdout"] as? String == Self.wholeOutput, "\(results)")
        #expect(marked.runCount == 1, "the command ran \(marked.runCount) times")
    }

    /// The job's folder vanishes (as on a host that lost its disk or was rebuilt) and its
    /// processes with it: the host has lost the job, and only then does it run again.
    @Test func aJobTheHostLostRunsAgain() async throws {
        let harness = try await ServerHarness()
        let marked = Marked(folder: harness.folder)
        let home = try #require(harness.sshd.home)
        let (results, id) = try await Self.runInterrupted(harness, marked) {
            let jobs = home + "/.deferred/jobs"
            let folders = try FileManager.default.contentsOfDirectory(atPath: jobs)
            let pid = try #require(pid_t((try String(contentsOfFile: marked.pid, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
            let group = getpgid(pid)
            // The sshd's HOME is this test's own: its only job folder is this job's.
            #expect(folders.count == 1, "\(folders)")
            for folder in folders { try FileManager.default.removeItem(atPath: "\(jobs)/\(folder)") }
            if group > 0 { kill(-group, SIGKILL) }
        }
        #expect(results["status"] as? String == "succeeded", "\(results)")
        #expect(marked.runCount == 2, "the command ran \(marked.runCount) times")
        #expect(results["attempts"] as? Int == 2, "\(results)")
        let reasons = try await harness.store.events(of: id).filter { $0.status == .queued }.compactMap(\.detail)
        #expect(reasons.contains { $0.contains("no longer has the job") }, "\(reasons)")
    }
}
