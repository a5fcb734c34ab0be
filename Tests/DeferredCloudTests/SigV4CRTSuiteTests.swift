@testable import DeferredCloud
import Foundation
import Testing

/// The aws-c-auth copy of the SigV4 suite in ../shared/fixtures/aws-sigv4-crt: header signing
/// with and without path normalisation (S3 signs the path as given), and query signing
/// (presigned URLs), each case with the credentials, time and options of its context.json.
@Suite struct SigV4CRTSuiteTests {
    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/fixtures/aws-sigv4-crt").standardizedFileURL.path

    static let cases: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: suite)) ?? [])
        .filter { FileManager.default.fileExists(atPath: suite + "/" + $0 + "/context.json") }.sorted()

    struct Context: Decodable {
        struct Credentials: Decodable {
            var access_key_id: String
            var secret_access_key: String
            var token: String?
        }
        var credentials: Credentials
        var expiration_in_seconds: Int
        var normalize: Bool
        var region: String
        var service: String
        var sign_body: Bool
        var timestamp: String
        var omit_session_token: Bool?
    }

    static func load(_ name: String) throws -> (SigV4, SigV4.Request, Context, Date) {
        let base = suite + "/" + name
        let context = try JSONDecoder().decode(Context.self, from: Data(contentsOf: URL(fileURLWithPath: base + "/context.json")))
        var signer = SigV4(credentials: AWSCredentials(accessKeyID: context.credentials.access_key_id,
                                                       secretAccessKey: context.credentials.secret_access_key,
                                                       sessionToken: context.credentials.token),
                           region: context.region, service: context.service)
        signer.normalizesPath = context.normalize
        // This copy folds a header's continuation lines into its value with a space; and its
        // query is percent-encoded where SigV4.Request takes it decoded.
        let text = try String(contentsOfFile: base + "/request.txt", encoding: .utf8)
            .replacingOccurrences(of: "\n[ \t]+", with: " ", options: .regularExpression)
        var request = try SigV4SuiteTests.parse(text)
        request.query = request.query.removingPercentEncoding ?? request.query
        let date = try #require(ISO8601DateFormatter().date(from: context.timestamp))
        return (signer, request, context, date)
    }

    static func file(_ name: String, _ part: String) throws -> String {
        try String(contentsOfFile: suite + "/" + name + "/" + part, encoding: .utf8)
    }

    @Test func theSuiteIsThere() {
        #expect(Self.cases.count == 38, "\(Self.suite)")
        #expect(Self.cases.filter { $0.hasSuffix("-unnormalized") }.count == 7)
    }

    @Test(arguments: cases)
    func headerSigningMatches(_ name: String) throws {
        let (signer, request, context, date) = try Self.load(name)
        var signed = request
        signed.headers.append((name: "X-Amz-Date", value: SigV4.stamps(date).amzDate))
        if let token = context.credentials.token, context.omit_session_token != true {
            signed.headers.append((name: "X-Amz-Security-Token", value: token))
        }
        if context.sign_body { signed.headers.append((name: "X-Amz-Content-Sha256", value: SigV4.hexSHA256(request.body))) }
        let signature = signer.sign(signed, at: date)
        #expect(signature.canonicalRequest == (try Self.file(name, "header-canonical-request.txt")))
        #expect(signature.stringToSign == (try Self.file(name, "header-string-to-sign.txt")))
        #expect(signature.signature == (try Self.file(name, "header-signature.txt")).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test(arguments: cases)
    func querySigningMatches(_ name: String) throws {
        let (signer, request, context, date) = try Self.load(name)
        let (signature, query) = signer.presign(request, at: date, expires: context.expiration_in_seconds,
                                                includeSessionToken: context.omit_session_token != true)
        #expect(signature.canonicalRequest == (try Self.file(name, "query-canonical-request.txt")))
        #expect(signature.stringToSign == (try Self.file(name, "query-string-to-sign.txt")))
        let expected = try Self.file(name, "query-signature.txt").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(signature.signature == expected)
        #expect(query.hasSuffix("&X-Amz-Signature=" + expected))
    }
}
