import HTTPTypes

/// CORS for one project's routes, from its `allowed_origins`. Hummingbird's CORSMiddleware
/// takes one origin rule for a whole route group; here the rule depends on the project the
/// URL names, so the few headers are written here.
struct OriginPolicy: Sendable {
    let allowed: [String]
    /// Whether an unconfigured project answers every origin (result URLs: the token is the
    /// secret) or none (script posts: a page must be listed to post).
    let openWhenUnconfigured: Bool

    static let exposed = "Retry-After"

    /// Whether a request with this `Origin` may go on. Requests without one (curl, the CLI,
    /// GitHub) are not browsers' cross-origin requests and always may.
    func permits(_ origin: String?) -> Bool {
        guard let origin else { return true }
        if allowed.isEmpty { return openWhenUnconfigured }
        return allowed.contains("*") || allowed.contains(origin)
    }

    /// The headers of an answer to a request from `origin`; none when the origin is refused.
    func headers(for origin: String?) -> HTTPFields {
        guard let origin, permits(origin) else { return [:] }
        let everyone = allowed.isEmpty || allowed.contains("*")
        var fields: HTTPFields = [
            .accessControlAllowOrigin: everyone ? "*" : origin,
            .accessControlExposeHeaders: Self.exposed,
        ]
        if !everyone { fields[.vary] = "Origin" }
        return fields
    }

    /// The answer headers of a preflight (`OPTIONS`) for `methods`.
    func preflightHeaders(for origin: String?, methods: String, requestHeaders: String) -> HTTPFields {
        var fields = headers(for: origin)
        guard !fields.isEmpty else { return fields }
        fields[.accessControlAllowMethods] = methods
        fields[.accessControlAllowHeaders] = requestHeaders
        fields[.accessControlMaxAge] = "3600"
        return fields
    }
}
