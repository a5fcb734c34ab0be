import Foundation

/// The parts of GitHub's `push` payload that deferred reads.
public struct PushEvent: Sendable, Equatable, Decodable {
    public struct Repository: Sendable, Equatable, Decodable {
        public var fullName: String
        public var cloneURL: String?
        public var defaultBranch: String?

        private enum CodingKeys: String, CodingKey {
            case fullName = "full_name", cloneURL = "clone_url", defaultBranch = "default_branch"
        }
    }

    public struct Pusher: Sendable, Equatable, Decodable {
        public var name: String?
    }

    public var ref: String
    public var after: String
    public var deleted: Bool?
    public var repository: Repository
    public var pusher: Pusher?

    /// Parses a payload. A body that is not JSON (RFC 8259, strictly: see JSONFieldReader) or a
    /// payload without the fields a push has is a `PushRejection.malformed` carrying what was
    /// missing. Only the fields above are read; nothing is built for the rest of the payload.
    public static func parse(_ body: Data) throws(PushRejection) -> PushEvent {
        let values: [JSONFieldReader.Value?]
        do { values = try fields.read(body) } catch { throw .malformed("the body is not valid JSON: \(error)") }
        var read = FieldValues(values: values)
        guard read.next() == .object else { throw .malformed("the payload is not a JSON object") }
        let ref = try read.string("ref"), after = try read.string("after"), deleted = try read.bool("deleted")
        guard try read.object("repository", required: true) else { throw .malformed("the payload has no 'repository'") }
        let repository = Repository(fullName: try read.string("repository.full_name"), cloneURL: try read.optionalString("repository.clone_url"),
                                    defaultBranch: try read.optionalString("repository.default_branch"))
        let pusher = try read.object("pusher", required: false) ? Pusher(name: try read.optionalString("pusher.name")) : nil
        return PushEvent(ref: ref, after: after, deleted: deleted, repository: repository, pusher: pusher)
    }

    /// The paths `parse` reads, in the order it takes them.
    private static let fields = JSONFieldReader(paths: [
        [], ["ref"], ["after"], ["deleted"], ["repository"], ["repository", "full_name"], ["repository", "clone_url"],
        ["repository", "default_branch"], ["pusher"], ["pusher", "name"],
    ])

    /// The read values taken in order, each checked for the type its field has.
    private struct FieldValues {
        let values: [JSONFieldReader.Value?]
        var index = 0

        mutating func next() -> JSONFieldReader.Value? {
            defer { index += 1 }
            return values[index]
        }

        mutating func string(_ path: String) throws(PushRejection) -> String {
            guard let value = next() else { throw .malformed("the payload has no '\(path)'") }
            guard case .string(let text) = value else { throw .malformed("'\(path)' has the wrong type") }
            return text
        }

        mutating func optionalString(_ path: String) throws(PushRejection) -> String? {
            switch next() {
            case nil, .null: return nil
            case .string(let text): return text
            default: throw .malformed("'\(path)' has the wrong type")
            }
        }

        mutating func bool(_ path: String) throws(PushRejection) -> Bool? {
            switch next() {
            case nil, .null: return nil
            case .bool(let flag): return flag
            default: throw .malformed("'\(path)' has the wrong type")
            }
        }

        /// Whether an object is there: missing is false, and so is null where it is optional.
        mutating func object(_ path: String, required: Bool) throws(PushRejection) -> Bool {
            switch next() {
            case .object: return true
            case nil: return false
            case .null where !required: return false
            default: throw .malformed("'\(path)' has the wrong type")
            }
        }
    }

    /// What to do with this push for `project`: a trigger to queue, or why it is ignored.
    public func decide(for project: ProjectConfig, delivery: String) throws(PushRejection) -> PushDecision {
        guard GitRefName.isValid(ref) else {
            throw .malformed("ref '\(ref)' is not a valid git ref name")
        }
        if deleted == true || after.utf8.allSatisfy({ $0 == UInt8(ascii: "0") }) {
            return .ignore("the push deletes \(ref); there is nothing to run")
        }
        guard ref.hasPrefix("refs/heads/") else {
            return .ignore("\(ref) is not a branch; deferred runs pushes to branches only")
        }
        guard after.utf8.count == 40, after.utf8.allSatisfy({ Hex.nibble($0) != nil }) else {
            throw .malformed("'after' is not a 40-digit commit SHA")
        }
        let branch = String(ref.dropFirst("refs/heads/".count))
        let patterns = project.branches.isEmpty ? repository.defaultBranch.map { [$0] } ?? [] : project.branches
        guard BranchGlob.allows(branch, patterns: patterns) else {
            let listed = patterns.isEmpty ? "the project lists no branches and the payload names no default branch"
                                          : "branches \(patterns)"
            return .ignore("branch '\(branch)' does not match project '\(project.name)': \(listed)")
        }
        guard let cloneURL = project.cloneURL ?? repository.cloneURL else {
            throw .malformed("the payload has no repository.clone_url and project '\(project.name)' sets no clone_url")
        }
        guard CloneURL.isAllowed(cloneURL) else {
            throw .malformed("repository.clone_url '\(cloneURL)' is not a URL deferred fetches")
        }
        return .run(PushTrigger(
            repository: repository.fullName, ref: ref, commit: after.lowercased(), delivery: delivery,
            pusher: pusher?.name ?? "", cloneURL: cloneURL
        ))
    }
}

public enum PushDecision: Sendable, Equatable {
    case run(PushTrigger)
    case ignore(String)
}

public enum PushRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let why): why
        }
    }
}

/// git's rules for ref names (`git check-ref-format`), so a ref that git would refuse never
/// reaches a host.
public enum GitRefName {
    public static func isValid(_ ref: String) -> Bool {
        // One pass over the bytes: every rule is about ASCII, and a multi-byte character's
        // bytes are all ≥ 0x80.
        let bytes = ref.utf8
        guard ref.hasPrefix("refs/"), bytes.count <= 1024, bytes.last != UInt8(ascii: "/"), bytes.last != UInt8(ascii: ".")
        else { return false }
        var previous: UInt8 = 0
        var componentStart = bytes.startIndex
        for index in bytes.indices {
            let byte = bytes[index]
            if byte < 0x20 || byte == 0x7F || forbidden.contains(byte) { return false }
            switch (previous, byte) {
            case (UInt8(ascii: "."), UInt8(ascii: ".")), (UInt8(ascii: "@"), UInt8(ascii: "{")), (UInt8(ascii: "/"), UInt8(ascii: "/")),
                 (UInt8(ascii: "/"), UInt8(ascii: ".")):
                return false
            default: break
            }
            if byte == UInt8(ascii: "/") {
                if bytes[componentStart..<index].reversed().starts(with: lockSuffix.reversed()) { return false }
                componentStart = bytes.index(after: index)
            }
            previous = byte
        }
        return !bytes[componentStart...].reversed().starts(with: lockSuffix.reversed())
    }

    /// Bytes git refuses anywhere in a ref name.
    private static let forbidden = Array(" ~^:?*[\\".utf8)
    private static let lockSuffix = Array(".lock".utf8)
}
