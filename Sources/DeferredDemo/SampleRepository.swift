import Foundation

/// A local git repository with commits made on the spot: the project of `deferred demo` and
/// of the tests, fetched by the build host through a file path as it would a GitHub URL.
/// git runs off Swift's thread pool: tests make commits while servers in the same process answer.
public struct SampleRepository: Sendable {
    public let path: String

    /// Makes a repository at `path` (removing what was there) on branch `main`.
    public static func create(at path: String) async throws -> SampleRepository {
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let repo = SampleRepository(path: path)
        try await repo.git(["init", "-q", "-b", "main"])
        return repo
    }

    /// Writes `files` (path → content; executable when the path ends in `.sh` or sits in
    /// `script/`), commits them, and returns the new commit's SHA.
    @discardableResult
    public func commit(_ files: [String: String], message: String = "deferred sample") async throws -> String {
        for (relative, content) in files {
            let url = URL(fileURLWithPath: path).appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
            if relative.hasSuffix(".sh") || relative.hasPrefix("script/") {
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
            }
        }
        try await git(["add", "-A"])
        try await git(["-c", "user.name=deferred", "-c", "user.email=deferred@localhost", "commit", "-q", "-m", message])
        return try await git(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    public func git(_ arguments: [String]) async throws -> String {
        try await LocalCommand.runOffPool(["git"] + arguments, in: path)
    }

    /// The payload GitHub sends for a push of `commit` to `ref`, in the shape of its
    /// `push` event, with `repository.clone_url` pointing at this repository.
    public func pushPayload(repository: String, ref: String, commit: String, pusher: String = "octocat") -> Data {
        let owner = String(repository.split(separator: "/").first ?? "octo-org")
        let name = String(repository.split(separator: "/").last ?? "sample")
        let payload: [String: Any] = [
            "ref": ref,
            "before": String(repeating: "0", count: 40),
            "after": commit,
            "created": true, "deleted": false, "forced": false,
            "base_ref": NSNull(),
            "compare": "https://github.com/\(repository)/compare/\(commit.prefix(12))",
            "commits": [["id": commit, "message": "deferred sample", "distinct": true]],
            "head_commit": ["id": commit, "message": "deferred sample", "timestamp": "2026-11-22T12:00:00Z"],
            "repository": [
                "id": 1, "name": name, "full_name": repository, "private": false,
                "owner": ["name": owner, "login": owner],
                "html_url": "https://github.com/\(repository)",
                "clone_url": "file://" + path,
                "default_branch": "main", "master_branch": "main",
            ],
            "pusher": ["name": pusher, "email": "\(pusher)@example.com"],
            "sender": ["login": pusher, "id": 1],
        ]
        return (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data()
    }
}
