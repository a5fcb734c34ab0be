/// How a posted script is run on the host: by the interpreter the client named, by its own
/// shebang line, or by the project's first interpreter. Only what the project lists runs.
public enum Interpreter: Sendable, Equatable, Codable {
    /// The host runs the script file itself; its shebang names an allowed interpreter.
    case shebang(String)
    /// The host runs `program script`.
    case program(String)

    /// What the host is given: a program to run the script with, or "" for the shebang.
    public var remoteArgument: String {
        switch self {
        case .shebang: ""
        case .program(let program): program
        }
    }

    public var name: String {
        switch self {
        case .shebang(let program), .program(let program): program
        }
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case notAllowed(String, allowed: [String])

        public var description: String {
            switch self {
            case .notAllowed(let program, let allowed):
                "the interpreter '\(program)' is not allowed for this project; it allows \(allowed.joined(separator: ", "))"
            }
        }
    }

    /// Picks how to run `script`: `requested` first, then the shebang, then `allowed[0]`.
    public static func choose(for script: String, requested: String?, allowed: [String]) throws(Refusal) -> Interpreter {
        if let requested {
            guard allowed.contains(requested) else { throw .notAllowed(requested, allowed: allowed) }
            return .program(requested)
        }
        if let program = shebangProgram(script) {
            guard permits(program, allowed: allowed) else { throw .notAllowed(program, allowed: allowed) }
            return .shebang(program)
        }
        guard let first = allowed.first else { throw .notAllowed("(none)", allowed: allowed) }
        return .program(first)
    }

    /// The program a `#!` line runs: its path, or for `#!/usr/bin/env NAME` the name.
    static func shebangProgram(_ script: String) -> String? {
        guard script.hasPrefix("#!") else { return nil }
        let line = script.dropFirst(2).prefix { $0 != "\n" && $0 != "\r" }
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = words.first else { return nil }
        if first.hasSuffix("/env"), let name = words.dropFirst().first(where: { !$0.hasPrefix("-") }) { return name }
        return first
    }

    /// A listed path allows exactly itself; a listed name allows itself and any path ending in it.
    static func permits(_ program: String, allowed: [String]) -> Bool {
        allowed.contains { entry in
            entry == program || (!entry.contains("/") && program.hasSuffix("/" + entry))
        }
    }

    /// An absolute path or a plain program name, without spaces or shell syntax.
    public static func isWellFormed(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/._+-".contains($0)) }
            && (text.hasPrefix("/") || !text.contains("/"))
    }
}
