import ArgumentParser
import Foundation

/// `deferred init`: a first deferred.toml, every key commented, that `check-config` accepts once
/// the host answers and the webhook secret's variable is set.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Writes a commented deferred.toml to start from: one build host over SSH, one project.",
        discussion: "Then: export DEFERRED_GITHUB_SECRET, run `deferred check-config --probe`, and `deferred serve`."
    )

    @Option(help: "Where to write it; an existing file is left alone.") var output = "deferred.toml"
    @Option(help: "The build host as user@address[:port].") var host = "deferred@build.example.com:22"
    @Option(help: "The private key SSH logs in with (absent: ssh-agent).") var identity: String?
    @Option(help: "The known_hosts file that holds the build host's key.") var knownHosts = "~/.ssh/known_hosts"
    @Option(help: "The GitHub repository whose pushes run, as owner/name.") var repository = "octo-org/website"
    @Option(help: "The URL this server is reached at (the base of result URLs).") var publicURL = "http://127.0.0.1:8080"

    func run() throws {
        guard !FileManager.default.fileExists(atPath: output) else {
            throw refuse("\(output) exists; it is left as it is (pass --output to write elsewhere)")
        }
        let at = host.split(separator: "@", maxSplits: 1)
        guard at.count == 2, !at[0].isEmpty, !at[1].isEmpty else { throw refuse("--host '\(host)' is not user@address[:port]") }
        var address = String(at[1]), port = 22
        if let colon = address.lastIndex(of: ":"), let number = Int(address[address.index(after: colon)...]), (1...65535).contains(number) {
            port = number
            address = String(address[..<colon])
        }
        guard repository.split(separator: "/").count == 2 else { throw refuse("--repository '\(repository)' is not owner/name") }
        let name = String(repository.split(separator: "/")[1]).filter { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        let text = Self.template(user: String(at[0]), address: address, port: port, identity: identity, knownHosts: knownHosts,
                                 repository: repository, project: name.isEmpty ? "project" : name, publicURL: publicURL)
        do {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } catch {
            throw refuse("cannot write \(output): \(error.localizedDescription)")
        }
        print("wrote \(output); next: export DEFERRED_GITHUB_SECRET=<the webhook's secret>, then deferred check-config --probe --config \(output)")
    }

    /// TOML strings here are the options' text, quoted as TOML basic strings.
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func template(user: String, address: String, port: Int, identity: String?, knownHosts: String, repository: String,
                         project: String, publicURL: String) -> String {
        """
        # deferred.toml: what deferred serves and where its jobs run. README's "deferred.toml" lists
        # every key. Secrets never live here: each *_env key names an environment variable.
        # Check it with `deferred check-config --probe`.

        [server]
        listen = "127.0.0.1:8080"                      # put a TLS proxy in front for the internet
        public_url = \(quoted(publicURL))     # the base of every result URL
        # admin_token_env = "DEFERRED_ADMIN_TOKEN"     # turns on the dashboard and the JSON API

        [store]
        url = "sqlite:.deferred/state.sqlite"          # one server; several share "postgres://user@host:5432/db"

        [github]
        secret_env = "DEFERRED_GITHUB_SECRET"          # the webhook's secret, as set on GitHub
        # token_env = "DEFERRED_GITHUB_TOKEN"          # post commit statuses with this token

        [artifacts]
        store = "file:.deferred/artifacts"             # or "s3://bucket/prefix" with region = "…"
        retention_days = 14

        [idle]
        timeout_minutes = 30                           # cloud hosts sleep after this long without a job

        [[hosts]]
        name = "builder"
        provider = "static"                            # always on; "ec2", "hetzner", "digitalocean", "wol" or "command" for a machine deferred wakes and puts to sleep (README)
        address = \(quoted(address))
        port = \(port)
        user = \(quoted(user))
        \(identity.map { "identity = \(quoted($0))" } ?? "# identity = \"~/.ssh/deferred_ed25519\"  # absent: ssh-agent")
        known_hosts = \(quoted(knownHosts))   # the host's key must be in it
        max_jobs = 1

        [[projects]]
        name = \(quoted(project))
        repository = \(quoted(repository))            # the repository whose push webhook posts to /hooks/github
        branches = ["main"]                            # globs: "release/*", "**", "!wip/*"
        # command = "./script/deferred"                # unset: the .deferred_server file of the pushed commit
        hosts = ["builder"]
        timeout_minutes = 20

        """
    }
}
