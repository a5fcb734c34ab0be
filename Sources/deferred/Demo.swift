import ArgumentParser
import DeferredCore
import DeferredDemo
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A tour on one machine: a throwaway SSH build host, a sample repository, and a signed push run on it."
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

        let repository = try SampleRepository.create(at: folder + "/sample-project")
        let commit = try repository.commit([
            ".deferred_server": "./script/deferred\n",
            "script/deferred": """
            #!/bin/sh
            echo "Hello from deferred: commit $DEFERRED_COMMIT of $DEFERRED_REF, job $DEFERRED_JOB_ID"
            echo "running on $(uname -sr) as $(id -un)"
            printf '{"lines": %s}\\n' "$(wc -l < script/deferred)" > "$DEFERRED_ARTIFACTS/result.json"

            """,
        ])
        say("sample repository \(repository.path) at commit \(commit)")

        let secret = Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        let toml = """
        [server]
        listen = "\(listen)"
        state = "sqlite:state.sqlite"

        [github]
        secret_env = "DEFERRED_DEMO_SECRET"

        [artifacts]
        store = "file:artifacts"

        [[hosts]]
        name = "loopback"
        address = "127.0.0.1"
        port = \(sshd.port)
        user = "\(sshd.user)"
        identity = "\(sshd.clientKey)"
        known_hosts = "\(sshd.knownHosts)"

        [[projects]]
        name = "sample"
        repository = "deferred-demo/sample"
        branches = ["main"]
        clone_url = "\(repository.path)"
        hosts = ["loopback"]
        timeout_minutes = 5

        """
        try toml.write(toFile: folder + "/deferred.toml", atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["DEFERRED_DEMO_SECRET"] = secret
        let config: DeferredConfig
        do {
            config = try ConfigLoader(environment: environment).load(path: folder + "/deferred.toml")
        } catch {
            throw ValidationError("the demo's own config is wrong: \(error)")
        }
        say("configuration: \(folder)/deferred.toml")

        let payload = repository.pushPayload(repository: "deferred-demo/sample", ref: "refs/heads/main", commit: commit)
        let base = config.server.publicURL
        try await Server.run(config: config, logger: Server.logger(level: .warning)) {
            do {
                try await Self.tour(base: base, payload: payload, secret: secret)
            } catch {
                say("the demo push failed: \(error)")
            }
            say("\nstill serving on \(base); press Ctrl-C to stop (the throwaway sshd and its files go with it)")
        }
        say("stopped; removed \(folder)")
    }

    /// Posts the push as GitHub would, then polls its result URL and prints results.json.
    static func tour(base: String, payload: Data, secret: String) async throws {
        try await waitForHealth(base)
        var request = URLRequest(url: URL(string: base + "/hooks/github")!)
        request.httpMethod = "POST"
        request.httpBody = payload
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("push", forHTTPHeaderField: "X-GitHub-Event")
        request.setValue(UUID().uuidString.lowercased(), forHTTPHeaderField: "X-GitHub-Delivery")
        request.setValue(WebhookSignature.sign(body: payload, secret: secret), forHTTPHeaderField: "X-Hub-Signature-256")
        say("\nPOST \(base)/hooks/github (a signed push of refs/heads/main)")
        let (body, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        say("  → \(status) \(String(decoding: body, as: UTF8.self))")
        guard status == 202, let answer = try JSONSerialization.jsonObject(with: body) as? [String: Any],
              let resultURL = answer["result_url"] as? String, let url = URL(string: resultURL) else {
            throw ValidationError("the server did not accept the push")
        }
        say("\nresult URL: \(resultURL)")
        var lastStatus = ""
        for _ in 0..<600 {
            let (data, response) = try await URLSession.shared.data(from: url)
            let code = (response as? HTTPURLResponse)?.statusCode ?? 0
            if code == 200 {
                say("\nresults.json:\n" + String(decoding: data, as: UTF8.self))
                return
            }
            let state = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["status"] as? String ?? "?"
            if state != lastStatus { say("  … \(state)"); lastStatus = state }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ValidationError("no results.json after two minutes")
    }

    static func waitForHealth(_ base: String) async throws {
        let url = URL(string: base + "/healthz")!
        for _ in 0..<100 {
            if let (_, response) = try? await URLSession.shared.data(from: url), (response as? HTTPURLResponse)?.statusCode == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the server did not answer on \(base)/healthz; is the port taken?")
    }
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
