import DeferredSignatures
import DeferredDemo
import Foundation
import Testing

@Suite struct AllowedSignersTests {
    static let script = "print('hi')\n"

    /// Builds a file with `options` for alice's key and returns her signature's key.
    private func check(options: String, at date: Date = Date()) throws -> Result<String, SignatureError> {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.key("alice", type: "ed25519")
        let signers = try AllowedSigners(text: "# team\n\nalice@example.com \(options) \(try lab.publicKey(key)) laptop\n")
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: key))
        try signature.verify(Data(Self.script.utf8), namespace: "deferred")
        return Result { () throws(SignatureError) in try signers.signer(for: signature.publicKey, namespace: "deferred", at: date) }
    }

    @Test func anExpiredKeyIsForbidden() throws {
        let result = try check(options: "valid-before=\"20200101Z\"")
        #expect(throws: SignatureError.signerExpired(principal: "alice@example.com", validBefore: "20200101Z")) { try result.get() }
        #expect((try? result.get()) == nil)
    }

    @Test func aKeyNotYetValidIsForbidden() throws {
        let result = try check(options: "valid-after=209901011200Z")
        #expect(throws: SignatureError.signerNotYetValid(principal: "alice@example.com", validAfter: "209901011200Z")) { try result.get() }
    }

    @Test func aKeyInsideItsWindowSigns() throws {
        let result = try check(options: "valid-after=20200101,valid-before=20990101Z,namespaces=\"file,deferred\"")
        #expect(try result.get() == "alice@example.com")
    }

    @Test func aKeyForOtherNamespacesIsForbidden() throws {
        let result = try check(options: "namespaces=\"git,file\"")
        #expect(throws: SignatureError.namespaceNotAllowed(principal: "alice@example.com", namespace: "deferred")) { try result.get() }
        let negated = try check(options: "namespaces=\"*,!deferred\"")
        #expect(throws: SignatureError.namespaceNotAllowed(principal: "alice@example.com", namespace: "deferred")) { try negated.get() }
    }

    @Test func aKeyNotListedIsForbidden() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let alice = try lab.key("alice", type: "ed25519"), mallory = try lab.key("mallory", type: "ed25519")
        let signers = try AllowedSigners(text: "alice@example.com \(try lab.publicKey(alice))\n")
        let signature = try SSHSignature(armored: try lab.sign(Self.script, key: mallory))
        try signature.verify(Data(Self.script.utf8), namespace: "deferred")
        let error = #expect(throws: SignatureError.self) { try signers.signer(for: signature.publicKey, namespace: "deferred", at: Date()) }
        #expect(error == .unknownSigner(fingerprint: signature.publicKey.fingerprint))
        #expect(error?.isForbidden == true)
        // The fingerprint is the one ssh-keygen prints, so a user can find the key.
        let listed = try String(contentsOfFile: mallory + ".pub", encoding: .utf8)
        #expect(try DeferredDemoRun.fingerprint(of: mallory + ".pub").contains(signature.publicKey.fingerprint), "\(listed)")
    }

    @Test func everyBadLineIsReportedAndCertAuthorityIsRefused() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.publicKey(try lab.key("ca", type: "ed25519"))
        let text = """
            *@example.com cert-authority \(key)
            bob@example.com valid-before=tomorrow \(key)
            carol@example.com ssh-dss AAAAB3NzaC1kc3MAAACBAP
            dave@example.com
            erin@example.com \(key)
            """
        let error = #expect(throws: AllowedSignersError.self) { try AllowedSigners(text: text) }
        #expect(error?.problems.map(\.line) == [1, 2, 3, 4])
        #expect(error?.problems.first?.message.contains("cert-authority") == true)
    }

    /// Found by scripts/fuzz: an option with an empty name (a bare "=") once trapped. A doubled
    /// comma between options is only an empty gap, as in OpenSSH.
    @Test func emptyOptionsAreBadLinesNotACrash() throws {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTioMmjxnCxlgpl2L5gfZo9vgBOEPihJ+xeC+kfph8f"
        let text = "a@example.com namespaces=\"deferred\",,valid-after=20240101 \(key)\nb@example.com = \(key)\n"
        let error = #expect(throws: AllowedSignersError.self) { try AllowedSigners(text: text) }
        #expect(error?.problems.map(\.line) == [2])
        #expect(error?.problems.allSatisfy { $0.message.contains("unknown option ''") } == true, "\(error?.problems ?? [])")
    }

    @Test func timestampsWithoutZAreLocalTime() throws {
        let lab = try KeyLab()
        defer { lab.remove() }
        let key = try lab.publicKey(try lab.key("k", type: "ed25519"))
        let tokyo = TimeZone(identifier: "Asia/Tokyo")!
        let signers = try AllowedSigners(text: "k@x valid-before=20300101 \(key)\n", timeZone: tokyo)
        let expected = DateComponents(calendar: Calendar(identifier: .gregorian), timeZone: tokyo, year: 2030, month: 1, day: 1).date
        #expect(signers.entries.first?.validBefore?.date == expected)
    }
}

enum DeferredDemoRun {
    static func fingerprint(of publicKeyFile: String) throws -> String {
        try DeferredDemo.LocalCommand.run(["ssh-keygen", "-l", "-E", "sha256", "-f", publicKeyFile])
    }
}
