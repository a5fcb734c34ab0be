/// One thing wrong in `deferred.toml`: the key at fault, what is wrong, and how to fix it.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public let key: String
    public let message: String
    public let fix: String
    /// Where in the file: the key's line, or its table's when the key is missing. Nil only for
    /// what the file lacks altogether, or what lies outside it (the environment).
    public let line: Int?

    public init(key: String, message: String, fix: String, line: Int? = nil) {
        self.key = key
        self.message = message
        self.fix = fix
        self.line = line
    }

    public var description: String { "\(line.map { "line \($0): " } ?? "")\(key): \(message) — \(fix)" }
}

/// Why a configuration could not be used. Lists every problem, not just the first.
public enum ConfigError: Error, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case syntax(path: String, TOMLParser.SyntaxError)
    case invalid(path: String, [ConfigProblem])

    public var problems: [ConfigProblem] {
        switch self {
        case .unreadable(let path, let reason):
            [ConfigProblem(key: path, message: "cannot be read: \(reason)", fix: "pass an existing file with --config")]
        case .syntax(let path, let error):
            [ConfigProblem(key: path, message: error.message, fix: "correct the TOML syntax on that line", line: error.line)]
        case .invalid(_, let problems):
            problems
        }
    }

    public var description: String {
        let path: String = switch self {
        case .unreadable(let p, _), .syntax(let p, _), .invalid(let p, _): p
        }
        let lines = problems.map { "  - \($0)" }.joined(separator: "\n")
        return "\(path) has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n\(lines)"
    }
}
