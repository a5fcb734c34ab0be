import Foundation
import PackagePlugin

/// Writes `BuildStamp.swift` into the `deferred` executable: the commit it was built from, for
/// `deferred --version`. Run again whenever the checked-out commit changes (its inputs are git's
/// HEAD and the branch it names); outside a git checkout the commit is "unknown".
@main
struct BuildStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let git = root.appending(path: ".git")
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildStamp.swift")
        var inputs = [git.appending(path: "HEAD"), git.appending(path: "packed-refs")]
        if let head = try? String(contentsOf: git.appending(path: "HEAD"), encoding: .utf8), head.hasPrefix("ref: ") {
            inputs.append(git.appending(path: head.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown
            printf '// Written by the BuildStamp plugin at each build.\\nenum BuildStamp {\\n    static let commit = "%s"\\n}\\n' "$commit" > "$2"
            """
        return [.buildCommand(
            displayName: "Stamping deferred with its commit", executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "sh", root.path, output.path],
            inputFiles: inputs.filter { FileManager.default.fileExists(atPath: $0.path) }, outputFiles: [output])]
    }
}
