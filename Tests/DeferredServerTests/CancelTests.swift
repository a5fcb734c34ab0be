import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// `POST /jobs/{id}/cancel`: a queued job, one waiting for a host that does not answer, and a
/// running one (that traps SIGTERM) all end `cancelled` with their results.json; a running
/// job's process group is gone after, its output and artifacts so far are kept, and its host
/// takes the next job. A script's poster cancels with its `cancel_url`; the result URL's token
/// cannot. Every bad request is refused and changes nothing.
@Suite struct CancelTests {
    static func cancel(_ client: any TestClientProtocol, _ id: String, query: String = "",
                       headers: HTTPFields = DashboardTests.bearer) async throws -> TestResponse {
        try await client.execute(uri: "/jobs/\(id)/cancel\(query)", method: .post, headers: headers)
    }

    /// A push whose job counts its runs in `folder/runs`, leaves an artifact, says it started,
    /// and then shrugs off SIGTERM and waits (in a child, as a build step would) until killed.
    static func stubborn(_ folder: String) -> [String: String] {
        ["script/job.sh": """
            #!/bin/sh
            echo run >> '\(folder)/runs'
            echo $$ > '\(folder)/pid'
            echo partial > "$DEFERRED_ARTIFACTS/partial.txt"
            trap 'echo got TERM' TERM
            echo before the cancel
            touch '\(folder)/started'
            while :; do sleep 0.2; done

            """]
    }

    static func post(_ client: any TestClientProtocol, _ harness: ServerHarness, _ files: [String: String]) async throws -> [String: Any] {
        let commit = try await harness.repo.commit(files)
        let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
        #expect(response.status == .accepted)
        return ServerHarness.json(response)
    }

