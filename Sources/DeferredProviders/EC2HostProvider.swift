import DeferredCloud
import DeferredCore
import Foundation

/// Hosts that are EC2 instances: started when work comes, stopped when idle.
public struct EC2HostProvider: HostProvider {
    let credentials: AWSCredentials
    /// Between DescribeInstances calls while an instance changes state.
    public var pollInterval: Duration
    let http: HTTPClient

    public init(credentials: AWSCredentials, pollInterval: Duration = .seconds(2), http: HTTPClient = HTTPClient()) {
        self.credentials = credentials
        self.pollInterval = pollInterval
        self.http = http
    }

    func client(_ instance: CloudInstance) -> EC2Client {
        EC2Client(region: instance.region, credentials: credentials, endpoint: instance.endpoint, http: http)
    }

    public func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        guard let instance = host.instance else { throw ProviderError(host: host.name, reason: "has no instance_id", isTransient: false) }
        let ec2 = client(instance)
        var woke = false
        var lastState = ""
        while true {
            let current = try await describe(host, instance, with: ec2)
            if current.state != lastState {
                await progress("instance \(instance.instanceID) is \(current.state)")
                lastState = current.state
            }
            switch current.state {
            case "running":
                let address = host.address.isEmpty ? (current.publicAddress ?? current.privateAddress) : host.address
                guard let address else {
                    throw ProviderError(host: host.name, reason: "instance \(instance.instanceID) runs but has no address; set address in deferred.toml", isTransient: false)
                }
                return HostWake(address: address, woke: woke)
            case "stopped":
                do { try await ec2.startInstances(ids: [instance.instanceID]) } catch {
                    throw ProviderError(host: host.name, reason: "cannot start \(instance.instanceID): \(error)", isTransient: error.isRetryable)
                }
                woke = true
                await progress("starting instance \(instance.instanceID)")
            case "pending", "stopping":
                // Wait for it to settle: a stopping instance is started once it has stopped.
                woke = woke || current.state == "pending"
            default:
                throw ProviderError(host: host.name, reason: "instance \(instance.instanceID) is \(current.state) and cannot be started",
                                    isTransient: false)
            }
            try? await Task.sleep(for: pollInterval)
            if Task.isCancelled { throw ProviderError(host: host.name, reason: "the wake was cancelled", isTransient: true) }
        }
    }

    public func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {
        guard let instance = host.instance else { return }
        let ec2 = client(instance)
        do {
            if terminate { try await ec2.terminateInstances(ids: [instance.instanceID]) } else { try await ec2.stopInstances(ids: [instance.instanceID]) }
        } catch {
            throw ProviderError(host: host.name, reason: "cannot \(terminate ? "terminate" : "stop") \(instance.instanceID): \(error)",
                                isTransient: error.isRetryable)
        }
    }

    /// RunInstances from the fleet's image; a spot request that capacity or price refuses is
    /// made again on demand.
    public func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        let ec2 = EC2Client(region: fleet.region, credentials: credentials, endpoint: fleet.endpoint, http: http)
        var request = EC2LaunchRequest(imageID: fleet.imageID, instanceType: fleet.instanceType, keyName: fleet.keyName,
                                       subnetID: fleet.subnetID, securityGroupIDs: fleet.securityGroupIDs, userData: fleet.userData,
                                       tags: tags, spot: fleet.spot, spotStoppable: fleet.whenIdle == .stop)
        do throws(CloudError) {
            let launched: [EC2Instance]
            var note: String?
            do {
                launched = try await ec2.runInstances(request)
            } catch .api(let error) where request.spot && error.isSpotRefusal {
                request.spot = false
                // Another launch, so another token: EC2 refuses a token reused with other parameters.
                request.clientToken = UUID().uuidString
                launched = try await ec2.runInstances(request)
                note = "spot refused for \(fleet.instanceType) (\(error.code.rawValue)): launched on demand instead"
            }
            guard let id = launched.first?.id, !id.isEmpty else {
                throw CloudError.unreadable(action: "RunInstances", status: 200, body: "no instance in the answer")
            }
            return FleetLaunch(instanceID: id, note: note)
        } catch {
            throw ProviderError(host: fleet.name, reason: "cannot launch from \(fleet.imageID): \(error)", isTransient: error.isRetryable)
        }
    }

    /// In every region and endpoint the configuration's EC2 hosts and fleets use.
    public func reconcile(_ config: DeferredConfig, tracked: [String: Bool], dryRun: Bool, now: Date) async -> [String] {
        var locations: [String: CloudInstance] = [:]
        for host in config.hosts { if let instance = host.instance { locations["\(instance.region) \(instance.endpoint ?? "")"] = instance } }
        for fleet in config.fleets where fleet.provider == .ec2 {
            locations["\(fleet.region) \(fleet.endpoint ?? "")"] = CloudInstance(instanceID: "", region: fleet.region, endpoint: fleet.endpoint)
        }
        var reports: [String] = []
        for key in locations.keys.sorted() { reports += await reconcile(locations[key]!, tracked: tracked, dryRun: dryRun) }
        return reports
    }

    private func reconcile(_ location: CloudInstance, tracked: [String: Bool], dryRun: Bool) async -> [String] {
        let ec2 = client(location)
        let running: [EC2Instance]
        do {
            running = try await ec2.describeInstances(filters: ["tag:managed-by": ["deferred"], "instance-state-name": ["pending", "running"]])
        } catch {
            return ["could not list deferred's instances in \(location.region): \(error)"]
        }
        var reports: [String] = []
        for instance in running where tracked[instance.id] != true {
            let why = tracked[instance.id] == nil ? "not known to deferred's store" : "running although the store has it stopped"
            let what = "instance \(instance.id)\(instance.tags["deferred-fleet"].map { " (fleet \($0))" } ?? "") is \(why)"
            if dryRun {
                reports.append("would stop \(what)")
                continue
            }
            do {
                try await ec2.stopInstances(ids: [instance.id])
                reports.append("stopped \(what)")
            } catch {
                reports.append("could not stop \(what): \(error)")
            }
        }
        return reports
    }

    private func describe(_ host: HostConfig, _ instance: CloudInstance, with ec2: EC2Client) async throws(ProviderError) -> EC2Instance {
        do throws(CloudError) {
            guard let found = try await ec2.describeInstances(ids: [instance.instanceID]).first else {
                throw CloudError.unreadable(action: "DescribeInstances", status: 200, body: "no instance \(instance.instanceID)")
            }
            return found
        } catch {
            throw ProviderError(host: host.name, reason: "cannot see instance \(instance.instanceID): \(error)", isTransient: error.isRetryable)
        }
    }
}
