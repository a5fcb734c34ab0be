import Crypto
import Foundation

/// AWS Signature Version 4 (header form): the canonical request, the string to sign, and the
/// `Authorization` header, for one service in one region.
public struct SigV4: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String
    /// S3 signs the path as given; every other service removes dot segments and double slashes.
    public var normalizesPath: Bool

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizesPath = service != "s3"
    }

    /// A request as signing sees it: `path` and `query` (the text after `?`) are decoded,
    /// as before percent-encoding; signing encodes them itself.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: String
        public var headers: [(name: String, value: String)]
        public var body: Data

        public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)], body: Data = Data()) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }

        /// The request for a URL as it goes out: decoded path and query, and the Host header
        /// curl sends itself (`host[:port]`), signed here with the same value.
        init?(_ method: String, _ url: URLComponents, headers: [(name: String, value: String)]) {
            guard let host = url.host else { return nil }
            self.init(method: method, path: url.path.isEmpty ? "/" : url.path,
                      query: url.percentEncodedQuery.map { $0.removingPercentEncoding ?? $0 } ?? "",
                      headers: headers + [(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)])
        }
    }

    /// Every step, for tests and for error messages that show what was signed.
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signedHeaders: String
        public var signature: String
        public var authorization: String
    }

    static let algorithm = "AWS4-HMAC-SHA256"

    /// Signs `request` as of `date`; its headers must already hold `Host` and `X-Amz-Date`
    /// (and `X-Amz-Security-Token` for session credentials), which `prepare` adds.
    public func sign(_ request: Request, at date: Date, payloadHash: String? = nil) -> Signature {
        signature(of: request, query: request.query, at: date, payloadHash: payloadHash ?? Self.hexSHA256(request.body))
    }

    /// Query signing (a presigned URL): the signature travels in the query, good for
    /// `expires` seconds. `request.headers` must hold `Host`; every header given is signed.
    /// Answers the signature and the whole query to send, signature last.
    public func presign(_ request: Request, at date: Date, expires seconds: Int, payloadHash: String? = nil,
                        includeSessionToken: Bool = true) -> (signature: Signature, query: String) {
        let (amzDate, day) = Self.stamps(date)
        let signedHeaders = Self.canonicalHeaders(request.headers).map(\.name).joined(separator: ";")
        var parameters = [("X-Amz-Algorithm", Self.algorithm),
                          ("X-Amz-Credential", "\(credentials.accessKeyID)/\(day)/\(region)/\(service)/aws4_request"),
                          ("X-Amz-Date", amzDate), ("X-Amz-Expires", String(seconds)), ("X-Amz-SignedHeaders", signedHeaders)]
        if includeSessionToken, let token = credentials.sessionToken { parameters.append(("X-Amz-Security-Token", token)) }
        let added = parameters.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let query = request.query.isEmpty ? added : request.query + "&" + added
        let signed = signature(of: request, query: query, at: date, payloadHash: payloadHash ?? Self.hexSHA256(request.body))
        return (signed, Self.canonicalQuery(query) + "&X-Amz-Signature=" + signed.signature)
    }

    private func signature(of request: Request, query: String, at date: Date, payloadHash: String) -> Signature {
        let (amzDate, day) = Self.stamps(date)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let headers = Self.canonicalHeaders(request.headers)
        let signedHeaders = headers.map(\.name).joined(separator: ";")
        let canonicalRequest = [
            request.method,
            canonicalPath(request.path),
            Self.canonicalQuery(query),
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let stringToSign = [Self.algorithm, amzDate, scope, Self.hexSHA256(Data(canonicalRequest.utf8))].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signedHeaders: signedHeaders,
                         signature: signature, authorization: authorization)
    }

    /// A presigned GET for `url` (S3: the payload is not signed), good for `expires` seconds.
    public func presignedURL(_ method: String = "GET", url: String, at date: Date = Date(), expires seconds: Int) -> String? {
        guard var components = URLComponents(string: url), let request = Request(method, components, headers: []) else { return nil }
        let (_, query) = presign(request, at: date, expires: seconds, payloadHash: "UNSIGNED-PAYLOAD")
        components.percentEncodedQuery = query
        return components.string
    }

    /// Adds `X-Amz-Date`, the session token and `Authorization` to a request for `url`.
    /// A body streamed from a file is not read here: give its `payloadHash` (or S3's
    /// `UNSIGNED-PAYLOAD`).
    public func authorize(_ request: inout HTTPClientRequest, at date: Date = Date(), payloadHash: String? = nil) {
        guard let components = URLComponents(string: request.url) else { return }
        request.headers.removeAll { ["host", "x-amz-date", "x-amz-security-token", "authorization"].contains($0.name.lowercased()) }
        request.headers.append((name: "X-Amz-Date", value: Self.stamps(date).amzDate))
        if let token = credentials.sessionToken { request.headers.append((name: "X-Amz-Security-Token", value: token)) }
        guard var signing = Request(request.method, components, headers: request.headers) else { return }
        signing.body = request.bodyBytes
        let signed = sign(signing, at: date, payloadHash: payloadHash)
        request.headers.append((name: "Authorization", value: signed.authorization))
    }

    // MARK: Canonical parts

    static func stamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d%02d%02d", c.year!, c.month!, c.day!)
        return (day + String(format: "T%02d%02d%02dZ", c.hour!, c.minute!, c.second!), day)
    }

    func canonicalPath(_ path: String) -> String {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if normalizesPath {
            var kept: [String] = []
            for segment in segments.dropFirst() {
                switch segment {
                case "", ".": continue
                case "..": _ = kept.popLast()
                default: kept.append(segment)
                }
            }
            let trailing = path.hasSuffix("/") || path.hasSuffix("/.") || path.hasSuffix("/..")
            segments = [""] + kept + (trailing && !kept.isEmpty ? [""] : [])
        }
        let joined = segments.map(Self.uriEncode).joined(separator: "/")
        return joined.isEmpty ? "/" : joined
    }

    /// Pairs encoded and sorted by name, then value; a name without `=` has an empty value.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (uriEncode(String(parts[0])), parts.count > 1 ? uriEncode(String(parts[1])) : "")
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Names lower-cased and sorted; values trimmed, inner runs of spaces made one, repeated
    /// headers joined with commas in the order they came.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var values: [String: [String]] = [:]
        for header in headers {
            let value = header.value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            values[header.name.lowercased(), default: []].append(value)
        }
        return values.keys.sorted().map { (name: $0, value: values[$0]!.joined(separator: ",")) }
    }

    /// RFC 3986 encoding: everything but unreserved characters, as %XX of its UTF-8 bytes.
    static func uriEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func hexSHA256(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
