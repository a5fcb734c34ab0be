import DeferredCore
import DeferredDemo
import DeferredTestSupport
import Foundation

/// The release `deferred serve` as the benches run it: on loopback, its state and artifacts in
/// a folder of the bench, its webhook and script secret in BENCH_SECRET.
enum BenchServer {
    static let secret = "bench-secret"

    /// The `[server]`, `[store]`, `[github]` and `[artifacts]` tables of its deferred.toml: a
    /// SQLite file in `folder`, or the PostgreSQL database `postgres` (its password in
    /// BENCH_DB_PASSWORD; servers silent 5 s are taken for dead) with the folder as shared.
    static func tables(port: Int, folder: String, postgres: String? = nil) -> String {
        let store = postgres.map { "url = \"\($0)\"\npassword_env = \"BENCH_DB_PASSWORD\"\ntakeover_seconds = 5" }
            ?? "url = \"sqlite:\(folder)/state.sqlite\""
        return """
        [server]
        listen = "127.0.0.1:\(port)"
        [store]
        \(store)
        [github]
        secret_env = "BENCH_SECRET"
        [artifacts]
        store = "file:\(folder)/artifacts"
        \(postgres == nil ? "" : "shared = true")
        """
    }

    /// The password of the benches' throwaway PostgreSQL.
    static let databasePassword = ThrowawayPostgres.password

    /// Starts it with `config`; its log goes to `folder/serve.log`.
    static func spawn(_ executable: String, config: String, folder: String, log: String = "serve.log") throws -> SpawnedProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["BENCH_SECRET"] = secret
        environment["BENCH_DB_PASSWORD"] = databasePassword
        return try SpawnedProcess(executable: executable, arguments: ["serve", "--config", config],
                                  stderrPath: folder + "/" + log, environment: environment)
    }
}
