import Foundation

/// `[store]`: where jobs, hosts and deliveries are kept. SQLite, the embedded default, serves
/// one server; several servers share one PostgreSQL database.
public struct StoreConfig: Sendable, Equatable {
    public enum Location: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(PostgresSettings)
    }

    public var location: Location
    /// PostgreSQL: a server silent this long is taken for dead and its jobs are taken over.
    public var takeoverSeconds: Int

    public init(_ location: Location, takeoverSeconds: Int = 30) {
        self.location = location
        self.takeoverSeconds = takeoverSeconds
    }

    public static func sqlite(_ path: String) -> StoreConfig { StoreConfig(.sqlite(path: path)) }

    /// Several servers may use it (PostgreSQL), so what each keeps must be where all reach it.
    public var mayBeShared: Bool { sqlitePath == nil }

    /// The SQLite file, for what only SQLite has (the file's mode, the one-server lock).
    public var sqlitePath: String? {
        if case .sqlite(let path) = location { path } else { nil }
    }
}

/// A PostgreSQL database as `postgres://user@host:port/db?sslmode=…` names it, with the
/// password read from the environment (never from the file).
public struct PostgresSettings: Sendable, Equatable, CustomStringConvertible {
    /// libpq's `sslmode` names. `allow` and `prefer` both try TLS and take plain TCP when the
    /// server has none; `require` encrypts without checking the certificate, as libpq does;
    /// `verify-ca` checks the chain, `verify-full` the chain and the host name.
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca", verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// `sslrootcert`: the CA file that `verify-ca` and `verify-full` check against (the
    /// system's roots without it).
    public var rootCertificate: String?

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String, sslMode: SSLMode = .prefer,
                rootCertificate: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.rootCertificate = rootCertificate
    }

    /// The URL without its password: what logs and messages show.
    public var description: String { "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(sslMode.rawValue)" }

    /// What is wrong with a `postgres://` URL, in words for the user.
    public enum URLProblem: Error, Equatable, CustomStringConvertible {
        case notAURL
        case passwordInURL
        case missing(String)
        case badPort(String)
        case unknownSSLMode(String)
        case unknownParameter(String)

        public var description: String {
            switch self {
            case .notAURL: "is not a postgres://user@host:port/database URL"
            case .passwordInURL: "holds a password; secrets never live in the file"
            case .missing(let part): "names no \(part)"
            case .badPort(let port): "has port '\(port)', not a number from 1 to 65535"
            case .unknownSSLMode(let mode): "has sslmode '\(mode)', not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))"
            case .unknownParameter(let name): "has the parameter '\(name)', which deferred does not know (sslmode and sslrootcert are)"
            }
        }
    }

    /// A URL as a message may show it: a password in it (which the file should not hold) hidden.
    public static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
              let colon = text[scheme.upperBound..<at].firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    /// Reads `postgres://` or `postgresql://` URLs: user and database are required, the port
    /// defaults to 5432, `sslmode` to `prefer`.
    public init(url text: String, password: String?) throws(URLProblem) {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
              let components = URLComponents(string: text) else { throw .notAURL }
        if components.password != nil { throw .passwordInURL }
        guard let host = components.host, !host.isEmpty else { throw .missing("host") }
        guard let user = components.user?.removingPercentEncoding, !user.isEmpty else { throw .missing("user (postgres://USER@host/db)") }
        let database = String(components.path.dropFirst()).removingPercentEncoding ?? ""
        guard !database.isEmpty, !database.contains("/") else { throw .missing("database (postgres://user@host/DATABASE)") }
        var port = 5432
        if let given = components.port {
            guard (1...65535).contains(given) else { throw .badPort(String(given)) }
            port = given
        }
        var sslMode = SSLMode.prefer
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: item.value ?? "") else { throw .unknownSSLMode(item.value ?? "") }
                sslMode = mode
            case "sslrootcert":
                rootCertificate = item.value
            default:
                throw .unknownParameter(item.name)
            }
        }
        self.init(host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port, user: user, password: password,
                  database: database, sslMode: sslMode, rootCertificate: rootCertificate)
    }
}
