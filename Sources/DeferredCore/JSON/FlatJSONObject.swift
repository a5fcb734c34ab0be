/// A JSON object of string fields, written straight to bytes: for the small objects every
/// intake writes (the 202's answer, a push job's stored trigger), where JSONEncoder's
/// generic walk cost more than the request's parse. Strings are escaped as JSONEncoder escapes
/// them with `.withoutEscapingSlashes`, so the text is the same; fields come out in the order
/// they are added (add them sorted where the answer's keys must be).
public struct FlatJSONObject: Sendable {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]

    public init() {
        bytes.reserveCapacity(192)
    }

    public mutating func add(_ key: String, _ value: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        Self.write(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        Self.write(value, to: &bytes)
    }

    /// The object's text, closed.
    public var text: [UInt8] { bytes + [UInt8(ascii: "}")] }

    /// `string` quoted: `"` and `\` escaped, control characters as their short escapes or
    /// `\u00XX`; everything else, non-ASCII included, as its UTF-8.
    private static func write(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case ..<0x20:
                bytes.append(contentsOf: Array(#"\u00"#.utf8))
                bytes.append(Hex.digits[Int(byte >> 4)])
                bytes.append(Hex.digits[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
