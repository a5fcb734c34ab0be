import DeferredCore
import DeferredSignatures
import Foundation

/// Webhook and script bodies, through the same calls the HTTP intake makes.
enum PayloadFuzzing {
    static let project = ProjectConfig(
        name: "fuzz", repository: "octo-org/fuzz", branches: ["main", "release/*"], command: nil, hosts: ["h"],
        scriptSecret: "fuzz-secret", interpreters: ["/bin/sh", "python3"])

    static func push(_ bytes: [UInt8]) {
        let body = Data(bytes)
        _ = try? WebhookSignature.verify(header: String(decoding: bytes.prefix(71), as: UTF8.self), body: body, secret: "s")
        guard let event = try? PushEvent.parse(body) else { return }
        // Differential: what the strict reader takes, Foundation's decoder reads the same way.
        let foundation = try? JSONDecoder().decode(PushEvent.self, from: body)
        precondition(foundation == event, "PushEvent.parse read \(event), Foundation's JSONDecoder \(String(describing: foundation))")
        _ = try? event.decide(for: project, delivery: "fuzz-delivery")
        _ = CloneURL.isAllowed(event.repository.cloneURL ?? "")
    }

    static func script(_ bytes: [UInt8]) {
        guard let post = ScriptPost.parse(Data(bytes)) else { return }
        _ = post.canonical
        let script = post.script ?? ""
        _ = try? Interpreter.choose(for: script, requested: post.interpreter, allowed: project.interpreters)
        _ = try? ScriptVerifier(project: project).signer(of: script, signature: post.signature ?? "")
    }
}
