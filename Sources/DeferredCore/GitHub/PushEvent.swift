import Foundation

/// The parts of GitHub's `push` payload that deferred reads.
public struct PushEvent: Sendable, Decodable {
    public struct Repository: Sendable, Decodable {
        public var fullName: String
        public var cloneURL: String?
        public var defaultBranch: String?

        private enum CodingKeys: String, CodingKey {
            case fullName = "full_name", cloneURL = "clone_url", defaultBranch = "default_branch"
        }
    }

    public struct Pusher: Sendable, Decodable {
        public var name: String?
    }

    public var ref: String
    public var after: String
    public var deleted: Bool?
    public var repository: Repository
    public var pusher: Pusher?

    /// Parses a payload. Malformed JSON or a payload without the fields a push has is a
    /// `PushRejection.malformed` carrying what was missing.
    public static func parse(_ body: Data) throws(PushRejection) -> PushEvent {
        do {
            return try JSONDecoder().decode(PushEvent.self, from: body)
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw .malformed("the payload has no '\(path)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw .malformed("'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw .malformed("the body is not valid JSON")
        }
    }

    /// What to do with this push for `project`: a trigger to queue, or why it is ignored.
    public func decide(for project: ProjectConfig, delivery: String) throws(PushRejection) -> PushDecision {
        guard GitRefName.isValid(ref) else {
            throw .malformed("ref '\(ref)' is not a valid git ref name")
        }
        if deleted == true || after.allSatisfy({ $0 == "0" }) {
            return .ignore("the push deletes \(ref); there is nothing to run")
        }
        guard ref.hasPrefix("refs/heads/") else {
            return .ignore("\(ref) is not a branch; deferred runs pushes to branches only")
        }
        guard after.count == 40, after.allSatisfy({ $0.isHexDigit }) else {
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
        guard ref.hasPrefix("refs/"), !ref.hasSuffix("/"), !ref.hasSuffix("."), ref != "@",
              !ref.contains(".."), !ref.contains("@{"), !ref.contains("//"), ref.utf8.count <= 1024
        else { return false }
        for scalar in ref.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7f { return false }
            if " ~^:?*[\\".unicodeScalars.contains(scalar) { return false }
        }
        for component in ref.split(separator: "/") {
            if component.hasPrefix(".") || component.hasSuffix(".lock") { return false }
        }
        return true
    }
}
