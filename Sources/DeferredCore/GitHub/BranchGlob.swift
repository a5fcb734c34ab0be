/// A branch filter as GitHub Actions writes them: `*` matches within one path segment, `**`
/// across segments, `?` one character, `[abc]` a class; a leading `!` excludes.
public struct BranchGlob: Sendable, Equatable {
    public let pattern: String

    public init(_ pattern: String) { self.pattern = pattern }

    public var isNegated: Bool { pattern.hasPrefix("!") }

    /// What makes the pattern one that cannot mean what was meant, or nil: a `[` no `]` closes
    /// (it would only ever match a literal `[`), an empty class, a range written backwards, or
    /// nothing after `!`.
    public var problem: String? {
        let body = Array(isNegated ? pattern.dropFirst() : Substring(pattern))
        if body.isEmpty { return isNegated ? "excludes nothing: '!' needs a pattern after it" : "is empty" }
        var i = 0
        while i < body.count {
            guard body[i] == "[" else { i += 1; continue }
            guard let close = body[(i + 1)...].firstIndex(of: "]") else {
                return "opens a class with '[' that no ']' closes"
            }
            var set = body[(i + 1)..<close]
            if set.first == "!" || set.first == "^" { set = set.dropFirst() }
            if set.isEmpty { return "has an empty class '[]'" }
            var k = set.startIndex
            while k < set.endIndex {
                if k + 2 < set.endIndex, set[k + 1] == "-" {
                    if set[k] > set[k + 2] { return "has the range '\(set[k])-\(set[k + 2])', which runs backwards" }
                    k += 3
                } else {
                    k += 1
                }
            }
            i = close + 1
        }
        return nil
    }

    public func matches(_ branch: String) -> Bool {
        let body = isNegated ? pattern.dropFirst() : Substring(pattern)
        // A plain name, as most projects list (`main`): the matcher could only compare it
        // character by character, at the cost of its tables on every push.
        if !body.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }) {
            return body == branch[...]
        }
        return BranchGlob.match(Array(body), Array(branch))
    }

    /// Whether `branch` passes a list of patterns: the last pattern that matches decides,
    /// so `["*", "!wip/*"]` takes everything but `wip/…`.
    public static func allows(_ branch: String, patterns: [String]) -> Bool {
        var allowed = false
        for glob in patterns.map(BranchGlob.init) where glob.matches(branch) {
            allowed = !glob.isNegated
        }
        return allowed
    }

    static func match(_ p: [Character], _ s: [Character]) -> Bool {
        // Iterative matcher with memo over (pattern index, string index).
        var memo: [Int: Bool] = [:]
        func go(_ i: Int, _ j: Int) -> Bool {
            let key = i * (s.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if i == p.count {
                result = j == s.count
            } else if p[i] == "*" {
                let doubled = i + 1 < p.count && p[i + 1] == "*"
                let next = doubled ? i + 2 : i + 1
                if go(next, j) {
                    result = true
                } else if j < s.count && (doubled || s[j] != "/") {
                    result = go(i, j + 1)
                } else {
                    result = false
                }
            } else if j == s.count {
                result = false
            } else if p[i] == "?" {
                result = s[j] != "/" && go(i + 1, j + 1)
            } else if p[i] == "[", let close = p[(i + 1)...].firstIndex(of: "]") {
                var set = p[(i + 1)..<close]
                let negate = set.first == "!" || set.first == "^"
                if negate { set = set.dropFirst() }
                var inSet = false
                var k = set.startIndex
                while k < set.endIndex {
                    if k + 2 < set.endIndex, set[k + 1] == "-" {
                        if set[k] <= s[j] && s[j] <= set[k + 2] { inSet = true }
                        k += 3
                    } else {
                        if set[k] == s[j] { inSet = true }
                        k += 1
                    }
                }
                result = inSet != negate && go(close + 1, j + 1)
            } else {
                result = p[i] == s[j] && go(i + 1, j + 1)
            }
            memo[key] = result
            return result
        }
        return go(0, 0)
    }
}
