import DeferredTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What FakeHetzner and FakeDigitalOcean share: servers with a power state, the actions that
/// change it, servers made and deleted with labels, a token check, planned faults and
/// rate-limit headers. Each fake speaks its cloud's own words and JSON around this.
/// Transitions are quick and stepwise: an action ends at its next read, and a server that is
/// starting or stopping settles at its next read after that.
final class FakeServerCloud: @unchecked Sendable {
    /// A cloud's words for a server's states and an action's progress.
    struct Words: Sendable {
        var running: String
        var off: String
        /// Shown while powering on or off, if the cloud has such a state.
        var starting: String?
        var stopping: String?
        /// A server just made.
        var new: String
        var actionRunning: String
        var actionDone: String
    }

    actor State {
        struct Server { var name: String; var status: String; var ip: String; var labels: [String: String] = [:]; var created = Date() }
        struct Action { var command: String; var server: Int; var status: String; var then: String }
        let words: Words
        var servers: [Int: Server]
        var actions: [Int: Action] = [:]
        var nextAction = 1000
        var nextServer = 5000
        /// Statuses to answer the next requests with, before any other work.
        var faults: [Int] = []
        var ignoresACPI = false
        var calls: [String] = []
        /// Each power action asked for, as `step id`: `on 42`, `shutdown 42`, `off 42`.
        var powered: [String] = []
        /// Requests per window, what is left of it, and when it is full again.
        var limit = 3600
        var remaining = 3600
        var resetAt = Date().addingTimeInterval(1)
        var window: TimeInterval = 1
        /// Requests answered 429 because the limit was spent (not planned faults).
        var throttled = 0
        /// Servers a list answers with per page, whatever the request asks; nil: as asked.
        var pageSize: Int?
        /// The bodies of the create requests, as sent.
        var orders: [Data] = []
        /// Creates whose server is made but whose answer is a 503, as when a proxy drops it.
        var lostCreateAnswers = 0

        init(words: Words, servers: [Int: Server]) {
            self.words = words
            self.servers = servers
        }

        func next(_ call: String) -> Int? {
            calls.append(call)
            if Date() >= resetAt {
                remaining = limit
                resetAt = Date().addingTimeInterval(window)
            }
            guard remaining > 0 else {
                throttled += 1
                return 429
            }
            remaining -= 1
            return faults.isEmpty ? nil : faults.removeFirst()
        }
        func limit(to requests: Int, per seconds: TimeInterval) {
            limit = requests
            remaining = requests
            window = seconds
            resetAt = Date().addingTimeInterval(seconds)
        }
        func inject(_ statuses: [Int]) { faults += statuses }
        func ignoreACPI() { ignoresACPI = true }
        func setPageSize(_ size: Int) { pageSize = size }
        func recordOrder(_ body: Data) { orders.append(body) }
        func loseCreateAnswers(_ count: Int) { lostCreateAnswers = count }
        /// Whether this create's answer is lost (the server is made all the same).
        func losesThisAnswer() -> Bool {
            guard lostCreateAnswers > 0 else { return false }
            lostCreateAnswers -= 1
            return true
        }
        func status(of id: Int) -> String? { servers[id]?.status }
        func add(_ id: Int, _ server: Server) { servers[id] = server }

        func readServer(_ id: Int) -> Server? {
            guard var server = servers[id] else { return nil }
            let shown = server
            // A transition settles after it was seen once.
            if server.status == words.starting || server.status == words.new { server.status = words.running }
            if server.status == words.stopping { server.status = words.off }
            servers[id] = server
            return shown
        }

        /// `on`, `shutdown` or `off` on a server: the new action's id.
        func start(_ step: String, on id: Int) -> Int? {
            guard let server = servers[id] else { return nil }
            let during: String?, after: String
            switch step {
            case "on": (during, after) = (server.status == words.off ? words.starting : nil, words.running)
            case "off": (during, after) = (nil, words.off)
            case "shutdown": (during, after) = (nil, ignoresACPI ? server.status : (words.stopping ?? words.off))
            default: return nil
            }
            powered.append("\(step) \(id)")
            nextAction += 1
            actions[nextAction] = Action(command: step, server: id, status: words.actionRunning, then: after)
            if let during { servers[id]?.status = during }
            return nextAction
        }

        func readAction(_ id: Int) -> Action? {
            guard var action = actions[id] else { return nil }
            if action.status == words.actionRunning {
                action.status = words.actionDone
                actions[id] = action
                if action.then != words.running || servers[action.server]?.status != words.starting { servers[action.server]?.status = action.then }
            }
            return action
        }

        func create(name: String, labels: [String: String]) -> (Int, Server) {
            nextServer += 1
            let server = Server(name: name, status: words.new, ip: "127.0.0.1", labels: labels)
            servers[nextServer] = server
            return (nextServer, server)
        }

        func delete(_ id: Int) -> Bool { servers.removeValue(forKey: id) != nil }

        /// Servers with `key` = `value` among their labels, by id.
        func labelled(_ key: String, _ value: String) -> [(Int, Server)] {
            servers.filter { $0.value.labels[key] == value }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }

        /// The servers made (not the ones the test began with), by id.
        func made() -> [Int: Server] { servers.filter { $0.key > 5000 } }
    }

    let state: State
    let port: Int
    /// The API's version folder, `v1` or `v2`.
    let prefix: String
    private let serving: Task<Void, any Error>

    /// `errorBody`: the cloud's error JSON for a status, code and message.
    init(words: Words, prefix: String, token: String, servers: [Int: State.Server],
         errorBody: @escaping @Sendable (_ status: Int, _ code: String, _ message: String) -> Response,
         routes: (Router<BasicRequestContext>, State) -> Void) async throws {
        let state = State(words: words, servers: servers)
        self.state = state
        self.prefix = prefix
        let router = Router()
        router.add(middleware: Gate(token: token, state: state, errorBody: errorBody))
        routes(router, state)
        (port, serving) = try await FaultInjectingProxy.serveOnLoopback(router)
    }

    func stop() { serving.cancel() }

    static func json(_ status: Int, _ body: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body)) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A request's JSON body: its bytes, and the object they hold.
    static func body(_ request: Request) async throws -> (Data, [String: Any]) {
        let data = Data(try await request.body.collect(upTo: 1 << 20).readableBytesView)
        return (data, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    static func rfc3339(_ date: Date) -> String { date.formatted(.iso8601) }

    /// The token check, planned faults, and the rate-limit headers on every answer.
    struct Gate: RouterMiddleware {
        typealias Context = BasicRequestContext
        let token: String
        let state: State
        let errorBody: @Sendable (Int, String, String) -> Response

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            var response: Response
            let call = "\(request.method.rawValue) \(request.uri.path)"
            if request.headers[.authorization] != "Bearer \(token)" {
                _ = await state.next("\(call) (unauthorized)")
                response = errorBody(401, "unauthorized", "unable to authenticate")
            } else if let fault = await state.next(call) {
                response = fault == 429 ? errorBody(429, "rate_limit_exceeded", "too many requests") : errorBody(fault, "unavailable", "service unavailable")
            } else {
                response = try await next(request, context)
            }
            let (limit, remaining, resetAt) = await (state.limit, state.remaining, state.resetAt)
            response.headers[HTTPField.Name("RateLimit-Limit")!] = String(limit)
            response.headers[HTTPField.Name("RateLimit-Remaining")!] = String(remaining)
            // Whole seconds, rounded up: the limit is full again by then.
            response.headers[HTTPField.Name("RateLimit-Reset")!] = String(Int(resetAt.timeIntervalSince1970.rounded(.up)))
            return response
        }
    }
}
