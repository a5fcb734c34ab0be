import Foundation

/// A child process started with posix_spawn and reaped by us: an operator's provider command,
/// and the demo's and tests' peers (sshd, moto, ssh-keygen).
///
/// Not Foundation's `Process`: on Linux its `run()` scans /proc/self/fd copying a whole
/// 256-byte name from each directory entry, which reads past glibc's buffer and crashes the
/// process once it has a thousand or so descriptors open (swift-corelibs-foundation #5472; a
/// server with many connections does). It also waits on its children from one thread, so a
/// child that lives for the whole run stalls every later `Process`.
public final class SpawnedProcess: @unchecked Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// /dev/null.
        case null
        /// A file: created or truncated, or appended to.
        case file(String, append: Bool = false)
        /// A pipe whose other end is ours (`input`, `output`, `errors`).
        case pipe
    }

    public let pid: pid_t
    /// Our ends of the pipes asked for, closed when the handle goes.
    public let input: FileHandle?
    public let output: FileHandle?
    public let errors: FileHandle?

    private let lock = NSLock()
    /// Held by the thread waiting for the end, so a second waiter finds it reaped rather than
    /// waiting on a pid that may be another child's by then.
    private let waiting = NSLock()
    /// Set once the child is reaped; only then may its pid be reused, so `signal` checks it
    /// under the same lock.
    private var status: Int32?

    /// Whether the child leads a process group of its own, which `signal` reaches whole.
    public let leadsGroup: Bool

    /// `environment` nil passes this process's own. `ownGroup`: the child starts a process
    /// group, so that a signal reaches what it started too (a shell's commands).
    public init(executable: String, arguments: [String], standardInput: Stream = .null,
                standardOutput: Stream = .null, standardError: Stream = .null,
                environment: [String: String]? = nil, ownGroup: Bool = false) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var ours: [Int32?] = [nil, nil, nil], theirs: [Int32] = []
        defer { theirs.forEach { close($0) } }
        do {
            for (fd, stream) in [standardInput, standardOutput, standardError].enumerated() {
                switch stream {
                case .null:
                    posix_spawn_file_actions_addopen(&actions, Int32(fd), "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
                case .file(let path, let append):
                    let flags = fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
                    posix_spawn_file_actions_addopen(&actions, Int32(fd), path, flags, 0o644)
                case .pipe:
                    // Close-on-exec from the start: a child another thread spawns meanwhile
                    // must not hold our pipe's end, or our reader never sees its end.
                    var ends: [Int32] = [-1, -1]
                    guard spawnPipe(&ends, O_CLOEXEC) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EMFILE) }
                    let (child, parent) = fd == 0 ? (ends[0], ends[1]) : (ends[1], ends[0])
                    ours[fd] = parent
                    theirs.append(child)
                    posix_spawn_file_actions_adddup2(&actions, child, Int32(fd))
                }
            }
        } catch {
            ours.compactMap { $0 }.forEach { close($0) }
            throw error
        }
        // Nothing else of ours goes to the child: not the sockets of HTTP requests under way
        // (a child holding one keeps it open past our end of it) nor our servers' listeners.
        _ = spawnClosesFrom(&actions, 3)
        // The child starts with no signal blocked or ignored: a test runner's blocked SIGTERM
        // would otherwise be inherited and leave `terminate()` waiting forever.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if ownGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }
        let rc = envp.map { posix_spawn(&child, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else {
            ours.compactMap { $0 }.forEach { close($0) }
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL)
        }
        pid = child
        leadsGroup = ownGroup
        let handles = ours.map { $0.map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) } }
        (input, output, errors) = (handles[0], handles[1], handles[2])
    }

    /// The earlier form: standard output to a file or nowhere, standard error appended to a file.
    public convenience init(executable: String, arguments: [String], stdoutPath: String? = nil, stderrPath: String,
                            environment: [String: String]? = nil) throws {
        try self.init(executable: executable, arguments: arguments, standardOutput: stdoutPath.map { .file($0) } ?? .null,
                      standardError: .file(stderrPath, append: true), environment: environment)
    }

    deinit {
        // A child that ended and was never waited for is reaped now rather than left a zombie.
        if status == nil { var raw: Int32 = 0; _ = waitpid(pid, &raw, WNOHANG) }
    }

    /// Whether the child has not ended yet. Never blocks, and never reaps: `waitForExit` may be
    /// waiting on another thread.
    public var isRunning: Bool {
        lock.withLock {
            guard status == nil else { return false }
            var info = siginfo_t()
            guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return false }
            return info._sifields._sigchld.si_pid == 0
        }
    }

    /// Waits for the child to end and answers its exit status (128 + the signal that killed
    /// it). A signal that interrupts the wait (another child's SIGCHLD) is not its end.
    @discardableResult
    public func waitForExit() -> Int32 {
        waiting.lock()
        defer { waiting.unlock() }
        if let status = lock.withLock({ status }) { return status }
        // Waits without reaping and without the lock, so `signal` and `isRunning` answer
        // meanwhile; the child is reaped under the lock, where `signal` looks.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0, errno == EINTR {}
        return lock.withLock {
            if let status { return status }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 {
                guard errno == EINTR else { status = -1; return -1 }
            }
            let signal = raw & 0x7f
            let exit = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            status = exit
            return exit
        }
    }

    /// Sends `signal` to the child (and its group, when it leads one) unless the child has
    /// already been reaped: its pid may be another's by then.
    public func signal(_ signal: Int32) {
        lock.withLock { if status == nil { _ = kill(leadsGroup ? -pid : pid, signal) } }
    }

    /// Reads the child's output and errors pipes at once (a child that fills one while we read
    /// the other would never end), keeping the last `limit` bytes of each. Returns at the end
    /// of both, or `grace` after the child ended: what it left running in the background may
    /// hold the pipes open for as long as it lives.
    public func readOutputs(keepingLast limit: Int, grace: Duration) -> (output: [UInt8], errors: [UInt8]) {
        var kept: [[UInt8]] = [[], []]
        var open = [output, errors].map { $0?.fileDescriptor ?? -1 }
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        var endedAt: ContinuousClock.Instant?
        while open.contains(where: { $0 >= 0 }) {
            if endedAt == nil, !isRunning { endedAt = .now }
            if let endedAt, ContinuousClock.now - endedAt >= grace { break }
            var polled = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // A short timeout: the child's end is noticed by asking, not by a signal.
            guard poll(&polled, nfds_t(polled.count), 100) > 0 else { continue }
            for index in polled.indices where polled[index].fd >= 0 && polled[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { read(polled[index].fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR || errno == EAGAIN { continue }
                guard count > 0 else { open[index] = -1; continue }
                kept[index].append(contentsOf: chunk[..<count])
                if kept[index].count > 2 * limit { kept[index].removeFirst(kept[index].count - limit) }
            }
        }
        return (Array(kept[0].suffix(limit)), Array(kept[1].suffix(limit)))
    }

    /// SIGTERM, then waits for the child to end.
    public func terminate() {
        signal(SIGTERM)
        waitForExit()
    }
}

/// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later), which Swift's Glibc
/// module does not show: the child closes every descriptor from `lowest` on before it starts.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnClosesFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) -> Int32

/// glibc's pipe2, also not shown by the Glibc module: a pipe whose ends are close-on-exec
/// from the moment they exist.
@_silgen_name("pipe2")
private func spawnPipe(_ ends: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32
