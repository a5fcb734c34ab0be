import Crypto
import DeferredCore
import Foundation

/// An S3-compatible bucket through SigV4 and libcurl: uploads streamed from disk (multipart
/// above `multipartThreshold`, each part retried, the upload aborted when it fails for good),
/// listing, batch deletes and presigned GETs.
public struct S3Client: Sendable {
    public let bucket: String
    public let region: String
    /// Another S3-compatible endpoint (path-style URLs); nil: AWS (virtual-hosted URLs).
    public let endpoint: String?
    let signer: SigV4
    let http: HTTPClient
    public var retry: RetryPolicy
    /// Files larger than this go up in parts of `partSize`.
    public var multipartThreshold: Int64 = 64 << 20
    public var partSize: Int64 = 64 << 20
    /// For one request that carries a body: generous, a part is 64 MiB.
    public var transferTimeout: Duration = .seconds(900)

    public init(bucket: String, region: String, endpoint: String? = nil, credentials: AWSCredentials,
                http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint.map { var e = $0; while e.hasSuffix("/") { e.removeLast() }; return e }
        self.signer = SigV4(credentials: credentials, region: region, service: "s3")
        self.http = http
        self.retry = retry
    }

    /// The object's URL, its key encoded segment by segment exactly as SigV4 signs it.
    public func url(for key: String, query: String = "") -> String {
        let path = key.split(separator: "/", omittingEmptySubsequences: false).map { SigV4.uriEncode(String($0)) }.joined(separator: "/")
        let base = endpoint.map { "\($0)/\(SigV4.uriEncode(bucket))" } ?? "https://\(bucket).s3.\(region).amazonaws.com"
        return base + "/" + path + (query.isEmpty ? "" : "?" + query)
    }

    // MARK: Uploads

    /// Uploads `file` as `key`: one PUT, or a multipart upload when it is large. `sha256`,
    /// when known, lets S3 check the bytes of a single PUT.
    public func upload(file: String, to key: String, contentType: String, sha256: String? = nil) async throws(CloudError) {
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0
        if size > multipartThreshold {
            try await multipartUpload(file: file, size: size, to: key, contentType: contentType)
        } else {
            try await put(key, body: .file(path: file), contentType: contentType, payloadHash: sha256 ?? "UNSIGNED-PAYLOAD")
        }
    }

    /// One PUT of bytes in memory (results.json), its hash signed.
    public func upload(_ data: Data, to key: String, contentType: String) async throws(CloudError) {
        try await put(key, body: .bytes(data), contentType: contentType, payloadHash: SigV4.hexSHA256(data))
    }

    private func put(_ key: String, body: HTTPClientRequest.Body, contentType: String, payloadHash: String) async throws(CloudError) {
        _ = try await send("PUT", key: key, body: body, headers: [(name: "Content-Type", value: contentType)],
                           payloadHash: payloadHash, action: "PutObject \(key)")
    }

    /// Create, parts (each retried on its own), complete; any failure past the retries aborts
    /// the upload so no parts are left to pay for.
    func multipartUpload(file: String, size: Int64, to key: String, contentType: String) async throws(CloudError) {
        let created = try await send("POST", key: key, query: "uploads", headers: [(name: "Content-Type", value: contentType)],
                                     action: "CreateMultipartUpload \(key)")
        guard let uploadID = XMLTree.parse(created.body)?.value("UploadId") else {
            throw .unreadable(action: "CreateMultipartUpload \(key)", status: created.status, body: String(decoding: created.body.prefix(300), as: UTF8.self))
        }
        let encodedID = SigV4.uriEncode(uploadID)
        do throws(CloudError) {
            var etags: [String] = []
            var offset: Int64 = 0
            while offset < size {
                let length = min(partSize, size - offset)
                let number = etags.count + 1
                let answer = try await send("PUT", key: key, query: "partNumber=\(number)&uploadId=\(encodedID)",
                                            body: .file(path: file, offset: UInt64(offset), length: UInt64(length)),
                                            action: "UploadPart \(number) of \(key)")
                guard let etag = answer.header("etag") else {
                    throw .unreadable(action: "UploadPart \(number) of \(key)", status: answer.status, body: "no ETag")
                }
                etags.append(etag)
                offset += length
            }
            let parts = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(Self.xmlEscape($0.element))</ETag></Part>" }
            let document = Data("<CompleteMultipartUpload>\(parts.joined())</CompleteMultipartUpload>".utf8)
            let completed = try await send("POST", key: key, query: "uploadId=\(encodedID)", body: .bytes(document),
                                           headers: [(name: "Content-Type", value: "application/xml")],
                                           action: "CompleteMultipartUpload \(key)")
            // A 200 can still carry an error, found while S3 assembled the parts.
            if let tree = XMLTree.parse(completed.body), tree.name == "Error" {
                throw .api(AWSError(code: .init(tree.value("Code") ?? "InternalError"), message: tree.value("Message") ?? "",
                                    status: completed.status, action: "CompleteMultipartUpload \(key)"))
            }
        } catch {
            _ = try? await send("DELETE", key: key, query: "uploadId=\(encodedID)", action: "AbortMultipartUpload \(key)")
            throw error
        }
    }

    // MARK: Reading, listing, deleting

