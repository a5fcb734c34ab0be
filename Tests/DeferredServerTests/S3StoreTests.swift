import Crypto
import DeferredArtifacts
import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredTestSupport
import Foundation
import Testing

/// The S3 client and store against a real S3 API: moto_server on loopback, checking our SigV4
/// where it can, with a fault proxy in front where a part must fail.
@Suite(.serialized) struct S3StoreTests {
    let folder: String = {
        let path = NSTemporaryDirectory() + "deferred-s3-" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// `size` bytes that differ from one MiB to the next, so parts cannot be mixed up unseen.
    func makeFile(_ name: String, size: Int) throws -> String {
        let path = folder + "/" + name
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        for i in block.indices { block[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        var written = 0, round: UInt8 = 0
        while written < size {
            block[0] = round; block[block.count / 2] = round &+ 7
            round &+= 1
            let take = min(block.count, size - written)
            try handle.write(contentsOf: block[..<take])
            written += take
        }
        return path
    }

    static func sha256(ofFile path: String) throws -> String {
        let handle = try #require(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return Hex.encode(hasher.finalize())
    }

    @Test func smallAndMultipartUploadsArriveByteForByteWithTheirSignaturesChecked() async throws {
        let moto = try await ThrowawayMoto.start(checkSignaturesAfter: 4)
        defer { moto.stop() }
        // From here on moto checks the SigV4 of every request.
        let key = try await moto.makeUser()
        let s3 = S3Client(bucket: "deferred-artifacts", region: "us-east-1", endpoint: moto.endpoint, credentials: key)
        try await s3.createBucket()

        let small = try makeFile("small.txt", size: 1000)
        try await s3.upload(file: small, to: "runs/t1/artifacts/small file.txt", contentType: "text/plain; charset=utf-8",
                            sha256: try Self.sha256(ofFile: small))
        let smallCopy = folder + "/small.copy"
        let fetched = try await s3.download("runs/t1/artifacts/small file.txt", to: smallCopy)
        #expect(try Self.sha256(ofFile: smallCopy) == (try Self.sha256(ofFile: small)))
        #expect(fetched.header("content-type") == "text/plain; charset=utf-8")

        // Past 64 MiB: a multipart upload of two parts, read from disk as it is sent.
        let large = try makeFile("large.bin", size: (65 << 20) + 123)
        try await s3.upload(file: large, to: "runs/t1/artifacts/large.bin", contentType: "application/octet-stream")
        let copy = folder + "/large.copy"
        let download = try await s3.download("runs/t1/artifacts/large.bin", to: copy)
        #expect(download.bodyLength == (65 << 20) + 123)
        #expect(try Self.sha256(ofFile: copy) == (try Self.sha256(ofFile: large)))
        // S3 marks a multipart object's ETag with its part count.
        #expect(download.header("etag")?.hasSuffix("-2\"") == true, "\(download.header("etag") ?? "no etag")")
        #expect(try await s3.exists("runs/t1/artifacts/large.bin"))
        #expect(try await !s3.exists("runs/t1/artifacts/none"))

        // Signed with the wrong secret: refused.
        let forged = S3Client(bucket: "deferred-artifacts", region: "us-east-1", endpoint: moto.endpoint,
                              credentials: AWSCredentials(accessKeyID: key.accessKeyID, secretAccessKey: key.secretAccessKey + "x"))
        let error = await #expect(throws: CloudError.self) { try await forged.upload(Data("x".utf8), to: "runs/t1/forged", contentType: "text/plain") }
        #expect(error?.description.contains("SignatureDoesNotMatch") == true, "\(String(describing: error))")
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// moto checks no presigned URL (its check wants an Authorization header): here it serves
    /// them; their signatures are checked against the aws-sigv4-crt suite's query cases.
    @Test func presignedURLsServeObjectsToAPlainClientAndDeletesEmptyAPrefix() async throws {
        let moto = try await ThrowawayMoto.account()
        let s3 = S3Client(bucket: moto.bucket("presigned"), region: "us-east-1", endpoint: moto.endpoint, credentials: moto.credentials)
        try await s3.createBucket()
        let small = try makeFile("p-small.txt", size: 1000)
        let large = try makeFile("p-large.bin", size: (65 << 20) + 5)
        try await s3.upload(file: small, to: "runs/t2/artifacts/a b#1.txt", contentType: "text/plain; charset=utf-8")
        try await s3.upload(file: large, to: "runs/t2/artifacts/large.bin", contentType: "application/octet-stream")
        let url = s3.presignedGET("runs/t2/artifacts/a b#1.txt", expires: 600)
        #expect(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=600"))
        let fetched = try await HTTPClient().send(HTTPClientRequest(url: url))
        #expect(fetched.status == 200)
        #expect(fetched.body == (try Data(contentsOf: URL(fileURLWithPath: small))))
        #expect(fetched.header("content-type") == "text/plain; charset=utf-8")
        let copy = folder + "/p-large.copy"
        let download = try await HTTPClient().send(HTTPClientRequest(url: s3.presignedGET("runs/t2/artifacts/large.bin", expires: 600),
                                                                     timeout: .seconds(300)), responseFile: copy)
        #expect(download.status == 200)
        #expect(try Self.sha256(ofFile: copy) == (try Self.sha256(ofFile: large)))

        // Many keys: listed page by page, deleted in batches of a thousand.
        for i in 0..<1005 { try await s3.upload(Data("\(i)".utf8), to: "runs/t3/artifacts/\(i).txt", contentType: "text/plain") }
        #expect(try await s3.keys(under: "runs/t3/").count == 1005)
        try await s3.delete(try await s3.keys(under: "runs/"))
        #expect(try await s3.keys(under: "runs/").isEmpty)
        try? FileManager.default.removeItem(atPath: folder)
    }

    static let internalError = (status: 500, body: """
        <?xml version="1.0" encoding="UTF-8"?>
        <Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>
        """)

    @Test func aFailedPartIsRetriedAndAnUploadThatKeepsFailingIsAborted() async throws {
        let moto = try await ThrowawayMoto.account()
        let direct = S3Client(bucket: moto.bucket("flaky"), region: "us-east-1", endpoint: moto.endpoint, credentials: moto.credentials)
        try await direct.createBucket()
        let file = try makeFile("parts.bin", size: 12 << 20)

        // Part 2 fails twice, then goes through: only that part is sent again.
        let flaky = try await FaultInjectingProxy(to: moto.endpoint, flaky: (text: "partNumber=2&", times: 2, answer: Self.internalError))
        defer { flaky.stop() }
        var s3 = S3Client(bucket: moto.bucket("flaky"), region: "us-east-1", endpoint: flaky.endpoint, credentials: moto.credentials,
                          retry: RetryPolicy(maxAttempts: 4, base: .milliseconds(10), cap: .milliseconds(50)))
        s3.multipartThreshold = 5 << 20
        s3.partSize = 5 << 20
        try await s3.upload(file: file, to: "retried.bin", contentType: "application/octet-stream")
        let seen = await flaky.faults.seen
        #expect(seen.filter { $0.hasPrefix("PUT ") && $0.contains("partNumber=2&") }.count == 3)
        #expect(seen.filter { $0.hasPrefix("PUT ") && $0.contains("partNumber=1&") }.count == 1)
        let copy = folder + "/retried.copy"
        _ = try await HTTPClient().send(HTTPClientRequest(url: direct.presignedGET("retried.bin", expires: 60)), responseFile: copy)
        #expect(try Self.sha256(ofFile: copy) == (try Self.sha256(ofFile: file)))

        // Part 3 always fails: the upload is aborted, nothing is left half-made.
        let broken = try await FaultInjectingProxy(to: moto.endpoint, refusing: (text: "partNumber=3&", answer: Self.internalError))
        defer { broken.stop() }
        var failing = S3Client(bucket: moto.bucket("flaky"), region: "us-east-1", endpoint: broken.endpoint, credentials: moto.credentials,
                               retry: RetryPolicy(maxAttempts: 3, base: .milliseconds(10), cap: .milliseconds(50)))
        failing.multipartThreshold = 5 << 20
        failing.partSize = 5 << 20
        let error = await #expect(throws: CloudError.self) {
            try await failing.upload(file: file, to: "aborted.bin", contentType: "application/octet-stream")
        }
        #expect(error?.description.contains("InternalError") == true, "\(String(describing: error))")
        let tried = await broken.faults.seen
        #expect(tried.filter { $0.contains("partNumber=3&") }.count == 3)
        #expect(tried.contains { $0.hasPrefix("DELETE ") && $0.contains("uploadId=") })
        #expect(try await direct.uploadsInProgress().isEmpty)
        #expect(try await !direct.exists("aborted.bin"))
        try? FileManager.default.removeItem(atPath: folder)
    }
}

extension S3StoreTests {
    /// The bucket cannot be reached when the job ends: results.json is kept with the staged
    /// files and served from there, and the next pass sends everything up.
    @Test func filesAJobLeftWhileTheBucketWasDownAreServedLocallyAndSentLater() async throws {
        let moto = try await ThrowawayMoto.account()
        let staging = folder + "/staging"
        let token = ResultToken.make()
        let down = S3ArtifactStore(client: S3Client(bucket: moto.bucket("later"), region: "us-east-1", endpoint: "http://127.0.0.1:\(try FreePort.find())",
                                                    credentials: moto.credentials,
                                                    retry: RetryPolicy(maxAttempts: 2, base: .milliseconds(1))),
                                   prefix: "p", staging: staging, retentionDays: 14)
        let files = down.files(for: token)
        try FileManager.default.createDirectory(atPath: files.folder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: files.artifacts + "/sub", withIntermediateDirectories: true)
        try Data("report".utf8).write(to: URL(fileURLWithPath: files.artifacts + "/sub/report.txt"))
        try Data("output\n".utf8).write(to: URL(fileURLWithPath: files.outputLog))
        let results = Data(#"{"status":"succeeded"}"#.utf8)
        let artifact = CollectedArtifacts.File(path: "sub/report.txt", bytes: 6, sha256: Hex.encode(SHA256.hash(data: Data("report".utf8))))
        await #expect(throws: ArtifactStoreError.self) { try await down.publish(files, artifacts: [artifact], results: results, token: token) }
        #expect(try await down.locate(.results, token: token) == .file(path: files.folder + "/results.json", contentType: "application/json"))
        #expect(try await down.locate(.artifact(#require(ArtifactPath(validating: "sub/report.txt"))), token: token)
                == .file(path: files.artifacts + "/sub/report.txt", contentType: "text/plain; charset=utf-8"))
        #expect(await down.publishPending().failures.count == 1)

        // The bucket is back.
        let s3 = S3Client(bucket: moto.bucket("later"), region: "us-east-1", endpoint: moto.endpoint, credentials: moto.credentials)
        try await s3.createBucket()
        let up = S3ArtifactStore(client: s3, prefix: "p", staging: staging, retentionDays: 14)
        let pending = await up.publishPending()
        #expect(pending.published == [token] && pending.failures.isEmpty, "\(pending)")
        #expect(Set(try await s3.keys(under: "p/")) == ["p/\(token.rawValue)/results.json", "p/\(token.rawValue)/output.log",
                                                        "p/\(token.rawValue)/artifacts/sub/report.txt"])
        #expect(!FileManager.default.fileExists(atPath: files.folder))
        guard case .redirect(let url)? = try await up.locate(.results, token: token) else { Issue.record("not a redirect"); return }
        #expect(try await HTTPClient().send(HTTPClientRequest(url: url)).body == results)
        #expect(await up.publishPending().published.isEmpty)
        try? FileManager.default.removeItem(atPath: folder)
    }
}
