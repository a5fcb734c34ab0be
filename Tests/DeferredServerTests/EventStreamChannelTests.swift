import DeferredCore
import DeferredHTTP
import DeferredStore
import Foundation
import HummingbirdTesting
import Synchronization
import Testing

/// Event streams served below the router (`EventStreamChannel`): a connection whose first
/// request is a job's stream is answered by the stream alone, the same events as the router's;
/// what the stream cannot answer goes to the router as before; a stalled listener holds back
/// no one; a listener that leaves is forgotten, and a graceful stop ends the streams still open.
@Suite struct EventStreamChannelTests {
    /// The same finished job read both ways gives the same events: on a connection of its own
    /// (below the router: chunked, closed after the last chunk) and behind another request on
    /// one connection (the router's route, as Hummingbird serves it).
    @Test func aStreamBelowTheRouterSendsWhatTheRoutersStreamSends() async throws {
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let port = try #require(client.port)
            let path = try await Self.eventsPath(ofPush: "#!/bin/sh\nfor i in 1 2 3; do echo line $i; done\nexit 2\n", harness, client)

            let below = try SSE.Reader(port: port, path: path, origin: "https://page.example")
            #expect(try await below.wait { $0.isComplete && $0.isClosed })
            #expect(below.head.hasPrefix("http/1.1 200 ok"))
            for field in ["content-type: text/event-stream", "cache-control: no-cache", "server: deferred", "transfer-encoding: chunked",
                          "access-control-allow-origin: *", "date: "] {
                #expect(below.head.contains(field), "\(field) missing from \(below.head)")
            }
            let events = below.events
            #expect(events.last?.event == "done" && events.last?.json["exit_status"] as? Int == 2)
            #expect(SSE.output(of: events).contains("line 1\nline 2\nline 3\n"))

            // Behind /healthz on the same connection, the router serves the stream.
            let behind = try SSE.Reader(port: port, request: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                        + "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://page.example\r\nConnection: close\r\n\r\n")
            #expect(try await behind.wait { $0.isClosed })
            let health = SSE.response(behind.raw[...])
            #expect(health.head.hasPrefix("http/1.1 200") && health.text.contains("\"ok\""))
            let routed = SSE.response(health.rest)
            #expect(routed.complete)
            // The same head, field for field, but the date's value.
            let fields = { (head: String) in Set(head.split(separator: "\r\n").dropFirst().map { $0.hasPrefix("date: ") ? "date" : String($0) }) }
            #expect(fields(routed.head) == fields(below.head), "\(routed.head)\n---\n\(below.head)")
            #expect(SSE.parse(routed.text) == events)

            // Resuming below the router gives exactly what came after the id, as the router's does.
            let first = try #require(events.firstIndex { $0.event == "output" })
            let resumed = try SSE.Reader(port: port, path: path, lastEventID: events[first].id)
            #expect(try await resumed.wait { $0.isComplete })
            #expect(resumed.events == Array(events[(first + 1)...]))
        }
    }

    /// Requests shaped like a stream's that the stream cannot serve are the router's: its
    /// errors, as JSON, and an HTTP/1.0 listener (no chunked bodies there).
    @Test func whatTheStreamCannotServeTheRouterAnswers() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].allowedOrigins = ["https://ours.example"]
        try await harness.serve { client in
            let port = try #require(client.port)
            let path = try await Self.eventsPath(ofPush: "#!/bin/sh\necho done\n", harness, client)

            func answer(_ request: String) async throws -> (head: String, text: String, summary: String) {
                let reader = try SSE.Reader(port: port, request: request)
                #expect(try await reader.wait { $0.isClosed })
                let response = SSE.response(reader.raw[...])
                return (response.head, response.text, reader.summary)
            }
            let unknown = try await answer("GET /r/\(ResultToken.make().rawValue)/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(unknown.head.hasPrefix("http/1.1 404"))
            #expect(unknown.text.contains("\"error\"") && unknown.text.contains("no job has this result URL"), "\(unknown.text)")
            let malformed = try await answer("GET /r/not-a-token/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(malformed.head.hasPrefix("http/1.1 404") && malformed.text.contains("\"error\""))
            let refused = try await answer("GET \(path) HTTP/1.1\r\nHost: x\r\nOrigin: https://elsewhere.example\r\nConnection: close\r\n\r\n")
            #expect(refused.head.hasPrefix("http/1.1 403") && refused.text.contains("allowed_origins"), "\(refused.summary)")
            // Two Origin fields are read as the router reads them (joined), not by the first alone.
            let twice = try await answer("GET \(path) HTTP/1.1\r\nHost: x\r\nOrigin: https://ours.example\r\nOrigin: https://elsewhere.example\r\nConnection: close\r\n\r\n")
            #expect(twice.head.hasPrefix("http/1.1 403"), "\(twice.head)")
            let allowed = try await answer("GET \(path) HTTP/1.1\r\nHost: x\r\nOrigin: https://ours.example\r\nConnection: close\r\n\r\n")
            #expect(allowed.head.hasPrefix("http/1.1 200") && allowed.head.contains("transfer-encoding: chunked"))
            #expect(SSE.parse(allowed.text).last?.event == "done")
            // HTTP/1.0 has no chunked bodies: such a listener is the router's, as it always was.
            let old = try SSE.Reader(port: port, request: "GET \(path) HTTP/1.0\r\nHost: x\r\n\r\n")
            #expect(try await old.wait { $0.events.last?.event == "done" })
            #expect(old.head.contains("server: deferred") && old.head.contains("date: "))
            let garbage = try await answer("NOT HTTP AT ALL\r\n\r\n")
            #expect(garbage.head.hasPrefix("http/1.1 400"), "\(garbage.head)")
            // A peer that closes its side before sending a request is closed at once (the
            // harness has no idle timeout: nothing else would close it).
            let silent = try SSE.Reader(port: port, request: "")
            silent.finishSending()
            #expect(try await silent.wait { $0.isClosed })
            #expect(silent.raw.isEmpty)
        }
    }

    /// A listener that leaves is forgotten by the job's changes at once (not at its next
    /// heartbeat), and one still listening when the server stops gracefully gets the stream's
    /// end, not a dropped connection.
    @Test func aListenerThatLeavesIsForgottenAndAGracefulStopEndsOpenStreams() async throws {
        // No heartbeat within the test: a listener that left must be noticed without one.
        let staying = try await Self.followingScript({ folder in
            "#!/bin/sh\necho started\nwhile [ ! -e '\(folder)/release' ]; do sleep 0.1; done\n"
        }) { harness, port, id, path -> SSE.Reader in
            let leaving = try SSE.Reader(port: port, path: path)
            let staying = try SSE.Reader(port: port, path: path)
            for reader in [leaving, staying] {
                #expect(try await reader.wait { $0.text.contains("started\\n") })
            }
            #expect(try await Self.eventually { harness.caughtUp.waiting(on: id) == 2 })
            leaving.hangUp()
            #expect(try await Self.eventually { harness.caughtUp.waiting(on: id) == 1 }, "the listener that left is still waiting")
            #expect(harness.store.changes.observations(of: id) == 1)
            #expect(!staying.isEnded)
            return staying
        }
        #expect(try await staying.wait { $0.isClosed })
        #expect(staying.isComplete, "the stream was dropped, not ended: \(staying.text.suffix(300))")
    }

    /// Listeners caught up at the same place wait as one group, with one observation of the
    /// job's changes, and take each change together: every one gets it, none is handed back to
    /// turns of its own, and they wait together again at the next place. The group's last
    /// member leaving ends its observation.
    @Test func listenersCaughtUpTogetherTakeAChangeInOnePass() async throws {
        try await Self.followingScript({ folder in
            "#!/bin/sh\necho started\nwhile [ ! -e '\(folder)/more' ]; do sleep 0.1; done\necho more\n"
                + "while [ ! -e '\(folder)/release' ]; do sleep 0.1; done\necho last\n"
        }) { harness, port, id, path in
            let changes = harness.store.changes, caughtUp = harness.caughtUp
            let readers = try (0..<3).map { _ in try SSE.Reader(port: port, path: path) }
            for reader in readers { #expect(try await reader.wait { $0.text.contains("started\\n") }) }
            #expect(try await Self.eventually { caughtUp.waiting(on: id) == 3 })
            #expect(changes.observations(of: id) == 1, "caught up at one place, they should wait as one")

            #expect(FileManager.default.createFile(atPath: harness.folder + "/more", contents: Data()))
            for reader in readers { #expect(try await reader.wait { $0.text.contains("more\\n") }) }
            #expect(try await Self.eventually { caughtUp.waiting(on: id) == 3 })
            #expect(changes.observations(of: id) == 1)
            #expect(caughtUp.handedBack.load(ordering: .relaxed) == 0, "a listener took the change in a turn of its own")

            for reader in readers { reader.hangUp() }
            #expect(try await Self.eventually { caughtUp.waiting(on: id) == 0 && changes.observations(of: id) == 0 })
        }
    }

    /// Listeners that come and go while a job's output flows, and heartbeats between its
    /// batches, with groups forming, waking and forming again under them: each listener that
    /// stays gets the whole stream, event for event the same as every other, whenever it came;
    /// and once the job ended, no listener and no observation of its changes is left.
    @Test func listenersThatComeAndGoWhileOutputFlowsGetEverythingAndLeaveNothing() async throws {
        try await Self.followingScript(heartbeat: .milliseconds(100), { folder in
            "#!/bin/sh\nwhile [ ! -e '\(folder)/more' ]; do sleep 0.05; done\nfor i in $(seq 1 120); do echo \"line $i\"; sleep 0.02; done\n"
        }) { harness, port, id, path in
            var staying = try (0..<8).map { _ in try SSE.Reader(port: port, path: path) }
            var leaving: [SSE.Reader] = []
            #expect(FileManager.default.createFile(atPath: harness.folder + "/more", contents: Data()))
            for step in 0..<40 {
                try await Task.sleep(for: .milliseconds(50))
                if step % 2 == 0 { staying.append(try SSE.Reader(port: port, path: path)) }
                leaving.append(try SSE.Reader(port: port, path: path))
                // Each goes two to six steps after it came: caught up in a group, or in a turn.
                if leaving.count > 2 + step % 5 { leaving.removeFirst().hangUp() }
            }
            for reader in leaving { reader.hangUp() }
            let expected = (1...120).map { "line \($0)\n" }.joined()
            let first = staying[0]
            #expect(try await first.wait(upTo: 120) { $0.isComplete })
            #expect(SSE.output(of: first.events) == expected)
            for reader in staying.dropFirst() {
                #expect(try await reader.wait(upTo: 120) { $0.isComplete })
                let same = reader.events == first.events
                #expect(same, "a listener got \(reader.events.count) events of \(first.events.count)")
            }
            #expect(try await Self.eventually { harness.caughtUp.waiting(on: id) == 0 && harness.store.changes.observations(of: id) == 0 },
                    "\(harness.caughtUp.waiting(on: id)) listeners still wait")
        }
    }

    /// A listener that stops reading holds back only itself: another reads the whole stream
    /// (megabytes of output, far past the socket buffers) meanwhile, and the stalled one, once
    /// it reads again, gets every byte of it too.
    @Test func aStalledListenerHoldsBackNoOneAndLosesNothing() async throws {
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let port = try #require(client.port)
            let path = try await Self.eventsPath(ofPush: "#!/bin/sh\nyes 'a line of build output, again and again' | head -c 3145728\n", harness, client)
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let stalled = try SSE.Reader(port: port, request: request, paused: true)
            // Long enough for the stalled listener's turns to fill its socket and wait.
            try await Task.sleep(for: .milliseconds(500))
            let reading = try SSE.Reader(port: port, request: request)
            #expect(try await reading.wait(upTo: 120) { $0.isClosed })
            #expect(reading.isComplete)
            let events = reading.events
            #expect(events.last?.event == "done")
            let output = SSE.output(of: events)
            #expect(output.utf8.count == 3_145_728, "\(output.utf8.count) bytes of output")
            #expect(!stalled.isClosed && stalled.raw.isEmpty)

            try await Self.expectResumed(stalled, toGet: events)
        }
    }

    /// A listener that stalls while it waits with others is left behind by its group, not
    /// waited for: the others follow a megabyte of live output, batch by batch, meanwhile, and the stalled one,
    /// back on turns of its own, gets every byte once it reads again.
    @Test func aListenerThatStallsInAGroupIsLeftBehindAndLosesNothing() async throws {
        try await Self.followingScript({ folder in
            "#!/bin/sh\necho started\nwhile [ ! -e '\(folder)/more' ]; do sleep 0.1; done\n"
                + "for i in $(seq 1 60); do yes 'a line of build output, again and again' | head -c 81920; sleep 0.05; done\n"
        }) { harness, port, id, path in
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let stalled = try SSE.Reader(port: port, request: request, paused: true)
            let reading = try SSE.Reader(port: port, request: request)
            #expect(try await reading.wait { $0.text.contains("started\\n") })
            #expect(try await Self.eventually { harness.caughtUp.waiting(on: id) == 2 }, "both should wait together before the output")

            #expect(FileManager.default.createFile(atPath: harness.folder + "/more", contents: Data()))
            #expect(try await reading.wait(upTo: 120) { $0.isClosed })
            #expect(reading.isComplete)
            let events = reading.events
            let output = SSE.output(of: events)
            #expect(output.utf8.count == 60 * 81920 + "started\n".utf8.count, "\(output.utf8.count) bytes of output")
            #expect(!stalled.isClosed)
            // Left behind by a write it could not take, or, on a loaded machine whose batches grow
            // past a page, handed back with the others before its socket filled: either way its
            // group did not wait for it.
            let caughtUp = harness.caughtUp
            #expect(caughtUp.leftBehind.load(ordering: .relaxed) + caughtUp.handedBack.load(ordering: .relaxed) >= 1,
                    "the stalled listener never left its group")

            try await Self.expectResumed(stalled, toGet: events)
        }
    }

    /// Lets a stalled listener read again, and expects it to get the whole stream, `events`.
    static func expectResumed(_ stalled: SSE.Reader, toGet events: [SSE.Event]) async throws {
        stalled.resume()
        #expect(try await stalled.wait(upTo: 120) { $0.isClosed })
        #expect(stalled.isComplete)
        let received = stalled.events
        let same = received == events  // not in the expectation: it would print megabytes
        #expect(same, "the stalled listener got \(received.count) events of \(events.count)")
    }

    /// The event stream's path of a push that ran `script` to its end.
    static func eventsPath(ofPush script: String, _ harness: ServerHarness, _ client: any TestClientProtocol) async throws -> String {
        let results = try await harness.runPush(client, files: ["script/job.sh": script])
        let id = try #require(results["id"] as? String)
        let job = try #require(try await harness.store.job(id: JobID(rawValue: id)))
        return "/r/\(job.token.rawValue)/events"
    }

    /// A signed script's job on a served harness, with no heartbeat within the test unless given. `script`
    /// gets the harness's folder, where the job may wait for the files `more` and `release`
    /// (both made at the end, so that it ends); `body` gets the harness, the server's port, and
    /// the job's id and event stream's path.
    static func followingScript<T: Sendable>(heartbeat: Duration = .seconds(600), _ script: (String) -> String,
                                             _ body: @Sendable @escaping (ServerHarness, Int, JobID, String) async throws -> T) async throws -> T {
        let harness = try await ServerHarness()
        harness.heartbeat = heartbeat
        defer {
            for gate in ["more", "release"] { _ = FileManager.default.createFile(atPath: harness.folder + "/" + gate, contents: Data()) }
        }
        let script = script(harness.folder)
        let key = try await harness.addSigner("events", principal: "ci@example.com")
        let signature = try await harness.sign(script, key: key)
        return try await harness.serve { client in
            let port = try #require(client.port)
            let accepted = try await ServerHarness.postScript(client, ["script": script, "signature": signature])
            let id = JobID(rawValue: try #require(ServerHarness.json(accepted)["id"] as? String))
            let job = try #require(try await harness.store.job(id: id))
            return try await body(harness, port, id, "/r/\(job.token.rawValue)/events")
        }
    }

    /// Waits (a bound against hanging, not a speed check) until `condition` holds.
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}
