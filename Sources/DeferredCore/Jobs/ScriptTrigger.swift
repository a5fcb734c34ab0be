import Crypto
import Foundation

/// A signed script to run. The script itself is stored with the job (it is uploaded to the
/// host when the job runs); results.json shows only its hash and signer.
public struct ScriptTrigger: Sendable, Equatable, Codable {
    public var script: String
    /// Hex SHA-256 of the script's UTF-8 bytes.
    public var sha256: String
    /// The allowed_signers principal, or `script_secret` for an HMAC signature.
    public var signer: String
    public var interpreter: Interpreter

    public init(script: String, signer: String, interpreter: Interpreter) {
        self.script = script
        self.sha256 = Hex.encode(SHA256.hash(data: Data(script.utf8)))
        self.signer = signer
        self.interpreter = interpreter
    }
}
