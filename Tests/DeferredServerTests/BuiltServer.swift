import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredTestSupport
import Foundation
import Testing

/// The built `deferred` executable, run as an operator runs it: `serve` under a file limit set
/// by prlimit, with this harness's deferred.toml and its secrets in the environment.
struct BuiltServer {
    static let scriptSecret = "script-secret"
    static let webhookSecret = "x"

    let process: SpawnedProcess
    let port: Int
    let log: String
    var base: String { "http://127.0.0.1:\(port)" }

    static func executable() throws -> String {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/debug/deferred").standardizedFileURL.path
        try #require(FileManager.default.isExecutableFile(atPath: path), "build the package first: \(path)")
        return path
    }

    /// What `[server] admin_token_env` names to turn the dashboard and the API on.
    static let adminTokenVariable = "DEFERRED_TEST_ADMIN_TOKEN"

    /// The harness's secrets: the webhook's, project `sample`'s script secret, the admin token.
    static func environment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["DEFERRED_TEST_SECRET"] = webhookSecret
        environment["DEFERRED_TEST_SCRIPT_SECRET"] = scriptSecret
        environment[ServedStore.passwordVariable] = ThrowawayPostgres.password
        environment[adminTokenVariable] = DashboardTests.token
        return environment
    }

    /// Starts `deferred serve` on a free port, its state and artifacts in the harness's folder,
    /// and waits until it answers /healthz. `project`: lines of project `sample`'s table;
    /// `tables`: whole tables added at the end.
    static func start(_ harness: ServerHarness, server: [String] = [], project: [String] = [], tables: [String] = [],
                      fileLimit: String = "1024:1024", store: [String]? = nil, instance: String = "serve",
                      host: [String] = [], arguments: [String] = [], environment: [String: String]? = nil,
                      github: [String] = []) async throws -> BuiltServer {
        let executable = try executable()
        let port = try FreePort.find()
        let config = try harness.writeConfig(
            server: [#"listen = "127.0.0.1:\#(port)""#] + server, store: store ?? [#"url = "sqlite:\#(harness.folder)/serve.sqlite""#],
            artifacts: [#"store = "file:\#(harness.folder)/serve-artifacts""#, "shared = true"], host: host,
            project: [#"script_secret_env = "DEFERRED_TEST_SCRIPT_SECRET""#] + project + tables, github: github)
        let log = harness.folder + "/\(instance).log"
        let process = try SpawnedProcess(executable: "/usr/bin/prlimit",
                                         arguments: ["--nofile=\(fileLimit)", "--", executable, "serve", "--config", config] + arguments,
                                         stderrPath: log, environment: environment ?? Self.environment())
        let served = BuiltServer(process: process, port: port, log: log)
        let http = HTTPClient()
        try await StalledHostTests.eventually("the server answers") {
            (try? await http.send(HTTPClientRequest(url: served.base + "/healthz", timeout: .seconds(2))))?.status == 200
        }
        return served
    }

    var said: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Posts `script` to `project`, signed with the script secret; returns the result URL's path.
    func postScript(_ script: String, project: String = "sample") async throws -> String {
        let body = try JSONSerialization.data(withJSONObject: [
            "script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: Self.scriptSecret),
        ])
        let posted = try await HTTPClient().send(HTTPClientRequest(
            method: "POST", url: base + "/projects/\(project)/scripts", headers: [("Content-Type", "application/json")], body: body,
            timeout: .seconds(60)))
        #expect(posted.status == 202, "\(posted.status): \(String(decoding: posted.body, as: UTF8.self))")
        let answer = (try? JSONSerialization.jsonObject(with: posted.body)) as? [String: Any] ?? [:]
        let resultURL = try #require(answer["result_url"] as? String)
        return String(resultURL.dropFirst(resultURL.hasPrefix(base) ? base.count : 0))
    }

    /// results.json, once the result URL serves it.
    func results(at path: String, seconds: Int = 90) async throws -> [String: Any] {
        var results: [String: Any] = [:]
        try await StalledHostTests.eventually("results.json is served", seconds: seconds) {
            guard let response = try? await HTTPClient().send(HTTPClientRequest(url: base + path, timeout: .seconds(30))),
                  response.status == 200 else { return false }
            results = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
            return true
        }
        return results
    }

    /// Open files of the server process.
    var openFiles: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.pid)/fd").count) ?? -1 }

    func stop() { process.terminate() }
}
