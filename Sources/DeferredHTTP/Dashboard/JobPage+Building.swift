import DeferredCore
import DeferredStore
import Foundation

// What a job's page shows, built from the job, its feed and its results.json.
extension DashboardController {
    static func pretty(_ data: Data, limit: Int = .max) -> String {
        let text: String
        if let object = try? JSONSerialization.jsonObject(with: data),
           let formatted = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
            text = String(decoding: formatted, as: UTF8.self)
        } else {
            text = String(decoding: data, as: UTF8.self)
        }
        return text.utf8.count <= limit ? text : String(decoding: text.utf8.prefix(limit), as: UTF8.self) + "\n… (cut here: the rest is not shown)"
    }

    static func artifacts(in results: Data, base: String) -> [JobPage.Artifact] {
        guard case .object(let document)? = JSONValue.parse(results), case .array(let list)? = document["artifacts"] else { return [] }
        let partAllowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return list.compactMap { entry in
            guard case .object(let artifact) = entry, case .string(let path)? = artifact["path"] else { return nil }
            let encoded = path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: partAllowed) ?? "" }
            var bytes = "", type = ""
            if case .number(let n)? = artifact["bytes"] { bytes = ByteCountFormatter.string(fromByteCount: Int64(n), countStyle: .binary) }
            if case .string(let t)? = artifact["content_type"] { type = t }
            return JobPage.Artifact(path: path, href: "\(base)/artifacts/" + encoded.joined(separator: "/"), bytes: bytes, type: type)
        }
    }

    /// The output chunks of the feed, the last `outputOnPage` bytes of them.
    static func output(_ items: [FeedItem]) -> ([JobPage.Output], cut: Bool) {
        var chunks: [JobPage.Output] = []
        var total = 0
        for item in items.reversed() {
            guard case .output(let chunk) = item.kind else { continue }
            total += chunk.text.utf8.count
            if total > outputOnPage { return (chunks.reversed(), true) }
            chunks.append(JobPage.Output(stream: chunk.stream.rawValue, text: chunk.text))
        }
        return (chunks.reversed(), false)
    }

    static func facts(_ job: Job, resultURL: String) -> [JobPage.Fact] {
        var facts: [JobPage.Fact] = []
        switch job.trigger {
        case .push(let push):
            facts += [.init(label: "repository", value: push.repository), .init(label: "ref", value: push.ref),
                      .init(label: "commit", value: push.commit), .init(label: "pushed by", value: push.pusher),
                      .init(label: "delivery", value: push.delivery)]
        case .script(let script):
            facts += [.init(label: "script SHA-256", value: script.sha256), .init(label: "signed by", value: script.signer),
                      .init(label: "interpreter", value: {
                          if case .shebang(let program) = script.interpreter { "\(program) (its shebang line)" } else { script.interpreter.name }
                      }())]
        }
        facts.append(.init(label: "host", value: job.hostName ?? "none yet"))
        if job.attempts > 0 { facts.append(.init(label: "attempts spoiled by the machinery", value: String(job.attempts))) }
        facts.append(.init(label: "queued", value: JobRow.time(job.queuedAt)))
        if let started = job.startedAt { facts.append(.init(label: "started", value: JobRow.time(started))) }
        if let finished = job.finishedAt { facts.append(.init(label: "finished", value: JobRow.time(finished))) }
        facts.append(.init(label: "result URL", value: resultURL))
        if let original = job.rerunOf { facts.append(.init(label: "rerun of", value: original.rawValue)) }
        return facts
    }
}
