/// A value read from a TOML 1.0 document.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case dateTime(TOMLDateTime)
    case array([TOMLValue])
    case table(TOMLTable)

    /// The word a config error uses for this kind of value.
    public var kindName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .bool: "a boolean"
        case .dateTime: "a date or time"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A TOML table that remembers the order its keys were written in, so errors and listings
/// follow the file.
public struct TOMLTable: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    /// The line each key was written on, and the line of the table's own `[header]`: where
    /// `check-config` points. Not part of a table's value (`==` ignores them).
    public var lines: [String: Int] = [:]
    public var line: Int?

    public init() {}

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool { a.keys == b.keys && a.values == b.values }

    /// Where `key` was written, else where the table starts.
    public func line(of key: String) -> Int? { lines[key] ?? line }

    public subscript(key: String) -> TOMLValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}