    /// Makes the bucket (in us-east-1, or with the region's location constraint).
    public func createBucket() async throws(CloudError) {
        let body = region == "us-east-1" ? Data() : Data("<CreateBucketConfiguration><LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        _ = try await send("PUT", key: "", body: .bytes(body), action: "CreateBucket \(bucket)")
    }

    /// Keys of multipart uploads begun and neither completed nor aborted (each costs storage).
    public func uploadsInProgress() async throws(CloudError) -> [String] {
        let answer = try await send("GET", key: "", query: "uploads", action: "ListMultipartUploads")
        return XMLTree.parse(answer.body)?.children.filter { $0.name == "Upload" }.compactMap { $0.value("Key") } ?? []
    }

    /// A signed GET of `key`, its body written to `file` as it arrives.
    public func download(_ key: String, to file: String) async throws(CloudError) -> HTTPClientResponse {
        try await send("GET", key: key, action: "GetObject \(key)", responseFile: file)
    }

    /// Whether `key` exists (HEAD).
    public func exists(_ key: String) async throws(CloudError) -> Bool {
        do throws(CloudError) {
            _ = try await send("HEAD", key: key, action: "HeadObject \(key)")
            return true
        } catch {
            if case .unreadable(_, 404, _) = error { return false }
            if case .api(let e) = error, e.status == 404 { return false }
            throw error
        }
    }

    /// Every key under `prefix`, page by page.
    public func keys(under prefix: String) async throws(CloudError) -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            var query = "list-type=2&prefix=\(SigV4.uriEncode(prefix))"
            if let token { query += "&continuation-token=\(SigV4.uriEncode(token))" }
            let answer = try await send("GET", key: "", query: query, action: "ListObjectsV2 \(prefix)")
            guard let tree = XMLTree.parse(answer.body) else {
                throw .unreadable(action: "ListObjectsV2 \(prefix)", status: answer.status, body: String(decoding: answer.body.prefix(300), as: UTF8.self))
            }
            keys += tree.children.filter { $0.name == "Contents" }.compactMap { $0.value("Key") }
            token = tree.value("IsTruncated") == "true" ? tree.value("NextContinuationToken") : nil
        } while token != nil
        return keys
    }

    /// Deletes `keys`, a thousand (S3's limit) to a request. Throws on the first key S3 could not delete.
    public func delete(_ keys: [String]) async throws(CloudError) {
        for start in stride(from: 0, to: keys.count, by: 1000) {
            let batch = keys[start..<min(start + 1000, keys.count)]
            let objects = batch.map { "<Object><Key>\(Self.xmlEscape($0))</Key></Object>" }.joined()
            let document = Data("<Delete><Quiet>true</Quiet>\(objects)</Delete>".utf8)
            // DeleteObjects wants a checksum of its body.
            let md5 = Data(Insecure.MD5.hash(data: document)).base64EncodedString()
            let answer = try await send("POST", key: "", query: "delete", body: .bytes(document),
                                        headers: [(name: "Content-Type", value: "application/xml"), (name: "Content-MD5", value: md5)],
                                        action: "DeleteObjects")
            if let failed = XMLTree.parse(answer.body)?.children.first(where: { $0.name == "Error" }) {
                throw .api(AWSError(code: .init(failed.value("Code") ?? "InternalError"),
                                    message: "\(failed.value("Key") ?? ""): \(failed.value("Message") ?? "")",
                                    status: answer.status, action: "DeleteObjects"))
            }
        }
    }

    /// A GET of `key` anyone can use for `expires` seconds (SigV4 allows up to 7 days).
    public func presignedGET(_ key: String, expires seconds: Int, at date: Date = Date()) -> String {
        signer.presignedURL(url: url(for: key), at: date, expires: min(seconds, 7 * 24 * 3600)) ?? url(for: key)
    }

    // MARK: One signed request

    private func send(_ method: String, key: String, query: String = "", body: HTTPClientRequest.Body = .bytes(Data()),
                      headers: [(name: String, value: String)] = [], payloadHash: String? = nil,
                      action: String, responseFile: String? = nil) async throws(CloudError) -> HTTPClientResponse {
        try await CloudCallCount.retrying(retry, service: "s3", action: action) { () async throws(CloudError) -> HTTPClientResponse in
            var request = HTTPClientRequest(method: method, url: url(for: key, query: query), headers: headers, streaming: body,
                                            timeout: transferTimeout)
            let hash: String
            if let payloadHash { hash = payloadHash } else if case .bytes(let data) = body { hash = SigV4.hexSHA256(data) } else { hash = "UNSIGNED-PAYLOAD" }
            request.headers.append((name: "X-Amz-Content-Sha256", value: hash))
            // Signed at each attempt: the time is part of the signature.
            signer.authorize(&request, payloadHash: hash)
            let response: HTTPClientResponse
            do throws(HTTPClientError) { response = try await http.send(request, responseFile: responseFile) } catch { throw .transport(error) }
            guard (200..<300).contains(response.status) else {
                var response = response
                if let responseFile { response.body = FileManager.default.contents(atPath: responseFile) ?? Data() }
                _ = try AWSQueryClient.answer(response, action: action)
                throw .unreadable(action: action, status: response.status, body: "")
            }
            return response
        }
    }

    static func xmlEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
