import DeferredCore
import Foundation

/// Hetzner Cloud's API (docs.hetzner.cloud): servers, their power actions and the actions'
/// progress, server creation from an image or snapshot with labels, deletion, and listing by
/// label. Retries and rate limits as `BearerJSONAPI` has them.
public struct HetznerClient: ServerAPI {
    var api: BearerJSONAPI
    public var cloud: String { "Hetzner" }
    public var endpoint: String { api.endpoint }
    public var retry: RetryPolicy {
        get { api.retry }
        set { api.retry = newValue }
    }

    public init(token: String, endpoint: String? = nil, http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        api = BearerJSONAPI(service: "hetzner", endpoint: endpoint ?? "https://api.hetzner.cloud/v1", token: token, http: http, retry: retry,
                            readError: Self.readError)
    }

    @Sendable static func readError(_ body: Data) -> (code: String, message: String)? {
        (try? JSONDecoder().decode(ErrorAnswer.self, from: body)).map { ($0.error.code, $0.error.message) }
    }

    /// `body` read as each answer this client reads: how many shapes it fits (for the fuzzer).
    static func readAnswers(_ body: Data) -> Int {
        let decoder = JSONDecoder()
        let shapes: [Bool] = [
            (try? decoder.decode(ServerAnswer.self, from: body)).map { _ = $0.server.state } != nil,
            (try? decoder.decode(ServerList.self, from: body)).map { _ = $0.servers.map(\.state) } != nil,
            (try? decoder.decode(ActionAnswer.self, from: body)).map { _ = $0.action.value } != nil,
            readError(body) != nil,
        ]
        return shapes.filter { $0 }.count
    }

    public func server(_ id: String) async throws(CloudError) -> CloudServerState {
        try await api.call("GET", "/servers/\(try Self.number(id))", as: ServerAnswer.self).server.state
    }

    /// `poweron`, `shutdown` (ACPI) or `poweroff`.
    public func power(_ step: PowerStep, server id: String) async throws(CloudError) -> CloudAction {
        let command = switch step { case .on: "poweron"; case .shutdown: "shutdown"; case .off: "poweroff" }
        return try await api.call("POST", "/servers/\(try Self.number(id))/actions/\(command)", as: ActionAnswer.self).action.value
    }

    public func action(_ action: CloudAction) async throws(CloudError) -> CloudAction {
        try await api.call("GET", "/actions/\(try Self.number(action.id))", as: ActionAnswer.self).action.value
    }

    /// `POST /servers`, started at once. Label values are made to fit Hetzner's rules.
    public func create(_ order: ServerOrder) async throws(CloudError) -> CloudServerState {
        let request = CreateRequest(name: order.name, server_type: order.type, image: order.image, location: order.location,
                                    ssh_keys: order.sshKeys.isEmpty ? nil : order.sshKeys, user_data: order.userData,
                                    labels: order.labels.reduce(into: [:]) { $0[$1.key] = Self.labelValue($1.value) }, start_after_create: true)
        let body = (try? JSONEncoder().encode(request)) ?? Data()
        return try await api.call("POST", "/servers", body: body, once: true, as: ServerAnswer.self).server.state
    }

    public func delete(_ id: String) async throws(CloudError) {
        try await api.send("DELETE", "/servers/\(try Self.number(id))")
    }

    /// Every page of `GET /servers?label_selector=managed-by=deferred`.
    public func managedServers() async throws(CloudError) -> [CloudServerState] {
        var found: [CloudServerState] = [], page: Int? = 1
        // A bound on pages, so an answer that always has a next page cannot hold us forever.
        for _ in 0..<100 {
            guard let current = page else { break }
            let answer = try await api.call("GET", "/servers?label_selector=\(BearerJSONAPI.query("managed-by=deferred"))&per_page=50&page=\(current)",
                                            as: ServerList.self)
            found += answer.servers.map(\.state)
            page = answer.meta?.pagination?.next_page
            if let next = page, next <= current { break }
        }
        return found
    }

    public func kept(label value: String) -> String { Self.labelValue(value) }

    // MARK: The wire

    private static func number(_ id: String) throws(CloudError) -> Int {
        guard let number = Int(id), number > 0 else { throw .unreadable(action: "a Hetzner id", status: 0, body: "'\(id)' is not a server or action id") }
        return number
    }

    /// Hetzner's label values: at most 63 of letters, digits, `-`, `_` and `.`, starting and
    /// ending with a letter or digit.
    static func labelValue(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        var value = String(text.map { allowed.contains($0) ? $0 : "_" }.prefix(63))
        while let last = value.last, !(last.isLetter || last.isNumber) { value.removeLast() }
        while let first = value.first, !(first.isLetter || first.isNumber) { value.removeFirst() }
        return value
    }

    private struct CreateRequest: Encodable {
        var name: String
        var server_type: String
        var image: String
        var location: String?
        var ssh_keys: [String]?
        var user_data: String?
        var labels: [String: String]
        var start_after_create: Bool
    }

    private struct ServerShape: Decodable {
        struct Net: Decodable {
            struct IPv4: Decodable { var ip: String }
            var ipv4: IPv4?
        }
        var id: Int
        var name: String
        var status: String
        var public_net: Net?
        var labels: [String: String]?
        var created: String?

        var state: CloudServerState {
            let power: ServerPower = switch status {
            case "running": .running
            case "off": .off
            case "starting", "initializing": .starting
            case "stopping", "migrating", "rebuilding": .settling
            default: .unusable
            }
            return CloudServerState(id: String(id), name: name, status: status, power: power, publicIPv4: public_net?.ipv4?.ip,
                                    labels: labels ?? [:], created: created.flatMap(RFC3339.date))
        }
    }

    private struct ServerAnswer: Decodable { var server: ServerShape }

    private struct ServerList: Decodable {
        struct Meta: Decodable {
            struct Pagination: Decodable { var next_page: Int? }
            var pagination: Pagination?
        }
        var servers: [ServerShape]
        var meta: Meta?
    }

    private struct ActionAnswer: Decodable {
        struct Shape: Decodable {
            struct Failure: Decodable { var code: String; var message: String }
            var id: Int
            var command: String
            var status: String
            var error: Failure?
            var value: CloudAction {
                let progress: CloudAction.Progress = switch status {
                case "running": .running
                case "success": .succeeded
                default: .failed(error.map { "\($0.code): \($0.message)" } ?? "no reason given")
                }
                return CloudAction(id: String(id), command: command, progress: progress)
            }
        }
        var action: Shape
    }

    private struct ErrorAnswer: Decodable {
        struct Shape: Decodable { var code: String; var message: String }
        var error: Shape
    }
}
