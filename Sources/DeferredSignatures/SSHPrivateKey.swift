import Crypto
import _CryptoExtras
import Foundation

/// An unencrypted OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`, the
/// openssh-key-v1 format of OpenSSH's PROTOCOL.key), for `deferred sign`.
public struct SSHPrivateKey {
    enum Secret {
        case ed25519(Curve25519.Signing.PrivateKey)
        case ecdsaP256(P256.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    public enum LoadError: Error, Equatable, CustomStringConvertible {
        case notOpenSSHFormat
        case encrypted(cipher: String)
        case unsupportedType(String)
        case malformed(String)

        public var description: String {
            switch self {
            case .notOpenSSHFormat:
                "the key is not in OpenSSH's format (-----BEGIN OPENSSH PRIVATE KEY-----); convert it with `ssh-keygen -p -f KEY`"
            case .encrypted(let cipher):
                "the key is protected by a passphrase (\(cipher)), which `deferred sign` does not support; sign with `ssh-keygen -Y sign -n deferred -f KEY FILE` instead"
            case .unsupportedType(let type):
                "keys of type \(type) cannot sign scripts; use ed25519, ECDSA P-256 or RSA"
            case .malformed(let why):
                "the key file does not parse: \(why)"
            }
        }
    }

    public let publicKey: SSHPublicKey
    let secret: Secret

    public init(openSSH text: String) throws(LoadError) {
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----", end = "-----END OPENSSH PRIVATE KEY-----"
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(begin), trimmed.hasSuffix(end) else { throw .notOpenSSHFormat }
        let body = trimmed.dropFirst(begin.count).dropLast(end.count).filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { throw .malformed("the body is not base64") }
        do {
            (publicKey, secret) = try Self.parse(Array(data))
        } catch let error as LoadError {
            throw error
        } catch {
            throw .malformed("\(error)")
        }
    }

    public init(contentsOfFile path: String) throws(LoadError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .malformed("cannot read \(path)")
        }
        try self.init(openSSH: text)
    }

    /// Signs `message` for `namespace` with SHA-512, as `ssh-keygen -Y sign` does by default.
    public func sign(_ message: some DataProtocol, namespace: String = "deferred") throws -> SSHSignature {
        let hashAlgorithm = "sha512"
        let digest = try SSHSignature.digest(of: message, algorithm: hashAlgorithm)
        let data = SSHSignature.signedData(namespace: namespace, reserved: [], hashAlgorithm: hashAlgorithm, digest: digest)
        var writer = SSHWireWriter()
        switch secret {
        case .ed25519(let key):
            writer.string("ssh-ed25519")
            writer.string(Array(try key.signature(for: data)))
        case .ecdsaP256(let key):
            let raw = Array(try key.signature(for: data).rawRepresentation)
            var inner = SSHWireWriter()
            inner.mpint(raw[0..<32])
            inner.mpint(raw[32..<64])
            writer.string("ecdsa-sha2-nistp256")
            writer.string(inner.bytes)
        case .rsa(let key):
            let signature = try key.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            writer.string("rsa-sha2-512")
            writer.string(Array(signature.rawRepresentation))
        }
        return SSHSignature(publicKey: publicKey, namespace: namespace, hashAlgorithm: hashAlgorithm, signature: writer.bytes)
    }

    private static func parse(_ bytes: [UInt8]) throws -> (SSHPublicKey, Secret) {
        var reader = SSHWireReader(bytes)
        guard try reader.fixed(15) == Array("openssh-key-v1\0".utf8) else { throw LoadError.notOpenSSHFormat }
        let cipher = try reader.text()
        _ = try reader.text()  // kdf name
        _ = try reader.string()  // kdf options
        guard cipher == "none" else { throw LoadError.encrypted(cipher: cipher) }
        guard try reader.uint32() == 1 else { throw LoadError.malformed("the file holds more than one key") }
        let publicKey = try SSHPublicKey(blob: try reader.string())
        var inner = SSHWireReader(try reader.string())
        guard try inner.uint32() == (try inner.uint32()) else { throw LoadError.malformed("the check numbers differ") }
        let type = try inner.text()
        let secret: Secret
        switch type {
        case "ssh-ed25519":
            _ = try inner.string()
            let seedAndPublic = try inner.string()
            guard seedAndPublic.count == 64 else { throw LoadError.malformed("an ed25519 secret is 64 bytes") }
            secret = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: seedAndPublic[0..<32]))
        case "ecdsa-sha2-nistp256":
            _ = try inner.string()
            _ = try inner.string()
            let scalar = try inner.positiveMPInt()
            guard scalar.count <= 32 else { throw LoadError.malformed("the ECDSA scalar is too long") }
            secret = .ecdsaP256(try P256.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 0, count: 32 - scalar.count) + scalar))
        case "ssh-rsa":
            let n = try inner.positiveMPInt(), e = try inner.positiveMPInt(), d = try inner.positiveMPInt()
            _ = try inner.positiveMPInt()  // iqmp, which BoringSSL works out itself
            let p = try inner.positiveMPInt(), q = try inner.positiveMPInt()
            secret = .rsa(try _RSA.Signing.PrivateKey(n: n, e: e, d: d, p: p, q: q))
        default:
            throw LoadError.unsupportedType(type)
        }
        return (publicKey, secret)
    }
}
