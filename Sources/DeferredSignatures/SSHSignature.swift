import Crypto
import Foundation

/// An armored SSH signature (`-----BEGIN SSH SIGNATURE-----`) in OpenSSH's SSHSIG format
/// (PROTOCOL.sshsig), as `ssh-keygen -Y sign` writes it.
public struct SSHSignature: Sendable {
    static let magic = Array("SSHSIG".utf8)
    static let armorBegin = "-----BEGIN SSH SIGNATURE-----"
    static let armorEnd = "-----END SSH SIGNATURE-----"

    public let publicKey: SSHPublicKey
    public let namespace: String
    public let hashAlgorithm: String
    let reserved: [UInt8]
    let signature: [UInt8]

    public init(armored text: String) throws(SignatureError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(Self.armorBegin), trimmed.hasSuffix(Self.armorEnd) else {
            throw .malformed("it does not start with \(Self.armorBegin) and end with \(Self.armorEnd)")
        }
        let body = trimmed.dropFirst(Self.armorBegin.count).dropLast(Self.armorEnd.count)
            .filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { throw .malformed("the body is not base64") }
        var reader = SSHWireReader(Array(data))
        do {
            guard try reader.fixed(6) == Self.magic else { throw SignatureError.malformed("the SSHSIG preamble is missing") }
            let version = try reader.uint32()
            guard version == 1 else { throw SignatureError.malformed("SSHSIG version \(version) is not known") }
            let keyBlob = try reader.string()
            namespace = try reader.text()
            reserved = try reader.string()
            hashAlgorithm = try reader.text()
            signature = try reader.string()
            guard reader.isAtEnd else { throw SignatureError.malformed("trailing bytes after the signature") }
            publicKey = try SSHPublicKey(blob: keyBlob)
        } catch let error as SignatureError {
            throw error
        } catch {
            throw .malformed("a field is cut short (\(error))")
        }
    }

    init(publicKey: SSHPublicKey, namespace: String, hashAlgorithm: String, signature: [UInt8]) {
        self.publicKey = publicKey
        self.namespace = namespace
        self.hashAlgorithm = hashAlgorithm
        self.reserved = []
        self.signature = signature
    }

    /// Checks that this signature is `namespace`'s and was made over `message` by its key.
    /// Who the key belongs to is the allowed signers' question, not this one's.
    public func verify(_ message: some DataProtocol, namespace expected: String) throws(SignatureError) {
        guard namespace == expected else { throw .wrongNamespace(expected: expected, got: namespace) }
        let digest = try Self.digest(of: message, algorithm: hashAlgorithm)
        try publicKey.verify(signature: signature, over: Self.signedData(namespace: namespace, reserved: reserved,
                                                                          hashAlgorithm: hashAlgorithm, digest: digest))
    }

    /// The armored text, wrapped at 70 columns like ssh-keygen's.
    public var armored: String {
        var writer = SSHWireWriter()
        writer.raw(Self.magic)
        writer.uint32(1)
        writer.string(publicKey.blob)
        writer.string(namespace)
        writer.string(reserved)
        writer.string(hashAlgorithm)
        writer.string(signature)
        let base64 = Data(writer.bytes).base64EncodedString()
        var lines = [Self.armorBegin]
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(70)))
            rest = rest.dropFirst(70)
        }
        lines.append(Self.armorEnd)
        return lines.joined(separator: "\n") + "\n"
    }

    static func digest(of message: some DataProtocol, algorithm: String) throws(SignatureError) -> [UInt8] {
        switch algorithm {
        case "sha512": Array(SHA512.hash(data: message))
        case "sha256": Array(SHA256.hash(data: message))
        default: throw .unsupportedHash(algorithm)
        }
    }

    /// What the key actually signs: the preamble, namespace and the message's hash.
    static func signedData(namespace: String, reserved: [UInt8], hashAlgorithm: String, digest: [UInt8]) -> [UInt8] {
        var writer = SSHWireWriter()
        writer.raw(magic)
        writer.string(namespace)
        writer.string(reserved)
        writer.string(hashAlgorithm)
        writer.string(digest)
        return writer.bytes
    }
}
