import DeferredCore
import DeferredDemo
import Foundation
import Testing

/// The built `deferred` as scripts and people run it: its exit statuses, `hosts` from the
/// store alone, and `jobs` against a server's JSON API.
@Suite struct CommandLineTests {
    struct Ran: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    /// Runs the built binary to its end, off the test's threads.
    static func deferred(_ arguments: [String], in folder: String, environment: [String: String] = BuiltServer.environment()) async throws -> Ran {
        let base = folder + "/run-" + UUID().uuidString.prefix(8)
        let process = try SpawnedProcess(executable: try BuiltServer.executable(), arguments: arguments,
                                         stdoutPath: base + ".out", stderrPath: base + ".err", environment: environment)
        let status = await Task.detached { process.waitForExit() }.value
        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return Ran(status: status, stdout: read(base + ".out"), stderr: read(base + ".err"))
    }

    /// 64 is a command line that cannot be read, with the usage; anything that fails at its
    /// work says so in one line and exits 1, without the usage.
    @Test func usageErrorsExit64AndFailuresExit1WithOneLine() async throws {
        let harness = try await ServerHarness()
        let folder = harness.folder
        let usage = try await Self.deferred(["hosts", "--no-such-option"], in: folder)
        #expect(usage.status == 64 && usage.stderr.contains("Usage:"), "\(usage)")
        let missing = try await Self.deferred(["jobs", "show"], in: folder)
        #expect(missing.status == 64 && missing.stderr.contains("Usage:"), "\(missing)")

        let script = folder + "/hello.sh"
        try "#!/bin/sh\necho hello\n".write(toFile: script, atomically: true, encoding: .utf8)
        let failures: [(String, [String])] = [
            ("a key that is not there", ["submit", script, "--server", "http://127.0.0.1:1", "--project", "sample", "--key", folder + "/no-key"]),
            ("a file that is not there", ["sign", folder + "/no-script.sh", "--key", folder + "/no-key"]),
            ("a config that is not there", ["hosts", "--config", folder + "/no.toml"]),
            ("no server for jobs", ["jobs", "list"]),
        ]
        var environment = BuiltServer.environment()
        environment["DEFERRED_SERVER"] = nil
        for (what, arguments) in failures {
            let ran = try await Self.deferred(arguments, in: folder, environment: environment)
            #expect(ran.status == 1, "\(what): \(ran)")
            #expect(!ran.stderr.contains("Usage:") && !ran.stderr.isEmpty, "\(what): \(ran)")
        }
        // --version: the release and the commit the binary was built from.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let commit = (try? await LocalCommand.runOffPool(["git", "-C", root, "rev-parse", "--short=12", "HEAD"]))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let version = try await Self.deferred(["--version"], in: folder)
        #expect(version.status == 0 && version.stdout.hasPrefix("deferred 0.") && version.stdout.hasSuffix("(commit \(commit))\n"), "\(version)")
        let completion = try await Self.deferred(["--generate-completion-script", "bash"], in: folder)
        #expect(completion.status == 0 && completion.stdout.contains("jobs"), "\(completion.stderr)")

        let noServer = try await Self.deferred(["jobs", "list"], in: folder, environment: environment)
        #expect(noServer.stderr == "deferred: no server: pass --server URL or set DEFERRED_SERVER\n", "\(noServer)")
    }

