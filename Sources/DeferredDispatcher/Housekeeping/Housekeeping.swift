import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation
import Logging
import ServiceLifecycle

/// `serve`'s timer, a service of its own beside the dispatcher: every `interval`, the files of
/// jobs past their retention are deleted, results.json held back by a full disk or a bucket
/// that was down is stored and its job ended, staged files go up to a remote store, and idle
/// cloud hosts are put to sleep (and reconciled). `deferred idle-sleep` in cron does the
/// retention and sleeping parts with the same types.
public struct Housekeeping: Service {
    let config: DeferredConfig
    let store: any JobStore
    let artifacts: any ArtifactStore
    let waker: HostWaker
    let results: ResultsWriter
    let interval: Duration
    let time: any TimeSource
    let logger: Logger

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await time.sleep(for: interval) } catch { return }
                await pass()
            }
        }
    }

    /// One round of every chore, as of the clock's now. Held results and staged files are this
    /// server's own (they are on its disk); retention and idle sleep are shared, and with
    /// several servers on one store only the one whose turn it is does them.
    public func pass() async {
        let now = time.now
        await results.finishHeld(logger: logger)
        let pending = await artifacts.publishPending()
        if !pending.published.isEmpty { logger.info("stored the files of \(pending.published.count) job(s) that waited for the store") }
        for failure in pending.failures { logger.warning("still cannot store \(failure)") }
        // Held for three intervals: a housekeeper that stops is replaced within them.
        guard await store.claimHousekeeping(for: interval * 3) else { return }
        let expired = await Retention(store: store, artifacts: artifacts, retentionDays: config.artifacts.retentionDays).pass(now: now)
        if !expired.expired.isEmpty || !expired.problems.isEmpty { logger.info("\(expired)") }
        for report in await IdleSleeper(config: config, store: store, providers: waker.providers).pass(now: now) {
            logger.info("\(report)")
            if report.slept { await waker.forget(report.host) }
        }
    }
}

/// Named, not walked field by field, where a service is printed (ServiceLifecycle logs the
/// services it starts): its fields hold the configuration and the clouds' credentials.
extension Housekeeping: CustomStringConvertible {
    public var description: String { "Housekeeping" }
}
