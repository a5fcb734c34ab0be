import DeferredDemo
import DeferredTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Stands in for a server deferred reports to (GitHub's API, a notify_url receiver): records
/// every request and answers from a script (say 502 twice, then 201).
final class RecordingServer: @unchecked Sendable {
    struct Recorded: Sendable {
        var method: String
        var path: String
        var headers: HTTPFields
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    actor Log {
        var requests: [Recorded] = []
        var answers: [Int]
        init(answers: [Int]) { self.answers = answers }
        func record(_ r: Recorded) -> Int {
            requests.append(r)
            return answers.isEmpty ? 201 : answers.removeFirst()
        }
    }

    let port: Int
    let log: Log
    private let serving: Task<Void, any Error>
    var url: String { "http://127.0.0.1:\(port)" }

    /// `answers`: the statuses of the first requests, in order; after them, 201.
    init(answers: [Int] = []) async throws {
        let log = Log(answers: answers)
        self.log = log
        let router = Router()
        router.add(middleware: Recorder(log: log))
        (port, serving) = try await FaultInjectingProxy.serveOnLoopback(router)
    }

    func stop() { serving.cancel() }

    /// Waits (a bound against hanging) until `count` requests came.
    func requests(atLeast count: Int, seconds: Double = 60) async throws -> [Recorded] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let got = await log.requests
            if got.count >= count { return got }
            try await Task.sleep(for: .milliseconds(50))
        }
        return await log.requests
    }

    struct Recorder: RouterMiddleware {
        typealias Context = BasicRequestContext
        let log: Log
        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            var request = request
            let body = try await request.collectBody(upTo: 16 << 20)
            let status = await log.record(Recorded(method: request.method.rawValue, path: request.uri.string, headers: request.headers,
                                                   body: Data(body.readableBytesView)))
            return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
    }
}
