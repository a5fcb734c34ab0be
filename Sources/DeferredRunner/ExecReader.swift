import DeferredSSH
import Foundation

/// The server's side of one start or reattach exec (`JobStream`), read on the session's queue:
/// the job's framed output goes on as it comes, the script's own stderr too, and the collect
/// stream that follows the command's end goes into a fresh unpacker of the job's artifacts.
struct ExecReader: ~Copyable {
    /// Where the artifacts are unpacked, and how much of them.
    let artifacts: String
    let limits: ArtifactUnpacker.Limits
    private var stream = JobStream()
    private var collect: CollectStream?
    /// What the host's stderr said while it collected (tar's complaints), its first 4 KiB.
    private(set) var collectSaid: [UInt8] = []
    /// The start's or reattach's own status, from its `c` line or its channel's exit.
    private(set) var verdict: Int?
    /// Why the collect stream could not be unpacked on the server (the artifacts folder could
    /// not be made): the job is collected again on its own.
    private var unwritable: String?

    init(artifacts: String, limits: ArtifactUnpacker.Limits) {
        self.artifacts = artifacts
        self.limits = limits
    }

    /// Takes one slice of the channel's output; answers whether to read on. `output` gets the
    /// job's output, and whether it counts towards the bytes of its files the server has (the
    /// script's own stderr does not: it is not in those files).
    mutating func take(_ slice: SSHChannelOutput, output: (SSHExecEvent, _ counted: Bool) -> Void) -> Bool {
        switch slice {
        case .exit(let exit):
            if verdict == nil { verdict = exit.status }
            output(.exit(exit), false)
            return true
        case .stderr(let bytes):
            if collect != nil || unwritable != nil {
                collectSaid += bytes.prefix(max(4096 - collectSaid.count, 0))
            } else {
                output(.stderr(Array(bytes)), false)
            }
            return true
        case .stdout(let bytes):
            var reading = true, parts: [JobStream.Part] = []
            let sane = stream.malformed == nil
            stream.feed(bytes) { parts.append($0) }
            if sane, let why = stream.malformed {
                // Said once, where the output stops: only the job itself can garble its stream.
                output(.stderr(Array("\n[deferred: the host's output stream for this job broke off (\(why)); the rest of its output is not kept, its files are collected]\n".utf8)), false)
            }
            for part in parts where reading {
                switch part {
                case .stdout(let piece): output(.stdout(Array(piece)), true)
                case .stderr(let piece): output(.stderr(Array(piece)), true)
                case .collectBegins(let said):
                    verdict = Int(said)
                    reading = begin()
                case .collect(let piece):
                    reading = collect?.feed(piece) ?? false
                }
            }
            return reading
        }
    }

    private mutating func begin() -> Bool {
        do {
            collect = try CollectStream.fresh(in: artifacts, limits: limits)
            return true
        } catch {
            unwritable = "\(error)"
            return false
        }
    }

    /// The collect stream as read, when the exec sent one and it could be unpacked.
    func finish() -> CollectStream.Read? {
        collect?.finish()
    }
}
