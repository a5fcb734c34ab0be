import DeferredCore
import Foundation

/// An EC2 instance as deferred needs to know it.
public struct EC2Instance: Sendable, Equatable {
    public var id: String
    /// pending, running, stopping, stopped, shutting-down, terminated.
    public var state: String
    public var publicAddress: String?
    public var privateAddress: String?
    public var tags: [String: String]
    /// "spot" for spot instances, nil for on-demand.
    public var lifecycle: String?
    public var imageID: String?
    public var instanceType: String?
}

/// What RunInstances is asked for.
public struct EC2LaunchRequest: Sendable {
    public var imageID: String
    public var instanceType: String
    public var count: Int
    public var keyName: String?
    public var subnetID: String?
    public var securityGroupIDs: [String]
    public var userData: String?
    public var tags: [String: String]
    public var spot: Bool
    /// Spot instances that should survive a stop are persistent requests that stop on interruption.
    public var spotStoppable: Bool
    /// Makes the launch idempotent: a call retried after a timeout whose first try did go
    /// through gets the same instances, not a second set (EC2's `ClientToken`).
    public var clientToken: String = UUID().uuidString

    public init(imageID: String, instanceType: String, count: Int = 1, keyName: String? = nil, subnetID: String? = nil,
                securityGroupIDs: [String] = [], userData: String? = nil, tags: [String: String] = [:],
                spot: Bool = false, spotStoppable: Bool = false) {
        self.imageID = imageID
        self.instanceType = instanceType
        self.count = count
        self.keyName = keyName
        self.subnetID = subnetID
        self.securityGroupIDs = securityGroupIDs
        self.userData = userData
        self.tags = tags
        self.spot = spot
        self.spotStoppable = spotStoppable
    }
}

/// EC2's Query API: instances described, started, stopped, terminated and run.
public struct EC2Client: Sendable {
    var query: AWSQueryClient

    /// `endpoint` nil means AWS's own for the region.
    public init(region: String, credentials: AWSCredentials, endpoint: String? = nil,
                http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        query = AWSQueryClient(service: "ec2", version: "2016-11-15", region: region, credentials: credentials,
                               endpoint: endpoint ?? "https://ec2.\(region).amazonaws.com", http: http, retry: retry)
    }

    public var endpoint: String { query.endpoint }

    // MARK: Actions

    public func describeInstances(ids: [String] = [], filters: [String: [String]] = [:]) async throws(CloudError) -> [EC2Instance] {
        var parameters = Self.numbered("InstanceId", ids)
        for (i, name) in filters.keys.sorted().enumerated() {
            parameters.append(("Filter.\(i + 1).Name", name))
            parameters += Self.numbered("Filter.\(i + 1).Value", filters[name]!)
        }
        let answer = try await call("DescribeInstances", parameters)
        return answer.items("reservationSet").flatMap { $0.items("instancesSet") }.map(Self.instance)
    }

    /// Returns each instance's state after the call.
    @discardableResult
    public func startInstances(ids: [String]) async throws(CloudError) -> [String: String] {
        try await stateChange("StartInstances", ids: ids)
    }

    @discardableResult
    public func stopInstances(ids: [String]) async throws(CloudError) -> [String: String] {
        try await stateChange("StopInstances", ids: ids)
    }

    @discardableResult
    public func terminateInstances(ids: [String]) async throws(CloudError) -> [String: String] {
        try await stateChange("TerminateInstances", ids: ids)
    }

    public func runInstances(_ request: EC2LaunchRequest) async throws(CloudError) -> [EC2Instance] {
        var parameters: [(String, String)] = [
            ("ImageId", request.imageID), ("InstanceType", request.instanceType),
            // All or nothing: a fleet asks for what it needs, not for what happens to fit.
            ("MinCount", String(request.count)), ("MaxCount", String(request.count)),
            ("ClientToken", request.clientToken),
        ]
        if let key = request.keyName { parameters.append(("KeyName", key)) }
        if let subnet = request.subnetID { parameters.append(("SubnetId", subnet)) }
        parameters += Self.numbered("SecurityGroupId", request.securityGroupIDs)
        if let userData = request.userData { parameters.append(("UserData", Data(userData.utf8).base64EncodedString())) }
        if !request.tags.isEmpty {
            parameters.append(("TagSpecification.1.ResourceType", "instance"))
            for (i, key) in request.tags.keys.sorted().enumerated() {
                parameters += [("TagSpecification.1.Tag.\(i + 1).Key", key), ("TagSpecification.1.Tag.\(i + 1).Value", request.tags[key]!)]
            }
        }
        if request.spot {
            parameters.append(("InstanceMarketOptions.MarketType", "spot"))
            if request.spotStoppable {
                parameters += [("InstanceMarketOptions.SpotOptions.SpotInstanceType", "persistent"),
                               ("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "stop")]
            }
        }
        let answer = try await call("RunInstances", parameters)
        return answer.items("instancesSet").map(Self.instance)
    }

    // MARK: Calls

    private func stateChange(_ action: String, ids: [String]) async throws(CloudError) -> [String: String] {
        let answer = try await call(action, Self.numbered("InstanceId", ids))
        var states: [String: String] = [:]
        for item in answer.items("instancesSet") {
            if let id = item.value("instanceId") { states[id] = item.value("currentState/name") ?? "unknown" }
        }
        return states
    }

    func call(_ action: String, _ parameters: [(String, String)]) async throws(CloudError) -> XMLTree {
        try await query.call(action, parameters)
    }

    static func numbered(_ prefix: String, _ values: [String]) -> [(String, String)] {
        values.enumerated().map { ("\(prefix).\($0.offset + 1)", $0.element) }
    }

    static func instance(_ item: XMLTree) -> EC2Instance {
        var tags: [String: String] = [:]
        for tag in item.items("tagSet") {
            if let key = tag.value("key") { tags[key] = tag.value("value") ?? "" }
        }
        return EC2Instance(id: item.value("instanceId") ?? "", state: item.value("instanceState/name") ?? "unknown",
                           publicAddress: item.value("ipAddress"), privateAddress: item.value("privateIpAddress"),
                           tags: tags, lifecycle: item.value("instanceLifecycle"),
                           imageID: item.value("imageId"), instanceType: item.value("instanceType"))
    }
}
