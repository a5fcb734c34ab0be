import Hummingbird
import Synchronization

/// The paths the router serves and the methods of each, learnt once its routes are added: a
/// request for a known path with another method is answered 405 with `Allow`, not 404.
final class KnownRoutes: Sendable {
    private struct Route {
        /// `{name}` matches one part, `**` the rest (one part or more), anything else itself.
        let parts: [String]
        let method: String
    }

    private let routes = Mutex<[Route]>([])

    func learn(_ descriptions: [Router<DeferredRequestContext>.RouteDescription]) {
        routes.withLock { $0 = descriptions.map { Route(parts: Self.parts("\($0.path)"), method: $0.method.rawValue) } }
    }

    /// The methods served at `path`, sorted; empty for a path nothing serves.
    func methods(at path: String) -> [String] {
        let parts = Self.parts(path)
        return Set(routes.withLock { $0 }.filter { Self.matches($0.parts, parts[...]) }.map(\.method)).sorted()
    }

    private static func parts(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    private static func matches(_ template: [String], _ path: ArraySlice<String>) -> Bool {
        guard let first = template.first else { return path.isEmpty }
        if first == "**" { return !path.isEmpty }
        guard let part = path.first else { return false }
        guard first.hasPrefix("{") && first.hasSuffix("}") || first == part else { return false }
        return matches(Array(template.dropFirst()), path.dropFirst())
    }
}
