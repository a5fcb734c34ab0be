import Foundation

/// The server's state is private to its user, whatever the umask: result tokens, webhook
/// payloads, scripts and artifacts live in these files. Folders are made 0700, files 0600.
public enum PrivateFiles {
    public static let folderMode: mode_t = 0o700
    public static let fileMode: mode_t = 0o600

    /// Makes `path` and any missing parents, each 0700; an existing folder keeps its mode,
    /// but the last one is set to 0700.
    public static func makeFolder(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, folderMode) != 0, errno != EEXIST {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
        guard chmod(path, folderMode) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Sets `path` to 0600 if it exists; a missing file is no error.
    public static func restrict(_ path: String) {
        _ = chmod(path, fileMode)
    }
}
