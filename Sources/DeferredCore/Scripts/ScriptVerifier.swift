import DeferredSignatures
import Foundation

/// Decides whether a posted script may run for a project: an armored SSH signature by a key
/// in its allowed_signers (namespace `deferred`), or a `sha256=` HMAC with its script secret.
public struct ScriptVerifier: Sendable {
    public static let namespace = "deferred"
    /// Who signed when the script carries an HMAC rather than a key's signature.
    public static let sharedSecretSigner = "script_secret"

    let project: ProjectConfig

    public init(project: ProjectConfig) { self.project = project }

    /// The signer's principal, or why the script may not run.
    public func signer(of script: String, signature: String, at date: Date = Date()) throws(SignatureError) -> String {
        let trimmed = signature.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("sha256=") {
            guard let secret = project.scriptSecret else {
                throw project.allowedSigners == nil ? .noVerifierConfigured(project: project.name)
                                                    : .malformed("this project takes armored SSH signatures, not sha256= HMACs")
            }
            do {
                try WebhookSignature.verify(header: trimmed, body: Data(script.utf8), secret: secret)
            } catch {
                throw error == .mismatch ? .hmacMismatch : .malformed("sha256= must be followed by 64 hex digits")
            }
            return Self.sharedSecretSigner
        }
        guard let signers = project.allowedSigners else {
            throw project.scriptSecret == nil ? .noVerifierConfigured(project: project.name)
                                              : .malformed("this project takes sha256=<hex> HMAC signatures")
        }
        let parsed = try SSHSignature(armored: trimmed)
        try parsed.verify(Data(script.utf8), namespace: Self.namespace)
        return try signers.signer(for: parsed.publicKey, namespace: Self.namespace, at: date)
    }
}
