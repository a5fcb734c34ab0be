import DeferredCore
import Foundation

/// deferred.toml as `serve` reads it: parsed, then read into a config, with no files or
/// environment behind it.
enum ConfigFuzzing {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard (try? TOMLParser.parse(text)) != nil else { return }
        let loader = ConfigLoader(environment: [:], homeDirectory: "/nonexistent-home")
        _ = try? loader.load(text: text, baseDirectory: "/nonexistent-base")
    }
}
