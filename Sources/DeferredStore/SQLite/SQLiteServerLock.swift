import DeferredFiles
import Foundation

/// One `deferred serve` to a SQLite file. Two servers on one file each took the other's
/// running jobs for crashed and ran them again, so the second is refused at its start: an
/// exclusive `flock` on `<state>.serve.lock`, held while the server runs and let go by the
/// kernel however the process ends (`kill -9` too), so it never outlives its server.
/// `deferred idle-sleep` and `deferred hosts` take no such lock: they share the file with
/// the server through SQLite's own locking.
public final class SQLiteServerLock: Sendable {
    private let descriptor: Int32

    public init(statePath: String) throws(StoreError) {
        let path = statePath + ".serve.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, PrivateFiles.fileMode)
        guard fd >= 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            // The holder wrote its pid when it took the lock: say which process it is.
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &bytes, bytes.count, 0)
            close(fd)
            let holder = count > 0 ? Int(String(decoding: bytes.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) : nil
            throw .anotherServer(path: statePath, pid: holder)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        descriptor = fd
    }

    deinit { close(descriptor) }
}
