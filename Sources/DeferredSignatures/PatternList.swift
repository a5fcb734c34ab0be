/// OpenSSH's pattern lists (ssh_config(5) PATTERNS): comma-separated patterns with `*` and
/// `?`; a pattern starting with `!` excludes what it matches, whatever else matches.
enum PatternList {
    static func matches(_ text: String, list: String) -> Bool {
        var matched = false
        for pattern in list.split(separator: ",") {
            if pattern.hasPrefix("!") {
                if glob(Array(text), Array(pattern.dropFirst())) { return false }
            } else if glob(Array(text), Array(pattern)) {
                matched = true
            }
        }
        return matched
    }

    private static func glob(_ text: [Character], _ pattern: [Character]) -> Bool {
        var t = 0, p = 0, star: Int?, mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                t += 1; p += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p; mark = t; p += 1
            } else if let s = star {
                p = s + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
