import DeferredCloud
import DeferredCore
import Foundation

extension ServerHostProvider {
    /// The calls a wake, sleep, launch or reconciliation makes, each failure said as the
    /// host's: a refused token names the variable it came from (never the token), and
    /// everything but a missing server is worth another try, so the job waits in the queue.
    struct Steps {
        let api: any ServerAPI
        let account: CloudAccount
        let host: String
        let cloud: Cloud
        let pollInterval: Duration
        let retry: RetryPolicy

        func read(_ id: String) async throws(ProviderError) -> CloudServerState {
            do { return try await api.server(id) } catch { throw failure(error, id, doing: "cannot read server \(id)") }
        }

        func power(_ step: PowerStep, _ id: String) async throws(ProviderError) -> CloudAction {
            do { return try await api.power(step, server: id) } catch { throw failure(error, id, doing: "cannot power \(step.rawValue) server \(id)") }
        }

        /// Made once, however the answers go: before each retry, and on a refusal (Hetzner
        /// refuses a name in use), a server with this host's label is looked for, since a
        /// create whose answer was lost may have made it.
        func create(_ order: ServerOrder) async throws(ProviderError) -> CloudServerState {
            let hostLabel = order.labels["deferred-host"].map(api.kept(label:))
            do throws(CloudError) {
                return try await retry.run(retryingWhen: \.isRetryable) { () async throws(CloudError) -> CloudServerState in
                    do throws(CloudError) { return try await api.create(order) } catch {
                        if let hostLabel, let made = try? await api.managedServers().first(where: { $0.labels["deferred-host"] == hostLabel }) {
                            return made
                        }
                        throw error
                    }
                }
            } catch {
                throw failure(error, nil, doing: "cannot make a \(order.type) server from \(order.image)")
            }
        }

        func delete(_ id: String) async throws(ProviderError) {
            do { try await api.delete(id) } catch {
                // Already gone is what a delete wants.
                if case .rest(let refusal) = error, refusal.status == 404 { return }
                throw failure(error, id, doing: "cannot delete server \(id)")
            }
        }

        /// Waits for the action to end; an action that ends in error is the step's failure.
        func settle(_ started: CloudAction) async throws(ProviderError) {
            var action = started
            while action.progress == .running {
                try? await Task.sleep(for: pollInterval)
                if Task.isCancelled { throw ProviderError(host: host, reason: "cancelled waiting for \(action.command)", isTransient: true) }
                do { action = try await api.action(action) } catch { throw failure(error, nil, doing: "cannot follow action \(action.id)") }
            }
            if case .failed(let reason) = action.progress {
                throw ProviderError(host: host, reason: "\(action.command) failed: \(reason)", isTransient: true)
            }
        }

        func becomesOff(_ id: String, within limit: Duration) async throws(ProviderError) -> Bool {
            let end = ContinuousClock.now + limit
            while ContinuousClock.now < end {
                if try await read(id).power == .off { return true }
                try? await Task.sleep(for: pollInterval)
            }
            return false
        }

        private func failure(_ error: CloudError, _ id: String?, doing what: String) -> ProviderError {
            if case .rest(let refusal) = error, refusal.status == 401 || refusal.status == 403 {
                return ProviderError(host: host, reason: "\(what): \(cloud.name) refused the API token in \(account.tokenEnv) (\(refusal.status) \(refusal.code)); set \(account.tokenEnv) to a read & write token of the \(cloud == .hetzner ? "server's project" : "droplet's team")",
                                     isTransient: true)
            }
            if case .rest(let refusal) = error, refusal.status == 404, let id {
                return ProviderError(host: host, reason: "\(what): \(cloud.name) has no server \(id) for the token in \(account.tokenEnv)", isTransient: false)
            }
            return ProviderError(host: host, reason: "\(what): \(error)", isTransient: error.isRetryable || !(error.isRefusal))
        }
    }
}
