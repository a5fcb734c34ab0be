import DeferredArtifacts
import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Results and artifacts kept in an S3 bucket (moto_server) or a folder, served at the job's
/// result URL (redirects to presigned GETs for S3), and deleted past their retention.
@Suite struct ArtifactServingTests {
    static let script = #"""
        #!/bin/sh
        printf 'the report' > "$DEFERRED_ARTIFACTS/report.txt"
        echo "some output"

        """#

    static func path(_ url: String) -> String { String(url.dropFirst("http://deferred.test".count)) }

    @Test func anS3StoreServesByPresignedRedirectsWithCORSAndRetentionDeletesThenAnswers410() async throws {
        let moto = try await ThrowawayMoto.account()
        let s3 = S3Client(bucket: moto.bucket("results"), region: "us-east-1", endpoint: moto.endpoint, credentials: moto.credentials)
        try await s3.createBucket()
        let harness = try await ServerHarness()
        harness.config.artifacts = ArtifactsConfig(directory: harness.folder + "/staging",
                                                   s3: .init(bucket: moto.bucket("results"), prefix: "ci/runs", region: "us-east-1", endpoint: moto.endpoint))
        let store = S3ArtifactStore(client: s3, prefix: "ci/runs", staging: harness.folder + "/staging", retentionDays: 14)
        harness.artifacts = store
        let key = try await harness.addSigner("s3", principal: "ci@example.com")
        let signature = try await harness.sign(Self.script, key: key)
        let token = try await harness.serve { client -> String in
            let accepted = try await ServerHarness.postScript(client, ["script": Self.script, "signature": signature])
            let resultURL = try #require(ServerHarness.json(accepted)["result_url"] as? String)
            let results = try await ServerHarness.results(client, resultURL: resultURL)
            #expect(results["status"] as? String == "succeeded")

            // The result URL stays the server's; it answers with a redirect that keeps CORS.
            let answer = try await client.execute(uri: Self.path(resultURL), method: .get, headers: [.origin: "https://page.example"])
            #expect(answer.status == .found)
            #expect(answer.headers[.accessControlAllowOrigin] != nil)
            let location = try #require(answer.headers[.location])
            #expect(location.hasPrefix(moto.endpoint + "/" + moto.bucket("results") + "/ci/runs/") && location.contains("X-Amz-Signature="))

            let artifact = try #require((results["artifacts"] as? [[String: Any]])?.first)
            let redirect = try await client.execute(uri: Self.path(try #require(artifact["url"] as? String)), method: .get)
            #expect(redirect.status == .found)
            let report = try await HTTPClient().send(HTTPClientRequest(url: try #require(redirect.headers[.location])))
            #expect(String(decoding: report.body, as: UTF8.self) == "the report")
            #expect(report.header("content-type") == "text/plain; charset=utf-8")
            let log = try await client.execute(uri: Self.path(try #require(results["output_log"] as? String)), method: .get)
            let output = try await HTTPClient().send(HTTPClientRequest(url: try #require(log.headers[.location])))
            #expect(String(decoding: output.body, as: UTF8.self).contains("some output\n"))
            let missing = try await client.execute(uri: Self.path(resultURL).replacingOccurrences(of: "results.json", with: "artifacts/none.txt"), method: .get)
            #expect(missing.status == .notFound)
            return String(Self.path(resultURL).split(separator: "/")[1])
        }
        // Everything went up under <prefix>/<token>/, and the staging copy is gone.
        #expect(Set(try await s3.keys(under: "ci/runs/\(token)/")) ==
                ["ci/runs/\(token)/results.json", "ci/runs/\(token)/output.log", "ci/runs/\(token)/artifacts/report.txt"])
        #expect(!FileManager.default.fileExists(atPath: harness.folder + "/staging/" + token))

        // Thirteen days on, nothing is due; fifteen days on, the objects go and the URLs answer 410.
        let retention = Retention(store: harness.store, artifacts: store, retentionDays: 14)
        #expect(await retention.pass(now: Date().addingTimeInterval(13 * 86_400)).expired.isEmpty)
        let report = await retention.pass(now: Date().addingTimeInterval(15 * 86_400))
        #expect(report.expired.count == 1 && report.problems.isEmpty, "\(report)")
        #expect(try await s3.keys(under: "ci/runs/").isEmpty)
        try await harness.serve(dispatching: false) { client in
            for object in ["results.json", "output.log", "artifacts/report.txt"] {
                let gone = try await client.execute(uri: "/r/\(token)/\(object)", method: .get)
                #expect(gone.status == .gone, "\(object)")
                #expect((ServerHarness.json(gone)["error"] as? String)?.contains("retention_days") == true)
            }
        }
    }

    @Test func aFileStoreDeletesTheJobsFolderPastRetention() async throws {
        let harness = try await ServerHarness()
        harness.config.artifacts.retentionDays = 2
        let key = try await harness.addSigner("local", principal: "ci@example.com")
        let signature = try await harness.sign(Self.script, key: key)
        let token = try await harness.serve { client -> String in
            let accepted = try await ServerHarness.postScript(client, ["script": Self.script, "signature": signature])
            let resultURL = try #require(ServerHarness.json(accepted)["result_url"] as? String)
            _ = try await ServerHarness.results(client, resultURL: resultURL)
            return String(Self.path(resultURL).split(separator: "/")[1])
        }
        let folder = harness.config.artifacts.directory + "/" + token
        #expect(FileManager.default.fileExists(atPath: folder + "/artifacts/report.txt"))
        let report = await Retention(store: harness.store, artifacts: harness.artifacts, retentionDays: 2)
            .pass(now: Date().addingTimeInterval(3 * 86_400))
        #expect(report.expired.count == 1)
        #expect(!FileManager.default.fileExists(atPath: folder))
        try await harness.serve(dispatching: false) { client in
            let gone = try await client.execute(uri: "/r/\(token)/results.json", method: .get)
            #expect(gone.status == .gone)
            // A second pass finds nothing more to do.
            #expect(await Retention(store: harness.store, artifacts: harness.artifacts, retentionDays: 2)
                        .pass(now: Date().addingTimeInterval(3 * 86_400)).expired.isEmpty)
        }
    }
}
