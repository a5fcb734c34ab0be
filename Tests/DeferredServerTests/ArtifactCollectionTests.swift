import Crypto
import DeferredCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Artifacts come back from a real sshd as one tar stream, are checked entry by entry, and
/// are served at the job's result URL with the whole output log beside them.
@Suite struct ArtifactCollectionTests {
    static func path(_ url: String) -> String { String(url.dropFirst("http://deferred.test".count)) }

    /// Runs `script` as a script job signed with `key` and returns its results.json.
    static func run(_ script: String, key: String, on harness: ServerHarness, _ client: any TestClientProtocol) async throws -> [String: Any] {
        let response = try await ServerHarness.postScript(client, ["script": script, "signature": try await harness.sign(script, key: key)])
        #expect(response.status == .accepted)
        return try await ServerHarness.results(client, resultURL: try #require(ServerHarness.json(response)["result_url"] as? String))
    }

    /// Every path under `folder`, with whether it is a link.
    static func tree(_ folder: String) -> [String: Bool] {
        var found: [String: Bool] = [:]
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return found }
        while let path = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: folder + "/" + path)
            found[path] = attributes?[.type] as? FileAttributeType == .typeSymbolicLink
        }
        return found
    }

    @Test func artifactsAreKeptHashedTypedAndServedAndLinksAndFifosAreRefused() async throws {
        let harness = try await ServerHarness()
        let script = #"""
            #!/bin/sh
            set -e
            a="$DEFERRED_ARTIFACTS"
            mkdir -p "$a/reports/deep" "$a/empty folder"
            printf 'hello' > "$a/report.txt"
            head -c 300000 /dev/urandom > "$a/reports/deep/blob.bin"
            printf 'a b' > "$a/reports/name with space#1.txt"
            ln -s /etc/passwd "$a/passwd"
            mkfifo "$a/pipe"
            i=0
            while [ $i -lt 3000 ]; do echo "line $i of the output, long enough that all of it passes sixty-four KiB"; i=$((i+1)); done
            echo finished >&2
            exit 3

            """#
        let key = try await harness.addSigner("ci", principal: "ci@example.com")
        try await harness.serve { client in
            let results = try await Self.run(script, key: key, on: harness, client)
            // The job's own exit decides its status, whatever its artifacts.
            #expect(results["status"] as? String == "failed")
            #expect(results["exit_status"] as? Int == 3)
            let artifacts = try #require(results["artifacts"] as? [[String: Any]])
            let byPath = Dictionary(uniqueKeysWithValues: artifacts.compactMap { a in (a["path"] as? String).map { ($0, a) } })
            #expect(Set(byPath.keys) == ["report.txt", "reports/deep/blob.bin", "reports/name with space#1.txt"])
            let refused = try #require(results["artifacts_refused"] as? [[String: String]])
            #expect(refused.contains(["path": "passwd", "reason": "links are not collected"]))
            #expect(refused.contains { $0["path"] == "pipe" && $0["reason"]?.contains("special files") == true })

            // Each artifact is served byte for byte at its URL, with its type, size and hash.
            for (path, artifact) in byPath {
                let url = try #require(artifact["url"] as? String)
                let response = try await client.execute(uri: Self.path(url), method: .get)
                #expect(response.status == .ok, "\(path)")
                let body = Data(buffer: response.body)
                #expect(body.count == artifact["bytes"] as? Int)
                #expect(Hex.encode(SHA256.hash(data: body)) == artifact["sha256"] as? String)
                #expect(response.headers[.contentType] == artifact["content_type"] as? String)
            }
            #expect(byPath["report.txt"]?["content_type"] as? String == "text/plain; charset=utf-8")
            #expect(byPath["reports/deep/blob.bin"]?["bytes"] as? Int == 300_000)

            // results.json keeps the tail; output.log keeps everything, stdout and stderr.
            #expect(results["output_truncated"] as? Bool == true)
            #expect((results["stdout"] as? String)?.contains("line 0 of") == false)
            let logURL = try #require(results["output_log"] as? String)
            let log = try await client.execute(uri: Self.path(logURL), method: .get)
            #expect(log.status == .ok)
            let text = String(buffer: log.body)
            // (The host user's shell start-up may add lines of its own.)
            let first = try #require(text.range(of: "line 0 of the output"))
            let last = try #require(text.range(of: "line 2999 of the output"))
            #expect(first.lowerBound < last.lowerBound)
            #expect(text.components(separatedBy: "of the output").count == 3001)
            // stdout and stderr are two streams: their order between each other is not kept.
            #expect(text.contains("finished\n"))

            // Paths that are not stored artifacts, or climb out, name nothing.
            let base = Self.path(logURL).replacingOccurrences(of: "/output.log", with: "")
            for bad in ["/artifacts/passwd", "/artifacts/%2E%2E/results.json", "/artifacts/reports/..%2F..%2Fresults.json",
                        "/artifacts/reports", "/artifacts/"] {
                let response = try await client.execute(uri: base + bad, method: .get)
                #expect(response.status == .notFound, "\(bad)")
                #expect(ServerHarness.json(response)["error"] != nil, "\(bad)")
            }
        }
        // On disk: only what was kept, no link anywhere, nothing beside the job's folder.
        let jobs = try FileManager.default.contentsOfDirectory(atPath: harness.config.artifacts.directory)
        #expect(jobs.count == 1)
        let tree = Self.tree(harness.config.artifacts.directory + "/" + jobs[0])
        #expect(!tree.values.contains(true))
        #expect(Set(tree.keys) == ["results.json", "output.log", "artifacts", "artifacts/report.txt", "artifacts/reports",
                                   "artifacts/reports/deep", "artifacts/reports/deep/blob.bin", "artifacts/empty folder",
                                   "artifacts/reports/name with space#1.txt"])
    }

    @Test func theProjectsLimitsRefuseWhatIsPastThemAndATarBombIsCutOff() async throws {
        let harness = try await ServerHarness()
        harness.config.projects[0].maxArtifactFiles = 3
        harness.config.projects[0].maxArtifactBytes = 100_000
        let many = #"""
            #!/bin/sh
            i=0
            while [ $i -lt 10 ]; do printf 'small %s' $i > "$DEFERRED_ARTIFACTS/small-$i.txt"; i=$((i+1)); done
            head -c 200000 /dev/zero > "$DEFERRED_ARTIFACTS/big.bin"

            """#
        // 2 GiB of nothing, sparse on the host, a full 2 GiB stream through tar.
        let bomb = #"""
            #!/bin/sh
            truncate -s 2G "$DEFERRED_ARTIFACTS/bomb.bin"

            """#
        let key = try await harness.addSigner("ci", principal: "ci@example.com")
        try await harness.serve { client in
            let results = try await Self.run(many, key: key, on: harness, client)
            #expect(results["status"] as? String == "succeeded")
            let kept = try #require(results["artifacts"] as? [[String: Any]])
            #expect(kept.count == 3)
            #expect(kept.allSatisfy { ($0["path"] as? String)?.hasPrefix("small-") == true })
            let refused = try #require(results["artifacts_refused"] as? [[String: String]])
            // Which entry meets which limit first follows the host's directory order.
            #expect(refused.count == 8)
            #expect(refused.allSatisfy { $0["reason"]?.hasPrefix("past the limit of") == true })
            #expect(refused.filter { $0["reason"] == "past the limit of 3 files" }.count >= 7)

            let bombed = try await Self.run(bomb, key: key, on: harness, client)
            #expect(bombed["status"] as? String == "succeeded")
            #expect((bombed["artifacts"] as? [Any])?.isEmpty == true)
            let reasons = (bombed["artifacts_refused"] as? [[String: String]] ?? []).compactMap { $0["reason"] }
            #expect(reasons.contains("past the limit of 100000 bytes in all"))
            #expect(reasons.contains { $0.contains("ran on far past the limits") })
        }
        // Nothing larger than the limit was written anywhere in the store.
        var total = 0
        let root = harness.config.artifacts.directory
        for path in FileManager.default.subpaths(atPath: root) ?? [] where path.contains("/artifacts/") {
            total += ((try? FileManager.default.attributesOfItem(atPath: root + "/" + path))?[.size] as? Int) ?? 0
        }
        #expect(total < 200)
    }
}