    /// `deferred hosts` reads the store: a config with an EC2 host lists it without AWS
    /// credentials (none in the environment, no ~/.aws, no instance metadata); waking it needs
    /// them, and says so.
    @Test func hostsAreListedFromTheStoreWithoutCloudCredentials() async throws {
        let harness = try await ServerHarness()
        let config = try harness.writeConfig(
            server: [#"listen = "127.0.0.1:1""#], store: [#"url = "sqlite:\#(harness.folder)/hosts.sqlite""#],
            artifacts: [#"store = "file:\#(harness.folder)/artifacts""#],
            project: ["[[hosts]]", #"name = "cloud""#, #"provider = "ec2""#, #"instance_id = "i-0123456789abcdef0""#,
                      #"region = "eu-west-1""#, #"user = "build""#, #"identity = "\#(harness.sshd.clientKey)""#,
                      #"known_hosts = "\#(harness.sshd.knownHosts)""#])
        let home = harness.folder + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var environment = BuiltServer.environment().filter { !$0.key.hasPrefix("AWS_") }
        environment["HOME"] = home
        environment["AWS_EC2_METADATA_DISABLED"] = "true"

        let table = try await Self.deferred(["hosts", "--config", config], in: harness.folder, environment: environment)
        #expect(table.status == 0 && table.stdout.contains("cloud") && table.stdout.contains("loopback"), "\(table)")
        let json = try await Self.deferred(["hosts", "--json", "--config", config], in: harness.folder, environment: environment)
        let listing = (try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8))) as? [String: Any]
        let names = (listing?["hosts"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["cloud", "loopback"], "\(json)")
        #expect((listing?["fleet_holds"] as? [Any])?.isEmpty == true)

        let wake = try await Self.deferred(["hosts", "wake", "cloud", "--config", config], in: harness.folder, environment: environment)
        #expect(wake.status == 1 && wake.stderr.contains("credentials") && !wake.stderr.contains("Usage:"), "\(wake)")
    }

    /// `deferred jobs` against a running server: a job listed while it runs, its log refused
    /// until it ends and followed live with --follow, shown with its end, its whole log, a
    /// rerun, a cancel of a job still waiting, and a wrong token refused without being echoed.
    @Test func jobsAreListedFollowedShownRerunAndCancelled() async throws {
        let harness = try await ServerHarness()
        let server = try await BuiltServer.start(harness, server: [#"admin_token_env = "\#(BuiltServer.adminTokenVariable)""#])
        defer { server.stop() }
        var environment = BuiltServer.environment()
        environment["DEFERRED_SERVER"] = server.base
        environment["DEFERRED_ADMIN_TOKEN"] = DashboardTests.token
        let folder = harness.folder
        let marked = try ServerRestartTests.Marked(harness, "listed")
        _ = try await server.postScript(marked.script)
        try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: marked.started) }

        let listed = try await Self.deferred(["jobs", "list", "--status", "running"], in: folder, environment: environment)
        #expect(listed.status == 0 && listed.stdout.contains("running") && listed.stdout.contains("script by"), "\(listed)")
        let id = try #require(listed.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ").first.map(String.init))
        let early = try await Self.deferred(["jobs", "logs", id], in: folder, environment: environment)
        #expect(early.status == 1 && early.stderr.contains("--follow"), "\(early)")

        // Followed live: the command ends when the job does, with every line.
        let followed = environment
        let follow = Task { try await Self.deferred(["jobs", "logs", id, "--follow"], in: folder, environment: followed) }
        try await Task.sleep(for: .seconds(1))
        marked.letEnd()
        let live = try await follow.value
        #expect(live.status == 0 && live.stdout == ServerRestartTests.Marked.stdout && live.stderr == "to stderr\n", "\(live)")

        let shown = try await Self.deferred(["jobs", "show", id], in: folder, environment: environment)
        #expect(shown.status == 0 && shown.stdout.contains("succeeded") && shown.stdout.contains("exit status  0"), "\(shown)")
        let log = try await Self.deferred(["jobs", "logs", id], in: folder, environment: environment)
        #expect(log.status == 0 && log.stdout.contains("before 1") && log.stdout.contains("after 3"), "\(log)")
        let json = try await Self.deferred(["jobs", "list", "--json", "--limit", "5"], in: folder, environment: environment)
        let page = (try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8))) as? [String: Any]
        #expect((page?["jobs"] as? [[String: Any]])?.first?["id"] as? String == id, "\(json)")

        let rerun = try await Self.deferred(["jobs", "rerun", id], in: folder, environment: environment)
        #expect(rerun.status == 0 && rerun.stdout.hasPrefix("queued j-"), "\(rerun)")
        let ended = try await Self.deferred(["jobs", "cancel", id], in: folder, environment: environment)
        #expect(ended.status == 1 && ended.stderr.contains("already ended"), "\(ended)")

        // A job that waits for a host that is busy is cancelled before it runs.
        let busy = try ServerRestartTests.Marked(harness, "busy")
        _ = try await server.postScript(busy.script)
        let waiting = try ServerRestartTests.Marked(harness, "waiting")
        let waitingPath = try await server.postScript(waiting.script)
        try await StalledHostTests.eventually("the first job runs") { FileManager.default.fileExists(atPath: busy.started) }
        let queued = try await Self.deferred(["jobs", "list", "--status", "queued,waiting_for_host", "--json"], in: folder, environment: environment)
        let waitingID = try #require(((try? JSONSerialization.jsonObject(with: Data(queued.stdout.utf8))) as? [String: Any])
            .flatMap { ($0["jobs"] as? [[String: Any]])?.first?["id"] as? String }, "\(queued)")
        let cancel = try await Self.deferred(["jobs", "cancel", waitingID], in: folder, environment: environment)
        #expect(cancel.status == 0 && cancel.stdout.hasPrefix("cancelling \(waitingID)"), "\(cancel)")
        busy.letEnd()
        let results = try await server.results(at: waitingPath)
        #expect(results["status"] as? String == "cancelled" && waiting.runCount == 0, "\(results)")

        environment["DEFERRED_ADMIN_TOKEN"] = "not-the-token-1234"
        let refused = try await Self.deferred(["jobs", "list"], in: folder, environment: environment)
        #expect(refused.status == 1 && refused.stderr.contains("DEFERRED_ADMIN_TOKEN") && !refused.stderr.contains("not-the-token-1234"), "\(refused)")
    }
}
