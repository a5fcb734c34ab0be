import DeferredCloud
import DeferredDemo
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An HTTP proxy in front of a cloud API (EC2's Query API, S3) that fails requests on purpose:
/// the answers a struggling AWS gives (throttling, 503), then passes everything through.
/// Requests are matched by `METHOD path?query` and their body.
public final class FaultInjectingProxy: @unchecked Sendable {
    public let port: Int
    public let faults: FaultPlan
    private let serving: Task<Void, any Error>

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public actor FaultPlan {
        /// Answers for the first requests, in order; after them, the real API answers.
        private var pending: [(status: Int, body: String)]
        /// Requests whose line or body holds this text always get the answer beside it.
        private let refusal: (text: String, answer: (status: Int, body: String))?
        /// Requests holding this text get the answer the first `times` they come.
        private var flaky: (text: String, times: Int, answer: (status: Int, body: String))?
        public private(set) var injected = 0
        public private(set) var passed = 0
        /// Every request's line, in order, faults included.
        public private(set) var seen: [String] = []

        init(_ answers: [(status: Int, body: String)], refusing refusal: (text: String, answer: (status: Int, body: String))?,
             flaky: (text: String, times: Int, answer: (status: Int, body: String))? = nil) {
            pending = answers
            self.refusal = refusal
            self.flaky = flaky
        }

        func next(body: String) -> (status: Int, body: String)? {
            seen.append(String(body.prefix { $0 != "\n" }))
            if let refusal, body.contains(refusal.text) {
                injected += 1
                return refusal.answer
            }
            if let current = flaky, current.times > 0, body.contains(current.text) {
                flaky?.times -= 1
                injected += 1
                return current.answer
            }
            guard !pending.isEmpty else { passed += 1; return nil }
            injected += 1
            return pending.removeFirst()
        }
    }

    public static let noSpotCapacity = (status: 500, body: """
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>There is no Spot capacity available that matches your request.</Message></Error></Errors><RequestID>fault</RequestID></Response>
        """)

    public static let throttling = (status: 400, body: """
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>
        """)
    public static let unavailable = (status: 503, body: "<html>Service Unavailable</html>")

    public init(to target: String, failing answers: [(status: Int, body: String)] = [],
         refusing refusal: (text: String, answer: (status: Int, body: String))? = nil,
         flaky: (text: String, times: Int, answer: (status: Int, body: String))? = nil) async throws {
        let plan = FaultPlan(answers, refusing: refusal, flaky: flaky)
        faults = plan
        let router = Router()
        router.add(middleware: Forwarder(plan: plan, target: target))
        (port, serving) = try await Self.serveOnLoopback(router)
    }

    /// Serves `router` on a free loopback port (another one if that one is taken meanwhile),
    /// once it accepts connections.
    public static func serveOnLoopback(_ router: Router<BasicRequestContext>) async throws -> (port: Int, serving: Task<Void, any Error>) {
        for _ in 0..<5 {
            let port = try FreePort.find()
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
            let task = Task { try await app.runService(gracefulShutdownSignals: []) }
            for _ in 0..<100 {
                if let fd = FreePort.connectLoopback(port: port) {
                    close(fd)
                    return (port, task)
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            task.cancel()
        }
        throw POSIXError(.EADDRINUSE)
    }

    public func stop() { serving.cancel() }

    /// Answers every request: a planned fault, or the target's own answer.
    struct Forwarder: RouterMiddleware {
        typealias Context = BasicRequestContext
        let plan: FaultPlan
        let target: String

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            var request = request
            let body = try await request.collectBody(upTo: 128 << 20)
            let line = "\(request.method) \(request.uri.path)\(request.uri.query.map { "?" + $0 } ?? "")"
            if let fault = await plan.next(body: line + "\n" + String(decoding: body.readableBytesView.prefix(1 << 16), as: UTF8.self)) {
                return Response(status: .init(code: fault.status), headers: [.contentType: "text/xml"],
                                body: .init(byteBuffer: ByteBuffer(string: fault.body)))
            }
            let forwarded = request.headers.filter { ![.contentLength, .connection].contains($0.name) }
                .map { (name: $0.name.rawName, value: $0.value) }
            let answer = try await HTTPClient().send(HTTPClientRequest(
                method: request.method.rawValue, url: target + request.uri.string, headers: forwarded,
                body: Data(buffer: body), timeout: .seconds(120)))
            var headers = HTTPFields()
            for header in answer.headers where !["content-length", "transfer-encoding", "connection"].contains(header.name) {
                if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
            }
            return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
    }
}
