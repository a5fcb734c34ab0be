import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// Three `deferred serve` processes sharing one PostgreSQL database and one build host: jobs
/// posted to any of them run once each, on one server each; a server killed with jobs running
/// has them taken over by a live one, which follows them to their end without running them
/// again.
@Suite(.serialized) struct MultiServerTests {
    static func servers(_ harness: ServerHarness, _ store: ServedStore.Made, count: Int, project: [String] = [],
                        host: [String] = []) async throws -> [BuiltServer] {
        var servers: [BuiltServer] = []
        for index in 0..<count {
            servers.append(try await BuiltServer.start(harness, project: project, tables: ServerRestartTests.config, store: store.lines,
                                                       instance: "serve-\(index)", host: host))
        }
        return servers
    }

    /// The server whose log says it runs `id`.
    static func runner(of id: JobID, among servers: [BuiltServer]) -> BuiltServer? {
        servers.first { server in server.said.split(separator: "\n").contains { $0.contains(id.rawValue) && $0.hasSuffix("] running") } }
    }

    /// A marked job posted to the first of two servers and running: its result path, its id,
    /// the server that runs it and the other one.
    struct RunningJob {
        let marked: ServerRestartTests.Marked
        let path: String
        let id: JobID
        let runner: BuiltServer
        let other: BuiltServer
    }

