import Crypto
import _CryptoExtras
import Foundation

/// A public key of one of the types deferred accepts for signed scripts, read from the SSH
/// wire encoding (the blob inside an SSHSIG or an allowed_signers line).
public struct SSHPublicKey: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case ed25519
        case ecdsaP256
        case rsa(bits: Int)
    }

    public let kind: Kind
    /// The wire encoding; two keys are the same key when these bytes are equal.
    public let blob: [UInt8]

    public static func == (lhs: SSHPublicKey, rhs: SSHPublicKey) -> Bool { lhs.blob == rhs.blob }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    public var fingerprint: String {
        "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    public init(blob: [UInt8]) throws(SignatureError) {
        var reader = SSHWireReader(blob)
        do {
            let type = try reader.text()
            switch type {
            case "ssh-ed25519":
                let raw = try reader.string()
                guard raw.count == 32 else { throw SignatureError.malformed("an ed25519 key is 32 bytes") }
                kind = .ed25519
            case "ecdsa-sha2-nistp256":
                guard try reader.text() == "nistp256" else { throw SignatureError.malformed("the curve does not match the key type") }
                _ = try reader.string()
                kind = .ecdsaP256
            case "ssh-rsa":
                _ = try reader.positiveMPInt()
                let modulus = try reader.positiveMPInt()
                kind = .rsa(bits: Self.bitCount(modulus))
            default:
                throw SignatureError.unsupportedKey(type)
            }
        } catch let error as SignatureError {
            throw error
        } catch {
            throw .malformed("the public key does not parse (\(error))")
        }
        guard reader.isAtEnd else { throw .malformed("the public key has trailing bytes") }
        self.blob = blob
    }

    /// `ssh-ed25519 AAAA…` as in a `.pub` file or an allowed_signers line.
    public init(type: String, base64: String) throws(SignatureError) {
        guard let data = Data(base64Encoded: base64) else { throw .malformed("the key is not base64") }
        try self.init(blob: Array(data))
        var reader = SSHWireReader(blob)
        guard (try? reader.text()) == type else {
            throw .malformed("the key's type is not \(type)")
        }
    }

    /// Checks `signature` (an SSH signature blob: type string and signature bytes) over `data`.
    func verify(signature: [UInt8], over data: [UInt8]) throws(SignatureError) {
        var sigReader = SSHWireReader(signature)
        var keyReader = SSHWireReader(blob)
        let valid: Bool
        do {
            let sigType = try sigReader.text()
            let sigBytes = try sigReader.string()
            _ = try keyReader.text()
            switch kind {
            case .ed25519:
                guard sigType == "ssh-ed25519" else { throw SignatureError.malformed("signature type \(sigType) for an ed25519 key") }
                let key = try Curve25519.Signing.PublicKey(rawRepresentation: try keyReader.string())
                valid = key.isValidSignature(sigBytes, for: data)
            case .ecdsaP256:
                guard sigType == "ecdsa-sha2-nistp256" else { throw SignatureError.malformed("signature type \(sigType) for an ECDSA key") }
                _ = try keyReader.string()
                let key = try P256.Signing.PublicKey(x963Representation: try keyReader.string())
                var inner = SSHWireReader(sigBytes)
                let r = try inner.positiveMPInt(), s = try inner.positiveMPInt()
                guard r.count <= 32, s.count <= 32 else { throw SignatureError.malformed("ECDSA signature values are too long") }
                let raw = [UInt8](repeating: 0, count: 32 - r.count) + r + [UInt8](repeating: 0, count: 32 - s.count) + s
                valid = key.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: raw), for: data)
            case .rsa(let bits):
                guard bits >= 2048 else { throw SignatureError.rsaKeyTooSmall(bits: bits) }
                let e = try keyReader.positiveMPInt(), n = try keyReader.positiveMPInt()
                let key = try _RSA.Signing.PublicKey(n: n, e: e)
                let signature = _RSA.Signing.RSASignature(rawRepresentation: sigBytes)
                switch sigType {
                case "rsa-sha2-256": valid = key.isValidSignature(signature, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
                case "rsa-sha2-512": valid = key.isValidSignature(signature, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
                default: throw SignatureError.unsupportedKey("\(sigType) signatures (SHA-1 RSA is refused)")
                }
            }
        } catch let error as SignatureError {
            throw error
        } catch {
            throw .malformed("the signature or key does not parse (\(error))")
        }
        guard valid else { throw .invalid }
    }

    private static func bitCount(_ magnitude: [UInt8]) -> Int {
        guard let first = magnitude.first else { return 0 }
        return magnitude.count * 8 - first.leadingZeroBitCount
    }
}
