import DeferredConfigFile
import Foundation

/// deferred.toml as `serve` reads it: parsed, then read into a config, with no files or
/// environment behind it.
enum ConfigFuzzing {
    static func run(_ bytes: [UInt8]) {
        guard (try? TOMLParser.parse(bytes: bytes)) != nil else { return }
        let loader = ConfigLoader(environment: [:], homeDirectory: "/nonexistent-home")
        _ = try? loader.load(bytes: bytes, baseDirectory: "/nonexistent-base")
    }
}
