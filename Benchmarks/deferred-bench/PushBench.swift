import Crypto
import DeferredCore
import DeferredStore
import DeferredTestSupport
import Foundation

// The CPU a webhook's push costs before the store: its parse and the project's decision about
// it, on the fixture push (8.8 KB), one thread, N times each; parse beside Foundation's
// JSONDecoder decoding the same fields, which parse used before. Then the request's other work
// on the same body: the signature's check, the body's hash (the replay key), the new job, and
// the payload's compression for the store.
// Usage: deferred-bench push [N]
func pushBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let count = arguments.compactMap { Int($0) }.first ?? 20_000
    let body = try Fixtures.data("github/push-new-branch.json")
    let project = ProjectConfig(name: "hello", repository: "Codertocat/Hello-World", command: "true", hosts: ["h"])
    let event = try PushEvent.parse(body)
    guard try JSONDecoder().decode(PushEvent.self, from: body) == event else {
        print("FAILED: PushEvent.parse and JSONDecoder read the fixture differently")
        return 2
    }
    let parse = try perCall(count) { _ = try PushEvent.parse(body) }
    let foundation = try perCall(count) { _ = try JSONDecoder().decode(PushEvent.self, from: body) }
    let decide = try perCall(count) { _ = try event.decide(for: project, delivery: "d") }
    let key = WebhookSignature.Key(secret: "bench")
    let signature = "sha256=" + Hex.encode(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data("bench".utf8))))
    let verify = try perCall(count) { try WebhookSignature.verify(header: signature, body: body, key: key) }
    let hash = try perCall(count) { _ = Hex.encode(SHA256.hash(data: body)) }
    guard case .run(let trigger) = try event.decide(for: project, delivery: "d") else {
        print("FAILED: the fixture push does not make a job")
        return 2
    }
    let job = try perCall(count) { _ = Job(project: project.name, trigger: .push(trigger)) }
    let compress = try perCall(count) { _ = StoredPayload(keeping: body) }
    print("")
    print("a push's fields from \(body.count) bytes of JSON and the decision on them, \(count) times each, one thread, on this machine")
    print(String(format: "parse (JSONFieldReader)      %7.1f µs", parse))
    print(String(format: "peer: Foundation JSONDecoder %7.1f µs   ratio %.2f×", foundation, parse / foundation))
    print(String(format: "decide                       %7.1f µs", decide))
    print(String(format: "signature check (HMAC)       %7.1f µs", verify))
    print(String(format: "body's SHA-256 (replay key)  %7.1f µs", hash))
    print(String(format: "new job (id, token)          %7.1f µs", job))
    print(String(format: "payload's LZ4 block          %7.1f µs", compress))
    return 0
}

/// Microseconds per call of `body`, after a warm-up of a tenth as many calls.
private func perCall(_ count: Int, _ body: () throws -> Void) throws -> Double {
    for _ in 0..<max(1, count / 10) { try body() }
    let start = ContinuousClock.now
    for _ in 0..<count { try body() }
    return (ContinuousClock.now - start).timeInterval * 1e6 / Double(count)
}
