import ArgumentParser
import DeferredClient
import DeferredCloud
import DeferredConfigFile
import DeferredCore
import DeferredDemo
import Foundation

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A tour on one machine: a throwaway SSH build host, a sample repository, a signed push and a signed script run on it."
    )

    @Option(help: "Where to serve.") var listen = "127.0.0.1:8080"

    func run() async throws {
        let folder = NSTemporaryDirectory() + "deferred-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        say("starting a throwaway sshd on loopback as the build host…")
        let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd")
        defer { sshd.stop() }
        say("  sshd on 127.0.0.1:\(sshd.port), user \(sshd.user), host key \(sshd.hostPublicKey.prefix(40))…")

        let repository = try await SampleRepository.create(at: folder + "/sample-project")
        let commit = try await repository.commit([
            ".deferred_server": "./script/deferred\n",
            "script/deferred": """
            #!/bin/sh
            echo "Hello from deferred: commit $DEFERRED_COMMIT of $DEFERRED_REF, job $DEFERRED_JOB_ID"
            echo "running on $(uname -sr) as $(id -un)"
            printf '{"lines": %s}\\n' "$(wc -l < script/deferred)" > "$DEFERRED_ARTIFACTS/result.json"

            """,
        ])
        say("sample repository \(repository.path) at commit \(commit)")

        // A signer for scripts: its public key goes into the project's allowed_signers.
        let signerKey = folder + "/signer_ed25519"
        let signerPublic = try await LocalKey.makeEd25519(at: signerKey, comment: "demo@deferred")
        try "demo@deferred \(signerPublic)\n".write(toFile: folder + "/allowed_signers", atomically: true, encoding: .utf8)

        let secret = Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        let adminToken = Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        let toml = """
        [server]
        listen = "\(listen)"
        admin_token_env = "DEFERRED_DEMO_ADMIN_TOKEN"

        [store]
        url = "sqlite:state.sqlite"

        [github]
        secret_env = "DEFERRED_DEMO_SECRET"

        [artifacts]
        store = "file:artifacts"

        \(sshd.hostTable(name: "loopback"))

        [[projects]]
        name = "sample"
        repository = "deferred-demo/sample"
        branches = ["main"]
        clone_url = "\(repository.path)"
        hosts = ["loopback"]
        timeout_minutes = 5
        allowed_signers = "allowed_signers"
        interpreters = ["/bin/sh", "python3"]
        allowed_origins = ["*"]

        """
        try toml.write(toFile: folder + "/deferred.toml", atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["DEFERRED_DEMO_SECRET"] = secret
        environment["DEFERRED_DEMO_ADMIN_TOKEN"] = adminToken
        let config: DeferredConfig
        do {
            config = try ConfigLoader(environment: environment).load(path: folder + "/deferred.toml")
        } catch {
            throw ValidationError("the demo's own config is wrong: \(error)")
        }
        say("configuration: \(folder)/deferred.toml")

        let payload = repository.pushPayload(repository: "deferred-demo/sample", ref: "refs/heads/main", commit: commit)
        let base = config.server.publicURL
        let tour = Tour(base: base, client: HTTPClient())
        try await Server.run(config: config, logger: LogOptions.bootstrap(format: .text, level: .warning)) {
            do {
                try await tour.waitForHealth()
                try await tour.push(payload, secret: secret)
                try await tour.script(signedWith: signerKey)
            } catch {
                say("the demo failed: \(error)")
            }
            say("\ndashboard: \(base)/ (sign in with the admin token \(adminToken))")
            say("still serving on \(base); press Ctrl-C to stop (the throwaway sshd and its files go with it)")
            say("try: swift run deferred submit script.sh --server \(base) --project sample --key \(signerKey) --wait")
        }
        say("stopped; removed \(folder)")
    }
}

/// What the demo does once the server is up: a push as GitHub sends it, then a signed
/// script as a page or `deferred submit` posts it, each followed to its results.json.
struct Tour {
    let base: String
    let client: HTTPClient

    static let sampleScript = """
        #!/bin/sh
        echo "Hello from a signed script, job $DEFERRED_JOB_ID"
        printf '{"sum": %d}\\n' $((40 + 2)) > "$DEFERRED_ARTIFACTS/result.json"

        """

    func push(_ payload: Data, secret: String) async throws {
        say("\nPOST \(base)/hooks/github (a signed push of refs/heads/main)")
        let response = try await client.send(HTTPClientRequest(method: "POST", url: base + "/hooks/github", headers: [
            (name: "Content-Type", value: "application/json"), (name: "X-GitHub-Event", value: "push"),
            (name: "X-GitHub-Delivery", value: UUID().uuidString.lowercased()),
            (name: "X-Hub-Signature-256", value: WebhookSignature.sign(body: payload, secret: secret)),
        ], body: payload))
        try await follow(response)
    }

    func script(signedWith key: String) async throws {
        say("\nPOST \(base)/projects/sample/scripts (a script signed by demo@deferred, as `deferred submit` posts it)")
        let signature = try ScriptSubmission.sign(Self.sampleScript, key: key)
        let accepted = try await ScriptSubmission(server: base, project: "sample").post(Self.sampleScript, signature: signature.armored, client: client)
        say("  → 202, job \(accepted.id)")
        try await show(accepted.resultURL)
    }

    /// Prints the answer, then follows its result URL.
    private func follow(_ response: HTTPClientResponse) async throws {
        say("  → \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        guard response.status == 202, let answer = try JSONSerialization.jsonObject(with: response.body) as? [String: Any],
              let resultURL = answer["result_url"] as? String else {
            throw ValidationError("the server did not accept it")
        }
        try await show(resultURL)
    }

    /// Polls the result URL, telling each state, and prints results.json.
    private func show(_ resultURL: String) async throws {
        say("result URL: \(resultURL)")
        let results = try await ResultFollower(giveUpAfter: .seconds(120)).follow(resultURL) { say("  … \(ResultFollower.describe($0))") }
        let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        say("results.json:\n" + String(decoding: data, as: UTF8.self))
    }

    func waitForHealth() async throws {
        for _ in 0..<100 {
            if let response = try? await client.send(HTTPClientRequest(url: base + "/healthz")), response.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the server did not answer on \(base)/healthz; is the port taken?")
    }
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
