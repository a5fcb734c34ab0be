import Foundation

/// A project's `allowed_signers` file, in ssh-keygen's ALLOWED SIGNERS format: who may sign
/// scripts, for which namespaces, and when.
public struct AllowedSigners: Sendable {
    public struct Entry: Sendable {
        /// The principals field as written (a comma-separated pattern list).
        public let principals: String
        public let key: SSHPublicKey
        /// `namespaces=` as a pattern list; nil allows every namespace.
        public let namespaces: String?
        public let validAfter: (date: Date, text: String)?
        public let validBefore: (date: Date, text: String)?
        public let line: Int
    }

    /// One line that could not be read, with its number.
    public struct LineProblem: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public let entries: [Entry]

    /// Reads every line; throws all the lines that are wrong at once.
    public init(text: String, timeZone: TimeZone = .current) throws(AllowedSignersError) {
        var entries: [Entry] = []
        var problems: [LineProblem] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            do {
                entries.append(try Self.entry(line, number: index + 1, timeZone: timeZone))
            } catch {
                problems.append(error)
            }
        }
        guard problems.isEmpty else { throw AllowedSignersError(problems: problems) }
        self.entries = entries
    }

    /// The principal allowed to sign with `key` for `namespace` at `date`, or why there is none.
    public func signer(for key: SSHPublicKey, namespace: String, at date: Date) throws(SignatureError) -> String {
        let candidates = entries.filter { $0.key == key }
        guard !candidates.isEmpty else { throw .unknownSigner(fingerprint: key.fingerprint) }
        var firstRefusal: SignatureError?
        for entry in candidates {
            if let namespaces = entry.namespaces, !PatternList.matches(namespace, list: namespaces) {
                firstRefusal = firstRefusal ?? .namespaceNotAllowed(principal: entry.principals, namespace: namespace)
            } else if let after = entry.validAfter, date < after.date {
                firstRefusal = firstRefusal ?? .signerNotYetValid(principal: entry.principals, validAfter: after.text)
            } else if let before = entry.validBefore, date >= before.date {
                firstRefusal = firstRefusal ?? .signerExpired(principal: entry.principals, validBefore: before.text)
            } else {
                return entry.principals
            }
        }
        throw firstRefusal ?? .unknownSigner(fingerprint: key.fingerprint)
    }

    // MARK: Reading a line

    private static let keyTypes: Set<String> = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]
    private static let refusedKeyTypes: Set<String> = [
        "ssh-dss", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    ]

    private static func entry(_ line: String, number: Int, timeZone: TimeZone) throws(LineProblem) -> Entry {
        func problem(_ message: String) -> LineProblem { LineProblem(line: number, message: message) }
        var fields = Fields(line)
        guard let principals = fields.next()?.replacingOccurrences(of: "\"", with: ""), !principals.isEmpty else {
            throw problem("no principals")
        }
        guard var next = fields.next() else { throw problem("no key after the principals") }
        var namespaces: String?
        var validAfter: (Date, String)?
        var validBefore: (Date, String)?
        if !keyTypes.contains(next), !refusedKeyTypes.contains(next) {
            for option in splitOptions(next) {
                let (name, value) = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init).pair
                switch name.lowercased() {
                case "cert-authority":
                    throw problem("cert-authority lines are not supported; list each signer's own key")
                case "namespaces":
                    guard let value, !value.isEmpty else { throw problem("namespaces= needs a value") }
                    namespaces = value
                case "valid-after", "valid-before":
                    guard let value, let date = Timestamp.parse(value, timeZone: timeZone) else {
                        throw problem("\(name)=\(value ?? "") is not YYYYMMDD[HHMM[SS]][Z]")
                    }
                    if name.lowercased() == "valid-after" { validAfter = (date, value) } else { validBefore = (date, value) }
                default:
                    throw problem("unknown option '\(name)'")
                }
            }
            guard let type = fields.next() else { throw problem("no key type after the options") }
            next = type
        }
        guard keyTypes.contains(next) else {
            throw problem("key type \(next) is not accepted; use ssh-ed25519, ecdsa-sha2-nistp256 or ssh-rsa")
        }
        guard let base64 = fields.next() else { throw problem("no key after \(next)") }
        let key: SSHPublicKey
        do {
            key = try SSHPublicKey(type: next, base64: base64)
        } catch {
            throw problem(error.description)
        }
        if case .rsa(let bits) = key.kind, bits < 2048 {
            throw problem("the RSA key has \(bits) bits; at least 2048 are required")
        }
        return Entry(principals: principals, key: key, namespaces: namespaces,
                     validAfter: validAfter, validBefore: validBefore, line: number)
    }

    /// Options are comma-separated; commas inside double quotes belong to the value.
    private static func splitOptions(_ text: String) -> [String] {
        var options: [String] = [], current = "", quoted = false
        for character in text {
            switch character {
            case "\"": quoted.toggle()
            case "," where !quoted:
                options.append(current)
                current = ""
            default: current.append(character)
            }
        }
        options.append(current)
        return options.filter { !$0.isEmpty }
    }
}

/// Every line of an allowed_signers file that could not be read.
public struct AllowedSignersError: Error, Sendable, CustomStringConvertible {
    public let problems: [AllowedSigners.LineProblem]
    public var description: String { problems.map(\.description).joined(separator: "; ") }
}

/// Space-separated fields where a double-quoted run (spaces included) stays in one field;
/// the quotes are kept for the field's own reader to remove.
private struct Fields {
    private var rest: Substring
    init(_ line: String) { rest = Substring(line) }

    mutating func next() -> String? {
        rest = rest.drop { $0 == " " || $0 == "\t" }
        guard !rest.isEmpty else { return nil }
        var field = "", quoted = false
        while let character = rest.first {
            if !quoted, character == " " || character == "\t" { break }
            if character == "\"" { quoted.toggle() }
            field.append(character)
            rest = rest.dropFirst()
        }
        return field
    }
}

private extension Array where Element == String {
    /// The name and value of `name=value`; an empty option ("," doubled, a bare "=") has an
    /// empty name, which no option has.
    var pair: (String, String?) { (first ?? "", count > 1 ? self[1] : nil) }
}
