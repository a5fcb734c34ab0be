import Foundation

/// Reads the SSH wire encoding (RFC 4251 §5): big-endian uint32, length-prefixed strings,
/// mpints. Every read checks its bounds; a short buffer is a malformed input, never a crash.
struct SSHWireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: [UInt8] { Array(bytes[offset...]) }

    mutating func fixed(_ count: Int) throws(SSHWireError) -> [UInt8] {
        guard count >= 0, bytes.count - offset >= count else { throw .truncated }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func uint32() throws(SSHWireError) -> UInt32 {
        try fixed(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func string() throws(SSHWireError) -> [UInt8] {
        let length = try uint32()
        guard length <= UInt32(bytes.count - offset) else { throw .truncated }
        return try fixed(Int(length))
    }

    mutating func text() throws(SSHWireError) -> String {
        let raw = try string()
        guard let text = String(validating: raw, as: UTF8.self) else { throw .notText }
        return text
    }

    /// An unsigned mpint's magnitude, without the sign-padding zero byte.
    mutating func positiveMPInt() throws(SSHWireError) -> [UInt8] {
        let raw = try string()
        if let first = raw.first, first & 0x80 != 0 { throw .negativeInteger }
        return Array(raw.drop { $0 == 0 })
    }
}

enum SSHWireError: Error, Equatable {
    case truncated
    case notText
    case negativeInteger
}

/// Writes the SSH wire encoding; the counterpart of `SSHWireReader`.
struct SSHWireWriter {
    private(set) var bytes: [UInt8] = []

    mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }

    mutating func uint32(_ value: UInt32) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    mutating func string(_ data: some Collection<UInt8>) {
        uint32(UInt32(data.count))
        raw(data)
    }

    mutating func string(_ text: String) { string(Array(text.utf8)) }

    /// A non-negative integer from its big-endian magnitude.
    mutating func mpint(_ magnitude: some Collection<UInt8>) {
        let trimmed = Array(magnitude.drop { $0 == 0 })
        string(trimmed.first.map { $0 & 0x80 != 0 } == true ? [0] + trimmed : trimmed)
    }
}
