import DeferredCore
import DeferredDemo
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix

// The floor under the intake's figure: what the HTTP path alone costs on this machine, under the
// intake bench's own load (wrk, intake.lua, the same signed pushes). Two servers that only check
// the body's HMAC-SHA256 and answer 202 with a small JSON body, nothing stored: one Hummingbird
// route (as deferred's webhook is served), and bare SwiftNIO HTTP/1 handlers. Each runs as its
// own process (`intake-floor-server router|nio PORT`), beside adnanh/webhook, in the same run.
// Usage: deferred-bench intake-floor [S] [C] [R]
func intakeFloorBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let numbers = arguments.compactMap { Int($0) }
    let seconds = numbers.first ?? 15, connections = numbers.dropFirst().first ?? 32, rounds = numbers.dropFirst(2).first ?? 3
    guard let (_, wrk, webhook) = intakePrograms() else { return 1 }
    let folder = NSTemporaryDirectory() + "deferred-intake-floor-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // Nothing is stored, so bodies may repeat; enough for most of a run without.
    let bodies = try SignedPushes.write(count: 20_000 * seconds, threads: 2, to: folder + "/bodies", secret: BenchServer.secret)
    let load = WrkLoad(wrk: wrk, script: benchScript("intake.lua"), bodies: bodies, seconds: seconds, connections: connections)
    let own = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path

    var figures: [String: [IntakeFigures]] = [:]
    for round in 1...rounds {
        FileHandle.standardError.write(Data("bench: round \(round) of \(rounds)\n".utf8))
        for mode in ["router", "nio"] {
            let port = try FreePort.find()
            let server = try SpawnedProcess(executable: own, arguments: ["intake-floor-server", mode, String(port)],
                                            stderrPath: "\(folder)/\(mode)-\(round).log")
            defer { server.terminate() }
            let url = "http://127.0.0.1:\(port)/hooks/github"
            try await waitUntilAnswers(url, server, log: "\(folder)/\(mode)-\(round).log")
            figures[mode, default: []].append(try await measure(pid: server.pid) { try await load.run(url) })
        }
        figures["peer", default: []].append(try await WebhookRig(folder: "\(folder)/webhook-\(round)", executable: webhook).run(load))
    }
    let peer = IntakeFigures.median(figures["peer"] ?? [])
    print("")
    print("the HTTP path alone: HMAC checked, 202 answered, nothing stored; wrk -t2 -c\(connections) -d\(seconds)s with intake.lua, medians of \(rounds) rounds, in the same run")
    var rows = [["", "requests/s", "p50", "p99", "server CPU per request", "× the peer's requests/s"]]
    for (name, key) in [("Hummingbird route", "router"), ("bare SwiftNIO", "nio"), ("peer: adnanh/webhook (runs /bin/true)", "peer")] {
        let median = IntakeFigures.median(figures[key] ?? [])
        rows.append([name, String(format: "%.0f", median.perSecond), milliseconds(median.p50), milliseconds(median.p99),
                     String(format: "%.0f µs", median.cpuPerRequest * 1e6), String(format: "%.2f×", median.perSecond / peer.perSecond)])
    }
    let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "   "))
    }
    return 0
}

/// One floor server, in this process until it is killed: `router` or `nio`, on `port`.
func intakeFloorServer(_ arguments: ArraySlice<String>) async throws -> Int32 {
    guard let mode = arguments.first, let port = arguments.dropFirst().first.flatMap({ Int($0) }) else { return 1 }
    switch mode {
    case "router":
        let router = Router()
        router.post("/hooks/github") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 25 << 20)
            let verdict = FloorHook.answer(signature: request.headers[.init("X-Hub-Signature-256")!], body: body.readableBytesView)
            return Response(status: verdict.status == 202 ? .accepted : .unauthorized,
                            headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: verdict.body)))
        }
        router.get("/hooks/github") { _, _ in Response(status: .methodNotAllowed) }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService(gracefulShutdownSignals: [])
    case "nio":
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(FloorHook())
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    default:
        return 1
    }
    return 0
}

/// The whole of a floor server's work on a request: the HMAC check and the answer.
final class FloorHook: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    static func answer(signature: String?, body: some DataProtocol) -> (status: Int, body: String) {
        do {
            try WebhookSignature.verify(header: signature, body: body, secret: BenchServer.secret)
            return (202, #"{"status":"queued"}"#)
        } catch {
            return (401, #"{"error":"bad signature"}"#)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            let verdict = Self.answer(signature: head.headers["X-Hub-Signature-256"].first, body: body.readableBytesView)
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(verdict.body.utf8.count))])
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            let status: HTTPResponseStatus = verdict.status == 202 ? .accepted : .unauthorized
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: verdict.body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if !keepAlive { context.close(promise: nil) } }
            self.head = nil
        }
    }
}
