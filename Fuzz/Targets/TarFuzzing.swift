import DeferredRunner
import Foundation

/// Feeds bytes to the artifact unpacker as a host's tar stream, in two pieces so that a
/// header can straddle them, into a scratch folder emptied after each input.
enum TarFuzzing {
    /// One folder for the whole process: making one per input would cost more than the parse.
    nonisolated(unsafe) private static var scratch: String?

    static func run(_ bytes: [UInt8]) {
        let base = scratch ?? {
            let shared = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
            let path = "\(shared)/deferred-fuzz-tar-\(getpid())"
            scratch = path
            return path
        }()
        defer { try? FileManager.default.removeItem(atPath: base) }
        guard let unpacker = try? ArtifactUnpacker(destination: base + "/out", limits: .init(maxBytes: 64 << 10, maxFiles: 20)) else { return }
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
        unpacker.feed(bytes[..<split])
        if unpacker.wantsMore { unpacker.feed(bytes[split...]) }
        unpacker.finish()
        _ = unpacker.collected
    }
}
