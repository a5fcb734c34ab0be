import Foundation

/// The body of `POST /projects/{project}/scripts`: `{"script", "signature", "interpreter"?}`.
/// Fields are optional here so that the controller can say which one is missing.
public struct ScriptPost: Sendable, Codable, Equatable {
    public var script: String?
    public var signature: String?
    public var interpreter: String?

    public init(script: String?, signature: String?, interpreter: String? = nil) {
        self.script = script
        self.signature = signature
        self.interpreter = interpreter
    }

    /// Nil for a body that is not a JSON object of this shape.
    public static func parse(_ body: Data) -> ScriptPost? {
        try? JSONDecoder().decode(ScriptPost.self, from: body)
    }

    /// The same fields always encode to the same bytes, however the posted JSON was spaced
    /// or ordered: what idempotency keys compare.
    public var canonical: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) ?? Data()
    }
}
