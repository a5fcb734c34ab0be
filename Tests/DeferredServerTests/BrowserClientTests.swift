import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredHTTP
import DeferredTestSupport
import Foundation
import Hummingbird
import Testing

/// The example page and `scripts/web/deferred.js` in headless Chromium, against a live
/// deferred on loopback whose build host is slow to answer: a person presses Run and
/// watches the result box.
@Suite struct BrowserClientTests {
    static let webFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/web").standardizedFileURL.path

    @Test func pressingRunOnTheExamplePageShowsTheScriptsOutput() async throws {
        let harness = try await ServerHarness()
        // The page's origin is another port than the API's, as on a real blog.
        let pagePort = try FreePort.find(), apiPort = try FreePort.find()
        let pageOrigin = "http://127.0.0.1:\(pagePort)"
        harness.config.projects[0].allowedOrigins = [pageOrigin]
        harness.config.server.publicURL = "http://127.0.0.1:\(apiPort)"
        // The build host answers only after 2 s, long enough for the page to show the wait.
        let slowHost = try SlowHostProxy(to: harness.sshd.port, delay: .seconds(2))
        defer { slowHost.stop() }
        harness.config.hosts[0].port = slowHost.port
        try "[127.0.0.1]:\(slowHost.port) \(harness.sshd.hostPublicKey)\n".write(
            toFile: harness.folder + "/slow_known_hosts", atomically: true, encoding: .utf8)
        harness.config.hosts[0].knownHosts = harness.folder + "/slow_known_hosts"

        // The page as its author publishes it: the sample script with its real signature.
        let key = try await harness.addSigner("author", principal: "author@blog.example")
        let page = harness.folder + "/page"
        try FileManager.default.createDirectory(atPath: page, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.webFolder + "/deferred.js", toPath: page + "/deferred.js")
        var html = try String(contentsOfFile: Self.webFolder + "/example.html", encoding: .utf8)
        let script = try #require(html.slice(after: "<code id=\"script\">", before: "</code>"))
        let placeholder = try #require(html.slice(after: "<pre id=\"signature\">", before: "</pre>"))
        html = html.replacingOccurrences(of: placeholder, with: try await harness.sign(script, key: key))
        try html.write(toFile: page + "/example.html", atomically: true, encoding: .utf8)
        let pageServer = try SpawnedProcess(
            executable: "/usr/bin/python3", arguments: ["-m", "http.server", String(pagePort), "--bind", "127.0.0.1", "--directory", page],
            stderrPath: harness.folder + "/page-server.log")
        defer { pageServer.terminate() }

        let dispatcher = harness.makeDispatcher()
        let router = ServerApplication.router(config: harness.config, store: harness.store, artifacts: harness.artifacts,
                                              onQueued: { dispatcher.jobQueued() })
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: apiPort)))
        let serving = Task { try await app.runService(gracefulShutdownSignals: []) }
        let dispatching = Task { try await dispatcher.run() }
        defer { serving.cancel(); dispatching.cancel() }
        try await Self.waitUntilAnswering("http://127.0.0.1:\(apiPort)/healthz")
        try await Self.waitUntilAnswering(pageOrigin + "/example.html") {
            "the page server \(pageServer.isRunning ? "runs" : "has exited"); its log: "
                + ((try? String(contentsOfFile: harness.folder + "/page-server.log", encoding: .utf8)) ?? "none")
        }

        let output = try await LocalCommand.runOffPool([
            "python3", Self.webFolder + "/press_run.py",
            "\(pageOrigin)/example.html?server=http://127.0.0.1:\(apiPort)&project=sample", "60",
        ])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let snapshots = try #require(report["snapshots"] as? [[String: Any]])
        let final = try #require(report["final"] as? [String: Any])
        #expect(final["output"] as? String == "Hello from deferred on Linux\n2 + 3 = 5\n", "\(report)")
        #expect(final["state"] as? String == "succeeded")
        // The page followed the event stream (EventSource, across origins), not polling.
        #expect(final["via"] as? String == "events")
        #expect(final["button"] as? String == "Run")
        #expect(final["disabled"] as? Bool == false)
        // While it ran the button said so, and the result box said the host was being woken.
        #expect(snapshots.contains { $0["button"] as? String == "Waiting…" && $0["disabled"] as? Bool == true })
        #expect(snapshots.contains { $0["output"] as? String == "Waking the build host…" }, "\(snapshots)")
        #expect((report["console"] as? [Any])?.isEmpty == true, "\(report["console"] ?? "")")
        #expect(try await harness.store.jobCount() == 1)
    }

    /// Polls `url` until it answers 200: a bound of a minute against hanging, not a speed
    /// check. `why` says what the server's side knows when nothing answered.
    static func waitUntilAnswering(_ url: String, why: () -> String = { "" }) async throws {
        let client = HTTPClient()
        for _ in 0..<600 {
            if let response = try? await client.send(HTTPClientRequest(url: url, timeout: .seconds(2))), response.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("nothing answered at \(url). \(why())")
    }
}

extension String {
    /// The text between the first `start` and the `end` after it.
    func slice(after start: String, before end: String) -> String? {
        guard let from = range(of: start)?.upperBound, let to = self[from...].range(of: end)?.lowerBound else { return nil }
        return String(self[from..<to])
    }
}
