import Foundation

/// What deferred asks of a cloud that has servers with power buttons and makes them from
/// images (Hetzner Cloud, DigitalOcean): one provider drives them all through this, each
/// cloud's client translating its own words.
public protocol ServerAPI: Sendable {
    /// The cloud's name, for messages.
    var cloud: String { get }
    func server(_ id: String) async throws(CloudError) -> CloudServerState
    /// Starts a power action; its progress is read with `action(_:)`.
    func power(_ step: PowerStep, server id: String) async throws(CloudError) -> CloudAction
    func action(_ action: CloudAction) async throws(CloudError) -> CloudAction
    /// Makes a server, started, with `order.labels` as the cloud keeps labels or tags. Tried
    /// once: a retry must first look for the server an answer that was lost had made.
    func create(_ order: ServerOrder) async throws(CloudError) -> CloudServerState
    func delete(_ id: String) async throws(CloudError)
    /// Every server labelled `managed-by=deferred`.
    func managedServers() async throws(CloudError) -> [CloudServerState]
    /// A label's value as the cloud keeps it (each has its own rules of what a label may hold).
    func kept(label value: String) -> String
}

/// Where a server is on its way between off and running.
public enum ServerPower: Sendable, Equatable {
    case running, off
    /// Being made or powered on: running soon.
    case starting
    /// Busy with something else (stopping, migrating, rebuilding): to be waited for.
    case settling
    /// Deleted, archived or in a state nothing but the operator can change.
    case unusable
}

/// A server as the cloud shows it.
public struct CloudServerState: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The cloud's own word, for messages.
    public var status: String
    public var power: ServerPower
    public var publicIPv4: String?
    /// Labels (Hetzner) or `key:value` tags (DigitalOcean).
    public var labels: [String: String]
    public var created: Date?

    public init(id: String, name: String, status: String, power: ServerPower, publicIPv4: String? = nil,
                labels: [String: String] = [:], created: Date? = nil) {
        self.id = id
        self.name = name
        self.status = status
        self.power = power
        self.publicIPv4 = publicIPv4
        self.labels = labels
        self.created = created
    }
}

public enum PowerStep: String, Sendable {
    case on
    /// ACPI: the system shuts itself down, if it listens.
    case shutdown
    /// The power is cut.
    case off
}

/// A power action the cloud runs, by its id.
public struct CloudAction: Sendable, Equatable {
    public enum Progress: Sendable, Equatable { case running, succeeded, failed(String) }
    public var id: String
    public var command: String
    public var progress: Progress

    public init(id: String, command: String, progress: Progress) {
        self.id = id
        self.command = command
        self.progress = progress
    }
}

/// A server to make.
public struct ServerOrder: Sendable, Equatable {
    /// A host name: letters, digits and dashes.
    public var name: String
    public var image: String
    /// Hetzner's server type, DigitalOcean's size.
    public var type: String
    /// Hetzner's location, DigitalOcean's region; nil lets the cloud choose where it can.
    public var location: String?
    public var sshKeys: [String]
    public var userData: String?
    public var labels: [String: String]

    public init(name: String, image: String, type: String, location: String?, sshKeys: [String], userData: String?, labels: [String: String]) {
        self.name = name
        self.image = image
        self.type = type
        self.location = location
        self.sshKeys = sshKeys
        self.userData = userData
        self.labels = labels
    }
}
