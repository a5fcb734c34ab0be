/// The parsers that read bytes from outside, each as one function of arbitrary bytes: what
/// libFuzzer drives (`Fuzz/Package.swift`, `scripts/fuzz`) and what the corpus replay test
/// runs on every `swift test`. A target may refuse its input in any way but a trap.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A job's artifacts as its host streams them: the tar unpacker.
    case tar
    /// The collect command's whole stdout: phase, status and resources lines, then the tar.
    case collect
    /// A job's start or reattach stdout: its framed output, then the collect stream.
    case jobStream = "job-stream"
    /// A GitHub push webhook's body, and the decision taken on it.
    case pushPayload = "push-payload"
    /// A posted script's JSON body, its interpreter and its signature.
    case scriptPayload = "script-payload"
    /// Armored SSH signatures (SSHSIG) and the keys inside them.
    case sshSignature = "ssh-signature"
    /// OpenSSH private keys (`deferred sign`, `submit`) and public key blobs.
    case sshKeys = "ssh-keys"
    /// A project's allowed_signers file.
    case allowedSigners = "allowed-signers"
    /// deferred.toml: the TOML parser and the config reader behind it.
    case toml
    /// The JSON API's list cursor (`/api/jobs?cursor=`).
    case jobCursor = "job-cursor"
    /// A cloud API's answers (Hetzner, DigitalOcean): servers, actions, errors, rate limits.
    case cloudAnswer = "cloud-answer"
    /// Text from a request (delivery id, project, idempotency key, error) as the log prints it.
    case logText = "log-text"
    /// A webhook payload as the store keeps it (an LZ4 block), read back.
    case storedPayload = "stored-payload"
    /// A host's bytes as the stores keep them as text (a NUL as U+FFFD).
    case storedText = "stored-text"

    public func run(_ bytes: [UInt8]) {
        switch self {
        case .tar: TarFuzzing.run(bytes)
        case .collect: TarFuzzing.collect(bytes)
        case .jobStream: JobStreamFuzzing.run(bytes)
        case .pushPayload: PayloadFuzzing.push(bytes)
        case .scriptPayload: PayloadFuzzing.script(bytes)
        case .sshSignature: SignatureFuzzing.signature(bytes)
        case .sshKeys: SignatureFuzzing.keys(bytes)
        case .allowedSigners: SignatureFuzzing.allowedSigners(bytes)
        case .toml: ConfigFuzzing.run(bytes)
        case .jobCursor: CursorFuzzing.run(bytes)
        case .cloudAnswer: CloudAnswerFuzzing.run(bytes)
        case .logText: LogTextFuzzing.run(bytes)
        case .storedPayload: StoredPayloadFuzzing.run(bytes)
        case .storedText: StoredTextFuzzing.run(bytes)
        }
    }
}
