import DeferredCore
import Foundation

/// The collect command's stdout: a line with the phase and the command's exit status, a line
/// with its resources, then the tar stream for the unpacker. The host's words are checked,
/// never trusted: a header line is at most 256 bytes, a value that does not parse is none.
public struct CollectStream {
    public let unpacker: ArtifactUnpacker
    public private(set) var phase: String?
    public private(set) var exitStatus: Int?
    public private(set) var resources: JobResources?
    private var headers: [String] = []
    private var line: [UInt8] = []

    public init(unpacker: ArtifactUnpacker) {
        self.unpacker = unpacker
    }

    /// What the stream told, once it ended: the unpacker is finished here.
    public struct Read: Sendable {
        public var phase: String?
        public var exitStatus: Int?
        public var resources: JobResources?
        public var artifacts: CollectedArtifacts
    }

    public func finish() -> Read {
        unpacker.finish()
        return Read(phase: phase, exitStatus: exitStatus, resources: resources, artifacts: unpacker.collected)
    }

    /// A stream into an empty `folder`: what an earlier collect of the job unpacked there goes,
    /// this one unpacks the whole folder again.
    static func fresh(in folder: String, limits: ArtifactUnpacker.Limits) throws -> CollectStream {
        if FileManager.default.fileExists(atPath: folder) { try FileManager.default.removeItem(atPath: folder) }
        return CollectStream(unpacker: try ArtifactUnpacker(destination: folder, limits: limits))
    }

    /// Answers whether to read on.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> Bool {
        var rest = bytes
        while headers.count < 2 {
            guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                line += rest
                return line.count < 256
            }
            line += rest[..<newline]
            guard line.count <= 256 else { return false }
            headers.append(String(decoding: line, as: UTF8.self))
            line = []
            rest = rest[(newline + 1)...]
            read(headers.last!, number: headers.count)
        }
        unpacker.feed(rest)
        return unpacker.wantsMore
    }

    private mutating func read(_ header: String, number: Int) {
        let words = header.split(separator: " ")
        if number == 1 {
            phase = words.first.map(String.init) ?? ""
            // A status is what a shell can exit with: 0 to 255; anything else from the host is none.
            exitStatus = words.dropFirst().first.flatMap { Int($0) }.flatMap { (0...255).contains($0) ? $0 : nil }
        } else if words.first == "resources", words.count == 4 {
            resources = JobResources(times: Array(words[1...2]), memoryPeak: words[3] == "-" ? nil : words[3])
        }
    }
}
