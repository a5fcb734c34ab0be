import CLZ4
import Foundation

/// LZ4's block format, the one place liblz4 is called from: the original's length (4 bytes,
/// little-endian), then the block. What is decompressed comes from the store, but is read as if
/// hostile all the same: a block that is cut or corrupt, or a length past `limit` or past what
/// the block could hold, is an error, never a trap or an allocation the bytes do not justify.
enum LZ4Block {
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// Shorter than its length, a length the block cannot reach, or a block liblz4 refused.
        case corrupt
        /// The original would be larger than the limit it was read with.
        case tooLarge(limit: Int)

        var description: String {
            switch self {
            case .corrupt: "the compressed data is cut or corrupt"
            case .tooLarge(let limit): "the compressed data decompresses past \(limit) bytes"
            }
        }
    }

    /// LZ4 never expands a byte of a block into more than 255.
    private static let widestExpansion = 255

    /// `data` compressed at LZ4's default speed. Nil past what LZ4 takes (about 2 GB).
    static func compress(_ data: Data) -> Data? {
        guard data.count <= Int(LZ4_MAX_INPUT_SIZE) else { return nil }
        let bound = Int(LZ4_compressBound(Int32(data.count)))
        var out = Data(count: 4 + bound)
        let written = out.withUnsafeMutableBytes { target -> Int32 in
            let target = target.bindMemory(to: CChar.self)
            for i in 0..<4 { target[i] = CChar(truncatingIfNeeded: data.count >> (8 * i)) }
            return data.withUnsafeBytes { source in
                LZ4_compress_default(source.bindMemory(to: CChar.self).baseAddress, target.baseAddress! + 4,
                                     Int32(data.count), Int32(bound))
            }
        }
        guard written > 0 else { return nil }
        out.count = 4 + Int(written)
        return out
    }

    /// The bytes `data` was made from, at most `limit` of them.
    static func decompress(_ data: Data, limit: Int) throws(Failure) -> Data {
        guard data.count >= 4 else { throw .corrupt }
        let length = data.prefix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let block = data.dropFirst(4)
        guard length <= limit else { throw .tooLarge(limit: limit) }
        guard block.count <= Int(Int32.max), length <= block.count * Self.widestExpansion else { throw .corrupt }
        var out = Data(count: length)
        let produced = out.withUnsafeMutableBytes { target in
            block.withUnsafeBytes { source in
                LZ4_decompress_safe(source.bindMemory(to: CChar.self).baseAddress, target.bindMemory(to: CChar.self).baseAddress,
                                    Int32(source.count), Int32(length))
            }
        }
        guard produced == length else { throw .corrupt }
        return out
    }
}
