import DeferredDemo
import Foundation

/// The release `deferred serve` as the benches run it: on loopback, its state and artifacts in
/// a folder of the bench, its webhook and script secret in BENCH_SECRET.
enum BenchServer {
    static let secret = "bench-secret"

    /// The `[server]`, `[github]` and `[artifacts]` tables of its deferred.toml.
    static func tables(port: Int, folder: String) -> String {
        """
        [server]
        listen = "127.0.0.1:\(port)"
        state = "sqlite:\(folder)/state.sqlite"
        [github]
        secret_env = "BENCH_SECRET"
        [artifacts]
        store = "file:\(folder)/artifacts"
        """
    }

    /// Starts it with `config`; its log goes to `folder/serve.log`.
    static func spawn(_ executable: String, config: String, folder: String) throws -> SpawnedProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["BENCH_SECRET"] = secret
        return try SpawnedProcess(executable: executable, arguments: ["serve", "--config", config],
                                  stderrPath: folder + "/serve.log", environment: environment)
    }
}
