/// Reads typed keys out of one TOML table, collecting every problem with the full key path
/// (`projects[1].timeout_minutes`) instead of stopping at the first.
struct TableReader {
    let table: TOMLTable
    let path: String
    private(set) var used: Set<String> = []
    var problems: [ConfigProblem]

    init(_ table: TOMLTable, path: String, problems: [ConfigProblem] = []) {
        self.table = table
        self.path = path
        self.problems = problems
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// `key` may index into an array (`branches[2]`): the line is the array's.
    mutating func problem(_ key: String, _ message: String, fix: String) {
        let base = key.split(separator: "[", maxSplits: 1).first.map(String.init) ?? key
        problems.append(ConfigProblem(key: keyPath(key), message: message, fix: fix, line: table.line(of: base)))
    }

    /// The label of the `index`th table of an array of tables, by its name where it has one:
    /// `hosts["builder"]`, else `hosts[0]`.
    static func label(_ array: String, _ table: TOMLTable, index: Int) -> String {
        if case .string(let name)? = table["name"], !name.isEmpty { return "\(array)[\"\(name)\"]" }
        return "\(array)[\(index)]"
    }

    private mutating func raw(_ key: String) -> TOMLValue? {
        used.insert(key)
        return table[key]
    }

    mutating func string(_ key: String) -> String? {
        switch raw(key) {
        case nil: return nil
        case .string(let s): return s
        case let other?:
            problem(key, "is \(other.kindName), not a string", fix: "write it in quotes")
            return nil
        }
    }

    mutating func bool(_ key: String) -> Bool? {
        switch raw(key) {
        case nil: return nil
        case .bool(let b): return b
        case let other?:
            problem(key, "is \(other.kindName), not true or false", fix: "write true or false without quotes")
            return nil
        }
    }

    mutating func requiredString(_ key: String, fix: String) -> String? {
        guard let s = string(key) else {
            if table[key] == nil { problem(key, "is missing", fix: fix) }
            return nil
        }
        guard !s.isEmpty else {
            problem(key, "is empty", fix: fix)
            return nil
        }
        return s
    }

    /// Whether the table has `key` at all (whatever its type).
    func has(_ key: String) -> Bool { table[key] != nil }

    mutating func requiredInteger(_ key: String, range: ClosedRange<Int>, fix: String) -> Int? {
        guard let value = integer(key, range: range) else {
            if table[key] == nil { problem(key, "is missing", fix: fix) }
            return nil
        }
        return value
    }

    mutating func integer(_ key: String, range: ClosedRange<Int>) -> Int? {
        switch raw(key) {
        case nil: return nil
        case .integer(let v) where range.contains(v): return v
        case .integer(let v):
            problem(key, "is \(v), outside \(range.lowerBound)...\(range.upperBound)", fix: "use a whole number in that range")
            return nil
        case let other?:
            problem(key, "is \(other.kindName), not a whole number", fix: "write a whole number without quotes")
            return nil
        }
    }

    /// A number of minutes or days: an integer or a float, at least `minimum`.
    mutating func number(_ key: String, minimum: Double, exclusive: Bool = false) -> Double? {
        let value: Double
        switch raw(key) {
        case nil: return nil
        case .integer(let v): value = Double(v)
        case .float(let v) where v.isFinite: value = v
        case let other?:
            problem(key, "is \(other.kindName), not a number", fix: "write a number without quotes")
            return nil
        }
        guard exclusive ? value > minimum : value >= minimum else {
            problem(key, "is \(value)", fix: "use a number \(exclusive ? "above" : "of at least") \(minimum)")
            return nil
        }
        return value
    }

    mutating func stringArray(_ key: String) -> [String]? {
        switch raw(key) {
        case nil: return nil
        case .array(let items):
            var out: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else {
                    problem("\(key)[\(i)]", "is \(item.kindName), not a string", fix: "list strings in quotes")
                    continue
                }
                out.append(s)
            }
            return out
        case let other?:
            problem(key, "is \(other.kindName), not an array", fix: "write a list such as [\"a\", \"b\"]")
            return nil
        }
    }

    mutating func subtable(_ key: String) -> TOMLTable? {
        switch raw(key) {
        case nil: return nil
        case .table(let t): return t
        case let other?:
            problem(key, "is \(other.kindName), not a table", fix: "write it as a [\(key)] section")
            return nil
        }
    }

    mutating func tableArray(_ key: String) -> [TOMLTable] {
        switch raw(key) {
        case nil: return []
        case .array(let items):
            var out: [TOMLTable] = []
            for (i, item) in items.enumerated() {
                if case .table(let t) = item { out.append(t) } else {
                    problem("\(key)[\(i)]", "is \(item.kindName), not a table", fix: "write each entry as a [[\(key)]] section")
                }
            }
            return out
        case let other?:
            problem(key, "is \(other.kindName)", fix: "write each entry as a [[\(key)]] section")
            return []
        }
    }

    /// Keys the file sets that nothing reads: most often a typo.
    mutating func reportUnknownKeys(known: Set<String> = []) {
        for key in table.keys where !used.contains(key) && !known.contains(key) {
            problem(key, "is not a key deferred knows", fix: "check the spelling against README's deferred.toml")
        }
    }
}
