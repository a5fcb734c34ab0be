/// Which repository URLs deferred hands to `git fetch` on a host. git also speaks transports
/// that run commands (`ext::`) and reads a leading `-` as an option, so only the plain forms pass.
public enum CloneURL {
    public static func isAllowed(_ url: String) -> Bool {
        guard !url.isEmpty, !url.hasPrefix("-"), !url.unicodeScalars.contains(where: isRefused) else { return false }
        for scheme in ["https://", "http://", "ssh://", "git://", "file://"] where url.hasPrefix(scheme) {
            return url.utf8.count > scheme.utf8.count
        }
        if url.hasPrefix("/") { return true }
        // scp-like: user@host:path, with no "::" transport marker.
        if let at = url.firstIndex(of: "@"), let colon = url[at...].firstIndex(of: ":"), !url.contains("::") {
            return url.distance(from: url.startIndex, to: at) > 0 && url.index(after: colon) < url.endIndex
        }
        return false
    }

    /// Whitespace and control characters, looked up by scalar: ASCII ones by value, which
    /// is all a URL usually holds (the Unicode tables cost more than the rest of the check).
    private static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return scalar.value < 0x21 || scalar.value == 0x7f }
        return scalar.properties.isWhitespace
    }
}
