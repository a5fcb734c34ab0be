import DeferredSignatures
import DeferredDemo
import Foundation
import Testing

/// `deferred sign`'s signer against OpenSSH itself.
@Suite struct SSHPrivateKeyTests {
    static let script = "#!/bin/sh\necho signed by deferred\n"

    @Test func ed25519SignaturesAreByteForByteSSHKeygens() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("alice", type: "ed25519")
        let ours = try SSHPrivateKey(contentsOfFile: key).sign(Data(Self.script.utf8)).armored
        #expect(ours == (try lab.sign(Self.script, key: key)))
    }

    @Test(arguments: [("ed25519", nil), ("ecdsa", 256), ("rsa", 2048)] as [(String, Int?)])
    func sshKeygenVerifiesOurSignatures(type: String, bits: Int?) throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("alice", type: type, bits: bits)
        let signature = try SSHPrivateKey(contentsOfFile: key).sign(Data(Self.script.utf8))
        let signers = "alice@example.com \(try lab.publicKey(key))\n"
        #expect(try lab.opensshAccepts(Self.script, signature: signature.armored, allowedSigners: signers, principal: "alice@example.com"))
        // And the check can fail: another script under the same signature is refused.
        #expect(try !lab.opensshAccepts(Self.script + "#", signature: signature.armored, allowedSigners: signers, principal: "alice@example.com"))
    }

    @Test func anEncryptedKeyIsRefusedWithTheWayOut() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let path = lab.directory + "/locked"
        try DeferredDemoRun.keygen(["-q", "-t", "ed25519", "-N", "secret words", "-f", path])
        let error = #expect(throws: SSHPrivateKey.LoadError.self) { try SSHPrivateKey(contentsOfFile: path) }
        #expect(error?.description.contains("ssh-keygen -Y sign") == true)
    }
}

extension DeferredDemoRun {
    static func keygen(_ arguments: [String]) throws {
        try DeferredDemo.LocalCommand.run(["ssh-keygen"] + arguments)
    }
}
