import DeferredCloud
import Foundation
import Synchronization

/// Follows a job's event stream (`/r/{token}/events`): state changes and output lines as they
/// happen, until `done`. A dropped stream is picked up again after its last event id; a server
/// or proxy that does not stream makes `follow` answer false, for the caller to poll instead.
public struct EventFollower: Sendable {
    let client = HTTPClient()
    /// Reconnections after a dropped stream before giving up on streaming.
    var reconnects = 5

    public init() {}

    public enum Event: Sendable, Equatable {
        case state(String)
        case output(stream: String, text: String)
        case done(status: String)
    }

    /// True once `done` came; false when streaming is not possible here.
    public func follow(_ eventsURL: String, onEvent: @escaping @Sendable (Event) -> Void) async -> Bool {
        let parser = Mutex(Parser())
        for _ in 0...reconnects {
            var headers = [(name: "Accept", value: "text/event-stream")]
            if let last = parser.withLock({ $0.lastID }) { headers.append((name: "Last-Event-ID", value: last)) }
            let request = HTTPClientRequest(method: "GET", url: eventsURL, headers: headers, streaming: .bytes(Data()), timeout: .seconds(6 * 3600))
            let response = try? await client.stream(request) { data in
                let events = parser.withLock { $0.take(data) }
                for event in events { onEvent(event) }
                return !parser.withLock { $0.finished }
            }
            if parser.withLock({ $0.finished }) { return true }
            guard let response, response.status == 200, response.header("content-type")?.hasPrefix("text/event-stream") == true else {
                return false
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    /// Server-Sent Events text, fed in pieces.
    struct Parser {
        var pending = ""
        var lastID: String?
        var finished = false

        mutating func take(_ data: Data) -> [Event] {
            pending += String(decoding: data, as: UTF8.self)
            var events: [Event] = []
            while let end = pending.range(of: "\n\n") {
                let block = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                var name = "message", payload = ""
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("id: ") { lastID = String(line.dropFirst(4)) }
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { payload += line.dropFirst(6) }
                }
                let json = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] ?? [:]
                switch name {
                case "state": events.append(.state(json["status"] as? String ?? "?"))
                case "output": events.append(.output(stream: json["stream"] as? String ?? "stdout", text: json["text"] as? String ?? ""))
                case "done":
                    events.append(.done(status: json["status"] as? String ?? "?"))
                    finished = true
                default: break
                }
            }
            return events
        }
    }
}
