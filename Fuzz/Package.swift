// swift-tools-version:6.2
import Foundation
import PackageDescription

// libFuzzer entry points for deferred's parsers, built apart from the product by scripts/fuzz
// (`swift build --sanitize=fuzzer`): libFuzzer brings its own main, which a plain build lacks.
// The parent package's identity is its folder's name, whatever the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "deferred-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(path: root.path)],
    targets: [
        .executableTarget(
            name: "deferred-fuzz",
            dependencies: [.product(name: "DeferredFuzzTargets", package: root.lastPathComponent.lowercased())],
            path: "Driver"
        ),
    ],
    swiftLanguageModes: [.v6]
)
