import Foundation

/// SSH keys made by ssh-keygen for demo and test peers: signers, host keys, client keys.
public enum LocalKey {
    /// Makes an unencrypted ed25519 key at `path` (its public half at `path.pub`) and returns
    /// the public key. ssh-keygen runs off Swift's thread pool: servers in the same process
    /// answer meanwhile.
    @discardableResult
    public static func makeEd25519(at path: String, comment: String? = nil) async throws -> String {
        try await LocalCommand.runOffPool(["ssh-keygen", "-q", "-t", "ed25519", "-N", ""] + (comment.map { ["-C", $0] } ?? []) + ["-f", path])
        return try publicKey(of: path)
    }

    /// The public half of the key at `path` as allowed_signers and known_hosts take it: its
    /// type and base64, without the comment.
    public static func publicKey(of path: String) throws -> String {
        try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
    }
}
