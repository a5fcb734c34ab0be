@testable import DeferredConfigFile
import DeferredCore
import Foundation
import Testing

struct ConfigLoaderTests {
    let dir: String = {
        let d = NSTemporaryDirectory() + "deferred-config-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: d + "/key", contents: Data("k".utf8))
        FileManager.default.createFile(atPath: d + "/known_hosts", contents: Data())
        return d
    }()

    let valid = """
    [server]
    listen = "127.0.0.1:9090"

    [store]
    url = "sqlite:state/db.sqlite"

    [github]
    secret_env = "HOOK_SECRET"

    [[hosts]]
    name = "builder-1"
    address = "127.0.0.1"
    port = 2222
    user = "deferred"
    identity = "key"
    known_hosts = "known_hosts"
    max_jobs = 2

    [[projects]]
    name = "resume"
    repository = "octo-org/resume"
    branches = ["main", "release/*"]
    command = "./script/deferred"
    hosts = ["builder-1"]
    timeout_minutes = 0.5
    """

    @Test func loadsAValidFileWithSecretsFromTheEnvironment() throws {
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s3cret"], homeDirectory: "/home/x")
            .load(text: valid, baseDirectory: dir)
        #expect(config.server.listenPort == 9090)
        #expect(config.server.publicURL == "http://127.0.0.1:9090")
        #expect(config.store.sqlitePath == dir + "/state/db.sqlite")
        #expect(config.github.secret == "s3cret")
        #expect(config.hosts.first?.maxJobs == 2)
        #expect(config.hosts.first?.identity == dir + "/key")
        #expect(config.projects.first?.timeout == .seconds(30))
        #expect(config.project(forRepository: "Octo-Org/Resume")?.name == "resume")
        #expect(config.idle.timeoutMinutes == 30 && config.idle.checkIntervalSeconds == 60)
        #expect(config.hosts.first?.hostWaitMinutes == 30)
        let waiting = try ConfigLoader(environment: ["HOOK_SECRET": "s3cret"], homeDirectory: "/home/x")
            .load(text: valid.replacingOccurrences(of: "max_jobs = 2", with: "max_jobs = 2\nhost_wait_minutes = 5"), baseDirectory: dir)
        #expect(waiting.hosts.first?.hostWaitMinutes == 5)
    }

