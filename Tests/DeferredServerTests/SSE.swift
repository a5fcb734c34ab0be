import DeferredDemo
import DeferredTestSupport
import Foundation

/// Server-Sent Events as a client sees them: parsed from text, and read live from a plain
/// socket (HTTP/1.1, the chunked body decoded here).
enum SSE {
    struct Event: Equatable {
        var id: String?
        var event: String
        var data: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:] }
        static func == (a: Event, b: Event) -> Bool { a.id == b.id && a.event == b.event && a.data == b.data }
    }

    /// The events in `text` (comments skipped; an event without `event:` is `message`).
    static func parse(_ text: String) -> [Event] {
        text.components(separatedBy: "\n\n").compactMap { block -> Event? in
            var id: String?, event = "message", data: [String] = []
            for line in block.split(separator: "\n") where !line.hasPrefix(":") {
                if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
            }
            return data.isEmpty ? nil : Event(id: id, event: event, data: data.joined(separator: "\n"))
        }
    }

    /// The text of the `output` events, joined.
    static func output(of events: [Event]) -> String {
        events.filter { $0.event == "output" }.compactMap { $0.json["text"] as? String }.joined()
    }

    /// The first HTTP/1.1 answer in `raw`: its head (lowercased), its body (chunks decoded),
    /// whether the chunked body's last chunk came, and what follows it.
    static func response(_ raw: ArraySlice<UInt8>) -> (head: String, text: String, complete: Bool, rest: ArraySlice<UInt8>) {
        let separator = Array("\r\n\r\n".utf8)
        guard raw.count >= 4, let start = (raw.startIndex...(raw.endIndex - 4)).first(where: { Array(raw[$0..<$0 + 4]) == separator }) else {
            return ("", "", false, raw[raw.endIndex...])
        }
        let head = String(decoding: raw[..<start], as: UTF8.self).lowercased()
        var rest = raw[(start + 4)...]
        if let length = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") })
            .flatMap({ Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }) {
            let end = min(rest.endIndex, rest.startIndex + length)
            return (head, String(decoding: rest[..<end], as: UTF8.self), true, rest[end...])
        }
        guard head.contains("transfer-encoding: chunked") else { return (head, String(decoding: rest, as: UTF8.self), false, rest[rest.endIndex...]) }
        var out: [UInt8] = []
        while let lineEnd = rest.firstIndex(of: UInt8(ascii: "\n")) {
            let sizeText = String(decoding: rest[rest.startIndex..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let size = Int(sizeText, radix: 16) else { break }
            if size == 0 {
                let after = min(rest.endIndex, lineEnd + 3)  // the empty line that ends the body
                return (head, String(decoding: out, as: UTF8.self), true, rest[after...])
            }
            let dataStart = lineEnd + 1
            guard rest.endIndex - dataStart >= size + 2 else { break }
            out += rest[dataStart..<dataStart + size]
            rest = rest[(dataStart + size + 2)...]
        }
        return (head, String(decoding: out, as: UTF8.self), false, rest[rest.endIndex...])
    }

    /// Reads an event stream from a socket on a thread of its own, as it arrives.
    final class Reader: @unchecked Sendable {
        private let lock = NSLock()
        private var received: [UInt8] = []
        private var closed = false
        /// How the reading ended: the server's close, or why recv failed (for test messages).
        private var ending = "closed by the server"

        /// Its socket's number (closed once the reading ended).
        let fd: Int32

        convenience init(port: Int, path: String, lastEventID: String? = nil, origin: String? = nil) throws {
            var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n"
            if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
            if let origin { request += "Origin: \(origin)\r\n" }
            try self.init(port: port, request: request + "\r\n")
        }

        private let reading = DispatchSemaphore(value: 0)

        /// Sends `request` as it is (one or several, pipelined) and reads what comes back;
        /// `paused`: reads nothing until `resume()`, as a listener that stalls.
        /// `highDescriptor`: the socket gets a number from `HighDescriptor`, for a test that
        /// watches that number.
        init(port: Int, request: String, paused: Bool = false, highDescriptor: Bool = false) throws {
            // A paused reader offers a small window, so the server's side fills up soon.
            guard let connected = FreePort.connectLoopback(port: port, receiveBuffer: paused ? 4096 : nil) else { throw POSIXError(.ECONNREFUSED) }
            let fd = highDescriptor ? HighDescriptor.move(connected) : connected
            guard fd >= 0 else { throw POSIXError(.EMFILE) }
            self.fd = fd
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            if !paused { reading.signal() }
            Thread.detachNewThread { [self] in
                reading.wait()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    // A child process of the tests ending (SIGCHLD) interrupts recv: not the end.
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 { let failure = String(cString: strerror(errno)); lock.withLock { ending = "recv failed: \(failure)" } }
                    if n <= 0 { break }
                    lock.withLock { received += buffer[0..<n] }
                }
                // Closed under the lock that `hangUp` takes: once closed, its number may be
                // another test's connection, which a late shutdown would end.
                lock.withLock {
                    close(fd)
                    closed = true
                }
            }
        }

        /// Starts reading, for a reader made `paused`.
        func resume() { reading.signal() }

        /// Closes its sending side only, and goes on reading.
        func finishSending() { shutdownUnlessClosed(Int32(SHUT_WR)) }

        /// Leaves, as a browser tab that closes does.
        func hangUp() { shutdownUnlessClosed(Int32(SHUT_RDWR)) }

        private func shutdownUnlessClosed(_ how: Int32) {
            lock.withLock { if !closed { _ = shutdown(fd, how) } }
        }

        /// Everything received so far, as it came.
        var raw: [UInt8] { lock.withLock { received } }

        /// The body so far, its chunks decoded, and whether its last chunk came.
        private var body: (text: String, complete: Bool) {
            let response = SSE.response(raw[...])
            return (response.text, response.complete)
        }

        /// The answer's head, lowercased.
        var head: String { SSE.response(raw[...]).head }
        /// The chunked body's last chunk came (a clean end, not a dropped connection).
        var isComplete: Bool { body.complete }
        var text: String { body.text }
        /// The server closed the connection.
        var isClosed: Bool { lock.withLock { closed } }
        /// What a failing test says of the connection: its head, size and end.
        var summary: String {
            lock.withLock { "\(received.count) bytes, \(closed ? ending : "open"): \(String(decoding: received.prefix(400), as: UTF8.self))" }
        }
        /// The last chunk came, or the server closed the connection.
        var isEnded: Bool { body.complete || lock.withLock { closed } }
        var events: [Event] { SSE.parse(text) }

        /// Waits (a bound against hanging, not a speed check) until `condition` holds.
        func wait(upTo seconds: Double = 60, until condition: (Reader) -> Bool) async throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition(self) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return condition(self)
        }
    }
}
