import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The event stream of a job, read by a plain socket client over loopback while the job runs
/// on a real sshd: state changes, output lines as they come, heartbeats, `done`, and a
/// reconnection with `Last-Event-ID` that misses nothing.
@Suite struct EventStreamTests {
    @Test func outputArrivesWhileTheJobRunsAndAReconnectionMissesNothing() async throws {
        let harness = try await ServerHarness()
        harness.heartbeat = .milliseconds(200)
        let release = harness.folder + "/release"
        let script = """
            #!/bin/sh
            echo "first line"
            while [ ! -e '\(release)' ]; do sleep 0.1; done
            echo "second line" >&2
            echo "third line"

            """
        let key = try await harness.addSigner("events", principal: "ci@example.com")
        let signature = try await harness.sign(script, key: key)
        let store = harness.store
        try await harness.serve { client in
            let port = try #require(client.port)
            let accepted = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            let eventsURL = try #require(ServerHarness.json(accepted)["events_url"] as? String)
            let path = String(eventsURL.dropFirst("http://deferred.test".count))
            let live = try SSE.Reader(port: port, path: path)

            // While the job waits: its first line has come, and quiet moments get heartbeats.
            #expect(try await live.wait { $0.events.contains { $0.event == "output" && $0.json["text"] as? String == "first line\n" } })
            #expect(try await live.wait { $0.text.contains(": keepalive\n\n") })
            #expect(try await store.jobs().first?.status == .running)
            #expect(!live.isEnded)
            #expect(FileManager.default.createFile(atPath: release, contents: Data()))
            #expect(try await live.wait { $0.isEnded })

            let events = live.events
            let states = events.filter { $0.event == "state" }.compactMap { $0.json["status"] as? String }
            #expect(states.first == "queued" && states.contains("running") && states.last == "succeeded", "\(states) \(live.text.suffix(600))")
            let output = events.filter { $0.event == "output" }.map { "\($0.json["stream"] as? String ?? ""): \($0.json["text"] as? String ?? "")" }
            #expect(output.joined().contains("stdout: first line\n"))
            #expect(output.contains("stderr: second line\n"))
            #expect(output.contains("stdout: third line\n"))
            // In order: running before the first line, the end after the last; ids never go back.
            let running = try #require(events.firstIndex { $0.json["status"] as? String == "running" })
            let first = try #require(events.firstIndex { ($0.json["text"] as? String)?.contains("first line") == true })
            let end = try #require(events.firstIndex { $0.event == "state" && $0.json["status"] as? String == "succeeded" })
            #expect(running < first && first < end)
            let cursors = events.compactMap { $0.id.flatMap(FeedCursor.init) }
            #expect(cursors.count == events.count)
            #expect(zip(cursors, cursors.dropFirst()).allSatisfy { $0.event <= $1.event && $0.output <= $1.output })
            let done = try #require(events.last)
            #expect(done.event == "done")
            #expect(done.json["status"] as? String == "succeeded" && done.json["exit_status"] as? Int == 0)
            #expect((done.json["result_url"] as? String)?.hasSuffix("/results.json") == true)

            // Reconnecting after the first line gives exactly what came after it.
            let resumed = try SSE.Reader(port: port, path: path, lastEventID: events[first].id)
            #expect(try await resumed.wait { $0.isEnded })
            #expect(resumed.events == Array(events[(first + 1)...]),
                    "\(resumed.summary)")
            // So does ?last_event_id= (for clients that cannot set the header).
            let byQuery = try await client.execute(uri: path + "?last_event_id=" + (events[first].id ?? ""), method: .get)
            #expect(SSE.parse(String(buffer: byQuery.body)) == Array(events[(first + 1)...]))
        }
    }

    @Test func aLateListenerGetsTheWholeBacklogThenTheStreamCloses() async throws {
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\nfor i in 1 2 3; do echo line $i; done\nexit 2\n"])
            #expect(results["status"] as? String == "failed")
            let id = try #require(results["id"] as? String)
            let job = try #require(try await harness.store.job(id: JobID(rawValue: id)))
            let response = try await client.execute(uri: "/r/\(job.token.rawValue)/events", method: .get)
            #expect(response.headers[.contentType] == "text/event-stream")
            let events = SSE.parse(String(buffer: response.body))
            let text = SSE.output(of: events)
            #expect(text.contains("line 1\nline 2\nline 3\n"))
            #expect(events.last?.event == "done")
            #expect(events.last?.json["status"] as? String == "failed")
            #expect(events.last?.json["exit_status"] as? Int == 2)
            // A cursor that is not ours is a fresh start, not an error.
            let fresh = try await client.execute(uri: "/r/\(job.token.rawValue)/events?last_event_id=bogus", method: .get)
            #expect(SSE.parse(String(buffer: fresh.body)) == events)
        }
    }
}
