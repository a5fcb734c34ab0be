import DeferredCore
import Foundation

/// DigitalOcean's API v2 (docs.digitalocean.com/reference/api): droplets, their power
/// actions and the actions' progress, droplets made from a snapshot with tags, deletion, and
/// listing by tag. Labels travel as `key:value` tags, DigitalOcean having no labels. Retries
/// and rate limits as `BearerJSONAPI` has them.
public struct DigitalOceanClient: ServerAPI {
    var api: BearerJSONAPI
    public var cloud: String { "DigitalOcean" }

    public init(token: String, endpoint: String? = nil, http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        api = BearerJSONAPI(service: "digitalocean", endpoint: endpoint ?? "https://api.digitalocean.com/v2", token: token, http: http,
                            retry: retry, readError: Self.readError)
    }

    @Sendable static func readError(_ body: Data) -> (code: String, message: String)? {
        guard let said = try? JSONDecoder().decode(ErrorAnswer.self, from: body) else { return nil }
        // A droplet busy with another action answers 422 "already has a pending event": the
        // same as Hetzner's `locked`, worth another try.
        return (said.message.contains("pending event") ? "locked" : said.id, said.message)
    }

    /// `body` read as each answer this client reads: how many shapes it fits (for the fuzzer).
    static func readAnswers(_ body: Data) -> Int {
        let decoder = JSONDecoder()
        let shapes: [Bool] = [
            (try? decoder.decode(DropletAnswer.self, from: body)).map { _ = $0.droplet.state } != nil,
            (try? decoder.decode(DropletList.self, from: body)).map { _ = $0.droplets.map(\.state) } != nil,
            (try? decoder.decode(ActionAnswer.self, from: body)).map { _ = $0.action.value } != nil,
            readError(body) != nil,
        ]
        return shapes.filter { $0 }.count
    }

    public func server(_ id: String) async throws(CloudError) -> CloudServerState {
        try await api.call("GET", "/droplets/\(try Self.number(id))", as: DropletAnswer.self).droplet.state
    }

    /// `power_on`, `shutdown` (ACPI) or `power_off`.
    public func power(_ step: PowerStep, server id: String) async throws(CloudError) -> CloudAction {
        let type = switch step { case .on: "power_on"; case .shutdown: "shutdown"; case .off: "power_off" }
        let body = Data(#"{"type":"\#(type)"}"#.utf8)
        return try await api.call("POST", "/droplets/\(try Self.number(id))/actions", body: body, as: ActionAnswer.self).action.value
    }

    public func action(_ action: CloudAction) async throws(CloudError) -> CloudAction {
        try await api.call("GET", "/actions/\(try Self.number(action.id))", as: ActionAnswer.self).action.value
    }

    /// `POST /droplets` from a snapshot id (a number) or an image slug.
    public func create(_ order: ServerOrder) async throws(CloudError) -> CloudServerState {
        let request = CreateRequest(name: order.name, region: order.location ?? "", size: order.type,
                                    image: Int(order.image).map(ImageName.id) ?? .slug(order.image),
                                    ssh_keys: order.sshKeys.isEmpty ? nil : order.sshKeys, user_data: order.userData,
                                    tags: order.labels.sorted { $0.key < $1.key }.map { Self.tag($0.key, $0.value) })
        let body = (try? JSONEncoder().encode(request)) ?? Data()
        return try await api.call("POST", "/droplets", body: body, once: true, as: DropletAnswer.self).droplet.state
    }

    public func delete(_ id: String) async throws(CloudError) {
        try await api.send("DELETE", "/droplets/\(try Self.number(id))")
    }

    /// Every page of `GET /droplets?tag_name=managed-by:deferred`.
    public func managedServers() async throws(CloudError) -> [CloudServerState] {
        var found: [CloudServerState] = []
        // A bound on pages, so an answer that always has a next page cannot hold us forever.
        for page in 1...100 {
            let answer = try await api.call("GET", "/droplets?tag_name=\(BearerJSONAPI.query(Self.tag("managed-by", "deferred")))&per_page=200&page=\(page)",
                                            as: DropletList.self)
            found += answer.droplets.map(\.state)
            if answer.links?.pages?.next == nil || answer.droplets.isEmpty { break }
        }
        return found
    }

    public func kept(label value: String) -> String { String(Self.tag("k", value).dropFirst(2)) }

    // MARK: The wire

    private static func number(_ id: String) throws(CloudError) -> Int {
        guard let number = Int(id), number > 0 else { throw .unreadable(action: "a DigitalOcean id", status: 0, body: "'\(id)' is not a droplet or action id") }
        return number
    }

    /// A label as a tag: `key:value` of letters, digits, `:`, `-` and `_`, at most 255.
    static func tag(_ key: String, _ value: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        return String("\(key):\(value)".enumerated().map { $0.offset == key.count || allowed.contains($0.element) ? $0.element : "_" }.prefix(255))
    }

    enum ImageName: Encodable {
        case id(Int), slug(String)
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .id(let id): try container.encode(id)
            case .slug(let slug): try container.encode(slug)
            }
        }
    }

    private struct CreateRequest: Encodable {
        var name: String
        var region: String
        var size: String
        var image: ImageName
        var ssh_keys: [String]?
        var user_data: String?
        var tags: [String]
    }

    private struct DropletShape: Decodable {
        struct Networks: Decodable {
            struct Address: Decodable { var ip_address: String; var type: String }
            var v4: [Address]?
        }
        var id: Int
        var name: String
        var status: String
        var networks: Networks?
        var tags: [String]?
        var created_at: String?

        var state: CloudServerState {
            let power: ServerPower = switch status {
            case "active": .running
            case "off": .off
            case "new": .starting
            default: .unusable
            }
            var labels: [String: String] = [:]
            for tag in tags ?? [] {
                let parts = tag.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { labels[String(parts[0])] = String(parts[1]) }
            }
            return CloudServerState(id: String(id), name: name, status: status, power: power,
                                    publicIPv4: networks?.v4?.first { $0.type == "public" }?.ip_address, labels: labels,
                                    created: created_at.flatMap(RFC3339.date))
        }
    }

    private struct DropletAnswer: Decodable { var droplet: DropletShape }

    private struct DropletList: Decodable {
        struct Links: Decodable {
            struct Pages: Decodable { var next: String? }
            var pages: Pages?
        }
        var droplets: [DropletShape]
        var links: Links?
    }

    private struct ActionAnswer: Decodable {
        struct Shape: Decodable {
            var id: Int
            var type: String
            var status: String
            var value: CloudAction {
                let progress: CloudAction.Progress = switch status {
                case "in-progress": .running
                case "completed": .succeeded
                default: .failed("the action \(status)")
                }
                return CloudAction(id: String(id), command: type, progress: progress)
            }
        }
        var action: Shape
    }

    private struct ErrorAnswer: Decodable {
        var id: String
        var message: String
    }
}
