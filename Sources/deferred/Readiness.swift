import DeferredArtifacts
import DeferredCloud
import DeferredCore
import DeferredProviders
import DeferredSSH
import DeferredStore
import Foundation

/// What `check-config` and `serve` (before it binds its port) check beyond the file: what the
/// configuration needs from this machine. Problems stop both; warnings are said and pass.
/// `probe` tries each host for real: SSH to a static host, the cloud API for an EC2 one, the
/// status command of a command one.
struct Readiness {
    let config: DeferredConfig
    var environment = ProcessInfo.processInfo.environment

    struct Finding: CustomStringConvertible {
        let line: Int?
        let key: String
        let message: String
        var description: String { "\(line.map { "line \($0): " } ?? "")\(key): \(message)" }
    }

    /// Credentials the configuration's clouds need: EC2 hosts and fleets, an S3 artifact store.
    func problems() -> [Finding] {
        var found: [Finding] = []
        let cloudy = config.hosts.filter { $0.provider == .ec2 }.map { "hosts[\"\($0.name)\"]" } + config.fleets.filter { $0.provider == .ec2 }.map { "fleets[\"\($0.name)\"]" }
        if let first = cloudy.first {
            do throws(AWSCredentials.LookupError) {
                _ = try AWSCredentials.lookUp(environment: environment)
            } catch {
                found.append(Finding(line: config.lines[first], key: first,
                                     message: "provider ec2 needs AWS credentials, and none are found: \(error) — set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials"))
            }
        }
        do throws(ArtifactStoreError) {
            _ = try ArtifactStores.make(config.artifacts, environment: environment)
        } catch {
            found.append(Finding(line: config.lines["artifacts"], key: "artifacts.store", message: "\(error)"))
        }
        return found
    }

    /// With `probe`, the store as `serve` would open it: a PostgreSQL database connected to
    /// and read (its version and schema), never changed. A problem when it cannot be used;
    /// otherwise a line saying what was found. SQLite is the file `serve` makes: nothing to try.
    func store(probe: Bool) async -> (problem: Finding?, found: String?) {
        guard probe, case .postgres(let settings) = config.store.location else { return (nil, nil) }
        do throws(StoreError) {
            return (nil, try await PostgresProbe.describe(settings))
        } catch {
            return (Finding(line: config.lines["store"], key: "store", message: "\(error)"), nil)
        }
    }

    /// Hosts that do not answer now: a static host whose SSH port takes no connection (with
    /// `probe`: that refuses the login, or whose host key is unknown), an EC2 instance the API
    /// cannot find (with `probe`). A host may be down for a while; a job waits for it.
    func warnings(probe: Bool) async -> [Finding] {
        var found: [Finding] = []
        for host in config.hosts {
            let key = "hosts[\"\(host.name)\"]", line = config.lines[key]
            switch host.provider {
            case .static:
                if probe {
                    do throws(SSHError) {
                        let session = try await SSHSession.connect(to: SSHEndpoint(
                            host: host.address, port: host.port, user: host.user, identityFile: host.identity,
                            knownHostsFile: host.knownHosts, connectTimeoutSeconds: 5))
                        await session.disconnect()
                    } catch {
                        found.append(Finding(line: line, key: key, message: "SSH to \(host.user)@\(host.address):\(host.port) failed: \(error)"))
                    }
                } else if let why = await TCPProbe.refusal(host: host.address, port: host.port, timeout: .seconds(2)) {
                    found.append(Finding(line: line, key: key, message: "\(host.address):\(host.port) does not answer (\(why)); jobs wait for it (--probe tries SSH)"))
                }
            case .ec2:
                guard probe, let instance = host.instance, let credentials = try? AWSCredentials.lookUp(environment: environment) else { continue }
                let client = EC2Client(region: instance.region, credentials: credentials, endpoint: instance.endpoint)
                do throws(CloudError) {
                    let described = try await client.describeInstances(ids: [instance.instanceID])
                    if described.isEmpty { found.append(Finding(line: line, key: key, message: "EC2 has no instance \(instance.instanceID) in \(instance.region)")) }
                } catch {
                    found.append(Finding(line: line, key: key, message: "the EC2 API refused: \(error)"))
                }
            case .hetzner, .digitalocean:
                guard probe, let server = host.server, let api = ServerHostProvider.api(host.provider, server.account) else { continue }
                do throws(CloudError) {
                    _ = try await api.server(server.id)
                } catch {
                    found.append(Finding(line: line, key: key, message: "the \(api.cloud) API refused: \(error)"))
                }
            case .wol:
                // A machine that sleeps does not answer, as it should; --probe does not wake it.
                continue
            case .command:
                // The status command only reads; wake and sleep are never run by a check.
                guard probe, host.commands?.status != nil else { continue }
                do throws(ProviderError) {
                    _ = try await CommandHostProvider().state(of: host)
                } catch {
                    found.append(Finding(line: line, key: key, message: error.reason))
                }
            }
        }
        // A fleet's token is tried by listing the servers it would make (nothing is made).
        for fleet in config.fleets where probe {
            guard let account = fleet.account, let api = ServerHostProvider.api(fleet.provider, account) else { continue }
            do throws(CloudError) {
                _ = try await api.managedServers()
            } catch {
                let key = "fleets[\"\(fleet.name)\"]"
                found.append(Finding(line: config.lines[key], key: key, message: "the \(api.cloud) API refused: \(error)"))
            }
        }
        return found
    }
}
