import Foundation
import Logging
import Synchronization

/// One line a log event on standard error, in `--log-format`:
/// - `text`: the way swift-log's `StreamLogHandler` writes it (`time level label: key=value …
///   [source] message`, keys sorted), at a fraction of its cost on the intake's path, where
///   every request sets metadata and logs a line: metadata is formatted when a line is
///   written, not again at each change of a logger's metadata (the router sets a request id
///   on every request's logger), and the time once a second, not at each line (glibc's
///   `localtime` looks at the zone file at each call);
/// - `json`: one object, `time` (RFC 3339), `level`, `message`, `label` and the metadata, whose
///   `hb.request.id` is written `request_id`. Everything is escaped by the JSON encoder: a
///   payload's newline cannot start a forged line.
/// A line is one `write`, under a lock, so concurrent lines never interleave.
struct LineLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    let format: LogOptions.Format
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level, format: LogOptions.Format) {
        self.label = label
        logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        switch format {
        case .text: StandardError.write(textLine(event, fields))
        case .json: jsonLine(event, fields).map(StandardError.write)
        }
    }

    private func textLine(_ event: LogEvent, _ fields: Logger.Metadata) -> String {
        var fields = fields
        if let error = event.error {
            fields["error.message"] = "\(error)"
            fields["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var line = LogClock.shared.now()
        line += " \(event.level)"
        if !label.isEmpty { line += " " + label }
        line += ":"
        for key in fields.keys.sorted() {
            line += " \(key)=\(fields[key]!)"
        }
        line += " [\(event.source)] \(event.message)\n"
        return line
    }

    private func jsonLine(_ event: LogEvent, _ metadata: Logger.Metadata) -> String? {
        var fields: [String: String] = ["time": Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date()),
                                        "level": event.level.rawValue, "message": event.message.description, "label": label]
        for (key, value) in metadata {
            fields[key == "hb.request.id" ? "request_id" : key] = value.description
        }
        if let error = event.error { fields["error"] = "\(error)" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(fields) else { return nil }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// The local time as `%Y-%m-%dT%H:%M:%S%z`, formatted again only when the second changes.
final class LogClock: Sendable {
    static let shared = LogClock()
    private let last = Mutex<(second: time_t, text: String)>((-1, ""))

    func now() -> String {
        let second = time(nil)
        if let cached = last.withLock({ $0.second == second ? $0.text : nil }) { return cached }
        var parts = tm()
        var clock = second
        guard localtime_r(&clock, &parts) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        let text = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        last.withLock { $0 = (second, text) }
        return text
    }
}

/// Standard error, written a whole line at a time.
enum StandardError {
    private static let lock = Mutex(())

    static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            lock.withLock { _ in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // Nowhere to write the log to: nothing else to be done.
                    }
                }
            }
        }
    }
}
