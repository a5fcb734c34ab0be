import Foundation

/// `../shared/fixtures/` beside the project's checkout, as CI lays it out.
public enum Fixtures {
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }   // Tests/Support/Fixtures.swift → project
        return url.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    public static func data(_ relative: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(relative))
    }
}
