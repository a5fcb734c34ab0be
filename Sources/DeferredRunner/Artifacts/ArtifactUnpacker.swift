import Crypto
import DeferredCore
import DeferredFiles
import Foundation

/// Unpacks the tar stream of a job's `artifacts/` folder into a folder on the server, as it
/// arrives, checking every entry: no absolute path, no `..`, no link or device, nothing
/// outside the folder, and no more than the project's bytes and files. What it refuses is
/// listed with the reason; what it keeps gets its size and SHA-256.
public final class ArtifactUnpacker {
    public struct Limits: Sendable {
        public var maxBytes: Int64
        public var maxFiles: Int
        public init(maxBytes: Int64 = 1 << 30, maxFiles: Int = 10_000) {
            self.maxBytes = maxBytes
            self.maxFiles = maxFiles
        }
    }

    public let destination: String
    public let limits: Limits
    public private(set) var kept: [CollectedArtifacts.File] = []
    public private(set) var refused: [CollectedArtifacts.Refusal] = []
    /// Refusals past the first hundred are counted, not listed (a tar bomb lists little).
    public private(set) var refusedUnlisted = 0
    /// Set when the stream itself is broken (not a tar, cut short); the entries so far stay.
    public private(set) var streamError: String?

    /// Bytes of stream taken so far.
    public private(set) var streamBytes: Int64 = 0
    private var buffer: [UInt8] = []
    private var state = State.header
    private var totalBytes: Int64 = 0
    private var longName: String?
    private var paxPath: String?
    private var paxSize: Int64?
    private var finished = false

    private enum State {
        case header
        /// Data of an entry: written to `file` (nil: skipped), then the padding to 512.
        case data(remaining: Int64, padding: Int, file: OpenFile?)
        /// A GNU long name or a pax header: collected, then read.
        case meta(kind: UInt8, remaining: Int, padding: Int, collected: [UInt8])
        case padding(Int)
        case done
    }

    private final class OpenFile {
        let handle: FileHandle
        let path: String
        var hasher = SHA256()
        var written: Int64 = 0
        init(handle: FileHandle, path: String) {
            self.handle = handle
            self.path = path
        }
    }

    public init(destination: String, limits: Limits = Limits()) throws {
        self.destination = URL(fileURLWithPath: destination).standardizedFileURL.path
        self.limits = limits
        try PrivateFiles.makeFolder(self.destination)
    }

