import DeferredDemo
import Foundation

/// A temporary folder of real keys made by ssh-keygen, and signatures made with them.
struct KeyLab {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "deferred-keys-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    /// `ssh-keygen -t type [-b bits]`; returns the private key's path.
    func key(_ name: String, type: String, bits: Int? = nil) throws -> String {
        let path = directory + "/" + name
        try LocalCommand.run(["ssh-keygen", "-q", "-t", type] + (bits.map { ["-b", String($0)] } ?? [])
                             + ["-N", "", "-C", "\(name)@example.com", "-f", path])
        return path
    }

    func publicKey(_ keyPath: String) throws -> String {
        try LocalKey.publicKey(of: keyPath)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `ssh-keygen -Y sign`, returning the armored signature.
    func sign(_ text: String, key: String, namespace: String = "deferred", options: [String] = []) throws -> String {
        let file = try write("message-\(UUID().uuidString.prefix(6))", text)
        try LocalCommand.run(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", key] + options + [file])
        return try String(contentsOfFile: file + ".sig", encoding: .utf8)
    }

    /// `ssh-keygen -Y verify`; true when OpenSSH accepts the signature for `principal`.
    func opensshAccepts(_ text: String, signature: String, allowedSigners: String, principal: String) throws -> Bool {
        let file = try write("checked-\(UUID().uuidString.prefix(6))", text)
        let sig = try write("checked.sig", signature)
        let signers = try write("checked_signers", allowedSigners)
        do {
            try LocalCommand.run(["sh", "-c", "ssh-keygen -Y verify -f \"$1\" -I \"$2\" -n deferred -s \"$3\" < \"$4\"",
                                  "verify", signers, principal, sig, file])
            return true
        } catch is LocalCommand.Failure {
            return false
        }
    }
}
