/// Why a script's signature was not accepted. `isForbidden` separates a signature that is
/// bad (401: it proves nothing) from a good one by a key that may not sign here (403).
public enum SignatureError: Error, Equatable, CustomStringConvertible {
    /// Not an armored SSHSIG, or its fields do not parse.
    case malformed(String)
    case wrongNamespace(expected: String, got: String)
    case unsupportedKey(String)
    case unsupportedHash(String)
    /// The signature does not match the script and key.
    case invalid
    case rsaKeyTooSmall(bits: Int)
    case unknownSigner(fingerprint: String)
    case signerNotYetValid(principal: String, validAfter: String)
    case signerExpired(principal: String, validBefore: String)
    case namespaceNotAllowed(principal: String, namespace: String)
    /// The HMAC form of a signature (`sha256=<hex>`) did not match.
    case hmacMismatch
    case noVerifierConfigured(project: String)

    public var isForbidden: Bool {
        switch self {
        case .unknownSigner, .signerNotYetValid, .signerExpired, .namespaceNotAllowed, .noVerifierConfigured: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why):
            "the signature is not an SSH signature as `ssh-keygen -Y sign` writes it: \(why)"
        case .wrongNamespace(let expected, let got):
            "the signature was made for namespace '\(got)'; sign with `ssh-keygen -Y sign -n \(expected)`"
        case .unsupportedKey(let type):
            "keys of type \(type) are not accepted; use ssh-ed25519, ecdsa-sha2-nistp256 or RSA (2048 bits or more)"
        case .unsupportedHash(let name):
            "the hash \(name) is not accepted; ssh-keygen's sha512 (default) or sha256 are"
        case .invalid:
            "the signature does not match this script (was the script changed after signing?)"
        case .rsaKeyTooSmall(let bits):
            "the RSA key has \(bits) bits; at least 2048 are required"
        case .unknownSigner(let fingerprint):
            "the key \(fingerprint) is not in the project's allowed_signers"
        case .signerNotYetValid(let principal, let after):
            "the key of \(principal) is valid only after \(after) (valid-after in allowed_signers)"
        case .signerExpired(let principal, let before):
            "the key of \(principal) was valid only before \(before) (valid-before in allowed_signers)"
        case .namespaceNotAllowed(let principal, let namespace):
            "the key of \(principal) may not sign for namespace '\(namespace)' (namespaces= in allowed_signers)"
        case .hmacMismatch:
            "the sha256= signature is not the HMAC-SHA256 of this script with the project's script secret"
        case .noVerifierConfigured(let project):
            "project '\(project)' accepts no scripts: it sets neither allowed_signers nor script_secret_env"
        }
    }
}
