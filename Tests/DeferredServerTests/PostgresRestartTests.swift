import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// PostgreSQL restarted under a running server, as an operator's upgrade does: while it is down
/// intake answers 503 with Retry-After and stores nothing, and never a 202; once it is back the
/// server goes on without a restart of its own, and every job it accepted ends once with its
/// results.json, the one running across the outage too.
@Suite struct PostgresRestartTests {
    @Test
    func intakeRefusesWhileTheDatabaseIsDownAndNothingAcceptedIsLost() async throws {
        let harness = try await ServerHarness()
        let postgres = try await ThrowawayPostgres.own()
        let url = postgres.url(database: try await postgres.makeDatabase())
        let served = try await BuiltServer.start(harness, tables: ServerRestartTests.config,
                                                 store: [#"url = "\#(url)""#, #"password_env = "\#(ServedStore.passwordVariable)""#],
                                                 arguments: ["--log-level", "debug"])
        defer { served.stop() }

        let across = try ServerRestartTests.Marked(harness, "across")
        var accepted = [try await served.postScript(across.script)]
        for i in 0..<3 { accepted.append(try await served.postScript("#!/bin/sh\necho before \(i)\n")) }
        try await StalledHostTests.eventually("the long job runs") { FileManager.default.fileExists(atPath: across.started) }

        try await postgres.stop()
        for i in 0..<3 {
            let refused = try await Self.post(served, "#!/bin/sh\necho while down \(i)\n")
            #expect(refused.status == 503, "\(refused.status): \(String(decoding: refused.body, as: UTF8.self))")
            #expect(refused.headers.contains { $0.name == "retry-after" }, "\(refused.headers)")
            let error = (try? JSONSerialization.jsonObject(with: refused.body)) as? [String: Any]
            #expect((error?["error"] as? String)?.isEmpty == false, "\(String(decoding: refused.body, as: UTF8.self))")
        }
        #expect(served.said.contains("refused 503"), "each refusal is logged as the 503 it answered")
        // The running job ends while the database is down: its end waits for it.
        across.letEnd()
        try await StalledHostTests.eventually("the command ends") { FileManager.default.fileExists(atPath: across.done) }
        try await postgres.restart()

        // The server's pool connects again by itself; a delivery refused meanwhile is not stored.
        try await StalledHostTests.eventually("intake takes scripts again", seconds: 60) {
            let answer = try await Self.post(served, "#!/bin/sh\necho after\n")
            guard answer.status == 202 else { return false }
            let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
            let resultURL = try #require(json?["result_url"] as? String)
            accepted.append(String(resultURL.dropFirst(resultURL.hasPrefix(served.base) ? served.base.count : 0)))
            return true
        }
        // A bound against hanging, not a speed check: an end stored while the database was down
        // is tried again with backoff up to 30 s apart, and a loaded machine restarts slowly.
        for path in accepted {
            let results: [String: Any]
            do { results = try await served.results(at: path, seconds: 300) } catch {
                try? FileManager.default.copyItem(atPath: served.log, toPath: "/tmp/pgrestart-\(getpid())-\(Int(Date().timeIntervalSince1970)).log")
                throw error
            }
            #expect(results["status"] as? String == "succeeded", "\(path): \(results)\n\(OutOfFilesTests.tail(served.said))")
        }
        #expect(across.runCount == 1, "the long job ran \(across.runCount) times")
        let store = try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password))
        #expect(try await store.jobCount() == accepted.count)
    }

    /// A script posted as `BuiltServer.postScript` posts it, whatever the answer.
    static func post(_ served: BuiltServer, _ script: String) async throws -> HTTPClientResponse {
        let body = try JSONSerialization.data(withJSONObject: [
            "script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: BuiltServer.scriptSecret),
        ])
        return try await HTTPClient().send(HTTPClientRequest(
            method: "POST", url: served.base + "/projects/sample/scripts", headers: [("Content-Type", "application/json")], body: body,
            timeout: .seconds(60)))
    }
}