    @Test func readsHowOftenServeLooksForIdleHosts() throws {
        let loader = ConfigLoader(environment: ["HOOK_SECRET": "x"], homeDirectory: "/home/x")
        let idle = try loader.load(text: valid + "\n[idle]\ntimeout_minutes = 5\ncheck_interval_seconds = 2.5\n", baseDirectory: dir).idle
        #expect(idle.timeoutMinutes == 5 && idle.checkIntervalSeconds == 2.5)
        let error = #expect(throws: ConfigError.self) {
            try loader.load(text: valid + "\n[idle]\ncheck_interval_seconds = 0\n", baseDirectory: dir)
        }
        #expect(error?.problems.map(\.key) == ["idle.check_interval_seconds"], "\(String(describing: error))")
    }

    @Test func readsArtifactStoresAndProjectLimits() throws {
        let loader = ConfigLoader(environment: ["HOOK_SECRET": "x"], homeDirectory: "/home/x")
        let local = try loader.load(text: valid + "\nmax_artifact_bytes = 2048\nmax_artifact_files = 7\n", baseDirectory: dir)
        #expect(local.artifacts.directory == dir + "/.deferred/artifacts")
        #expect(local.artifacts.s3 == nil)
        #expect(local.artifacts.retentionDays == 14)
        #expect(local.projects[0].maxArtifactBytes == 2048)
        #expect(local.projects[0].maxArtifactFiles == 7)
        let s3 = try loader.load(text: """
            [artifacts]
            store = "s3://ci-artifacts/deferred/runs/"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:5000"
            retention_days = 3
            """ + "\n" + valid, baseDirectory: dir)
        #expect(s3.artifacts.s3 == .init(bucket: "ci-artifacts", prefix: "deferred/runs", region: "eu-west-1", endpoint: "http://127.0.0.1:5000"))
        #expect(s3.artifacts.directory == dir + "/.deferred/staging")
        #expect(s3.artifacts.retentionDays == 3)
        #expect(s3.projects[0].maxArtifactBytes == 1 << 30)
        for (store, key) in [("s3://Bad_Bucket/x\"\nregion = \"us-east-1", "artifacts.store"), ("s3://fine-bucket", "artifacts.region"),
                             ("ftp://x", "artifacts.store"), ("file:x\"\nregion = \"us-east-1", "artifacts.region")] {
            do {
                _ = try loader.load(text: "[artifacts]\nstore = \"\(store)\"\n" + valid, baseDirectory: dir)
                Issue.record("\(store) loaded")
            } catch {
                #expect(error.problems.map(\.key).contains(key), "\(store): \(error.problems.map(\.key))")
            }
        }
    }

    @Test func readsCommitStatusAndNotifyKeys() throws {
        let loader = ConfigLoader(environment: ["HOOK_SECRET": "x", "GH_TOKEN": "ghp_1", "NOTIFY": "n"], homeDirectory: "/home/x")
        let text = valid.replacingOccurrences(of: "secret_env = \"HOOK_SECRET\"",
                                              with: "secret_env = \"HOOK_SECRET\"\ntoken_env = \"GH_TOKEN\"\napi_url = \"https://ghe.example.com/api/v3/\"")
        let config = try loader.load(text: text + "\nnotify_url = \"https://example.com/hook\"\nnotify_secret_env = \"NOTIFY\"\nstatus_context = \"ci/deferred\"\n", baseDirectory: dir)
        #expect(config.github.token == "ghp_1")
        #expect(config.github.apiURL == "https://ghe.example.com/api/v3")
        #expect(config.projects[0].notifyURL == "https://example.com/hook")
        #expect(config.projects[0].notifySecret == "n")
        #expect(config.projects[0].statusContext == "ci/deferred")
        let plain = try loader.load(text: valid, baseDirectory: dir)
        #expect(plain.github.token == nil && plain.github.apiURL == "https://api.github.com")
        #expect(plain.projects[0].statusContext == "deferred/resume")
        do {
            _ = try loader.load(text: valid + "\nnotify_url = \"https://example.com/hook\"\n", baseDirectory: dir)
            Issue.record("an unsigned notify_url loaded")
        } catch {
            #expect(error.problems.map(\.key).contains(#"projects["resume"].notify_secret_env"#))
        }
    }

    /// A branch glob that cannot mean what was meant is a problem at its line, not a filter
    /// that silently never matches.
    @Test(arguments: [("release/[", "no ']' closes"), ("release/[]", "empty class"), ("v[9-0]*", "runs backwards"), ("!", "excludes nothing")])
    func aBadBranchGlobIsAProblemAtItsLine(_ pattern: String, _ words: String) {
        let text = valid.replacingOccurrences(of: #"branches = ["main", "release/*"]"#, with: #"branches = ["main", "\#(pattern)"]"#)
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: text, baseDirectory: dir) }
        let problem = error?.problems.first
        #expect(error?.problems.count == 1 && problem?.key == #"projects["resume"].branches[1]"# && problem?.line == 22, "\(String(describing: error))")
        #expect(problem?.message.contains(words) == true, "\(String(describing: problem))")
        #expect(BranchGlob("release/[0-9]*").problem == nil && BranchGlob("!wip/**").problem == nil && BranchGlob("a[!b-d]").problem == nil)
    }

    @Test func reportsEveryProblemAtOnceWithItsKey() {
        let broken = """
        [server]
        listen = "nowhere"
        [[hosts]]
        name = "builder-1"
        user = "deferred"
        port = 70000
        identity = "missing-key"
        known_hosts = "known_hosts"
        [[projects]]
        name = "bad name!"
        repository = "no-slash"
        hosts = ["builder-9"]
        comand = "typo"
        """
        do {
            _ = try ConfigLoader(environment: [:]).load(text: broken, baseDirectory: dir)
            Issue.record("a broken config loaded")
        } catch {
            // Each problem names its host or project by name and says its line: the key's, or
            // its table's header when the key is missing.
            var lines: [String: Int?] = [:]
            for problem in error.problems { lines[problem.key] = problem.line }
            let expected: [(String, Int?)] = [
                ("server.listen", 2), (#"hosts["builder-1"].address"#, 3), (#"hosts["builder-1"].port"#, 6),
                (#"hosts["builder-1"].identity"#, 7), (#"projects["bad name!"].name"#, 10), (#"projects["bad name!"].repository"#, 11),
                (#"projects["bad name!"].hosts"#, 12), (#"projects["bad name!"].comand"#, 13),
                // No [github] table at all: nothing in the file to point at.
                ("github.secret_env", nil),
            ]
            for (key, line) in expected {
                #expect(lines[key] == .some(line), "\(key): line \(String(describing: lines[key])); got \(lines)")
            }
            #expect(error.problems.allSatisfy { !$0.fix.isEmpty })
            #expect(error.description.contains(#"line 6: hosts["builder-1"].port: is 70000, outside 1...65535"#), "\(error)")
        }
    }

    @Test func readsTheScriptKeysAndReportsTheirProblems() throws {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMeO/MPMemmAUM/Ni8aWZbs+m8kX3KWbeTEOEaPH8zZV"
        try "alice@example.com namespaces=\"deferred\" \(key)\n".write(toFile: dir + "/signers", atomically: true, encoding: .utf8)
        try "alice@example.com cert-authority \(key)\nbob@example.com ssh-ed25519 !!!\n".write(toFile: dir + "/bad_signers", atomically: true, encoding: .utf8)
        let scripts = valid + """

            allowed_signers = "signers"
            script_secret_env = "SCRIPT_SECRET"
            interpreters = ["/bin/sh", "python3"]
            allowed_origins = ["https://blog.example", "http://localhost:8000"]
            max_script_bytes = 4096

            [scripts]
            rate_per_minute = 12
            burst = 3
            max_queued = 7
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s", "SCRIPT_SECRET": "words"]).load(text: scripts, baseDirectory: dir)
        let project = try #require(config.projects.first)
        #expect(project.allowedSigners?.entries.first?.principals == "alice@example.com")
        #expect(project.allowedSigners?.entries.first?.namespaces == "deferred")
        #expect(project.scriptSecret == "words")
        #expect(project.interpreters == ["/bin/sh", "python3"])
        #expect(project.allowedOrigins == ["https://blog.example", "http://localhost:8000"])
        #expect(project.maxScriptBytes == 4096)
        #expect(config.scripts.ratePerMinute == 12 && config.scripts.burst == 3 && config.scripts.maxQueued == 7)

        let broken = valid + """

            allowed_signers = "bad_signers"
            script_secret_env = "UNSET_SECRET"
            interpreters = ["python3; rm -rf /"]
            allowed_origins = ["https://blog.example/path"]
            """
        let error = #expect(throws: ConfigError.self) {
            try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: broken, baseDirectory: dir)
        }
        let problems = error?.problems ?? []
        let signerProblems = problems.filter { $0.key == #"projects["resume"].allowed_signers"# }.map(\.message)
        #expect(signerProblems.count == 2)
        #expect(signerProblems.first?.contains("line 1: cert-authority lines are not supported") == true)
        for key in [#"projects["resume"].script_secret_env"#, #"projects["resume"].interpreters[0]"#, #"projects["resume"].allowed_origins[0]"#] {
            #expect(problems.contains { $0.key == key }, "no problem for \(key): \(problems)")
        }
    }

    @Test func readsEC2HostsAndTheirProblems() throws {
        let cloud = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"ec2-builder\"]") + """

            [[hosts]]
            name = "ec2-builder"
            provider = "ec2"
            instance_id = "i-0123456789abcdef0"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:5000"
            user = "ubuntu"
            identity = "key"
            known_hosts = "known_hosts"
            wake_timeout_minutes = 4
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: cloud, baseDirectory: dir)
        let host = try #require(config.host(named: "ec2-builder"))
        #expect(host.provider == .ec2)
        #expect(host.instance == CloudInstance(instanceID: "i-0123456789abcdef0", region: "eu-west-1", endpoint: "http://127.0.0.1:5000"))
        #expect(host.address.isEmpty)
        #expect(host.wakeTimeoutMinutes == 4)

        let broken = valid + """

            [[hosts]]
            name = "ec2-bad"
            provider = "ec2"
            instance_id = "vm-12"
            endpoint = "ftp://nowhere"
            user = "ubuntu"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: broken, baseDirectory: dir) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys.isSuperset(of: [#"hosts["ec2-bad"].instance_id"#, #"hosts["ec2-bad"].region"#, #"hosts["ec2-bad"].endpoint"#]), "\(keys)")
        #expect(!keys.contains(#"hosts["ec2-bad"].address"#))
    }

    @Test func readsCommandHostsAndTheirProblems() throws {
        FileManager.default.createFile(atPath: dir + "/vm-state", contents: Data("#!/bin/sh\necho running\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        let machine = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"desk\"]") + """

            [[hosts]]
            name = "desk"
            provider = "command"
            address = "10.0.0.7"
            wake = ["virsh", "start", "desk"]
            sleep = ["virsh", "shutdown", "desk"]
            status = ["./vm-state", "desk"]
            user = "builder"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: machine, baseDirectory: dir)
        let host = try #require(config.host(named: "desk"))
        #expect(host.provider == .command)
        #expect(host.commands == HostCommandLines(wake: ["virsh", "start", "desk"], sleep: ["virsh", "shutdown", "desk"],
                                                  status: [dir + "/vm-state", "desk"]))
        #expect(host.address == "10.0.0.7")

        let broken = valid + """

            [[hosts]]
            name = "desk-bad"
            provider = "command"
            wake = []
            status = ["./no-such-program"]
            user = "builder"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: broken, baseDirectory: dir) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys.isSuperset(of: [#"hosts["desk-bad"].wake"#, #"hosts["desk-bad"].sleep"#, #"hosts["desk-bad"].status"#,
                                     #"hosts["desk-bad"].address"#]), "\(keys)")
        // The commands of a command host are unknown keys elsewhere.
        let misplaced = valid.replacingOccurrences(of: "max_jobs = 2", with: "max_jobs = 2\nwake = [\"true\"]")
        let unknown = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: misplaced, baseDirectory: dir) }
        #expect(unknown?.problems.map(\.key) == [#"hosts["builder-1"].wake"#])
    }

    @Test func readsWakeOnLANHostsAndTheirProblems() throws {
        let desk = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"desk\"]") + """

            [[hosts]]
            name = "desk"
            provider = "wol"
            address = "192.168.1.20"
            mac = "3c:7c:3f:1e:aa:09"
            broadcast = "192.168.1.255"
            wol_port = 7
            sleep_command = "poweroff"
            user = "builder"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: desk, baseDirectory: dir)
        let host = try #require(config.host(named: "desk"))
        #expect(host.provider == .wol)
        #expect(host.wakeOnLAN == WakeOnLAN(mac: [0x3C, 0x7C, 0x3F, 0x1E, 0xAA, 0x09], broadcast: "192.168.1.255", port: 7, sleepCommand: "poweroff"))
        let defaults = try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(
            text: desk.replacingOccurrences(of: "broadcast = \"192.168.1.255\"\nwol_port = 7\nsleep_command = \"poweroff\"\n", with: ""), baseDirectory: dir)
        #expect(defaults.host(named: "desk")?.wakeOnLAN == WakeOnLAN(mac: [0x3C, 0x7C, 0x3F, 0x1E, 0xAA, 0x09]))
        #expect(defaults.host(named: "desk")?.wakeOnLAN?.sleepCommand == "systemctl suspend")

        let broken = valid + """

            [[hosts]]
            name = "desk-bad"
            provider = "wol"
            mac = "3c:7c:3f:1e:aa"
            wol_port = 70000
            user = "builder"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: broken, baseDirectory: dir) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys == [#"hosts["desk-bad"].mac"#, #"hosts["desk-bad"].wol_port"#, #"hosts["desk-bad"].address"#], "\(keys)")
    }

    @Test func readsHetznerHostsAndTheirProblems() throws {
        let cloud = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"hz\"]") + """

            [[hosts]]
            name = "hz"
            provider = "hetzner"
            server_id = 42
            token_env = "HCLOUD_TOKEN"
            user = "root"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s", "HCLOUD_TOKEN": "t0ken"]).load(text: cloud, baseDirectory: dir)
        let host = try #require(config.host(named: "hz"))
        #expect(host.provider == .hetzner)
        #expect(host.server == CloudServer(id: "42", account: CloudAccount(token: "t0ken", tokenEnv: "HCLOUD_TOKEN")))
        #expect(host.address.isEmpty)
        #expect(!"\(host.server!)".contains("t0ken"))
        // The variable not set: a problem naming it.
        let unset = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: cloud, baseDirectory: dir) }
        let problem = unset?.problems.first { $0.key == #"hosts["hz"].token_env"# }
        #expect(problem?.message.contains("HCLOUD_TOKEN") == true, "\(unset?.problems ?? [])")

        let broken = valid + """

            [[hosts]]
            name = "hz-bad"
            provider = "hetzner"
            endpoint = "ftp://nowhere"
            user = "root"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: broken, baseDirectory: dir) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys == [#"hosts["hz-bad"].server_id"#, #"hosts["hz-bad"].token_env"#, #"hosts["hz-bad"].endpoint"#], "\(keys)")
    }

    @Test func readsDigitalOceanHostsAndTheirProblems() throws {
        let cloud = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"drop\"]") + """

            [[hosts]]
            name = "drop"
            provider = "digitalocean"
            droplet_id = 3164444
            token_env = "DIGITALOCEAN_TOKEN"
            endpoint = "http://127.0.0.1:9/v2"
            user = "root"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s", "DIGITALOCEAN_TOKEN": "dop_v1_x"]).load(text: cloud, baseDirectory: dir)
        let host = try #require(config.host(named: "drop"))
        #expect(host.provider == .digitalocean)
        #expect(host.server == CloudServer(id: "3164444", account: CloudAccount(token: "dop_v1_x", tokenEnv: "DIGITALOCEAN_TOKEN", endpoint: "http://127.0.0.1:9/v2")))
        // A Hetzner key on a droplet is not read: it is reported, and the droplet's own is missing.
        let wrongKey = cloud.replacingOccurrences(of: "droplet_id = 3164444", with: "server_id = 3164444")
        let error = #expect(throws: ConfigError.self) {
            try ConfigLoader(environment: ["HOOK_SECRET": "s", "DIGITALOCEAN_TOKEN": "dop_v1_x"]).load(text: wrongKey, baseDirectory: dir)
        }
        let keys = Set(error?.problems.map(\.key) ?? [])
        // The project then lists a host that is not there: said too.
        #expect(keys == [#"hosts["drop"].droplet_id"#, #"hosts["drop"].server_id"#, #"projects["resume"].hosts"#], "\(keys)")
    }

    /// Hetzner and DigitalOcean fleets: their own keys, `delete` when idle by default (a
    /// server that is off is still billed), and each one's missing keys named.
    @Test func readsServerCloudFleetsAndTheirProblems() throws {
        try "#!/bin/sh\n".write(toFile: dir + "/host.sh", atomically: true, encoding: .utf8)
        let fleets = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"hz\", \"do\"]") + """

            [[fleets]]
            name = "hz"
            provider = "hetzner"
            token_env = "HCLOUD_TOKEN"
            image = "debian-12"
            server_type = "cx22"
            location = "fsn1"
            ssh_keys = ["deferred"]
            max_hosts = 2
            bootstrap = "host.sh"
            user = "root"
            identity = "key"
            known_hosts = "known_hosts"

            [[fleets]]
            name = "do"
            provider = "digitalocean"
            token_env = "DIGITALOCEAN_TOKEN"
            image = "123456"
            size = "s-2vcpu-4gb"
            region = "fra1"
            when_idle = "stop"
            bootstrap = "host.sh"
            user = "root"
            identity = "key"
            known_hosts = "known_hosts"
            """
        let environment = ["HOOK_SECRET": "s", "HCLOUD_TOKEN": "h", "DIGITALOCEAN_TOKEN": "d"]
        let config = try ConfigLoader(environment: environment).load(text: fleets, baseDirectory: dir)
        let hz = try #require(config.fleet(named: "hz")), ocean = try #require(config.fleet(named: "do"))
        #expect(hz.provider == .hetzner && hz.account == CloudAccount(token: "h", tokenEnv: "HCLOUD_TOKEN"))
        #expect(hz.imageID == "debian-12" && hz.instanceType == "cx22" && hz.region == "fsn1" && hz.sshKeys == ["deferred"])
        #expect(hz.whenIdle == .terminate && hz.maxHosts == 2)
        #expect(ocean.provider == .digitalocean && ocean.region == "fra1" && ocean.instanceType == "s-2vcpu-4gb" && ocean.whenIdle == .stop)
        let host = hz.host(named: "hz-1a2b", instanceID: "5001")
        #expect(host.provider == .hetzner && host.server?.id == "5001" && host.instance == nil && host.server?.account.tokenEnv == "HCLOUD_TOKEN")

        let broken = fleets.replacingOccurrences(of: "server_type = \"cx22\"\n", with: "instance_type = \"cx22\"\n")
            .replacingOccurrences(of: "region = \"fra1\"\nwhen_idle = \"stop\"", with: "when_idle = \"terminated\"")
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: environment).load(text: broken, baseDirectory: dir) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys == [#"fleets["hz"].server_type"#, #"fleets["hz"].instance_type"#, #"fleets["do"].region"#, #"fleets["do"].when_idle"#,
                         #"projects["resume"].hosts"#], "\(keys)")
        let wol = fleets.replacingOccurrences(of: "provider = \"digitalocean\"", with: "provider = \"wol\"")
        let refused = #expect(throws: ConfigError.self) { try ConfigLoader(environment: environment).load(text: wol, baseDirectory: dir) }
        #expect(refused?.problems.contains { $0.key == #"fleets["do"].provider"# && $0.message.contains("cannot make hosts") } == true)
    }

    @Test func readsFleetsAndTheirProblems() throws {
        try "#!/bin/sh\n".write(toFile: dir + "/host.sh", atomically: true, encoding: .utf8)
        let fleet = valid.replacingOccurrences(of: "hosts = [\"builder-1\"]", with: "hosts = [\"builder-1\", \"spot-builders\"]") + """

            [[fleets]]
            name = "spot-builders"
            provider = "ec2"
            region = "us-east-1"
            image_id = "ami-0123"
            instance_type = "c7i.large"
            spot = true
            max_hosts = 3
            when_idle = "terminate"
            bootstrap = "host.sh"
            user = "ubuntu"
            identity = "key"
            known_hosts = "known_hosts"
            boot_timeout_minutes = 7
            """
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: fleet, baseDirectory: dir)
        let f = try #require(config.fleet(named: "spot-builders"))
        #expect(f.spot && f.maxHosts == 3 && f.whenIdle == .terminate && f.bootstrap == dir + "/host.sh")
        #expect(f.login.wakeTimeoutMinutes == 7 && f.login.user == "ubuntu")
        let host = f.host(named: "spot-builders-1a2b", instanceID: "i-1")
        #expect(host.instance?.instanceID == "i-1" && host.provider == .ec2 && host.address.isEmpty)

        let broken = valid + """

            [[fleets]]
            name = "builder-1"
            region = "us-east-1"
            instance_type = "c7i.large"
            spot = "yes"
            when_idle = "hibernate"
            bootstrap = "missing.sh"
            user = "ubuntu"
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: ["HOOK_SECRET": "s"]).load(text: broken, baseDirectory: dir) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        for key in [#"fleets["builder-1"].image_id"#, #"fleets["builder-1"].spot"#, #"fleets["builder-1"].when_idle"#, #"fleets["builder-1"].bootstrap"#] {
            #expect(keys.contains(key), "no problem for \(key): \(keys)")
        }
    }

    /// `[store]`: SQLite by default, PostgreSQL by URL with its password from the environment;
    /// `[server] state`, the key of earlier versions, still read with a warning.
    @Test func readsTheStoreTableAndTheOldStateKeyWithAWarning() throws {
        let withoutStore = valid.replacingOccurrences(of: "[store]\nurl = \"sqlite:state/db.sqlite\"\n", with: "")
        let loader = ConfigLoader(environment: ["HOOK_SECRET": "s", "DB_PASSWORD": "pw-from-env"], homeDirectory: "/home/x")
        let postgres = try loader.load(text: withoutStore + """

            [store]
            url = "postgres://build%20er@db.example.com:6543/deferred?sslmode=verify-full&sslrootcert=/etc/ca.pem"
            password_env = "DB_PASSWORD"
            takeover_seconds = 12

            [artifacts]
            store = "file:/srv/deferred"
            shared = true
            """, baseDirectory: dir)
        #expect(postgres.store.location == .postgres(PostgresSettings(
            host: "db.example.com", port: 6543, user: "build er", password: "pw-from-env", database: "deferred",
            sslMode: .verifyFull, rootCertificate: "/etc/ca.pem")))
        #expect(postgres.store.takeoverSeconds == 12 && postgres.warnings.isEmpty)
        let defaults = try loader.load(text: withoutStore + "\n[store]\nurl = \"postgresql://u@[::1]/d\"\n"
                                       + "[artifacts]\nstore = \"file:/srv/deferred\"\nshared = true\n", baseDirectory: dir)
        #expect(defaults.store.location == .postgres(PostgresSettings(host: "::1", port: 5432, user: "u", password: nil, database: "d")))
        #expect(defaults.store.takeoverSeconds == 30)

        let old = try loader.load(text: withoutStore.replacingOccurrences(of: "listen = \"127.0.0.1:9090\"",
                                                                          with: "listen = \"127.0.0.1:9090\"\nstate = \"sqlite:old.sqlite\""),
                                  baseDirectory: dir)
        #expect(old.store.sqlitePath == dir + "/old.sqlite")
        #expect(old.warnings.count == 1 && old.warnings[0].contains("[store] url"), "\(old.warnings)")
        let unset = try loader.load(text: withoutStore, baseDirectory: dir)
        #expect(unset.store.sqlitePath == dir + "/.deferred/state.sqlite" && unset.warnings.isEmpty)
    }

    @Test func refusesAStoreURLItCannotUseAndNeverRepeatsAPassword() throws {
        let withoutStore = valid.replacingOccurrences(of: "[store]\nurl = \"sqlite:state/db.sqlite\"\n", with: "")
        let loader = ConfigLoader(environment: ["HOOK_SECRET": "s"], homeDirectory: "/home/x")
        func problems(_ store: String, server: String = "") -> [ConfigProblem] {
            let text = withoutStore.replacingOccurrences(of: "listen = \"127.0.0.1:9090\"", with: "listen = \"127.0.0.1:9090\"\n" + server)
                + "\n[store]\n" + store + "\n"
            do {
                _ = try loader.load(text: text, baseDirectory: dir)
                return []
            } catch {
                return error.problems
            }
        }
        let cases: [(store: String, server: String, key: String, says: String)] = [
            (#"url = "postgres://u:hunter2@h/d""#, "", "store.url", "password"),
            (#"url = "postgres://u@h/d?sslmode=sometimes""#, "", "store.url", "sslmode"),
            (#"url = "postgres://u@h/d?application_name=x""#, "", "store.url", "application_name"),
            (#"url = "postgres://u@h""#, "", "store.url", "database"),
            (#"url = "postgres://h/d""#, "", "store.url", "user"),
            (#"url = "mysql://u@h/d""#, "", "store.url", "neither"),
            (#"url = "sqlite:""#, "", "store.url", "no file"),
            ("url = \"postgres://u@h/d\"\npassword_env = \"NOT_SET_ANYWHERE\"", "", "store.password_env", "NOT_SET_ANYWHERE"),
            ("url = \"sqlite:x.sqlite\"\npassword_env = \"HOOK_SECRET\"", "", "store.password_env", "SQLite"),
            ("takeover_seconds = 1", "", "store.takeover_seconds", "outside"),
            (#"url = "sqlite:a.sqlite""#, #"state = "sqlite:b.sqlite""#, "server.state", "beside"),
            // Several servers may share a PostgreSQL store: each must reach every job's files.
            (#"url = "postgres://u@h/d""#, "", "artifacts.store", "other servers may share"),
        ]
        let sharedFolder = try loader.load(text: withoutStore + "\n[store]\nurl = \"postgres://u@h/d\"\n"
                                           + "[artifacts]\nstore = \"file:/mnt/deferred\"\nshared = true\n", baseDirectory: dir)
        #expect(sharedFolder.artifacts.directory == "/mnt/deferred")
        let bucket = #expect(throws: ConfigError.self) {
            try loader.load(text: withoutStore + "\n[artifacts]\nstore = \"s3://b-1/p\"\nregion = \"us-east-1\"\nshared = true\n", baseDirectory: dir)
        }
        #expect(bucket?.problems.map(\.key) == ["artifacts.shared"], "\(String(describing: bucket))")
        for c in cases {
            let found = problems(c.store, server: c.server)
            #expect(found.contains { $0.key == c.key && "\($0)".contains(c.says) }, "\(c.store): \(found)")
            #expect(!found.contains { "\($0)".contains("hunter2") }, "a password repeated: \(found)")
        }
    }
}
