import DeferredSignatures
import Foundation

/// SSH signatures, keys and allowed_signers, as scripts and `deferred sign` read them.
enum SignatureFuzzing {
    static func signature(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        // As armored text, and as the raw blob such an armor carries.
        let armored = "-----BEGIN SSH SIGNATURE-----\n" + Data(bytes).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END SSH SIGNATURE-----\n"
        for candidate in [text, armored] {
            guard let signature = try? SSHSignature(armored: candidate) else { continue }
            _ = try? signature.verify(Data("echo hello\n".utf8), namespace: "deferred")
        }
    }

    static func keys(_ bytes: [UInt8]) {
        _ = try? SSHPublicKey(blob: bytes)
        _ = try? SSHPrivateKey(openSSH: String(decoding: bytes, as: UTF8.self))
        let wrapped = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + Data(bytes).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END OPENSSH PRIVATE KEY-----\n"
        if let key = try? SSHPrivateKey(openSSH: wrapped) { _ = try? key.sign(Data("x".utf8)) }
    }

    static func allowedSigners(_ bytes: [UInt8]) {
        guard let signers = try? AllowedSigners(text: String(decoding: bytes, as: UTF8.self), timeZone: TimeZone(identifier: "UTC")!) else { return }
        // A well-formed key that any line may name, so the matching code runs too.
        if let key = try? SSHPublicKey(type: "ssh-ed25519", base64: "AAAAC3NzaC1lZDI1NTE5AAAAIDTioMmjxnCxlgpl2L5gfZo9vgBOEPihJ+xeC+kfph8f") {
            _ = try? signers.signer(for: key, namespace: "deferred", at: Date(timeIntervalSince1970: 1_700_000_000))
        }
    }
}
