import Crypto
import DeferredCloud
import DeferredDemo
import DeferredTestSupport
import Foundation
import Synchronization
import Testing

/// The libcurl client: bodies streamed from and to files, through moto's S3 API; and the
/// typed errors of a peer that refuses or never answers.
@Suite struct HTTPClientTests {
    @Test func streamsABodyFromAFileAndTheAnswerToAFile() async throws {
        let moto = try await ThrowawayMoto.account()
        let folder = NSTemporaryDirectory() + "deferred-http-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/upload.bin"))

        let client = HTTPClient()
        // S3 signs a streamed body as UNSIGNED-PAYLOAD: the file is not read twice.
        let signer = SigV4(credentials: moto.credentials, region: "us-east-1", service: "s3")
        func send(_ request: HTTPClientRequest, to file: String? = nil) async throws -> HTTPClientResponse {
            var signed = request
            signed.headers.append((name: "x-amz-content-sha256", value: "UNSIGNED-PAYLOAD"))
            signer.authorize(&signed, payloadHash: "UNSIGNED-PAYLOAD")
            return try await client.send(signed, responseFile: file)
        }
        let bucket = moto.endpoint + "/" + moto.bucket("streams")
        #expect(try await send(HTTPClientRequest(method: "PUT", url: bucket)).status == 200)
        let put = try await send(HTTPClientRequest(
            method: "PUT", url: bucket + "/whole.bin", headers: [(name: "Content-Type", value: "application/octet-stream")],
            streaming: .file(path: folder + "/upload.bin")))
        #expect(put.status == 200)
        // A slice of the file, as a multipart upload sends its parts.
        let slice = try await send(HTTPClientRequest(
            method: "PUT", url: bucket + "/slice.bin", headers: [(name: "Content-Type", value: "application/octet-stream")],
            streaming: .file(path: folder + "/upload.bin", offset: 1000, length: 5000)))
        #expect(slice.status == 200)

        let got = try await send(HTTPClientRequest(url: bucket + "/whole.bin"), to: folder + "/download.bin")
        #expect(got.status == 200)
        #expect(got.body.isEmpty && got.bodyLength == bytes.count)
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/download.bin")) == Data(bytes))
        let gotSlice = try await send(HTTPClientRequest(url: bucket + "/slice.bin"))
        #expect(gotSlice.body == Data(bytes[1000..<6000]))
        #expect(gotSlice.header("Content-Type") == "application/octet-stream")
    }

    @Test func aClosedPortAndASilentPeerAreTypedErrors() async throws {
        let client = HTTPClient()
        let closed = try FreePort.find()
        let refused = await #expect(throws: HTTPClientError.self) {
            try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(closed)/"))
        }
        #expect(refused?.description.contains("127.0.0.1:\(closed)") == true)

        // Listens but never answers: the total timeout ends the wait.
        let silent = try SilentPeer()
        defer { silent.close() }
        let clock = ContinuousClock(), start = clock.now
        let timedOut = await #expect(throws: HTTPClientError.self) {
            try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .seconds(1)))
        }
        #expect(timedOut?.reason.lowercased().contains("timeout") == true, "\(String(describing: timedOut))")
        #expect(clock.now - start < .seconds(30))
    }
}

/// A loopback socket that takes connections into its backlog and says nothing.
final class SilentPeer: @unchecked Sendable {
    let port: Int
    private let fd: Int32

    init() throws { (fd, port) = try FreePort.listenLoopback() }

    func close() { _ = Glibc.close(fd) }
}

@Suite struct HTTPClientProxyTests {
    /// A forward proxy that answers every request itself and remembers its request line.
    final class RecordingProxy: Sendable {
        var port: Int { acceptor.port }
        private final class Lines: Sendable { let seen = Mutex<[String]>([]) }
        private let lines = Lines()
        private let acceptor: LoopbackAcceptor
        var requestLines: [String] { lines.seen.withLock { $0 } }

        init() throws {
            let lines = self.lines
            acceptor = try LoopbackAcceptor { client in
                var request = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !request.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
                    let n = read(client, &buffer, buffer.count)
                    guard n > 0 else { break }
                    request += buffer[0..<n]
                }
                let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
                lines.seen.withLock { $0.append(line) }
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nproxied".utf8)
                _ = answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                Glibc.close(client)
            }
        }

        func close() { acceptor.stop() }
    }

    @Test func httpProxyAndNoProxyAreHonoured() async throws {
        let proxy = try RecordingProxy()
        defer { proxy.close() }
        let client = HTTPClient(environment: ["http_proxy": "http://127.0.0.1:\(proxy.port)", "no_proxy": "skipped.invalid"])
        let answer = try await client.send(HTTPClientRequest(url: "http://ec2.deferred.invalid/check?x=1"))
        #expect(answer.status == 200)
        #expect(String(decoding: answer.body, as: UTF8.self) == "proxied")
        #expect(proxy.requestLines == ["GET http://ec2.deferred.invalid/check?x=1 HTTP/1.1"])
        // no_proxy: straight to the host, which does not exist, so curl fails to resolve it.
        await #expect(throws: HTTPClientError.self) { try await client.send(HTTPClientRequest(url: "http://skipped.invalid/", timeout: .seconds(5))) }
        #expect(proxy.requestLines.count == 1)
        // Without proxy variables nothing goes through it.
        await #expect(throws: HTTPClientError.self) {
            try await HTTPClient(environment: [:]).send(HTTPClientRequest(url: "http://ec2.deferred.invalid/", timeout: .seconds(5)))
        }
        #expect(proxy.requestLines.count == 1)
    }
}
