/// POSIX shell quoting. Every value that reaches a remote shell, above all anything from a
/// payload (refs, URLs, names), goes through here: inside single quotes nothing is special
/// but the quote itself, which is closed, escaped and reopened.
public enum ShellQuote {
    public static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    /// `sh -c '<script>' <name> '<arg1>' …`: a fixed script of ours, with every value passed
    /// as a positional parameter, never pasted into the script's text.
    public static func command(script: String, name: String, arguments: [String]) -> String {
        (["sh", "-c", quote(script), quote(name)] + arguments.map(quote)).joined(separator: " ")
    }
}

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
