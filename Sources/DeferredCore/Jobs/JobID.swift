/// A job's id: what logs, the store and `DEFERRED_JOB_ID` name it by.
public struct JobID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// A new id: `j-` and 20 hex digits of randomness, safe in paths and URLs.
    public static func make() -> JobID {
        JobID(rawValue: "j-" + RandomHex.make(bytes: 10))
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// The secret part of a job's result URL. 128 random bits, so knowing one result URL tells
/// nothing about another.
public struct ResultToken: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// Accepts only what `make` produces: 32 lowercase hex digits.
    public init?(validating text: String) {
        guard text.count == 32, text.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        rawValue = text
    }

    public static func make() -> ResultToken {
        ResultToken(rawValue: RandomHex.make(bytes: 16))
    }

    public var description: String { rawValue }
}

enum RandomHex {
    /// Hex of `bytes` bytes from the system's cryptographic generator.
    static func make(bytes: Int) -> String {
        // Eight bytes a draw: each draw is a getrandom call (intake makes two ids a delivery).
        var generator = SystemRandomNumberGenerator()
        var random: [UInt8] = []
        random.reserveCapacity(bytes + 8)
        while random.count < bytes { withUnsafeBytes(of: generator.next() as UInt64) { random += $0 } }
        return Hex.encode(random.prefix(bytes))
    }
}

