import DeferredRunner
import Foundation

/// A start or reattach exec's stdout as a host sends it (`JobStream`): framed output, then the
/// collect stream, in two pieces so that a header or a frame can straddle them. Every byte of
/// output handed on must have come in: a frame's announced size never conjures bytes.
enum JobStreamFuzzing {
    static func run(_ bytes: [UInt8]) {
        var stream = JobStream()
        var handedOn = 0
        var collect: CollectStream?
        let base = TarFuzzing.scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
        for piece in [bytes[..<split], bytes[split...]] {
            stream.feed(piece) { part in
                switch part {
                case .stdout(let out), .stderr(let out):
                    handedOn += out.count
                case .collectBegins:
                    precondition(collect == nil, "a second collect stream began")
                    collect = TarFuzzing.unpacker(in: base).map { CollectStream(unpacker: $0) }
                case .collect(let more):
                    handedOn += more.count
                    _ = collect?.feed(more)
                }
            }
        }
        precondition(handedOn <= bytes.count, "the stream handed on more bytes than came in")
        _ = (collect?.finish(), stream.malformed)
    }
}
