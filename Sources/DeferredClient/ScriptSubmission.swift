import DeferredCloud
import DeferredSignatures
import Foundation

/// A script posted to a deferred server: signed here, sent as JSON, answered with its job.
/// What `deferred submit` and the demo do, as a library the tests can drive.
public struct ScriptSubmission: Sendable {
    public var server: String
    public var project: String
    public var interpreter: String?
    public var idempotencyKey: String?

    public init(server: String, project: String, interpreter: String? = nil, idempotencyKey: String? = nil) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.project = project
        self.interpreter = interpreter
        self.idempotencyKey = idempotencyKey
    }

    public struct Accepted: Sendable {
        public var id: String
        public var resultURL: String
        /// The job's event stream (from the answer, or next to the result URL).
        public var eventsURL: String
    }

    public enum Failure: Error, CustomStringConvertible {
        case unreadable(String)
        case key(path: String, SSHPrivateKey.LoadError)
        case refused(status: Int, message: String)

        public var description: String {
            switch self {
            case .unreadable(let why): why
            case .key(let path, let error): "\(path): \(error)"
            case .refused(let status, let message): "the server refused the script (\(status)): \(message)"
            }
        }
    }

    /// The script's text; it must be UTF-8 to travel in JSON.
    public static func read(_ file: String) throws(Failure) -> String {
        guard let data = FileManager.default.contents(atPath: file) else { throw .unreadable("cannot read \(file)") }
        guard let text = String(data: data, encoding: .utf8) else { throw .unreadable("\(file) is not UTF-8 text") }
        return text
    }

    public static func sign(_ script: String, key: String) throws(Failure) -> SSHSignature {
        do {
            return try SSHPrivateKey(contentsOfFile: key).sign(Data(script.utf8), namespace: "deferred")
        } catch let error as SSHPrivateKey.LoadError {
            throw .key(path: key, error)
        } catch {
            throw .unreadable("cannot sign with \(key): \(error)")
        }
    }

    public func post(_ script: String, signature: String, client: HTTPClient = HTTPClient()) async throws -> Accepted {
        var fields = ["script": script, "signature": signature]
        if let interpreter { fields["interpreter"] = interpreter }
        var headers = [(name: "Content-Type", value: "application/json")]
        if let idempotencyKey { headers.append((name: "Idempotency-Key", value: idempotencyKey)) }
        let response = try await client.send(HTTPClientRequest(
            method: "POST", url: "\(server)/projects/\(project)/scripts", headers: headers,
            body: try JSONSerialization.data(withJSONObject: fields, options: .sortedKeys)))
        let answer = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        guard response.status == 202, let id = answer["id"] as? String, let resultURL = answer["result_url"] as? String else {
            throw Failure.refused(status: response.status, message: answer["error"] as? String ?? String(decoding: response.body, as: UTF8.self))
        }
        let eventsURL = answer["events_url"] as? String ?? resultURL.replacingOccurrences(of: "/results.json", with: "/events")
        return Accepted(id: id, resultURL: resultURL, eventsURL: eventsURL)
    }

    /// The exit status `deferred submit --wait` ends with: the job's own, else 124 for a
    /// timeout (as timeout(1)), 130 for a cancel, 1 when it could not run.
    public static func exitCode(of results: [String: Any]) -> Int32 {
        if let exitStatus = results["exit_status"] as? Int { return Int32(truncatingIfNeeded: exitStatus) }
        return switch results["status"] as? String {
        case "timed_out": 124
        case "cancelled": 130
        default: 1
        }
    }
}
