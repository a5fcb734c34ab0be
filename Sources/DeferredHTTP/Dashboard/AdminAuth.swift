import Crypto
import DeferredCore
import Foundation
import HTTPTypes
import Hummingbird

/// Who may use the dashboard: whoever shows the admin token (`[server] admin_token_env`), as
/// `Authorization: Bearer`, as HTTP Basic's password (any user name), or through the session
/// cookie the login form sets.
///
/// The cookie holds an expiry and its HMAC under the token, never the token itself: it ends
/// by itself, and a new token ends every session. Forms that change something carry a form
/// token (an HMAC of the token too), which a page on another site cannot know.
struct AdminAuth: Sendable {
    static let cookieName = "deferred_session"
    static let sessionLength: TimeInterval = 7 * 24 * 3600

    enum Credential: Sendable, Equatable {
        case bearer, basic, session
    }

    /// The token's bytes: the key of sessions and form tokens. (Kept as bytes: swift-crypto's
    /// `SymmetricKey` is not `Sendable`.)
    private let secret: Data
    /// Tokens are compared as HMACs under a key of this process's own: how long a comparison
    /// takes says nothing about how much of a guess was right.
    private let comparisonSecret = Data((0..<32).map { _ in UInt8.random(in: .min ... .max) })
    private let tokenMAC: Data

    private var key: SymmetricKey { SymmetricKey(data: secret) }
    private var comparisonKey: SymmetricKey { SymmetricKey(data: comparisonSecret) }
    /// Cookies get `Secure` when the server is reached over HTTPS.
    let secureCookies: Bool

    init(token: String, secureCookies: Bool) {
        secret = Data(token.utf8)
        tokenMAC = Data(HMAC<SHA256>.authenticationCode(for: Data(token.utf8), using: SymmetricKey(data: comparisonSecret)))
        self.secureCookies = secureCookies
    }

    func matches(_ presented: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(tokenMAC, authenticating: Data(presented.utf8), using: comparisonKey)
    }

    /// The credential the request carries, if it is a good one.
    func credential(of request: Request, now: Date = Date()) -> Credential? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            switch parts[0].lowercased() {
            case "bearer":
                return matches(value) ? .bearer : nil
            case "basic":
                guard let decoded = Data(base64Encoded: value).map({ String(decoding: $0, as: UTF8.self) }),
                      let colon = decoded.firstIndex(of: ":") else { return nil }
                return matches(String(decoded[decoded.index(after: colon)...])) ? .basic : nil
            default:
                return nil
            }
        }
        guard let session = request.cookies[Self.cookieName]?.value else { return nil }
        return validSession(session, now: now) ? .session : nil
    }

    // MARK: Sessions

    /// `<expiry>.<hex HMAC of "session <expiry>">`.
    func session(now: Date = Date()) -> String {
        let expiry = Int(now.timeIntervalSince1970 + Self.sessionLength)
        return "\(expiry).\(Hex.encode(HMAC<SHA256>.authenticationCode(for: Data("session \(expiry)".utf8), using: key)))"
    }

    func validSession(_ value: String, now: Date = Date()) -> Bool {
        let parts = value.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let expiry = Int(parts[0]), Double(expiry) > now.timeIntervalSince1970,
              let mac = Hex.decode(parts[1]) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data("session \(expiry)".utf8), using: key)
    }

    func sessionCookie(now: Date = Date()) -> Cookie {
        Cookie(name: Self.cookieName, value: session(now: now), maxAge: Int(Self.sessionLength), path: "/",
               secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    var clearedCookie: Cookie {
        Cookie(name: Self.cookieName, value: "", maxAge: 0, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    // MARK: Forms

    /// The hidden field of every form that changes something.
    var formToken: String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data("dashboard form".utf8), using: key))
    }

    func validFormToken(_ value: String?) -> Bool {
        guard let value, let mac = Hex.decode(value) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data("dashboard form".utf8), using: key)
    }
}
