/// xorshift64*: the same generated inputs at every run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

extension SeededGenerator {
    /// Characters that text escapes must handle: quotes, backslashes, slashes, every ASCII
    /// control character, and a few beyond ASCII.
    static let hostileCharacters: [Character] = Array("ab/\"\\ \u{7f}é€😀\r\n") + (0..<0x20).map { Character(Unicode.Scalar($0)!) }

    /// A string of up to `maxLength` of those.
    public mutating func hostileString(maxLength: Int = 12) -> String {
        String((0..<Int.random(in: 0...maxLength, using: &self)).map { _ in Self.hostileCharacters.randomElement(using: &self)! })
    }
}