    static func runningJob(_ harness: ServerHarness, _ store: ServedStore.Made, on servers: [BuiltServer], _ name: String) async throws -> RunningJob {
        let marked = try ServerRestartTests.Marked(harness, name)
        let path = try await servers[0].postScript(marked.script)
        try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: marked.started) }
        let id = try #require(try await store.open().jobs(project: nil, limit: 1).first?.id)
        var runner: BuiltServer?
        try await StalledHostTests.eventually("a server says it runs the job") {
            runner = Self.runner(of: id, among: servers)
            return runner != nil
        }
        let found = try #require(runner)
        return RunningJob(marked: marked, path: path, id: id, runner: found, other: try #require(servers.first { $0.port != found.port }))
    }

    /// 300 signed pushes, each a different one under its own delivery id, posted in turn to
    /// three servers: 300 results.json, and the command ran 300 times, so no job ran twice and
    /// none was lost; the host's `max_jobs` held across the servers.
    @Test func pushesPostedRoundRobinToThreeServersEachRunOnce() async throws {
        let harness = try await ServerHarness()
        let store = try await ServedStore.postgres.make(for: harness)
        let runs = harness.folder + "/runs", most = harness.folder + "/most"
        // Each run counts itself, and notes how many ran at once on the host.
        let command = "echo run >> \(runs); n=$(ls \(harness.folder)/busy-* 2>/dev/null | wc -l); echo $((n + 1)) >> \(most); "
            + "touch \(harness.folder)/busy-$$; sleep 0.05; rm \(harness.folder)/busy-$$"
        let servers = try await Self.servers(harness, store, count: 3, project: ["command = '\(command)'", "max_queued = 1000"],
                                             host: ["max_jobs = 4"])
        defer { for server in servers { server.stop() } }
        let commit = try await harness.repo.commit(["README.md": "pushed\n"])
        var posted: [(server: BuiltServer, path: String)] = []
        for index in 0..<300 {
            let server = servers[index % servers.count]
            let body = harness.repo.pushPayload(repository: ServerHarness.repository, ref: "refs/heads/main", commit: commit,
                                                pusher: "pusher-\(index)")
            let response = try await HTTPClient().send(HTTPClientRequest(
                method: "POST", url: server.base + "/hooks/github",
                headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", UUID().uuidString),
                          ("X-Hub-Signature-256", WebhookSignature.sign(body: body, secret: BuiltServer.webhookSecret))],
                body: body, timeout: .seconds(60)))
            #expect(response.status == 202, "\(index): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
            let url = try #require(json?["result_url"] as? String)
            posted.append((server, String(url.dropFirst(url.hasPrefix(server.base) ? server.base.count : 0))))
        }
        for (index, job) in posted.enumerated() {
            // A result URL answers from any server: the next one in the ring.
            let reader = servers[(servers.firstIndex { $0.port == job.server.port }! + 1) % servers.count]
            let results = try await reader.results(at: job.path, seconds: 300)
            #expect(results["status"] as? String == "succeeded", "\(index): \(results)")
        }
        let lines = ((try? String(contentsOfFile: runs, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.count == 300, "the commands ran \(lines.count) times for 300 jobs")
        let busiest = ((try? String(contentsOfFile: most, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int($0) }.max() ?? 0
        #expect(busiest <= 4, "\(busiest) jobs ran at once on a host with max_jobs = 4")
        #expect(try await store.open().jobCount() == 300)
    }

    @Test func aServerKilledWithAJobRunningHasItTakenOverByALiveOne() async throws {
        let harness = try await ServerHarness()
        let store = try await ServedStore.postgres.make(for: harness)
        let servers = try await Self.servers(harness, store, count: 3)
        defer { for server in servers { server.stop() } }
        let marked = try ServerRestartTests.Marked(harness, "taken-over")
        let path = try await servers[0].postScript(marked.script)
        try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: marked.started) }
        // Whichever server leased it, that one is killed.
        let opened = try await store.open()
        let id = try #require(try await opened.jobs(project: nil, limit: 1).first?.id)
        try await Task.sleep(for: .milliseconds(500))
        let owner = try #require(Self.runner(of: id, among: servers), "no server's log says it runs \(id)")
        kill(owner.process.pid, SIGKILL)
        _ = owner.process.waitForExit()
        let killedAt = ContinuousClock.now
        marked.letEnd()
        let live = servers.filter { $0.port != owner.port }
        let results = try await live[0].results(at: path)
        #expect(ContinuousClock.now - killedAt < .seconds(30), "taken over after \(ContinuousClock.now - killedAt)")
        #expect(results["status"] as? String == "succeeded", "\(results)\n\(OutOfFilesTests.tail(live[0].said))\n\(OutOfFilesTests.tail(live[1].said))")
        #expect(results["stdout"] as? String == ServerRestartTests.Marked.stdout, "\(results)")
        #expect(results["attempts"] as? Int == 1, "\(results)")
        #expect(marked.runCount == 1, "the command ran \(marked.runCount) times")
        #expect(live.contains { $0.said.contains("taking up again") }, "no live server took the job up")
        let stored = try await ServerRestartTests.storedOutput(of: id, in: opened)
        #expect(stored.stdout == ServerRestartTests.Marked.stdout && stored.stderr == "to stderr\n", "\(stored)")
    }

    /// A server that stalls (SIGSTOP) past `takeover_seconds` with a job running has it taken
    /// over; when it wakes it writes nothing more of the job (no output twice, no end of its own,
    /// no results.json) and stops at its next heartbeat, exit 75, for a supervisor to restart.
    @Test func aStalledServerThatWakesAfterATakeoverWritesNothingOfTheJobAndStops() async throws {
        let harness = try await ServerHarness()
        let store = try await ServedStore.postgres.make(for: harness)
        let servers = try await Self.servers(harness, store, count: 2)
        defer { for server in servers { kill(server.process.pid, SIGCONT); server.stop() } }
        let job = try await Self.runningJob(harness, store, on: servers, "stalled")
        let (marked, path, id, owner, live) = (job.marked, job.path, job.id, job.runner, job.other)
        let opened = try await store.open()
        kill(owner.process.pid, SIGSTOP)
        try await StalledHostTests.eventually("the live server takes the job up") { live.said.contains("taking up again") }
        // The stalled one wakes while the command writes its last lines: both servers see them.
        kill(owner.process.pid, SIGCONT)
        marked.letEnd()
        let results = try await live.results(at: path)
        #expect(results["status"] as? String == "succeeded", "\(results)\n\(OutOfFilesTests.tail(owner.said))")
        #expect(results["stdout"] as? String == ServerRestartTests.Marked.stdout, "\(results)")
        #expect(marked.runCount == 1, "the command ran \(marked.runCount) times")
        let exit = await OffPool.run { owner.process.waitForExit() }
        #expect(exit == 75, "\(OutOfFilesTests.tail(owner.said))")
        let stored = try await ServerRestartTests.storedOutput(of: id, in: opened)
        #expect(stored.stdout == ServerRestartTests.Marked.stdout && stored.stderr == "to stderr\n", "\(stored)")
        // The job's story has one end, the live server's.
        let ends = try await opened.events(of: id, after: 0).filter { $0.status == .succeeded || $0.status == .error }
        #expect(ends.count == 1, "\(ends)")
        #expect(!owner.said.contains("finished"), "\(OutOfFilesTests.tail(owner.said))")
    }

    /// The event stream of a job on a server that does not run it: the running server's
    /// output reaches it as it happens (`LISTEN/NOTIFY`), not at the stream's 15 s keepalive.
    @Test func aListenerOnOneServerFollowsLiveAJobAnotherServerRuns() async throws {
        let harness = try await ServerHarness()
        let store = try await ServedStore.postgres.make(for: harness)
        let servers = try await Self.servers(harness, store, count: 2)
        defer { for server in servers { server.stop() } }
        let job = try await Self.runningJob(harness, store, on: servers, "followed")
        let (marked, path, other) = (job.marked, job.path, job.other)
        let reader = try SSE.Reader(port: other.port, path: path.replacingOccurrences(of: "/results.json", with: "/events"))
        let before = try await reader.wait { $0.events.filter { $0.event == "output" }.map(\.data).joined().contains("before 3") }
        #expect(before, "\(reader.text)")
        marked.letEnd()
        let released = ContinuousClock.now
        // Bound well under the keepalive: without a notification the stream would wait 15 s.
        let after = try await reader.wait(upTo: 10) { $0.events.filter { $0.event == "output" }.map(\.data).joined().contains("after 3") }
        #expect(after, "after \(ContinuousClock.now - released): \(reader.text)")
        let done = try await reader.wait { $0.events.contains { $0.event == "done" } }
        #expect(done, "\(reader.text)")
    }

    /// The server a listener is on loses its `LISTEN` connection (its backend ended from the
    /// database's side, again and again for two seconds) while the job it follows ends on
    /// another server: the notifications sent meanwhile are gone. Once it listens again it wakes
    /// every listener to read on, so the stream reaches the job's end well before its 15 s
    /// keepalive would make it look.
    @Test func aListenerWhoseServerMissedNotificationsCatchesUpWhenItListensAgain() async throws {
        let harness = try await ServerHarness()
        let postgres = try await ThrowawayPostgres.shared()
        let store = try await ServedStore.postgres.make(for: harness)
        let database = try #require(store.lines.first?.split(separator: "/").last?.split(separator: "?").first.map(String.init))
        let servers = try await Self.servers(harness, store, count: 2)
        defer { for server in servers { server.stop() } }
        let job = try await Self.runningJob(harness, store, on: servers, "missed")
        let (marked, path, other) = (job.marked, job.path, job.other)
        let member = try await postgres.sql("SELECT id FROM server WHERE name LIKE '% pid \(other.process.pid)'", database: database)
        #expect(!member.isEmpty)
        let reader = try SSE.Reader(port: other.port, path: path.replacingOccurrences(of: "/results.json", with: "/events"))
        #expect(try await reader.wait { $0.events.filter { $0.event == "output" }.map(\.data).joined().contains("before 3") }, "\(reader.text)")
        let cut = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '\(member)' AND query ILIKE 'listen%'"
        var ended = 0
        try await StalledHostTests.eventually("the listening connection is ended") {
            ended += Int(try await postgres.sql(cut, database: database)) ?? 0
            return ended > 0
        }
        marked.letEnd()
        let cutFrom = ContinuousClock.now
        while ContinuousClock.now - cutFrom < .seconds(2) {
            ended += Int(try await postgres.sql(cut, database: database)) ?? 0
            try await Task.sleep(for: .milliseconds(100))
        }
        let listening = ContinuousClock.now
        let done = try await reader.wait(upTo: 10) { $0.events.contains { $0.event == "done" } }
        #expect(done, "after \(ContinuousClock.now - listening), \(ended) connection(s) ended: \(reader.text)")
        #expect(reader.events.filter { $0.event == "output" }.map(\.data).joined().contains("after 3"), "\(reader.text)")
        #expect(ended > 0)
    }
}
