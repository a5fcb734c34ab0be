import Crypto
import Foundation

/// GitHub's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body.
public enum WebhookSignature {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case missing
        case malformed
        case mismatch

        public var description: String {
            switch self {
            case .missing: "the request has no X-Hub-Signature-256 header; set the webhook's secret on GitHub"
            case .malformed: "X-Hub-Signature-256 is not of the form sha256=<64 hex digits>"
            case .mismatch: "X-Hub-Signature-256 does not match the body; the webhook's secret differs from the server's"
            }
        }
    }

    /// A secret made ready to check bodies with: the HMAC with its key taken in, copied for
    /// each body, so that the key is not hashed again for every delivery.
    public struct Key: @unchecked Sendable {
        // HMAC is a value whose copies share nothing mutable.
        fileprivate let ready: HMAC<SHA256>

        public init(secret: String) {
            ready = HMAC<SHA256>(key: SymmetricKey(data: Data(secret.utf8)))
        }
    }

    /// Checks the header against the body in constant time.
    public static func verify<Body: DataProtocol>(header: String?, body: Body, secret: String) throws(Failure) {
        try verify(header: header, body: body, key: Key(secret: secret))
    }

    public static func verify<Body: DataProtocol>(header: String?, body: Body, key: Key) throws(Failure) {
        guard let header, !header.isEmpty else { throw .missing }
        guard header.hasPrefix("sha256="), let digest = Hex.decode(header.dropFirst(7)), digest.count == 32 else {
            throw .malformed
        }
        var mac = key.ready
        mac.update(data: body)
        // Crypto's comparison of a code with bytes does not leak where the first difference is.
        guard mac.finalize() == digest else { throw .mismatch }
    }

    /// The header value GitHub would send for this body.
    public static func sign<Body: DataProtocol>(body: Body, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + Hex.encode(mac)
    }
}

public enum Hex {
    /// The lowercase digits, by value.
    public static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// An ASCII hex digit's value, either case; nil for any other byte.
    public static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
