import DeferredCore
import DeferredSignatures
import Foundation

/// Turns `deferred.toml` into a `DeferredConfig`, reporting every problem at once.
public struct ConfigLoader: Sendable {
    /// Where secrets come from; the process environment in production.
    public var environment: [String: String]
    /// `~` in paths.
    public var homeDirectory: String

    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        homeDirectory: String = NSHomeDirectory()
    ) {
        self.environment = environment
        self.homeDirectory = homeDirectory
    }

    public func load(path: String) throws(ConfigError) -> DeferredConfig {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try load(bytes: bytes, path: path, baseDirectory: base)
    }

    /// Relative paths in the file are taken from `baseDirectory`, the config file's folder.
    public func load(text: String, path: String = "deferred.toml", baseDirectory: String) throws(ConfigError) -> DeferredConfig {
        try load(bytes: Array(text.utf8), path: path, baseDirectory: baseDirectory)
    }

    public func load(bytes: [UInt8], path: String = "deferred.toml", baseDirectory: String) throws(ConfigError) -> DeferredConfig {
        let table: TOMLTable
        do {
            table = try TOMLParser.parse(bytes: bytes)
        } catch {
            throw .syntax(path: path, error)
        }
        var problems: [ConfigProblem] = []
        var root = TableReader(table, path: "")
        var legacyState: String?
        let server = readServer(root.subtable("server") ?? TOMLTable(), base: baseDirectory, legacyState: &legacyState, problems: &problems)
        var warnings: [String] = []
        let legacyLine = (root.table["server"]).flatMap { if case .table(let t) = $0 { t.line(of: "state") } else { nil } }
        let store = readStore(root.subtable("store"), legacyState: legacyState, legacyLine: legacyLine, base: baseDirectory,
                              warnings: &warnings, problems: &problems)
        let github = readGitHub(root.subtable("github") ?? TOMLTable(), problems: &problems)
        let artifacts = readArtifacts(root.subtable("artifacts") ?? TOMLTable(), base: baseDirectory,
                                      serversShare: store?.mayBeShared ?? false, problems: &problems)
        let idle = readIdle(root.subtable("idle") ?? TOMLTable(), problems: &problems)
        let scripts = readScripts(root.subtable("scripts") ?? TOMLTable(), problems: &problems)
        let metrics = readMetrics(root.subtable("metrics") ?? TOMLTable(), problems: &problems)
        let hostTables = root.tableArray("hosts"), projectTables = root.tableArray("projects"), fleetTables = root.tableArray("fleets")
        let hosts = hostTables.enumerated().compactMap { i, t in
            readHost(t, index: i, base: baseDirectory, problems: &problems)
        }
        let projects = projectTables.enumerated().compactMap { i, t in
            readProject(t, index: i, base: baseDirectory, defaultMaxQueued: scripts.maxQueued, problems: &problems)
        }
        let fleets = fleetTables.enumerated().compactMap { i, t in
            readFleet(t, index: i, base: baseDirectory, problems: &problems)
        }
        root.reportUnknownKeys()
        problems = root.problems + problems
        problems += crossCheck(hosts: hosts, fleets: fleets, projects: projects, github: github,
                               tables: (hostTables, fleetTables, projectTables, root.table.line(of: "github")))

        guard problems.isEmpty, let server, let store, let artifacts, let idle, let github else {
            throw .invalid(path: path, problems)
        }
        var config = DeferredConfig(server: server, store: store, github: github.config, artifacts: artifacts, idle: idle,
                                    scripts: scripts, hosts: hosts, fleets: fleets, projects: projects)
        config.warnings = warnings
        config.metrics = metrics
        for (array, tables) in [("hosts", hostTables), ("projects", projectTables), ("fleets", fleetTables)] {
            for (index, table) in tables.enumerated() { config.lines[TableReader.label(array, table, index: index)] = table.line }
        }
        for key in root.table.keys { if case .table(let table)? = root.table[key] { config.lines[key] = table.line } }
        return config
    }

    // MARK: Sections

    private func readServer(_ table: TOMLTable, base: String, legacyState: inout String?, problems: inout [ConfigProblem]) -> ServerConfig? {
        var r = TableReader(table, path: "server")
        defer { r.reportUnknownKeys(); problems += r.problems }
        let listen = r.string("listen") ?? "127.0.0.1:8080"
        var host = "127.0.0.1", port = 8080
        if let colon = listen.lastIndex(of: ":"), let p = Int(listen[listen.index(after: colon)...]), (0...65535).contains(p) {
            host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            port = p
        } else {
            r.problem("listen", "'\(listen)' is not host:port", fix: "write it as \"127.0.0.1:8080\"")
        }
        var publicURL = r.string("public_url") ?? "http://\(listen)"
        while publicURL.hasSuffix("/") { publicURL.removeLast() }
        if !(publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://")) {
            r.problem("public_url", "'\(publicURL)' is not an http(s) URL", fix: "write the URL clients reach this server at, such as \"https://deferred.example.com\"")
        }
        // Read here, used by readStore: the key of earlier versions, before [store].
        legacyState = r.string("state")
        let adminToken = secret(&r, key: "admin_token_env")
        let idle = r.number("idle_timeout_seconds", minimum: 0, exclusive: true) ?? 30
        let body = r.number("body_timeout_seconds", minimum: 0, exclusive: true) ?? 60
        let connections = r.integer("max_connections", range: 16...1_000_000) ?? 4096
        return ServerConfig(listenHost: host, listenPort: port, publicURL: publicURL, adminToken: adminToken,
                            idleTimeoutSeconds: idle, bodyTimeoutSeconds: body, maxConnections: connections)
    }

    /// `[store]`, or `[server] state` as earlier versions had it (still read, with a warning).
    private func readStore(_ table: TOMLTable?, legacyState: String?, legacyLine: Int?, base: String, warnings: inout [String],
                           problems: inout [ConfigProblem]) -> StoreConfig? {
        var r = TableReader(table ?? TOMLTable(), path: "store")
        defer { r.reportUnknownKeys(); problems += r.problems }
        let given = r.string("url")
        let passwordEnv = r.string("password_env")
        let takeover = r.integer("takeover_seconds", range: 5...86_400) ?? 30
        if given != nil, legacyState != nil {
            problems.append(ConfigProblem(key: "server.state", message: "is set beside [store] url",
                                          fix: "remove server.state: [store] url says where the state is kept", line: legacyLine))
        } else if let legacyState, given == nil {
            warnings.append("server.state is deprecated: write it as [store] url = \"\(legacyState)\"")
        }
        let url = given ?? legacyState ?? "sqlite:.deferred/state.sqlite"
        let key = given == nil && legacyState != nil ? "server.state" : "store.url"
        let line = given == nil && legacyState != nil ? legacyLine : r.table.line(of: "url")
        if url.hasPrefix("sqlite:") {
            let path = String(url.dropFirst("sqlite:".count))
            guard !path.isEmpty else {
                problems.append(ConfigProblem(key: key, message: "names no file", fix: "write \"sqlite:PATH\", such as \"sqlite:.deferred/state.sqlite\"", line: line))
                return nil
            }
            if passwordEnv != nil {
                r.problem("password_env", "is set for a SQLite store, which has no password", fix: "remove it, or use a postgres:// url")
            }
            return StoreConfig(.sqlite(path: resolve(path, base: base)), takeoverSeconds: takeover)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            problems.append(ConfigProblem(key: key, message: "'\(url)' is neither sqlite: nor postgres://",
                                          fix: "write \"sqlite:PATH\" for one server or \"postgres://user@host:5432/db\" for several", line: line))
            return nil
        }
        var password: String?
        if let passwordEnv {
            password = environment[passwordEnv]
            if password?.isEmpty ?? true {
                r.problem("password_env", "names $\(passwordEnv), which is not set", fix: "export \(passwordEnv) with the database user's password")
            }
        }
        do throws(PostgresSettings.URLProblem) {
            return StoreConfig(.postgres(try PostgresSettings(url: url, password: password)), takeoverSeconds: takeover)
        } catch {
            let fix = error == .passwordInURL ? "remove it from the URL and name its environment variable in [store] password_env"
                                              : "write it as \"postgres://user@host:5432/database?sslmode=prefer\""
            problems.append(ConfigProblem(key: key, message: "'\(PostgresSettings.redacted(url))' \(error)", fix: fix, line: line))
            return nil
        }
    }

    private struct GitHubSection {
        var config: GitHubConfig
        var secretEnv: String
        /// Where `secret_env` is written, if it is.
        var line: Int?
    }

    private func readGitHub(_ table: TOMLTable, problems: inout [ConfigProblem]) -> GitHubSection? {
        var r = TableReader(table, path: "github")
        defer { r.reportUnknownKeys(); problems += r.problems }
        let envName = r.string("secret_env") ?? "DEFERRED_GITHUB_SECRET"
        let secret = environment[envName] ?? ""
        var networks: [IPNetwork] = []
        for (i, text) in (r.stringArray("allowed_networks") ?? []).enumerated() {
            if let n = IPNetwork(text) { networks.append(n) } else {
                r.problem("allowed_networks[\(i)]", "'\(text)' is not a CIDR block", fix: "write it as \"192.30.252.0/22\" or \"2a0a:a440::/29\"")
            }
        }
        let token = self.secret(&r, key: "token_env")
        let apiURL = r.string("api_url") ?? "https://api.github.com"
        if !(apiURL.hasPrefix("https://") || apiURL.hasPrefix("http://")) {
            r.problem("api_url", "'\(apiURL)' is not an http(s) URL", fix: "write \"https://api.github.com\" or your server's \"https://github.example.com/api/v3\"")
        }
        return GitHubSection(config: GitHubConfig(secret: secret, allowedNetworks: networks, token: token,
                                                  apiURL: apiURL.hasSuffix("/") ? String(apiURL.dropLast()) : apiURL),
                             secretEnv: envName, line: table.line(of: "secret_env"))
    }

    /// `serversShare`: the store is a PostgreSQL database, which several servers may share.
    private func readArtifacts(_ table: TOMLTable, base: String, serversShare: Bool, problems: inout [ConfigProblem]) -> ArtifactsConfig? {
        var r = TableReader(table, path: "artifacts")
        defer { r.reportUnknownKeys(); problems += r.problems }
        let store = r.string("store") ?? "file:.deferred/artifacts"
        let shared = r.bool("shared")
        let retention = r.integer("retention_days", range: 1...36500) ?? 14
        let region = r.string("region")
        let endpoint = r.string("endpoint")
        let staging = r.string("staging")
        if store.hasPrefix("file:") {
            for (key, value) in [("region", region), ("endpoint", endpoint), ("staging", staging)] where value != nil {
                r.problem(key, "is only for s3:// stores", fix: "remove it, or make store an \"s3://bucket/prefix\"")
            }
            // Any server answers any result URL: a folder only this one sees answers 404 on the others.
            if serversShare, shared != true {
                r.problem("store", "is a folder on this server's disk, but [store] url is a PostgreSQL database that other servers may share, "
                          + "and their result URLs would not find the files this one writes",
                          fix: "use an s3:// store, or mount one folder at this path on every server and add shared = true")
            }
            return ArtifactsConfig(directory: resolve(String(store.dropFirst("file:".count)), base: base), retentionDays: retention)
        }
        guard store.hasPrefix("s3://") else {
            r.problem("store", "'\(store)' is neither file: nor s3://", fix: "write \"file:PATH\" or \"s3://bucket/prefix\"")
            return nil
        }
        if shared != nil {
            r.problem("shared", "is only for file: stores (a bucket is shared by every server that reaches it)", fix: "remove it")
        }
        let rest = store.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        let prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
        guard Self.isBucketName(bucket) else {
            r.problem("store", "'\(bucket)' is not an S3 bucket name", fix: "3 to 63 lower-case letters, digits, dots and hyphens: \"s3://my-bucket/deferred\"")
            return nil
        }
        guard let region else {
            r.problem("region", "is missing for the s3:// store", fix: "add region = \"us-east-1\" (or the bucket's region)")
            return nil
        }
        if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            r.problem("endpoint", "'\(endpoint)' is not an http(s) URL", fix: "write it as \"https://s3.example.com\"")
        }
        return ArtifactsConfig(directory: resolve(staging ?? ".deferred/staging", base: base),
                               s3: .init(bucket: bucket, prefix: prefix, region: region, endpoint: endpoint),
                               retentionDays: retention)
    }

    static func isBucketName(_ name: String) -> Bool {
        (3...63).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "." || $0 == "-") }
            && name.first.map { $0.isLetter || $0.isNumber } == true
    }

    private func readIdle(_ table: TOMLTable, problems: inout [ConfigProblem]) -> IdleConfig? {
        var r = TableReader(table, path: "idle")
        defer { r.reportUnknownKeys(); problems += r.problems }
        return IdleConfig(timeoutMinutes: r.number("timeout_minutes", minimum: 0) ?? 30,
                          checkIntervalSeconds: r.number("check_interval_seconds", minimum: 0, exclusive: true) ?? 60)
    }

    private func readScripts(_ table: TOMLTable, problems: inout [ConfigProblem]) -> ScriptLimits {
        var r = TableReader(table, path: "scripts")
        defer { r.reportUnknownKeys(); problems += r.problems }
        return ScriptLimits(ratePerMinute: r.number("rate_per_minute", minimum: 0, exclusive: true) ?? 30,
                            burst: r.integer("burst", range: 1...100_000) ?? 10,
                            maxQueued: r.integer("max_queued", range: 1...1_000_000) ?? 100)
    }

    private func readMetrics(_ table: TOMLTable, problems: inout [ConfigProblem]) -> MetricsConfig {
        var r = TableReader(table, path: "metrics")
        defer { r.reportUnknownKeys(); problems += r.problems }
        return MetricsConfig(token: secret(&r, key: "token_env"))
    }

    private func readHost(_ table: TOMLTable, index: Int, base: String, problems: inout [ConfigProblem]) -> HostConfig? {
        var r = TableReader(table, path: TableReader.label("hosts", table, index: index))
        defer { r.reportUnknownKeys(); problems += r.problems }
        let name = r.requiredString("name", fix: "give the host a name that projects can list in their hosts")
        let providerName = r.string("provider") ?? "static"
        let provider = ProviderKind(rawValue: providerName)
        if provider == nil {
            r.problem("provider", "'\(providerName)' is not a provider", fix: "use \"static\", \"ec2\", \"hetzner\", \"digitalocean\", \"command\" or \"wol\"")
        }
        var instance: CloudInstance?
        var commands: HostCommandLines?
        var wakeOnLAN: WakeOnLAN?
        var server: CloudServer?
        let address: String?
        if let provider, provider.hasServerAPI {
            server = readCloudServer(&r, provider)
            // Without an address, SSH goes to the server's public IPv4 once it runs.
            address = r.string("address") ?? ""
        } else if provider == .wol {
            wakeOnLAN = readWakeOnLAN(&r)
            address = r.requiredString("address", fix: "write the machine's LAN address, where SSH answers once it is awake")
        } else if provider == .command {
            commands = readCommands(&r, base: base)
            address = r.requiredString("address", fix: "write the host name or IP address SSH connects to once the machine is up")
        } else if provider == .ec2 {
            let id = r.requiredString("instance_id", fix: "write the EC2 instance's id, such as \"i-0123456789abcdef0\"")
            if let id, !(id.hasPrefix("i-") && id.count > 2) {
                r.problem("instance_id", "'\(id)' is not an instance id", fix: "write it as EC2 shows it, \"i-\" and hex digits")
            }
            let region = r.requiredString("region", fix: "write the instance's region, such as \"us-east-1\"")
            let endpoint = r.string("endpoint")
            if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                r.problem("endpoint", "'\(endpoint)' is not an http(s) URL", fix: "write the EC2-compatible endpoint's URL, or remove it for AWS's own")
            }
            if let id, let region { instance = CloudInstance(instanceID: id, region: region, endpoint: endpoint) }
            // Without an address, SSH goes to the instance's own once it runs.
            address = r.string("address") ?? ""
        } else {
            address = r.requiredString("address", fix: "write the host name or IP address SSH connects to")
        }
        let wakeTimeout = r.number("wake_timeout_minutes", minimum: 0, exclusive: true) ?? 10
        let port = r.integer("port", range: 1...65535) ?? 22
        let user = r.requiredString("user", fix: "write the SSH user jobs run as")
        let identity = r.string("identity").map { resolve($0, base: base) }
        if let identity, !FileManager.default.fileExists(atPath: identity) {
            r.problem("identity", "no private key at \(identity)", fix: "point it at an existing private key file, or remove it to use ssh-agent")
        }
        if identity == nil, environment["SSH_AUTH_SOCK"] == nil {
            r.problem("identity", "is not set and no ssh-agent is running (SSH_AUTH_SOCK is unset)", fix: "set identity to a private key file")
        }
        let knownHosts = resolve(r.string("known_hosts") ?? "~/.ssh/known_hosts", base: base)
        if !FileManager.default.fileExists(atPath: knownHosts) {
            r.problem("known_hosts", "no file at \(knownHosts); host keys must be checked", fix: "create it with `ssh-keyscan -p PORT HOST >> \(knownHosts)` after checking the key")
        }
        let maxJobs = r.integer("max_jobs", range: 1...1024) ?? 1
        let hostWait = r.number("host_wait_minutes", minimum: 0) ?? 30
        guard let name, let provider, let address, let user else { return nil }
        if provider == .ec2, instance == nil { return nil }
        if provider == .command, commands == nil { return nil }
        if provider == .wol, wakeOnLAN == nil { return nil }
        if provider.hasServerAPI, server == nil { return nil }
        var host = HostConfig(name: name, provider: provider, address: address, port: port, user: user,
                              identity: identity, knownHosts: knownHosts, maxJobs: maxJobs, instance: instance,
                              wakeTimeoutMinutes: wakeTimeout)
        host.hostWaitMinutes = hostWait
        host.commands = commands
        host.wakeOnLAN = wakeOnLAN
        host.server = server
        return host
    }

    /// `server_id` (Hetzner) or `droplet_id` (DigitalOcean), with the account's keys.
    private func readCloudServer(_ r: inout TableReader, _ provider: ProviderKind) -> CloudServer? {
        let id = provider == .hetzner
            ? r.requiredInteger("server_id", range: 1...Int.max, fix: "write the server's id, the number `hcloud server list` shows")
            : r.requiredInteger("droplet_id", range: 1...Int.max, fix: "write the droplet's id, the number `doctl compute droplet list` shows")
        guard let account = readCloudAccount(&r, provider), let id else { return nil }
        return CloudServer(id: String(id), account: account)
    }

    /// `token_env` and `endpoint` of a Hetzner or DigitalOcean host or fleet.
    private func readCloudAccount(_ r: inout TableReader, _ provider: ProviderKind) -> CloudAccount? {
        let cloud = provider == .hetzner ? "Hetzner Cloud" : "DigitalOcean"
        let tokenEnv = r.requiredString("token_env", fix: "name the environment variable that holds a \(cloud) API token (read & write)")
        let token = tokenEnv == nil ? nil : secret(&r, key: "token_env")
        let endpoint = r.string("endpoint")
        if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            r.problem("endpoint", "'\(endpoint)' is not an http(s) URL", fix: "write the API's URL, or remove it for \(cloud)'s own")
        }
        guard let tokenEnv, let token else { return nil }
        return CloudAccount(token: token, tokenEnv: tokenEnv, endpoint: endpoint)
    }

    /// `mac`, `broadcast`, `wol_port` and `sleep_command` of a `wol` host.
    private func readWakeOnLAN(_ r: inout TableReader) -> WakeOnLAN? {
        let text = r.requiredString("mac", fix: "write the network card's address, such as \"3c:7c:3f:1e:aa:09\" (`ip link` shows it)")
        let mac = text.flatMap(WakeOnLAN.mac(parsing:))
        if let text, mac == nil {
            r.problem("mac", "'\(text)' is not a MAC address", fix: "write six hex pairs separated by ':', such as \"3c:7c:3f:1e:aa:09\"")
        }
        let broadcast = r.string("broadcast") ?? "255.255.255.255"
        let port = r.integer("wol_port", range: 1...65535) ?? 9
        let sleep = r.string("sleep_command") ?? "systemctl suspend"
        if sleep.trimmingCharacters(in: .whitespaces).isEmpty {
            r.problem("sleep_command", "is empty", fix: "write the command that puts the machine to sleep, such as \"systemctl suspend\" or \"poweroff\"")
        }
        guard let mac else { return nil }
        return WakeOnLAN(mac: mac, broadcast: broadcast, port: port, sleepCommand: sleep)
    }

    /// `wake`, `sleep` and `status` of a `command` host: argv arrays, run without a shell. A
    /// program named by a path must be there and executable; a bare name is looked up in PATH
    /// when it runs.
    private func readCommands(_ r: inout TableReader, base: String) -> HostCommandLines? {
        func argv(_ key: String, required: Bool, example: String) -> [String]? {
            guard var line = r.stringArray(key) else {
                if required, !r.has(key) { r.problem(key, "is missing", fix: "write the command as an array, such as \(example)") }
                return nil
            }
            guard let program = line.first, !program.isEmpty else {
                r.problem(key, "is empty", fix: "write the program and its arguments, such as \(example)")
                return nil
            }
            if program.contains("/") {
                line[0] = resolve(program, base: base)
                if !FileManager.default.isExecutableFile(atPath: line[0]) {
                    r.problem(key, "no executable program at \(line[0])", fix: "point it at an executable, or name a program in PATH")
                }
            }
            return line
        }
        let wake = argv("wake", required: true, example: "[\"virsh\", \"start\", \"builder\"]")
        let sleep = argv("sleep", required: true, example: "[\"virsh\", \"shutdown\", \"builder\"]")
        let status = argv("status", required: false, example: "[\"/usr/local/bin/builder-state\"]")
        guard let wake, let sleep else { return nil }
        return HostCommandLines(wake: wake, sleep: sleep, status: status)
    }

    private func readProject(_ table: TOMLTable, index: Int, base: String, defaultMaxQueued: Int,
                             problems: inout [ConfigProblem]) -> ProjectConfig? {
        var r = TableReader(table, path: TableReader.label("projects", table, index: index))
        defer {
            r.reportUnknownKeys()
            problems += r.problems
        }
        let name = r.requiredString("name", fix: "name the project; it appears in URLs and results.json")
        if let name, !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
            r.problem("name", "'\(name)' has characters other than letters, digits, '.', '_' and '-'", fix: "rename it with only those")
        }
        let repository = r.requiredString("repository", fix: "write the GitHub repository as \"owner/name\"")
        if let repository, repository.split(separator: "/").count != 2 {
            r.problem("repository", "'\(repository)' is not owner/name", fix: "write it as GitHub's full_name, such as \"octo-org/resume\"")
        }
        let branches = r.stringArray("branches") ?? []
        for (i, pattern) in branches.enumerated() {
            guard let problem = BranchGlob(pattern).problem else { continue }
            r.problem("branches[\(i)]", pattern.isEmpty ? problem : "'\(pattern)' \(problem)",
                      fix: "write a branch name or glob such as \"release/*\" or \"release/[0-9]*\"")
        }
        let command = r.string("command")
        if let command, command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            r.problem("command", "is empty", fix: "write the command to run, or remove the key to use the commit's .deferred_server file")
        }
        let cloneURL = r.string("clone_url")
        if let cloneURL, !CloneURL.isAllowed(cloneURL) {
            r.problem("clone_url", "'\(cloneURL)' is not a URL git can fetch safely", fix: "use https://, ssh://, git@host:path, file:// or an absolute path")
        }
        let hosts = r.stringArray("hosts") ?? []
        if table["hosts"] == nil || hosts.isEmpty {
            r.problem("hosts", "lists no host", fix: "list the names of the [[hosts]] this project runs on")
        }
        let timeout = r.number("timeout_minutes", minimum: 0, exclusive: true) ?? 20
        let allowedSigners = readAllowedSigners(&r, base: base)
        let scriptSecret = secret(&r, key: "script_secret_env")
        let interpreters = r.stringArray("interpreters") ?? ["/bin/sh"]
        for (i, interpreter) in interpreters.enumerated() where !Interpreter.isWellFormed(interpreter) {
            r.problem("interpreters[\(i)]", "'\(interpreter)' is not a program path or name",
                      fix: "write an absolute path such as \"/bin/sh\" or a name found in PATH such as \"python3\"")
        }
        let origins = r.stringArray("allowed_origins") ?? []
        for (i, origin) in origins.enumerated() where !Self.isOrigin(origin) {
            r.problem("allowed_origins[\(i)]", "'\(origin)' is not an origin", fix: "write scheme, host and port only, such as \"https://example.com\"")
        }
        let maxScript = r.integer("max_script_bytes", range: 1...(16 << 20)) ?? (1 << 20)
        let maxArtifactBytes = r.integer("max_artifact_bytes", range: 0...(1 << 44)) ?? (1 << 30)
        let maxArtifactFiles = r.integer("max_artifact_files", range: 0...10_000_000) ?? 10_000
        let maxQueued = r.integer("max_queued", range: 1...1_000_000) ?? defaultMaxQueued
        let maxOutputBytes = r.integer("max_output_bytes", range: 1024...(1 << 44)) ?? (64 << 20)
        let notifyURL = r.string("notify_url")
        if let notifyURL, !(notifyURL.hasPrefix("https://") || notifyURL.hasPrefix("http://")) {
            r.problem("notify_url", "'\(notifyURL)' is not an http(s) URL", fix: "write it as \"https://example.com/deferred-hook\"")
        }
        let notifySecret = secret(&r, key: "notify_secret_env")
        if notifyURL != nil, notifySecret == nil, table["notify_secret_env"] == nil {
            r.problem("notify_secret_env", "is missing: notify_url posts must be signed", fix: "name the environment variable that holds the secret the receiver checks")
        }
        let statusContext = r.string("status_context")
        guard let name, let repository else { return nil }
        return ProjectConfig(name: name, repository: repository, branches: branches, command: command,
                             cloneURL: cloneURL, hosts: hosts, timeoutMinutes: timeout, allowedSigners: allowedSigners,
                             scriptSecret: scriptSecret, interpreters: interpreters, allowedOrigins: origins,
                             maxScriptBytes: maxScript, maxArtifactBytes: Int64(maxArtifactBytes),
                             maxArtifactFiles: maxArtifactFiles, maxQueued: maxQueued, maxOutputBytes: Int64(maxOutputBytes),
                             notifyURL: notifyURL, notifySecret: notifySecret,
                             statusContext: statusContext)
    }

    private func readAllowedSigners(_ r: inout TableReader, base: String) -> AllowedSigners? {
        guard let relative = r.string("allowed_signers") else { return nil }
        let path = resolve(relative, base: base)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            r.problem("allowed_signers", "cannot read \(path)", fix: "create it in ssh-keygen's allowed_signers format: `PRINCIPAL KEYTYPE KEY` a line")
            return nil
        }
        do {
            return try AllowedSigners(text: text)
        } catch {
            for line in error.problems {
                r.problem("allowed_signers", "\(path) \(line)", fix: "correct or remove that line")
            }
            return nil
        }
    }

    /// `scheme://host[:port]`, nothing after; or `*` for every origin.
    private static func isOrigin(_ text: String) -> Bool {
        if text == "*" { return true }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme),
              url.host != nil, url.path.isEmpty, url.query == nil, url.fragment == nil else { return false }
        return !text.hasSuffix("/")
    }

    private func readFleet(_ table: TOMLTable, index: Int, base: String, problems: inout [ConfigProblem]) -> FleetConfig? {
        var r = TableReader(table, path: TableReader.label("fleets", table, index: index))
        defer { r.reportUnknownKeys(); problems += r.problems }
        let name = r.requiredString("name", fix: "give the fleet a name that projects can list in their hosts")
        let providerName = r.string("provider") ?? "ec2"
        let provider = ProviderKind(rawValue: providerName).flatMap { $0 == .ec2 || $0.hasServerAPI ? $0 : nil }
        if provider == nil {
            r.problem("provider", "'\(providerName)' cannot make hosts", fix: "use \"ec2\", \"hetzner\" or \"digitalocean\"")
        }
        let machine = provider.flatMap { _ in readFleetMachine(&r, provider!) }
        let maxHosts = r.integer("max_hosts", range: 1...1000) ?? 1
        let whenIdleText = r.string("when_idle") ?? (provider == .ec2 ? "stop" : "delete")
        let whenIdle = FleetConfig.WhenIdle(text: whenIdleText)
        if whenIdle == nil {
            r.problem("when_idle", "'\(whenIdleText)' is neither stop nor \(provider == .ec2 ? "terminate" : "delete")",
                      fix: provider == .ec2 ? "write \"stop\" or \"terminate\"" : "write \"stop\" (the server is billed while off) or \"delete\"")
        }
        let bootstrap = resolve(r.string("bootstrap") ?? "bootstrap/host.sh", base: base)
        if !FileManager.default.fileExists(atPath: bootstrap) {
            r.problem("bootstrap", "no script at \(bootstrap)", fix: "point it at the fleet's set-up script, such as bootstrap/host.sh from deferred's repository")
        }
        let userData = r.string("user_data").map { resolve($0, base: base) }
        var userDataText: String?
        if let userData {
            userDataText = try? String(contentsOfFile: userData, encoding: .utf8)
            if userDataText == nil { r.problem("user_data", "cannot read \(userData)", fix: "point it at a cloud-init file, such as bootstrap/cloud-init.yaml") }
        }
        let user = r.requiredString("user", fix: "write the SSH user of the image, such as \"ubuntu\"")
        let identity = r.string("identity").map { resolve($0, base: base) }
        if let identity, !FileManager.default.fileExists(atPath: identity) {
            r.problem("identity", "no private key at \(identity)", fix: "point it at an existing private key file, or remove it to use ssh-agent")
        }
        let knownHosts = resolve(r.string("known_hosts") ?? "~/.ssh/known_hosts", base: base)
        let address = r.string("address")
        let port = r.integer("port", range: 1...65535) ?? 22, maxJobs = r.integer("max_jobs", range: 1...1024) ?? 1
        let bootTimeout = r.number("boot_timeout_minutes", minimum: 0, exclusive: true) ?? 10
        guard let name, let provider, let machine, let user, let whenIdle else { return nil }
        if let account = machine.account {
            return FleetConfig(name: name, provider: provider, account: account, region: machine.region, image: machine.image,
                               serverType: machine.type, sshKeys: machine.sshKeys, maxHosts: maxHosts, whenIdle: whenIdle,
                               bootstrap: bootstrap, userData: userDataText, address: address, port: port, user: user,
                               identity: identity, knownHosts: knownHosts, maxJobs: maxJobs, bootTimeoutMinutes: bootTimeout)
        }
        return FleetConfig(name: name, region: machine.region, endpoint: machine.endpoint, imageID: machine.image, instanceType: machine.type,
                           spot: machine.spot, maxHosts: maxHosts, whenIdle: whenIdle, bootstrap: bootstrap, userData: userDataText,
                           keyName: machine.keyName, subnetID: machine.subnetID, securityGroupIDs: machine.securityGroupIDs,
                           address: address, port: port, user: user, identity: identity, knownHosts: knownHosts, maxJobs: maxJobs,
                           bootTimeoutMinutes: bootTimeout)
    }

    /// What a fleet's new machine is made of, in its cloud's keys.
    private struct FleetMachine {
        var region: String
        var endpoint: String?
        var image: String
        var type: String
        var spot = false
        var keyName: String?
        var subnetID: String?
        var securityGroupIDs: [String] = []
        var account: CloudAccount?
        var sshKeys: [String] = []
    }

    private func readFleetMachine(_ r: inout TableReader, _ provider: ProviderKind) -> FleetMachine? {
        switch provider {
        case .hetzner, .digitalocean:
            let account = readCloudAccount(&r, provider)
            let image = provider == .hetzner
                ? r.requiredString("image", fix: "write the image or snapshot to make servers from, such as \"debian-12\" or a snapshot's id")
                : r.requiredString("image", fix: "write the snapshot's id, or an image slug such as \"debian-12-x64\"")
            let type = provider == .hetzner
                ? r.requiredString("server_type", fix: "write the server type, such as \"cx22\"")
                : r.requiredString("size", fix: "write the droplet size, such as \"s-2vcpu-4gb\"")
            let region = provider == .hetzner
                ? r.string("location") ?? ""
                : r.requiredString("region", fix: "write the region to make droplets in, such as \"fra1\"")
            let sshKeys = r.stringArray("ssh_keys") ?? []
            guard let account, let image, let type, let region else { return nil }
            return FleetMachine(region: region, endpoint: account.endpoint, image: image, type: type, account: account, sshKeys: sshKeys)
        default:
            let region = r.requiredString("region", fix: "write the region to launch in, such as \"us-east-1\"")
            let endpoint = r.string("endpoint")
            if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                r.problem("endpoint", "'\(endpoint)' is not an http(s) URL", fix: "write the EC2-compatible endpoint's URL, or remove it for AWS's own")
            }
            let image = r.requiredString("image_id", fix: "write the AMI to launch, such as \"ami-0123456789abcdef0\"")
            let type = r.requiredString("instance_type", fix: "write the instance type, such as \"c7i.large\"")
            let spot = r.bool("spot") ?? false
            let keyName = r.string("key_name"), subnet = r.string("subnet_id")
            let groups = r.stringArray("security_group_ids") ?? []
            guard let region, let image, let type else { return nil }
            return FleetMachine(region: region, endpoint: endpoint, image: image, type: type, spot: spot, keyName: keyName,
                                subnetID: subnet, securityGroupIDs: groups)
        }
    }

    /// The tables the entries came from, for the lines of what is wrong between them.
    typealias SourceTables = (hosts: [TOMLTable], fleets: [TOMLTable], projects: [TOMLTable], github: Int?)

    private func crossCheck(hosts: [HostConfig], fleets: [FleetConfig], projects: [ProjectConfig], github: GitHubSection?,
                            tables: SourceTables) -> [ConfigProblem] {
        /// The line of the last table in `array` named `name` (a name used again is wrong there).
        func line(_ array: [TOMLTable], _ name: String, key: String = "name") -> Int? {
            array.last { if case .string(name)? = $0["name"] { true } else { false } }?.line(of: key)
        }
        var problems: [ConfigProblem] = []
        for (name, count) in Dictionary(grouping: hosts, by: \.name).mapValues(\.count) where count > 1 {
            problems.append(ConfigProblem(key: "hosts[\"\(name)\"]", message: "the name '\(name)' is used \(count) times",
                                          fix: "give every host its own name", line: line(tables.hosts, name)))
        }
        for (name, count) in Dictionary(grouping: projects, by: \.name).mapValues(\.count) where count > 1 {
            problems.append(ConfigProblem(key: "projects[\"\(name)\"]", message: "the name '\(name)' is used \(count) times",
                                          fix: "give every project its own name", line: line(tables.projects, name)))
        }
        for name in Set(hosts.map(\.name)).intersection(fleets.map(\.name)) {
            problems.append(ConfigProblem(key: "fleets[\"\(name)\"]", message: "'\(name)' names both a host and a fleet",
                                          fix: "give the fleet its own name", line: line(tables.fleets, name)))
        }
        let hostNames = Set(hosts.map(\.name)).union(fleets.map(\.name))
        for project in projects {
            for host in project.hosts where !hostNames.contains(host) {
                problems.append(ConfigProblem(key: "projects[\"\(project.name)\"].hosts", message: "no host is named '\(host)'",
                                              fix: "list one of: \(hostNames.sorted().joined(separator: ", "))",
                                              line: line(tables.projects, project.name, key: "hosts")))
            }
        }
        if let github, !projects.isEmpty, github.config.secret.isEmpty {
            problems.append(ConfigProblem(key: "github.secret_env", message: "the environment variable \(github.secretEnv) is not set, so no push could be verified",
                                          fix: "export \(github.secretEnv) with the webhook's secret before starting deferred", line: github.line ?? tables.github))
        }
        return problems
    }

    // MARK: Helpers

    private func secret(_ r: inout TableReader, key: String) -> String? {
        guard let envName = r.string(key) else { return nil }
        guard let value = environment[envName], !value.isEmpty else {
            r.problem(key, "names \(envName), which is not set", fix: "export \(envName) before starting deferred, or remove the key")
            return nil
        }
        return value
    }

    /// `~` is the home folder; a relative path is taken from the config file's folder.
    func resolve(_ path: String, base: String) -> String {
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return homeDirectory + path.dropFirst(1) }
        if path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
    }
}
