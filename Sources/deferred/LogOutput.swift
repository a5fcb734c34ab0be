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
            LineLogHandler(label: label, level: level, format: format)
        }
        return Logger(label: "deferred")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
