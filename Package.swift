// swift-tools-version:6.2
import PackageDescription

// Modules follow the architecture in DESIGN.md (README's "Architecture" says which file holds
// each part). Every arrow points one way, from a module to what it imports:
//
//   deferred (command line) ──→ DeferredHTTP, DeferredDispatcher, DeferredConfigFile, DeferredClient, DeferredDemo
//   DeferredHTTP ─────────────→ DeferredStore, DeferredArtifacts, DeferredSignatures, DeferredCore
//   DeferredDispatcher ───────→ DeferredStore, DeferredRunner, DeferredProviders, DeferredArtifacts, DeferredSSH, DeferredCloud, DeferredCore
//   DeferredRunner ───────────→ DeferredSSH, DeferredCore
//   DeferredProviders, DeferredArtifacts, DeferredClient ──→ DeferredCloud ──→ DeferredCore
//   DeferredProviders ────────→ DeferredSSH (a wol machine's sleep command)
//   DeferredStore ────────────→ DeferredCore (GRDB, PostgresNIO)
//   DeferredConfigFile ───────→ DeferredCore, DeferredSignatures
//   DeferredCore ─────────────→ DeferredSignatures
//   DeferredStore, DeferredArtifacts, DeferredRunner, DeferredDispatcher ──→ DeferredFiles (private files on the server's disk)
//   DeferredSSH ──→ CLibSSH (libssh);  DeferredCloud ──→ CCurl (libcurl);  DeferredDemo ──→ DeferredCore (OffPool)
//   DeferredStore ──→ CLZ4 (liblz4: stored webhook payloads)
//
// DeferredTestSupport (Tests/Support) and deferred-bench sit beside the product, never in it.
let package = Package(
    name: "deferred",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "deferred", targets: ["deferred"]),
        // For Fuzz/Package.swift, which builds these entry points with libFuzzer (scripts/fuzz).
        .library(name: "DeferredFuzzTargets", targets: ["DeferredFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        // The store of several servers sharing one queue (`[store] url = "postgres://…"`).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // /metrics: counters and histograms through swift-metrics, in Prometheus' text format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // HTTP parts as swift-http-types, for event streams served below the router (already Hummingbird's).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // libssh, wrapped once by DeferredSSH; nothing else imports it.
        .systemLibrary(
            name: "CLibSSH",
            pkgConfig: "libssh",
            providers: [.apt(["libssh-dev"])]
        ),
        // SSH signatures (SSHSIG), allowed_signers and OpenSSH private keys: what signed scripts need.
        .target(
            name: "DeferredSignatures",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "DeferredCore",
            dependencies: ["DeferredSignatures", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The server's own files, private to its user (0700 folders, 0600 files) whatever the umask.
        .target(name: "DeferredFiles"),
        // deferred.toml read from its file: the TOML 1.0 parser, the typed table reader and the
        // loader that checks every key and reads secrets from the environment.
        .target(
            name: "DeferredConfigFile",
            dependencies: ["DeferredCore", "DeferredSignatures"]
        ),
        // libcurl, wrapped once by DeferredCloud; nothing else imports it.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // HTTP out: cloud provider APIs and the `deferred submit` client, through libcurl.
        .target(
            name: "DeferredCloud",
            dependencies: ["CCurl", "DeferredCore", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Metrics", package: "swift-metrics")]
        ),
        // The client side of scripts: sign, post, follow a result URL (`deferred submit`).
        .target(
            name: "DeferredClient",
            dependencies: ["DeferredCloud", "DeferredCore", "DeferredSignatures"]
        ),
        // Host providers: static hosts, EC2 instances woken and put to sleep, machines started by
        // the operator's commands, and machines on the LAN woken by a magic packet (whose sleep
        // command goes over SSH).
        .target(
            name: "DeferredProviders",
            dependencies: ["DeferredCore", "DeferredCloud", "DeferredSSH"]
        ),
        .target(
            name: "DeferredSSH",
            dependencies: ["CLibSSH"]
        ),
        // liblz4, wrapped once by DeferredStore's `LZ4Block`; nothing else imports it.
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .target(
            name: "DeferredStore",
            dependencies: ["CLZ4", "DeferredFiles", "DeferredCore", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift"),
                           .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Where results.json, output.log and artifacts are kept and served from: a folder or S3.
        .target(
            name: "DeferredArtifacts",
            dependencies: ["DeferredFiles", "DeferredCore", "DeferredCloud"]
        ),
        .target(
            name: "DeferredRunner",
            dependencies: ["DeferredFiles", "DeferredCore", "DeferredSSH", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "DeferredDispatcher",
            dependencies: ["DeferredFiles", 
                "DeferredArtifacts", "DeferredCloud", "DeferredCore", "DeferredProviders", "DeferredRunner", "DeferredSSH", "DeferredStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "DeferredHTTP",
            dependencies: [
                "DeferredArtifacts", "DeferredCore", "DeferredSignatures", "DeferredStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // The dashboard's pages: Mustache templates kept as files, not strings in code.
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ],
            resources: [.copy("Dashboard/Templates"), .copy("Dashboard/Assets"), .copy("API/openapi.json")]
        ),
        // A throwaway sshd and sample repository: the build host of `deferred demo` and of the tests.
        .target(
            name: "DeferredDemo",
            dependencies: ["DeferredCore"]
        ),
        .executableTarget(
            name: "deferred",
            dependencies: [
                "DeferredArtifacts", "DeferredClient", "DeferredCloud", "DeferredConfigFile", "DeferredCore", "DeferredDemo",
                "DeferredDispatcher", "DeferredHTTP", "DeferredProviders", "DeferredStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            plugins: ["BuildStamp"]
        ),
        // `deferred --version`'s commit, written at each build.
        .plugin(name: "BuildStamp", capability: .buildTool()),
        // scripts/bench/artifacts: memory and throughput of moving a large artifact, beside scp.
        .executableTarget(
            name: "deferred-bench",
            dependencies: ["DeferredArtifacts", "DeferredCloud", "DeferredCore", "DeferredDemo", "DeferredHTTP", "DeferredRunner",
                           "DeferredSSH", "DeferredStore", "DeferredTestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")],
            path: "Benchmarks/deferred-bench"
        ),
        // Every parser of outside bytes as a function of bytes: driven by libFuzzer through
        // Fuzz/Package.swift, and replayed over Fuzz/Corpus and Fuzz/Regressions by the tests.
        .target(
            name: "DeferredFuzzTargets",
            dependencies: ["DeferredCloud", "DeferredConfigFile", "DeferredCore", "DeferredRunner", "DeferredSignatures", "DeferredStore"],
            path: "Fuzz/Targets"
        ),
        // What tests and benchmarks start beside deferred: moto, a slow TCP proxy, an SSH agent,
        // a fault-injecting HTTP proxy, and the shared fixtures. Not part of the product.
        .target(
            name: "DeferredTestSupport",
            dependencies: [
                "DeferredCloud", "DeferredCore", "DeferredDemo",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/Support"
        ),
        // The store conformance suite: what every JobStore implementation must do.
        .testTarget(
            name: "DeferredStoreTests",
            dependencies: ["DeferredCore", "DeferredStore", "DeferredTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "DeferredConfigFileTests",
            dependencies: ["DeferredConfigFile", "DeferredCore", "DeferredTestSupport"]
        ),
        .testTarget(
            name: "DeferredFuzzTargetsTests",
            dependencies: ["DeferredFuzzTargets"]
        ),
        .testTarget(
            name: "DeferredCoreTests",
            dependencies: ["DeferredCore", "DeferredTestSupport"]
        ),
        .testTarget(
            name: "DeferredSignaturesTests",
            dependencies: ["DeferredSignatures", "DeferredDemo"]
        ),
        .testTarget(
            name: "DeferredCloudTests",
            dependencies: ["DeferredCloud", "DeferredDemo", "DeferredTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "DeferredRunnerTests",
            dependencies: ["DeferredCore", "DeferredDemo", "DeferredRunner", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "DeferredSSHTests",
            dependencies: ["DeferredDemo", "DeferredSSH", "DeferredTestSupport"]
        ),
        .testTarget(
            name: "DeferredServerTests",
            dependencies: [
                "DeferredArtifacts", "DeferredClient", "DeferredCloud", "DeferredCore", "DeferredDemo", "DeferredDispatcher",
                "DeferredHTTP", "DeferredProviders", "DeferredRunner", "DeferredSSH", "DeferredSignatures", "DeferredStore",
                "DeferredTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
