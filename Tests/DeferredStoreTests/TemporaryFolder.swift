import Foundation

/// A folder of one test's own for its store's files, removed afterwards whatever the test did.
enum TemporaryFolder {
    static func with<T>(_ label: String, _ body: (_ folder: String) async throws -> T) async throws -> T {
        let folder = NSTemporaryDirectory() + "deferred-\(label)-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try await body(folder)
    }
}
