/// What started a job. Stored with the job; its contract form goes into results.json.
public enum Trigger: Sendable, Equatable, Codable {
    case push(PushTrigger)
    case script(ScriptTrigger)

    private enum CodingKeys: String, CodingKey { case kind }

    public init(from decoder: any Decoder) throws {
        let kind = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .kind)
        switch kind {
        case "push": self = .push(try PushTrigger(from: decoder))
        case "script": self = .script(try ScriptTrigger(from: decoder))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.kind], debugDescription: "unknown trigger kind \(kind)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .push(let push):
            try c.encode("push", forKey: .kind)
            try push.encode(to: encoder)
        case .script(let script):
            try c.encode("script", forKey: .kind)
            try script.encode(to: encoder)
        }
    }

    /// The `trigger` object of results.json (DESIGN.md).
    public var resultsJSON: JSONValue {
        switch self {
        case .push(let p):
            .object([
                "kind": "push", "repository": .string(p.repository), "ref": .string(p.ref),
                "commit": .string(p.commit), "delivery": .string(p.delivery), "pusher": .string(p.pusher),
            ])
        case .script(let s):
            .object(["kind": "script", "sha256": .string(s.sha256), "signer": .string(s.signer)])
        }
    }
}

/// A push to run: the exact commit, where to fetch it from, and who pushed it.
public struct PushTrigger: Sendable, Equatable, Codable {
    public var repository: String
    public var ref: String
    /// 40 lowercase hex digits, checked at intake.
    public var commit: String
    public var delivery: String
    public var pusher: String
    /// Where the host fetches the commit from: the project's `clone_url` or the payload's.
    public var cloneURL: String

    public init(repository: String, ref: String, commit: String, delivery: String, pusher: String, cloneURL: String) {
        self.repository = repository
        self.ref = ref
        self.commit = commit
        self.delivery = delivery
        self.pusher = pusher
        self.cloneURL = cloneURL
    }

    private enum CodingKeys: String, CodingKey {
        case repository, ref, commit, delivery, pusher
        case cloneURL = "clone_url"
    }
}
