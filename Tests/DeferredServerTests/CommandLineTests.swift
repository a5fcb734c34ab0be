import DeferredCore
import DeferredDemo
import DeferredTestSupport
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
    static func deferred(_ arguments: [String], in folder: String, environment: [String: String] = BuiltServer.environment(),
                         program: String? = nil) async throws -> Ran {
        let base = folder + "/run-" + UUID().uuidString.prefix(8)
        let process = try SpawnedProcess(executable: try program ?? BuiltServer.executable(), arguments: arguments,
                                         stdoutPath: base + ".out", stderrPath: base + ".err", environment: environment)
        // Off the concurrency pool: a wait there could starve a fake API the child is calling.
        let status = await OffPool.run { process.waitForExit() }
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
        // --version: the release and the commit the binary was built from: HEAD in a fresh
        // clone, an earlier commit of this history in a checkout committed to since its build.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let version = try await Self.deferred(["--version"], in: folder)
        let stamped = version.stdout.split(separator: "(commit ").last.map { String($0.dropLast(2)) } ?? ""
        #expect(version.status == 0 && version.stdout.hasPrefix("deferred 0.") && version.stdout.hasSuffix(")\n"), "\(version)")
        #expect(stamped.count == 12 && stamped.allSatisfy(\.isHexDigit), "\(version)")
        let known = try? await LocalCommand.runOffPool(["git", "-C", root, "merge-base", "--is-ancestor", stamped, "HEAD"])
        #expect(known != nil, "\(stamped) is not a commit of this history")
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

    /// A deferred.toml for `check-config`: the harness's sshd as host `loopback` (on `port`),
    /// project `sample` with `branches`, and `extra` lines at the end.
    static func config(_ harness: ServerHarness, port: Int? = nil, user: String? = nil, branches: String = #"["main"]"#,
                       store: [String]? = nil, extra: [String] = []) throws -> String {
        let path = harness.folder + "/check-\(UUID().uuidString.prefix(6)).toml"
        try ([
            "[server]", #"listen = "127.0.0.1:1""#,
            "[store]"] + (store ?? [#"url = "sqlite:\#(harness.folder)/check.sqlite""#]) + [
            "[github]", #"secret_env = "DEFERRED_TEST_SECRET""#,
            "[artifacts]", #"store = "file:\#(harness.folder)/check-artifacts""#] + (store == nil ? [] : ["shared = true"]) + [
            "[[hosts]]", #"name = "loopback""#, #"address = "127.0.0.1""#, "port = \(port ?? harness.sshd.port)",
            #"user = "\#(user ?? harness.sshd.user)""#, #"identity = "\#(harness.sshd.clientKey)""#, #"known_hosts = "\#(harness.sshd.knownHosts)""#,
            "[[projects]]", #"name = "sample""#, #"repository = "octo-org/sample""#, #"hosts = ["loopback"]"#, "branches = \(branches)",
        ] + extra).joined(separator: "\n").appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// check-config says what is wrong with its line and the host's name, beyond the file too:
    /// a bad glob, EC2 without credentials (which also stops `serve` before it binds), a static
    /// host nothing answers on (a warning; --probe logs in), and a file read from standard input.
    @Test func checkConfigTellsTheTruthWithLinesAndNames() async throws {
        let harness = try await ServerHarness()
        let folder = harness.folder
        let good = try Self.config(harness)
        let fine = try await Self.deferred(["check-config", "--config", good, "--probe"], in: folder)
        #expect(fine.status == 0 && fine.stdout.contains("is fine") && !fine.stdout.contains("warning"), "\(fine)")

        let glob = try await Self.deferred(["check-config", "--config", try Self.config(harness, branches: #"["main", "release/["]"#)], in: folder)
        #expect(glob.status == 1 && glob.stderr.contains(#"line 20: projects["sample"].branches[1]: 'release/[' opens a class"#), "\(glob)")

        // A port nothing listens on: a warning, not a failure.
        let closed = try FreePort.find()
        let down = try await Self.deferred(["check-config", "--config", try Self.config(harness, port: closed)], in: folder)
        #expect(down.status == 0 && down.stdout.contains(#"warning: line 9: hosts["loopback"]: 127.0.0.1:\#(closed) does not answer"#), "\(down)")
        // --probe logs in: a user the host does not have is refused.
        let stranger = try await Self.deferred(["check-config", "--probe", "--config", try Self.config(harness, user: "nobody-here")], in: folder)
        #expect(stranger.status == 0 && stranger.stdout.contains(#"hosts["loopback"]: SSH to nobody-here@127.0.0.1"#), "\(stranger)")

        // An EC2 host without AWS credentials anywhere.
        let home = folder + "/empty-home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var bare = BuiltServer.environment().filter { !$0.key.hasPrefix("AWS_") }
        bare["HOME"] = home
        bare["AWS_EC2_METADATA_DISABLED"] = "true"
        let cloudy = try Self.config(harness, extra: ["[[hosts]]", #"name = "cloud""#, #"provider = "ec2""#, #"instance_id = "i-0123456789abcdef0""#,
                                                      #"region = "eu-west-1""#, #"user = "build""#, #"identity = "\#(harness.sshd.clientKey)""#,
                                                      #"known_hosts = "\#(harness.sshd.knownHosts)""#])
        let refused = try await Self.deferred(["check-config", "--config", cloudy], in: folder, environment: bare)
        #expect(refused.status == 1 && refused.stderr.contains(#"line 21: hosts["cloud"]: provider ec2 needs AWS credentials"#), "\(refused)")
        let serve = try await Self.deferred(["serve", "--config", cloudy], in: folder, environment: bare)
        #expect(serve.status == 1 && serve.stderr.contains("AWS credentials") && !serve.stderr.contains("serving on"), "\(serve)")

        // --config - reads standard input.
        let piped = try await Self.deferred(["/bin/sh", "-c", #"exec "$0" check-config --config - < "$1""#, try BuiltServer.executable(), good],
                                            in: folder, program: "/usr/bin/env")
        #expect(piped.status == 0 && piped.stdout.contains("standard input is fine"), "\(piped)")
        let pipedBad = try await Self.deferred(["/bin/sh", "-c", #"printf '[server]\nlisten = 5\n' | "$0" check-config --config -"#, try BuiltServer.executable()],
                                               in: folder, program: "/usr/bin/env")
        #expect(pipedBad.status == 1 && pipedBad.stderr.contains("line 2: server.listen: is an integer, not a string"), "\(pipedBad)")
    }

    /// A command host: check-config names a missing command; --probe runs its status command
    /// (and never its wake or sleep) and warns when it does not say running, stopped or pending.
    @Test func checkConfigProbesACommandHostsStatusAndNothingElse() async throws {
        let harness = try await ServerHarness()
        let folder = harness.folder
        let touched = folder + "/woken"
        for (name, text) in [("wake", "#!/bin/sh\ntouch '\(touched)'\n"), ("says-stopped", "#!/bin/sh\necho stopped\n"),
                             ("says-asleep", "#!/bin/sh\necho asleep\n")] {
            FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(text.utf8), attributes: [.posixPermissions: 0o755])
        }
        func desk(status: String, sleep: Bool = true) throws -> String {
            try Self.config(harness, extra: ["[[hosts]]", #"name = "desk""#, #"provider = "command""#, #"address = "127.0.0.1""#,
                                             #"wake = ["\#(folder)/wake"]"#] + (sleep ? [#"sleep = ["true"]"#] : []) + [
                                             #"status = ["\#(folder)/\#(status)"]"#, #"user = "build""#,
                                             #"identity = "\#(harness.sshd.clientKey)""#, #"known_hosts = "\#(harness.sshd.knownHosts)""#])
        }
        let fine = try await Self.deferred(["check-config", "--probe", "--config", try desk(status: "says-stopped")], in: folder)
        #expect(fine.status == 0 && fine.stdout.contains("is fine") && !fine.stdout.contains("warning"), "\(fine)")
        let odd = try await Self.deferred(["check-config", "--probe", "--config", try desk(status: "says-asleep")], in: folder)
        #expect(odd.status == 0 && odd.stdout.contains(#"hosts["desk"]: the status command"#) && odd.stdout.contains("printed 'asleep'"), "\(odd)")
        let missing = try await Self.deferred(["check-config", "--config", try desk(status: "says-stopped", sleep: false)], in: folder)
        #expect(missing.status == 1 && missing.stderr.contains(#"hosts["desk"].sleep: is missing"#), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: touched), "check-config ran the wake command")
    }

    /// Hetzner and DigitalOcean: check-config names each provider's missing keys; --probe reads
    /// the host's server and lists the fleet's (making nothing), and a refused token is a
    /// warning that names token_env, never the token.
    @Test(arguments: CloudUnderTest.allCases)
    func checkConfigKnowsEachCloudsKeysAndProbesItsToken(_ cloud: CloudUnderTest) async throws {
        let harness = try await ServerHarness()
        let folder = harness.folder
        let api = try await cloud.fake(token: "the-token", servers: [42: .init(name: "builder", status: "off", ip: "127.0.0.1")])
        defer { api.stop() }
        try "#!/bin/sh\n".write(toFile: folder + "/host.sh", atomically: true, encoding: .utf8)
        let login = [#"user = "root""#, #"identity = "\#(harness.sshd.clientKey)""#, #"known_hosts = "\#(harness.sshd.knownHosts)""#]
        let idKey = cloud == .hetzner ? "server_id" : "droplet_id"
        let machine = cloud == .hetzner ? [#"image = "debian-12""#, #"server_type = "cx22""#]
                                        : [#"image = "debian-12-x64""#, #"size = "s-1vcpu-1gb""#, #"region = "fra1""#]
        func config(withID: Bool = true, fleetKeys: [String]? = nil) throws -> String {
            try Self.config(harness, extra: ["[[hosts]]", #"name = "cloudy""#, #"provider = "\#(cloud.kind.rawValue)""#]
                            + (withID ? ["\(idKey) = 42"] : []) + [#"token_env = "\#(cloud.tokenEnv)""#, #"endpoint = "\#(api.url)""#] + login
                            + ["[[fleets]]", #"name = "more""#, #"provider = "\#(cloud.kind.rawValue)""#, #"token_env = "\#(cloud.tokenEnv)""#,
                               #"endpoint = "\#(api.url)""#, #"bootstrap = "\#(folder)/host.sh""#] + (fleetKeys ?? machine) + login)
        }
        var environment = BuiltServer.environment()
        environment[cloud.tokenEnv] = "the-token"
        let fine = try await Self.deferred(["check-config", "--probe", "--config", try config()], in: folder, environment: environment)
        #expect(fine.status == 0 && fine.stdout.contains("is fine") && !fine.stdout.contains("warning"), "\(fine)")
        let calls = await api.state.calls
        #expect(calls.contains("GET \(cloud.serverPath)") && calls.count == 2, "\(calls)")

        let missing = try await Self.deferred(["check-config", "--config", try config(withID: false, fleetKeys: [])], in: folder, environment: environment)
        let fleetKeys = cloud == .hetzner ? ["image", "server_type"] : ["image", "size", "region"]
        for key in [#"hosts["cloudy"].\#(idKey)"#] + fleetKeys.map({ #"fleets["more"].\#($0)"# }) {
            #expect(missing.status == 1 && missing.stderr.contains("\(key): is missing"), "\(key): \(missing)")
        }

        environment[cloud.tokenEnv] = "a-wrong-token"
        let refused = try await Self.deferred(["check-config", "--probe", "--config", try config()], in: folder, environment: environment)
        #expect(refused.status == 0 && refused.stdout.contains(#"hosts["cloudy"]: the \#(cloud.cloud) API refused"#), "\(refused)")
        #expect(refused.stdout.contains(#"fleets["more"]: the \#(cloud.cloud) API refused"#), "\(refused)")
        #expect(!refused.stdout.contains("a-wrong-token") && !refused.stderr.contains("a-wrong-token"))
        #expect(await api.state.made().isEmpty)
        #expect(await api.state.powered.isEmpty)
    }

    /// check-config --probe connects to a PostgreSQL store as serve would and says what it found,
    /// creating nothing; a password the database refuses is a problem naming password_env.
    @Test func checkConfigProbesAPostgreSQLStoreWithoutChangingIt() async throws {
        let harness = try await ServerHarness()
        let postgres = try await ThrowawayPostgres.shared()
        let url = postgres.url(database: try await postgres.makeDatabase())
        let config = try Self.config(harness, store: [#"url = "\#(url)""#, #"password_env = "\#(ServedStore.passwordVariable)""#])
        let fine = try await Self.deferred(["check-config", "--probe", "--config", config], in: harness.folder)
        #expect(fine.status == 0 && fine.stdout.contains("store: PostgreSQL 15") && fine.stdout.contains("no schema yet"), "\(fine)")
        // Nothing was created: the first serve still finds no schema.
        let again = try await Self.deferred(["check-config", "--probe", "--config", config], in: harness.folder)
        #expect(again.stdout.contains("no schema yet"), "\(again)")
        // Without --probe the database is not asked.
        let unprobed = try await Self.deferred(["check-config", "--config", config], in: harness.folder)
        #expect(unprobed.status == 0 && !unprobed.stdout.contains("store:"), "\(unprobed)")

        var wrong = BuiltServer.environment()
        wrong[ServedStore.passwordVariable] = "not-the-password"
        let refused = try await Self.deferred(["check-config", "--probe", "--config", config], in: harness.folder, environment: wrong)
        #expect(refused.status == 1 && refused.stderr.contains("line 3: store:") && refused.stderr.contains("password_env"), "\(refused)")
    }

    /// `deferred init` writes a commented file that check-config accepts as it is, once given a
    /// host that answers; it never writes over a file.
    @Test func initWritesAFileThatCheckConfigAccepts() async throws {
        let harness = try await ServerHarness()
        let output = harness.folder + "/new/deferred.toml"
        try FileManager.default.createDirectory(atPath: harness.folder + "/new", withIntermediateDirectories: true)
        let arguments = ["init", "--output", output, "--host", "\(harness.sshd.user)@127.0.0.1:\(harness.sshd.port)",
                         "--identity", harness.sshd.clientKey, "--known-hosts", harness.sshd.knownHosts, "--repository", "octo-org/site"]
        let wrote = try await Self.deferred(arguments, in: harness.folder)
        #expect(wrote.status == 0 && wrote.stdout.hasPrefix("wrote \(output)"), "\(wrote)")
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(text.contains("# deferred.toml") && text.contains(#"repository = "octo-org/site""#), "\(text)")
        var environment = BuiltServer.environment()
        environment["DEFERRED_GITHUB_SECRET"] = "s"
        let checked = try await Self.deferred(["check-config", "--probe", "--config", output], in: harness.folder, environment: environment)
        #expect(checked.status == 0 && checked.stdout.contains("is fine") && !checked.stdout.contains("warning"), "\(checked)")
        let again = try await Self.deferred(arguments, in: harness.folder)
        #expect(again.status == 1 && again.stderr.contains("exists"), "\(again)")
        #expect((try? String(contentsOfFile: output, encoding: .utf8)) == text)
    }
}