    /// Takes the next bytes of the stream.
    public func feed(_ bytes: some Collection<UInt8>) {
        guard streamError == nil else { return }
        streamBytes += Int64(bytes.count)
        buffer.append(contentsOf: bytes)
        var offset = 0
        defer { buffer.removeFirst(offset) }
        while streamError == nil {
            switch state {
            case .done:
                offset = buffer.count
                return
            case .header:
                guard buffer.count - offset >= 512 else { return }
                let block = Array(buffer[offset..<offset + 512])
                offset += 512
                header(block)
            case .data(let remaining, let padding, let file):
                let take = Int(min(Int64(buffer.count - offset), remaining))
                if take > 0, let file {
                    buffer.withUnsafeBufferPointer { all in
                        let chunk = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(all)[offset..<offset + take])
                        file.hasher.update(bufferPointer: chunk)
                        do { try file.handle.write(contentsOf: chunk) } catch { streamError = "cannot write \(file.path): \(error)" }
                    }
                    file.written += Int64(take)
                }
                offset += take
                let left = remaining - Int64(take)
                if left > 0 { state = .data(remaining: left, padding: padding, file: file); return }
                if let file { close(file) }
                state = padding > 0 ? .padding(padding) : .header
            case .meta(let kind, let remaining, let padding, var collected):
                let take = min(buffer.count - offset, remaining)
                collected += buffer[offset..<offset + take]
                offset += take
                guard take == remaining else { state = .meta(kind: kind, remaining: remaining - take, padding: padding, collected: collected); return }
                meta(kind, collected)
                state = padding > 0 ? .padding(padding) : .header
            case .padding(let count):
                let take = min(buffer.count - offset, count)
                offset += take
                guard take == count else { state = .padding(count - take); return }
                state = .header
            }
        }
    }

    /// False once reading on is pointless: the archive broke, or the stream ran so far past the
    /// limits (headers and padding allowed for) that it is a tar bomb, cut off here. After the
    /// archive's end, what follows (tar's padding to its record size) is read and dropped.
    public var wantsMore: Bool {
        let slack = Int64(limits.maxFiles) * 1536 + (16 << 20)
        return streamError == nil && streamBytes <= limits.maxBytes + slack
    }

    /// What results.json says of the stream: the files kept and everything refused, including
    /// the count of refusals past the listed ones and a broken or cut-off stream.
    public var collected: CollectedArtifacts {
        var refusals = refused
        if refusedUnlisted > 0 {
            refusals.append(.init(path: "…", reason: "\(refusedUnlisted) more entries refused, not listed"))
        }
        if let streamError { refusals.append(.init(path: "…", reason: streamError)) }
        return CollectedArtifacts(files: kept, refused: refusals)
    }

    /// The stream ended: a stream cut inside an entry is an error; the entry is dropped.
    /// Stopped early because of the limits, the rest is refused as a whole.
    public func finish() {
        if case .done = state {} else if streamError == nil, !wantsMore {
            streamError = "the archive ran on far past the limits of \(limits.maxBytes) bytes and \(limits.maxFiles) files; the rest was not read"
        }
        switch state {
        case .header, .done: break
        case .data(_, _, let file):
            if let file {
                try? file.handle.close()
                try? FileManager.default.removeItem(atPath: file.path)
                refuse(relative(file.path), "the archive ended inside this file")
            }
            streamError = streamError ?? "the archive was cut short"
        default:
            streamError = streamError ?? "the archive was cut short"
        }
        state = .done
    }

    // MARK: Entries

    private func header(_ block: [UInt8]) {
        if block.allSatisfy({ $0 == 0 }) {
            // Two zero blocks end an archive; one is enough to stop reading.
            state = .done
            return
        }
        guard Self.checksumMatches(block) else {
            streamError = "the stream is not a tar archive (bad header checksum)"
            return
        }
        guard let size = Self.number(block[124..<136]) else { streamError = "an entry has an unreadable size"; return }
        let type = block[156]
        let entrySize = paxSize ?? size
        let padding = Int((512 - entrySize % 512) % 512)
        switch type {
        case UInt8(ascii: "L"), UInt8(ascii: "x"):
            guard size <= 1 << 20 else { streamError = "an extended header is too large"; return }
            state = .meta(kind: type, remaining: Int(size), padding: Int((512 - size % 512) % 512), collected: [])
            return
        case UInt8(ascii: "g"), UInt8(ascii: "K"):
            state = .data(remaining: size, padding: Int((512 - size % 512) % 512), file: nil)
            return
        default:
            break
        }
        let name = longName ?? paxPath ?? Self.ustarName(block)
        longName = nil
        paxPath = nil
        paxSize = nil
        let skip = State.data(remaining: entrySize, padding: padding, file: nil)
        guard let path = Self.safePath(name) else {
            if Self.isCurrentFolder(name) { state = skip; return }
            refuse(name, name.hasPrefix("/") ? "absolute paths are not collected" : "paths that leave the artifacts folder are not collected")
            state = skip
            return
        }
        switch type {
        case UInt8(ascii: "5"):
            do { try makeFolders(path, includingLast: true) } catch { refuse(path, "\(error)") }
            state = skip
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
            state = open(path, size: entrySize, padding: padding) ?? skip
        case UInt8(ascii: "1"), UInt8(ascii: "2"):
            refuse(path, "links are not collected")
            state = skip
        default:
            refuse(path, "devices, fifos and other special files are not collected")
            state = skip
        }
    }

    private func meta(_ kind: UInt8, _ data: [UInt8]) {
        if kind == UInt8(ascii: "L") {
            longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            return
        }
        // pax records: "<length> <key>=<value>\n", the length counting the whole record.
        var rest = data[...]
        while !rest.isEmpty {
            guard let record = Self.paxRecord(&rest) else {
                streamError = "an extended header holds a malformed record"
                return
            }
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
            let value = String(decoding: record[record.index(after: equals)...], as: UTF8.self)
            if key == "path" { paxPath = value }
            if key == "size" {
                guard let size = Self.decimal(value) else {
                    streamError = "an extended header gives an unreadable size '\(value.prefix(40))'"
                    return
                }
                paxSize = size
            }
        }
    }

    /// Takes one pax record off the front of `rest`: its "key=value" bytes, or nil when the
    /// length is not a number, is too short to hold itself, or runs past the header.
    static func paxRecord(_ rest: inout ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let space = rest.prefix(20).firstIndex(of: UInt8(ascii: " ")),
              let length = decimal(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
              Int(length) <= rest.count else { return nil }
        let end = rest.startIndex + Int(length)
        // The record holds at least its length, the space and the closing newline.
        guard end - 1 > space, rest[end - 1] == UInt8(ascii: "\n") else { return nil }
        let record = rest[(space + 1)..<(end - 1)]
        rest = rest[end...]
        return record
    }

    /// Plain decimal digits only (no sign, no spaces), within Int64.
    static func decimal(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return Int64(text)
    }

    private func open(_ path: String, size: Int64, padding: Int) -> State? {
        guard kept.count < limits.maxFiles else {
            refuse(path, "past the limit of \(limits.maxFiles) files")
            return nil
        }
        // A subtraction, not an addition: a size from the header may be near Int64's end.
        guard size <= limits.maxBytes - totalBytes else {
            refuse(path, "past the limit of \(limits.maxBytes) bytes in all")
            return nil
        }
        do {
            try makeFolders(path, includingLast: false)
            let full = destination + "/" + path
            // O_EXCL | O_NOFOLLOW: never through a link, never over an earlier entry.
            let fd = Glibc.open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, PrivateFiles.fileMode)
            guard fd >= 0 else {
                refuse(path, errno == EEXIST ? "the archive holds this path twice" : "cannot be written (\(String(cString: strerror(errno))))")
                return nil
            }
            totalBytes += size
            return .data(remaining: size, padding: padding, file: OpenFile(handle: FileHandle(fileDescriptor: fd, closeOnDealloc: true), path: full))
        } catch {
            refuse(path, "\(error)")
            return nil
        }
    }

    private func close(_ file: OpenFile) {
        try? file.handle.close()
        kept.append(.init(path: relative(file.path), bytes: file.written, sha256: Hex.encode(file.hasher.finalize())))
    }

    /// Makes the folders of `path` one by one, refusing any that exists as something else.
    private func makeFolders(_ path: String, includingLast: Bool) throws {
        var parts = path.split(separator: "/").map(String.init)
        if !includingLast { parts.removeLast() }
        var current = destination
        for part in parts {
            current += "/" + part
            var info = stat()
            if lstat(current, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else { throw UnpackError("\(relative(current)) is not a folder") }
                continue
            }
            guard mkdir(current, PrivateFiles.folderMode) == 0 else { throw UnpackError("cannot make \(relative(current))") }
        }
    }

    private func refuse(_ path: String, _ reason: String) {
        if refused.count < 100 { refused.append(.init(path: path, reason: reason)) } else { refusedUnlisted += 1 }
    }

    private func relative(_ full: String) -> String {
        full.hasPrefix(destination + "/") ? String(full.dropFirst(destination.count + 1)) : full
    }

    struct UnpackError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Header fields

    /// The entry's path without `./`, or nil when it is absolute, climbs out, or is empty.
    static func safePath(_ name: String) -> String? {
        guard !name.hasPrefix("/"), !name.contains("\0") else { return nil }
        let parts = name.split(separator: "/").filter { $0 != "." }
        guard !parts.isEmpty, !parts.contains("..") else { return nil }
        return parts.joined(separator: "/")
    }

    static func isCurrentFolder(_ name: String) -> Bool {
        name.split(separator: "/").allSatisfy { $0 == "." }
    }

    static func ustarName(_ block: [UInt8]) -> String {
        let name = String(decoding: block[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        let isUstar = block[257..<262].elementsEqual(Array("ustar".utf8))
        let prefix = isUstar ? String(decoding: block[345..<500].prefix { $0 != 0 }, as: UTF8.self) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// Octal digits, or GNU's base-256 form (high bit set) for large values. Nil for what no
    /// size or checksum can be: a sign, a non-octal digit, a negative base-256 number, or a
    /// value past 2^55 (no archive is that large, and sums of such sizes cannot overflow).
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        if let first = field.first, first & 0x80 != 0 {
            // 0x80 marks a positive base-256 number; 0xff a negative one.
            guard first == 0x80 else { return nil }
            var value: Int64 = 0
            for byte in field.dropFirst() {
                guard value < 1 << 47 else { return nil }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        let digits = field.drop { $0 == UInt8(ascii: " ") }.prefix { $0 != 0 && $0 != UInt8(ascii: " ") }
        if digits.isEmpty { return 0 }
        guard digits.count <= 18, digits.allSatisfy({ (48...55).contains($0) }) else { return nil }
        return Int64(String(decoding: digits, as: UTF8.self), radix: 8)
    }

    static func checksumMatches(_ block: [UInt8]) -> Bool {
        guard let stored = number(block[148..<156]) else { return false }
        let sum = block.enumerated().reduce(Int64(0)) { $0 + Int64((148..<156).contains($1.offset) ? 32 : $1.element) }
        return sum == stored
    }
}
