import ArgumentParser
import Foundation
import Logging

/// `--log-format` and `--log-level`, for the commands that log as they work.
struct LogOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(help: "text: one line each, for people; json: one JSON object a line (time, level, message, job, host, delivery, request_id).")
    var logFormat: Format = .text
    @Option(help: "The least level logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    /// Sets up the process's logging once, to standard error, and returns the root logger.
    func bootstrap() -> Logger { Self.bootstrap(format: logFormat, level: logLevel) }

    static func bootstrap(format: Format, level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                return JSONLogHandler(label: label, level: level)
            }
        }
        return Logger(label: "deferred")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// One JSON object a line on standard error: `time` (RFC 3339), `level`, `message`, `label`,
/// and the metadata, whose `hb.request.id` is written `request_id`. Everything is escaped by
/// the JSON encoder: a payload's newline cannot start a forged line.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = ["time": Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date()),
                                        "level": event.level.rawValue, "message": event.message.description, "label": label]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields[key == "hb.request.id" ? "request_id" : key] = value.description
        }
        if let error = event.error { fields["error"] = "\(error)" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(fields) else { return }
        FileHandle.standardError.write(data + Data("\n".utf8))
    }
}