    @Test func queuedAndRunningJobsAreCancelledAndTheHostTakesTheNextJob() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        // Time for the job's trap to run and print before SIGKILL, on a machine busy with
        // every other suite (1 s was missed once).
        harness.killGrace = 5
        let folder = harness.folder, store = harness.store
        try await harness.serve { client in
            let running = try await Self.post(client, harness, Self.stubborn(folder))
            try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: folder + "/started") }
            // The host takes one job at a time: this one waits in the queue.
            let queued = try await Self.post(client, harness, HostWaitTests.marking("queued", in: harness))
            let queuedID = try #require(queued["id"] as? String), runningID = try #require(running["id"] as? String)

            let page = DashboardTests.text(try await client.execute(uri: "/jobs/\(runningID)", method: .get, headers: DashboardTests.bearer))
            #expect(page.contains(#"action="/jobs/\#(runningID)/cancel""#), "a running job's page has a Cancel button")

            let answer = try await Self.cancel(client, queuedID)
            #expect(answer.status == .accepted, "\(DashboardTests.text(answer))")
            let cancelledInQueue = try await ServerHarness.results(client, resultURL: try #require(queued["result_url"] as? String))
            #expect(cancelledInQueue["status"] as? String == "cancelled", "\(cancelledInQueue)")
            #expect(cancelledInQueue["cancelled_by"] as? String == "admin")

            let pgid = try Self.processGroup(folder)
            #expect(try await Self.cancel(client, runningID).status == .accepted)
            let cancelled = try await ServerHarness.results(client, resultURL: try #require(running["result_url"] as? String))
            #expect(cancelled["status"] as? String == "cancelled", "\(cancelled)")
            #expect(cancelled["cancelled_by"] as? String == "admin")
            #expect((cancelled["stdout"] as? String)?.hasPrefix("before the cancel\n") == true, "output so far: \(cancelled)")
            #expect((cancelled["stdout"] as? String)?.contains("got TERM") == true, "the job saw SIGTERM first: \(cancelled)")
            let artifacts = (cancelled["artifacts"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            #expect(artifacts == ["partial.txt"], "artifacts so far: \(cancelled)")
            #expect(Self.members(of: pgid).isEmpty, "processes left in the job's group: \(Self.members(of: pgid))")

            // The host is free: the next job runs.
            let next = try await harness.runPush(client, files: HostWaitTests.marking("next", in: harness))
            #expect(next["status"] as? String == "succeeded", "\(next)")
            let events = try await store.events(of: JobID(rawValue: runningID)).compactMap(\.detail)
            #expect(events.contains { $0.contains("cancel asked for by admin") }, "\(events)")
        }
        let runs = try String(contentsOfFile: folder + "/runs", encoding: .utf8).split(separator: "\n")
        #expect(runs == ["run", "next"], "the cancelled queued job never ran: \(runs)")
    }

    /// A cancel stored while no server dispatched (asked of a server that stopped before it
    /// acted on it): no lease takes such a job, so the next start ends it as cancelled,
    /// without running it.
    @Test func aQueuedJobCancelledWhileNoServerDispatchedEndsCancelledAtTheNextStart() async throws {
        let harness = try await ServerHarness()
        let store = harness.store
        let (id, url) = try await harness.serve(dispatching: false) { client in
            let queued = try await Self.post(client, harness, HostWaitTests.marking("never", in: harness))
            return (try #require(queued["id"] as? String), try #require(queued["result_url"] as? String))
        }
        #expect(try await store.requestCancel(JobID(rawValue: id), by: "admin")?.status == .queued)
        try await harness.serve { client in
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "cancelled", "\(results)")
            #expect(results["cancelled_by"] as? String == "admin")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.folder + "/runs"), "the cancelled job ran")
    }

    @Test func aJobWaitingForAHostThatDoesNotAnswerIsCancelled() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        let store = harness.store, sshd = harness.sshd
        try await harness.serve { client in
            HostWaitTests.takeDown(sshd)
            let waiting = try await Self.post(client, harness, HostWaitTests.marking("never", in: harness))
            let id = try #require(waiting["id"] as? String)
            try await StalledHostTests.eventually("the job waits for its host") {
                try await store.events(of: JobID(rawValue: id)).contains { ($0.detail ?? "").contains("does not answer") }
            }
            #expect(try await Self.cancel(client, id).status == .accepted)
            let results = try await ServerHarness.results(client, resultURL: try #require(waiting["result_url"] as? String))
            #expect(results["status"] as? String == "cancelled", "\(results)")
            try await sshd.startAgain()
        }
        #expect(!FileManager.default.fileExists(atPath: harness.folder + "/runs"), "the cancelled job ran")
    }

    @Test func aScriptsPosterCancelsItWithItsCancelURLAndNotWithItsResultToken() async throws {
        let harness = try await ServerHarness()
        let folder = harness.folder
        let key = try await harness.addSigner("cancel", principal: "ci@example.com")
        let script = Self.stubborn(folder)["script/job.sh"]!
        let signature = try await harness.sign(script, key: key)
        try await harness.serve { client in
            let response = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            let posted = ServerHarness.json(response)
            let cancelURL = try #require(posted["cancel_url"] as? String)
            let id = try #require(posted["id"] as? String), resultURL = try #require(posted["result_url"] as? String)
            let resultToken = try #require(resultURL.split(separator: "/").dropLast().last.map(String.init))
            try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: folder + "/started") }

            // No admin token is configured: only the cancel token can cancel.
            let withResultToken = try await Self.cancel(client, id, query: "?token=\(resultToken)", headers: [:])
            #expect(withResultToken.status == .forbidden, "\(DashboardTests.text(withResultToken))")
            let anonymous = try await Self.cancel(client, id, headers: [:])
            #expect(anonymous.status == .notFound, "no admin token, no dashboard: \(DashboardTests.text(anonymous))")
            #expect(try await harness.store.job(id: JobID(rawValue: id))?.cancelRequestedBy == nil)

            let path = String(cancelURL.dropFirst("http://deferred.test".count))
            let cancelled = try await client.execute(uri: path, method: .post)
            #expect(cancelled.status == .accepted, "\(DashboardTests.text(cancelled))")
            let results = try await ServerHarness.results(client, resultURL: resultURL)
            #expect(results["status"] as? String == "cancelled", "\(results)")
            #expect(results["cancelled_by"] as? String == "poster")
        }
    }

    @Test func badCancelRequestsAreRefusedAndChangeNothing() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            let queued = try await Self.post(client, harness, HostWaitTests.marking("never", in: harness))
            let id = try #require(queued["id"] as? String)
            let ended = Job(project: "sample", trigger: .script(ScriptTrigger(script: "true", signer: "x", interpreter: .shebang("sh"))),
                            status: .succeeded, cancelToken: "ended-token")
            _ = try await store.enqueueScript(ended, idempotency: nil, maxQueued: .max)
            try await store.finish(ended.id, outcome: JobOutcome(status: .succeeded, startedAt: Date(), finishedAt: Date()))
            let eventsBefore = try await store.events(of: JobID(rawValue: id)).count

            let anonymous = try await Self.cancel(client, id, headers: [:])
            #expect(anonymous.status == .unauthorized)
            let wrong = try await Self.cancel(client, id, headers: [.authorization: "Bearer not-the-token"])
            #expect(wrong.status == .unauthorized)
            let wrongToken = try await Self.cancel(client, id, query: "?token=guess", headers: [:])
            #expect(wrongToken.status == .forbidden)
            let unknown = try await Self.cancel(client, "j-00000000000000000000")
            #expect(unknown.status == .notFound)
            let finished = try await Self.cancel(client, ended.id.rawValue)
            #expect(finished.status == .conflict)
            #expect(DashboardTests.text(finished).contains("has already ended (succeeded)"), "\(DashboardTests.text(finished))")
            let finishedByToken = try await Self.cancel(client, ended.id.rawValue, query: "?token=ended-token", headers: [:])
            #expect(finishedByToken.status == .conflict)
            for answer in [anonymous, wrong, wrongToken, unknown, finished, finishedByToken] {
                #expect(answer.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            let job = try await store.job(id: JobID(rawValue: id))
            #expect(job?.status == .queued && job?.cancelRequestedBy == nil)
            #expect(try await store.events(of: JobID(rawValue: id)).count == eventsBefore)
            #expect(try await store.job(id: ended.id)?.status == .succeeded)
        }
    }

    /// The process group of the job that wrote its pid to `folder/pid`.
    static func processGroup(_ folder: String) throws -> pid_t {
        let pid = try #require(pid_t(try String(contentsOfFile: folder + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let group = getpgid(pid)
        try #require(group > 0, "the job's process is gone before the cancel")
        return group
    }

    /// Processes still alive in group `pgid`, with their command lines (a zombie waiting to be
    /// reaped by whatever is PID 1 here runs nothing, and does not count).
    static func members(of pgid: pid_t) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        return pids.filter { getpgid($0) == pgid }.compactMap { pid in
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            guard let state = stat.split(separator: ")").last?.split(separator: " ").first, state != "Z" else { return nil }
            let command = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").replacingOccurrences(of: "\0", with: " ")
            return "\(pid) \(state) \(command)"
        }
    }
}
