import ArgumentParser
import DeferredClient
import Foundation

struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints an armored SSH signature of FILE that `ssh-keygen -Y verify -n deferred` accepts.",
        discussion: """
            Takes unencrypted OpenSSH private keys: ed25519 (the same bytes as `ssh-keygen -Y sign`), \
            ECDSA P-256 and RSA. For a key with a passphrase, sign with `ssh-keygen -Y sign -n deferred -f KEY FILE`.
            """
    )

    @Argument(help: "The script to sign.") var file: String
    @Option(help: "The private key file.") var key: String

    func run() async throws {
        do throws(ScriptSubmission.Failure) {
            let signature = try ScriptSubmission.sign(try ScriptSubmission.read(file), key: key)
            FileHandle.standardOutput.write(Data(signature.armored.utf8))
        } catch {
            throw ValidationError(error.description)
        }
    }
}
