import Foundation

/// AWS credentials, found the way AWS users expect: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else the shared credentials file
/// (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`) at the profile `AWS_PROFILE` names
/// (`default` otherwise).
public struct AWSCredentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public enum LookupError: Error, Equatable, CustomStringConvertible {
        case notFound(profile: String, file: String)
        case incomplete(profile: String, file: String)

        public var description: String {
            switch self {
            case .notFound(let profile, let file):
                "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and \(file) has no [\(profile)] profile"
            case .incomplete(let profile, let file):
                "the [\(profile)] profile in \(file) lacks aws_access_key_id or aws_secret_access_key"
            }
        }
    }

    public static func lookUp(environment: [String: String] = ProcessInfo.processInfo.environment,
                              homeDirectory: String = NSHomeDirectory()) throws(LookupError) -> AWSCredentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
           let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty {
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        }
        let profile = environment["AWS_PROFILE"] ?? "default"
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? homeDirectory + "/.aws/credentials"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
              let values = INIFile.section(profile, in: text) else {
            throw .notFound(profile: profile, file: file)
        }
        guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
            throw .incomplete(profile: profile, file: file)
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    }
}

/// The few rules of AWS's INI files that credentials need: `[section]`, `key = value`, `#`/`;` comments.
enum INIFile {
    static func section(_ name: String, in text: String) -> [String: String]? {
        var current: String?
        var values: [String: String]?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if current == name, values == nil { values = [:] }
                continue
            }
            guard current == name, let equals = line.firstIndex(of: "=") else { continue }
            values?[line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()] =
                line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        return values
    }
}

/// Printed or logged, credentials show their key id only (see DeferredCore's SecretsKeptOut).
extension AWSCredentials: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "secretAccessKey": "<secret>"], displayStyle: .struct)
    }
}
