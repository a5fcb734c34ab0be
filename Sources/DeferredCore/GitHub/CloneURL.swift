/// Which repository URLs deferred hands to `git fetch` on a host. git also speaks transports
/// that run commands (`ext::`) and reads a leading `-` as an option, so only the plain forms pass.
public enum CloneURL {
    public static func isAllowed(_ url: String) -> Bool {
        guard !url.isEmpty, !url.hasPrefix("-"),
              !url.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } ?? false })
        else { return false }
        for scheme in ["https://", "http://", "ssh://", "git://", "file://"] where url.hasPrefix(scheme) {
            return url.count > scheme.count
        }
        if url.hasPrefix("/") { return true }
        // scp-like: user@host:path, with no "::" transport marker.
        if let at = url.firstIndex(of: "@"), let colon = url[at...].firstIndex(of: ":"), !url.contains("::") {
            return url.distance(from: url.startIndex, to: at) > 0 && url.index(after: colon) < url.endIndex
        }
        return false
    }
}
