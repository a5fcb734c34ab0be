import DeferredRunner
import Foundation

/// Feeds bytes to the artifact unpacker as a host's tar stream, in two pieces so that a
/// header can straddle them, into a scratch folder emptied after each input.
enum TarFuzzing {
    /// One folder for the whole process: making one per input would cost more than the parse.
    nonisolated(unsafe) private static var scratch: String?

    static func run(_ bytes: [UInt8]) {
        let base = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        guard let unpacker = unpacker(in: base) else { return }
        let split = splitPoint(bytes)
        unpacker.feed(bytes[..<split])
        if unpacker.wantsMore { unpacker.feed(bytes[split...]) }
        unpacker.finish()
        _ = unpacker.collected
    }

    /// The collect command's stdout as a host sends it, header lines first, in two pieces.
    static func collect(_ bytes: [UInt8]) {
        let base = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        guard let unpacker = unpacker(in: base) else { return }
        var stream = CollectStream(unpacker: unpacker)
        let split = splitPoint(bytes)
        if stream.feed(bytes[..<split]) { _ = stream.feed(bytes[split...]) }
        unpacker.finish()
        _ = (stream.phase, stream.exitStatus, stream.resources, unpacker.collected)
    }

    static func unpacker(in base: String) -> ArtifactUnpacker? {
        try? ArtifactUnpacker(destination: base + "/out", limits: .init(maxBytes: 64 << 10, maxFiles: 20))
    }

    /// Where the input is cut in two: chosen by its first byte, so the fuzzer explores it.
    private static func splitPoint(_ bytes: [UInt8]) -> Int {
        bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
    }

    /// A scratch folder, one for the whole process.
    static func scratchFolder() -> String {
        scratch ?? {
            let shared = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
            let path = "\(shared)/deferred-fuzz-tar-\(getpid())"
            scratch = path
            return path
        }()
    }
}
