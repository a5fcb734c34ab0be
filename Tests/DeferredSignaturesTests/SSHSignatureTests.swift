import DeferredSignatures
import Foundation
import Testing

/// Signatures made by the real `ssh-keygen -Y sign`, checked by our verifier.
@Suite struct SSHSignatureTests {
    static let script = "#!/bin/sh\necho 'hello from a signed script'\n"

    @Test(arguments: [("ed25519", nil), ("ecdsa", 256), ("rsa", 2048)] as [(String, Int?)])
    func verifiesWhatSSHKeygenSigns(type: String, bits: Int?) throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("alice", type: type, bits: bits)
        let signers = try AllowedSigners(text: "alice@example.com \(try lab.publicKey(key))\n")
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: key))
        try signature.verify(Data(Self.script.utf8), namespace: "deferred")
        #expect(try signers.signer(for: signature.publicKey, namespace: "deferred", at: Date()) == "alice@example.com")
    }

    @Test func verifiesSHA256SignaturesByRSAKeys() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("rsa", type: "rsa", bits: 2048)
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: key, options: ["-O", "hashalg=sha256"]))
        #expect(signature.hashAlgorithm == "sha256")
        try signature.verify(Data(Self.script.utf8), namespace: "deferred")
    }

    @Test(arguments: ["ed25519", "ecdsa", "rsa"])
    func aChangedScriptFails(type: String) throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("k", type: type)
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: key))
        var changed = Array(Self.script.utf8)
        changed[changed.count - 3] ^= 0x01
        #expect(throws: SignatureError.invalid) { try signature.verify(changed, namespace: "deferred") }
    }

    @Test func aSignatureForAnotherNamespaceFails() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("k", type: "ed25519")
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: key, namespace: "file"))
        let error = #expect(throws: SignatureError.self) { try signature.verify(Data(Self.script.utf8), namespace: "deferred") }
        #expect(error == .wrongNamespace(expected: "deferred", got: "file"))
        #expect(error?.isForbidden == false)
    }

    @Test func aSmallRSAKeyIsRefused() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("small", type: "rsa", bits: 1024)
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: key))
        #expect(throws: SignatureError.rsaKeyTooSmall(bits: 1024)) { try signature.verify(Data(Self.script.utf8), namespace: "deferred") }
    }

    @Test func garbageIsMalformed() {
        #expect { try SSHSignature(armored: "sha256=abcd") } throws: { ($0 as? SignatureError).map { if case .malformed = $0 { true } else { false } } ?? false }
        let cut = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADMAAAALc3NoLWVk\n-----END SSH SIGNATURE-----"
        #expect { try SSHSignature(armored: cut) } throws: { ($0 as? SignatureError).map { if case .malformed = $0 { true } else { false } } ?? false }
    }
}
