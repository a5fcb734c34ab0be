import DeferredCloud
import DeferredDemo
import Foundation
import Hummingbird
import NIOCore

/// An HTTP proxy in front of a cloud API that fails the first requests on purpose: the
/// answers a struggling AWS gives (throttling, 503), then passes everything through.
final class FaultInjectingProxy: @unchecked Sendable {
    let port: Int
    let faults: FaultPlan
    private let serving: Task<Void, any Error>

    var endpoint: String { "http://127.0.0.1:\(port)" }

    actor FaultPlan {
        /// Answers for the first requests, in order; after them, the real API answers.
        private var pending: [(status: Int, body: String)]
        /// Requests whose body holds this text always get the answer beside it.
        private let refusal: (text: String, answer: (status: Int, body: String))?
        private(set) var injected = 0
        private(set) var passed = 0

        init(_ answers: [(status: Int, body: String)], refusing refusal: (text: String, answer: (status: Int, body: String))?) {
            pending = answers
            self.refusal = refusal
        }

        func next(body: String) -> (status: Int, body: String)? {
            if let refusal, body.contains(refusal.text) {
                injected += 1
                return refusal.answer
            }
            guard !pending.isEmpty else { passed += 1; return nil }
            injected += 1
            return pending.removeFirst()
        }
    }

    static let noSpotCapacity = (status: 500, body: """
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>There is no Spot capacity available that matches your request.</Message></Error></Errors><RequestID>fault</RequestID></Response>
        """)

    static let throttling = (status: 400, body: """
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>
        """)
    static let unavailable = (status: 503, body: "<html>Service Unavailable</html>")

    init(to target: String, failing answers: [(status: Int, body: String)] = [],
         refusing refusal: (text: String, answer: (status: Int, body: String))? = nil) async throws {
        let plan = FaultPlan(answers, refusing: refusal)
        faults = plan
        let router = Router()
        router.post("/") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 16 << 20)
            if let fault = await plan.next(body: String(buffer: body)) {
                return Response(status: .init(code: fault.status), headers: [.contentType: "text/xml"],
                                body: .init(byteBuffer: ByteBuffer(string: fault.body)))
            }
            let forwarded = request.headers.filter { ![.contentLength, .connection].contains($0.name) }
                .map { (name: $0.name.rawName, value: $0.value) }
            let answer = try await HTTPClient().send(HTTPClientRequest(method: "POST", url: target + "/", headers: forwarded,
                                                                      body: Data(buffer: body)))
            return Response(status: .init(code: answer.status), headers: [.contentType: answer.header("content-type") ?? "text/xml"],
                            body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try FreePort.find()
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
            let task = Task { try await app.runService(gracefulShutdownSignals: []) }
            for _ in 0..<100 {
                if let fd = FreePort.connectLoopbackForTests(port: port) {
                    close(fd)
                    self.port = port
                    serving = task
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            task.cancel()
            lastError = POSIXError(.EADDRINUSE)
        }
        throw lastError ?? POSIXError(.EADDRINUSE)
    }

    func stop() { serving.cancel() }
}
