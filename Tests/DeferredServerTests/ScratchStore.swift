import DeferredCore
import DeferredStore
import Foundation

/// A store in a folder of its own holding one queued script job, for tests of what the store
/// and its writers do with a job's feed. `remove()` it in a `defer`: tied to a deinit, the
/// folder could go at the value's last use, while the store is still working in it.
struct ScratchStore {
    let folder: String
    let store: SQLiteJobStore
    let job: Job

    var path: String { folder + "/state.sqlite" }

    init() async throws {
        folder = NSTemporaryDirectory() + "deferred-store-" + UUID().uuidString.prefix(8)
        store = try SQLiteJobStore(path: folder + "/state.sqlite")
        job = Job(project: "sample", trigger: .script(ScriptTrigger(script: "echo\n", signer: "ci", interpreter: .program("/bin/sh"))))
        _ = try await store.enqueue(job, delivery: nil)
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
