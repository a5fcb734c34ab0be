import CLibSSH
import Foundation

/// One SSH connection to a build host, over libssh.
///
/// Invariant: the libssh session and its channels are touched only on this actor's executor,
/// a serial queue of its own, so blocking libssh calls never hold up the HTTP event loop or
/// Swift's cooperative threads. Reads never block: a read loop with nothing to read waits,
/// off the queue, for the session's socket to have bytes (a dispatch read source on it), so
/// several channels (jobs, and the command that kills one) share one connection and each
/// byte is handed on as soon as it arrives.
///
/// Invariant: no channel outlives its session. `disconnect` while channels are open only
/// marks the session closing and wakes the read loops; each ends with `connectionLost` and
/// frees its channel, and the last one to go frees the session.
public actor SSHSession {
    public nonisolated let endpoint: SSHEndpoint
    private let executor: QueueExecutor
    private var session: ssh_session?
    private var keepaliveTask: Task<Void, Never>?
    /// Channels made and not yet freed: the session is freed only when none is left.
    private var openChannels = 0
    /// Set by `disconnect`: no new channel opens, and the open ones end at their next read.
    private var closing = false
    /// Watches the socket while some read loop waits for input; suspended while none does.
    private var socketWatch: DispatchSourceRead?
    private var socketWatchArmed = false
    /// The socket's copy the watch reads (see `watchSocket`).
    private var watchedSocket: Int32 = -1
    /// Read loops waiting for input, each woken by the socket, a disconnect, its task's
    /// cancellation or, as a backstop, `inputWaitLimit`.
    private var inputWaiters: [Int: InputWaiter] = [:]
    private var nextInputWaiter = 0
    /// A waiting read loop looks again after this long even if nothing woke it: bytes that
    /// libssh took off the socket for a channel whose loop then slept are never left there.
    private let inputWaitLimit: Duration = .seconds(1)

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    private init(endpoint: SSHEndpoint) {
        self.endpoint = endpoint
        executor = QueueExecutor(label: "deferred.ssh.\(endpoint)")
    }

    /// Connects, checks the host key against the endpoint's known_hosts file, and authenticates.
    public static func connect(to endpoint: SSHEndpoint, keepaliveInterval: Duration = .seconds(15)) async throws(SSHError) -> SSHSession {
        let session = SSHSession(endpoint: endpoint)
        try await session.open()
        await session.startKeepalive(every: keepaliveInterval)
        return session
    }

    isolated deinit {
        keepaliveTask?.cancel()
        release()
    }

    /// Whether the connection still stands, as far as libssh knows.
    public var isConnected: Bool {
        guard let session, !closing else { return false }
        return ssh_is_connected(session) == 1
    }

    /// Closes the connection once no channel uses it; channels still reading end at once
    /// with `connectionLost`.
    public func disconnect() {
        keepaliveTask?.cancel()
        keepaliveTask = nil
        closing = true
        wakeInputWaiters()
        if openChannels == 0 { release() }
    }

    /// Frees the session; with a socket watch, only once the watch is cancelled, since its
    /// socket must stay open until then (its number could otherwise be reused under it).
    private func release() {
        guard let session else { return }
        self.session = nil
        let owned = SessionHandle(session)
        guard let watch = socketWatch else {
            owned.free()
            return
        }
        socketWatch = nil
        let copy = watchedSocket
        watch.setCancelHandler {
            close(copy)
            owned.free()
        }
        // A suspended source is neither cancelled nor freed safely.
        if !socketWatchArmed { watch.resume() }
        socketWatchArmed = false
        watch.cancel()
    }

    // MARK: Connecting

    private func open() throws(SSHError) {
        guard let s = ssh_new() else {
            throw .connectFailed(host: endpoint.host, port: endpoint.port, reason: "libssh could not make a session")
        }
        session = s
        do throws(SSHError) {
            try configure(s)
            guard ssh_connect(s) == SSH_OK else {
                throw SSHError.connectFailed(host: endpoint.host, port: endpoint.port, reason: lastError(s))
            }
            try checkHostKey(s)
            try authenticate(s)
        } catch {
            disconnect()
            throw error
        }
    }

    private func configure(_ s: ssh_session) throws(SSHError) {
        guard FileManager.default.isReadableFile(atPath: endpoint.knownHostsFile) else {
            throw .knownHostsUnreadable(path: endpoint.knownHostsFile, reason: "no readable file there")
        }
        // The endpoint says everything; ~/.ssh/config must not change where or as whom we connect.
        _ = deferred_ssh_set_bool(s, SSH_OPTIONS_PROCESS_CONFIG, 0)
        _ = deferred_ssh_set_string(s, SSH_OPTIONS_HOST, endpoint.host)
        _ = deferred_ssh_set_uint(s, SSH_OPTIONS_PORT, UInt32(endpoint.port))
        _ = deferred_ssh_set_string(s, SSH_OPTIONS_USER, endpoint.user)
        _ = deferred_ssh_set_string(s, SSH_OPTIONS_KNOWNHOSTS, endpoint.knownHostsFile)
        if let agent = endpoint.agentSocket { _ = deferred_ssh_set_string(s, SSH_OPTIONS_IDENTITY_AGENT, agent) }
        // No global known_hosts: only the file the config names vouches for a host.
        _ = deferred_ssh_set_string(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null")
        _ = deferred_ssh_set_long(s, SSH_OPTIONS_TIMEOUT, endpoint.connectTimeoutSeconds)
        // Small packets go at once, as OpenSSH's client sends them: with Nagle's algorithm
        // on, each exec's channel requests waited on the peer's delayed ACK (~40 ms an exec).
        _ = deferred_ssh_set_int(s, SSH_OPTIONS_NODELAY, 1)
    }

    private func checkHostKey(_ s: ssh_session) throws(SSHError) {
        let state = ssh_session_is_known_server(s)
        switch state {
        case SSH_KNOWN_HOSTS_OK:
            return
        case SSH_KNOWN_HOSTS_CHANGED, SSH_KNOWN_HOSTS_OTHER:
            throw .hostKeyMismatch(host: endpoint.host, port: endpoint.port, fingerprint: serverFingerprint(s), knownHosts: endpoint.knownHostsFile)
        case SSH_KNOWN_HOSTS_UNKNOWN, SSH_KNOWN_HOSTS_NOT_FOUND:
            throw .hostKeyUnknown(host: endpoint.host, port: endpoint.port, fingerprint: serverFingerprint(s), knownHosts: endpoint.knownHostsFile)
        default:
            throw .knownHostsUnreadable(path: endpoint.knownHostsFile, reason: lastError(s))
        }
    }

    private func serverFingerprint(_ s: ssh_session) -> String {
        var key: ssh_key?
        guard ssh_get_server_publickey(s, &key) == SSH_OK, let key else { return "unknown key" }
        defer { ssh_key_free(key) }
        var hash: UnsafeMutablePointer<UInt8>?
        var length = 0
        guard ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &length) == SSH_OK, let hash else {
            return "unknown key"
        }
        defer { var h: UnsafeMutablePointer<UInt8>? = hash; ssh_clean_pubkey_hash(&h) }
        guard let text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, length) else { return "unknown key" }
        defer { ssh_string_free_char(text) }
        let type = ssh_key_type_to_char(ssh_key_type(key)).map { String(cString: $0) } ?? "key"
        return "\(type) \(String(cString: text))"
    }

    private func authenticate(_ s: ssh_session) throws(SSHError) {
        if let identity = endpoint.identityFile {
            var key: ssh_key?
            guard ssh_pki_import_privkey_file(identity, nil, nil, nil, &key) == SSH_OK, let key else {
                throw .identityUnreadable(path: identity)
            }
            defer { ssh_key_free(key) }
            guard ssh_userauth_publickey(s, nil, key) == SSH_AUTH_SUCCESS.rawValue else {
                throw .authenticationFailed(user: endpoint.user, host: endpoint.host, method: "the key \(identity)")
            }
        } else {
            guard ssh_userauth_agent(s, nil) == SSH_AUTH_SUCCESS.rawValue else {
                throw .authenticationFailed(user: endpoint.user, host: endpoint.host, method: "the keys in ssh-agent")
            }
        }
    }

    // MARK: Keepalive

    private func startKeepalive(every interval: Duration) {
        keepaliveTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, !Task.isCancelled else { return }
                await self.sendKeepalive()
            }
        }
    }

    /// libssh sends no keepalive by itself; an ignore message keeps NAT and firewalls from
    /// dropping an idle connection and makes a dead one show.
    private func sendKeepalive() {
        guard let session, !closing, ssh_is_connected(session) == 1 else { return }
        _ = ssh_send_ignore(session, "keepalive@deferred")
    }

    // MARK: Running commands

    /// Runs `command` through the remote user's shell and streams its output. `stdin` is
    /// written to the command's standard input, then closed. The stream ends with `.exit`;
    /// it throws `SSHError` when the connection breaks. Ending the stream early closes the
    /// channel (without a pty, the remote command may go on: kill it by other means).
    public nonisolated func execute(_ command: String, stdin: [UInt8] = []) -> AsyncThrowingStream<SSHExecEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task { await self.drive(command, stdin: stdin, into: continuation) }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Runs `command` to its end and collects its output.
    public func run(_ command: String, stdin: [UInt8] = []) async throws -> (stdout: [UInt8], stderr: [UInt8], exit: SSHExit) {
        var out: [UInt8] = [], err: [UInt8] = []
        var exit = SSHExit(status: nil, signal: nil)
        for try await event in execute(command, stdin: stdin) {
            switch event {
            case .stdout(let b): out += b
            case .stderr(let b): err += b
            case .exit(let e): exit = e
            }
        }
        return (out, err, exit)
    }

    /// Runs `command` and hands its standard output to `sink` as it is read, on this session's
    /// queue: a slow sink slows the read, so nothing piles up in memory (a 1 GiB tar stream
    /// costs one read buffer). `sink` answers false to stop reading; the channel is then
    /// closed and the exit is nil. Standard error is collected and returned.
    public func stream(
        _ command: String, stdin: [UInt8] = [], stdoutTo sink: @Sendable (ArraySlice<UInt8>) -> Bool
    ) async throws -> (stderr: [UInt8], exit: SSHExit) {
        var stderr: [UInt8] = []
        var exit = SSHExit(status: nil, signal: nil)
        try await pump(command, stdin: stdin) { event in
            switch event {
            case .stdout(let bytes): return sink(bytes)
            case .stderr(let bytes): stderr += bytes
            case .exit(let e): exit = e
            }
            return true
        }
        return (stderr, exit)
    }

    /// Runs `command` and hands every slice of its output, then its exit, to `sink` as it is
    /// read, on this session's queue: as with `stream(_:stdin:stdoutTo:)`, a slow sink slows the
    /// read and memory stays one read buffer. `sink` answers false to stop reading; the
    /// channel is then closed without an exit.
    public func stream(_ command: String, stdin: [UInt8] = [], to sink: @Sendable (SSHChannelOutput) -> Bool) async throws {
        try await pump(command, stdin: stdin, deliver: sink)
    }

    private func drive(_ command: String, stdin: [UInt8], into continuation: AsyncThrowingStream<SSHExecEvent, any Error>.Continuation) async {
        do {
            try await pump(command, stdin: stdin) { event in
                continuation.yield(event.owned)
                return true
            }
            continuation.finish()
        } catch {
            continuation.finish(throwing: error)
        }
    }

    /// The one read loop: opens a channel, hands each slice of output to `deliver` until both
    /// streams end (then the exit) or `deliver` answers false, and closes the channel.
    private func pump(_ command: String, stdin: [UInt8], deliver: (SSHChannelOutput) -> Bool) async throws {
        let record = ChannelExitRecord()
        let channel = try openChannel(command, record: record)
        defer { closeChannel(channel, record: record) }
        var input = PendingInput(bytes: stdin)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if Task.isCancelled { throw CancellationError() }
            // Another job's failure may have closed the connection while this one waited.
            if closing { throw SSHError.connectionLost(host: endpoint.host, reason: "the connection was closed") }
            try feed(channel, &input)
            let read = try readAvailable(channel, buffer: &buffer, deliver: deliver)
            if !read.wanted { return }
            if read.finished {
                _ = deliver(.exit(awaitExit(channel, record: record)))
                return
            }
            // The read may have brought a window adjustment: more input goes at once.
            if read.moved || (!input.done && ssh_channel_window_size(channel) > 0) {
                // The packets this read took off the socket may hold other channels' bytes
                // too; the socket will not say so again.
                wakeInputWaitersWithInput()
                // Let other work on this session (a second channel, keepalive) in between.
                await Task.yield()
            } else {
                await waitForInput(on: channel)
            }
        }
    }

    /// Standard input not yet written: it goes as the channel's window lets it, between reads,
    /// so a command that ends without reading it all is answered by its own exit, not taken
    /// for a lost connection, and a large input never blocks the session's queue.
    private struct PendingInput {
        let bytes: [UInt8]
        var offset = 0
        var done = false
    }

    private func feed(_ channel: ssh_channel, _ input: inout PendingInput) throws(SSHError) {
        guard !input.done else { return }
        // The command ended (closing the channel) before reading the rest: its exit says why.
        if ssh_channel_is_closed(channel) != 0 {
            input.done = true
            return
        }
        let room = min(Int(ssh_channel_window_size(channel)), input.bytes.count - input.offset)
        if room > 0 {
            let written = input.bytes.withUnsafeBytes { ssh_channel_write(channel, $0.baseAddress! + input.offset, UInt32(room)) }
            guard written >= 0 else {
                // With the connection up, it is the channel that refuses: the remote closed it
                // (libssh's delayed close, with output still to read). The read goes on.
                guard let session, ssh_is_connected(session) == 1 else {
                    throw .connectionLost(host: endpoint.host, reason: "writing standard input: \(session.map(lastError) ?? "the session is closed")")
                }
                input.done = true
                return
            }
            input.offset += Int(written)
        }
        if input.offset == input.bytes.count {
            _ = ssh_channel_send_eof(channel)
            input.done = true
        }
    }

    private func openChannel(_ command: String, record: ChannelExitRecord) throws(SSHError) -> ssh_channel {
        guard let session, !closing, ssh_is_connected(session) == 1 else {
            throw .connectionLost(host: endpoint.host, reason: "the session is closed")
        }
        guard let channel = ssh_channel_new(session) else {
            throw .channelFailed(host: endpoint.host, reason: lastError(session))
        }
        openChannels += 1
        guard ssh_channel_open_session(channel) == SSH_OK else {
            let reason = lastError(session)
            let connected = ssh_is_connected(session) == 1
            closeChannel(channel, record: record)
            throw connected ? .channelFailed(host: endpoint.host, reason: reason) : .connectionLost(host: endpoint.host, reason: reason)
        }
        _ = ssh_set_channel_callbacks(channel, record.callbacks)
        guard ssh_channel_request_exec(channel, command) == SSH_OK else {
            let reason = lastError(session)
            closeChannel(channel, record: record)
            throw .channelFailed(host: endpoint.host, reason: reason)
        }
        return channel
    }

    /// Reads what is there from stderr and stdout, without waiting. Answers whether both
    /// streams are at their end, whether `deliver` wants more, and whether any byte came.
    private func readAvailable(
        _ channel: ssh_channel, buffer: inout [UInt8], deliver: (SSHChannelOutput) -> Bool
    ) throws(SSHError) -> (finished: Bool, wanted: Bool, moved: Bool) {
        let size = UInt32(buffer.count)
        // The non-blocking read answers SSH_EOF for a stream at its end: nothing to read.
        var err = buffer.withUnsafeMutableBytes { ssh_channel_read_nonblocking(channel, $0.baseAddress, size, 1) }
        if err == SSH_EOF { err = 0 }
        guard err >= 0 else { throw lostConnection() }
        if err > 0, !deliver(.stderr(buffer[0..<Int(err)])) { return (false, false, true) }
        var out = buffer.withUnsafeMutableBytes { ssh_channel_read_nonblocking(channel, $0.baseAddress, size, 0) }
        if out == SSH_EOF { out = 0 }
        guard out >= 0 else { throw lostConnection() }
        if out > 0, !deliver(.stdout(buffer[0..<Int(out)])) { return (false, false, true) }
        // Nothing read may mean nothing yet or the end: ask the streams themselves.
        let finished = out == 0 && err == 0
            && ssh_channel_poll(channel, 0) == SSH_EOF && ssh_channel_poll(channel, 1) == SSH_EOF
        return (finished, true, out > 0 || err > 0)
    }

    // MARK: Waiting for input

    /// Suspends the read loop until the socket may have brought bytes: it never blocks the
    /// session's queue, so other channels read and open meanwhile.
    private func waitForInput(on channel: ssh_channel) async {
        guard let session, !closing else { return }
        let id = nextInputWaiter
        nextInputWaiter += 1
        let limit = inputWaitLimit
        let backstop = Task { [weak self] in
            try? await Task.sleep(for: limit)
            await self?.wakeInputWaiter(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                inputWaiters[id] = InputWaiter(channel: channel, continuation: waiter)
                watchSocket(of: session)
            }
        } onCancel: {
            // Reaches the actor only after the waiter above is in place.
            Task { await self.wakeInputWaiter(id) }
        }
        backstop.cancel()
    }

    private func wakeInputWaiter(_ id: Int) {
        inputWaiters.removeValue(forKey: id)?.continuation.resume()
    }

    private func wakeInputWaiters() {
        let waiters = inputWaiters
        inputWaiters = [:]
        for waiter in waiters.values { waiter.continuation.resume() }
    }

    /// Wakes the waiting loops whose channel has bytes buffered or has reached its end.
    private func wakeInputWaitersWithInput() {
        for (id, waiter) in inputWaiters
        where ssh_channel_poll(waiter.channel, 0) != 0 || ssh_channel_poll(waiter.channel, 1) != 0 {
            wakeInputWaiter(id)
        }
    }

    /// Arms the read source on the session's socket (made at the first wait), on this
    /// session's own queue so that its handler runs isolated.
    private func watchSocket(of session: ssh_session) {
        if socketWatchArmed { return }
        if let watch = socketWatch {
            watch.resume()
            socketWatchArmed = true
            return
        }
        // The watch has a copy of the socket of its own, closed only once it is cancelled:
        // libssh closes its socket when the connection fails, and a number libdispatch still
        // watches could meanwhile be another session's socket, whose watch would never fire.
        let fd = ssh_get_fd(session)
        guard fd >= 0 else { return }
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return }
        watchedSocket = copy
        let watch = DispatchSource.makeReadSource(fileDescriptor: copy, queue: executor.queue)
        watch.setEventHandler { [weak self] in
            self?.assumeIsolated { $0.socketReadable() }
        }
        socketWatch = watch
        socketWatchArmed = true
        watch.activate()
    }

    /// Every waiting loop reads again (the first one's read takes the bytes off the socket
    /// into the channels' buffers); with none waiting the watch is suspended, or it would
    /// fire for as long as the bytes sit there.
    private func socketReadable() {
        if inputWaiters.isEmpty {
            if socketWatchArmed, let watch = socketWatch {
                watch.suspend()
                socketWatchArmed = false
            }
            return
        }
        wakeInputWaiters()
    }

    /// After EOF the exit status or signal follows; libssh waits for it or for the channel's
    /// close, bounded by the session timeout.
    private func awaitExit(_ channel: ssh_channel, record: ChannelExitRecord) -> SSHExit {
        if record.status == nil, record.signal == nil {
            let status = ssh_channel_get_exit_status(channel)
            if record.status == nil, record.signal == nil, status >= 0 { record.status = Int(status) }
        }
        return record.exit
    }

    /// Unhooks the callbacks before closing: the record must outlive every call that can fire
    /// them, and Swift would otherwise free it after its last visible use.
    /// The last channel of a closing session frees the session too.
    private func closeChannel(_ channel: ssh_channel, record: ChannelExitRecord) {
        withExtendedLifetime(record) {
            _ = ssh_remove_channel_callbacks(channel, record.callbacks)
            if ssh_channel_is_closed(channel) == 0 { _ = ssh_channel_close(channel) }
            ssh_channel_free(channel)
        }
        openChannels -= 1
        if closing, openChannels == 0 { release() }
    }

    private func lostConnection() -> SSHError {
        .connectionLost(host: endpoint.host, reason: session.map(lastError) ?? "the session is closed")
    }

    private func lastError(_ s: ssh_session) -> String {
        guard let text = ssh_get_error(UnsafeMutableRawPointer(s)) else { return "unknown libssh error" }
        let message = String(cString: text)
        return message.isEmpty ? "unknown libssh error" : message
    }
}

/// A read loop waiting for input on its channel.
private struct InputWaiter {
    let channel: ssh_channel
    let continuation: CheckedContinuation<Void, Never>
}

/// The libssh session handed to the socket watch's cancel handler, which frees it once
/// libdispatch has let go of its socket.
private struct SessionHandle: @unchecked Sendable {
    // Invariant: used once, by whoever frees the session, after the actor let go of it.
    let session: ssh_session
    init(_ session: ssh_session) { self.session = session }

    func free() {
        ssh_disconnect(session)
        ssh_free(session)
    }
}

/// One slice of a channel's output as the read loop sees it: views into its buffer, copied
/// only where they leave the loop.
public enum SSHChannelOutput: Sendable {
    case stdout(ArraySlice<UInt8>)
    case stderr(ArraySlice<UInt8>)
    case exit(SSHExit)

    var owned: SSHExecEvent {
        switch self {
        case .stdout(let bytes): .stdout(Array(bytes))
        case .stderr(let bytes): .stderr(Array(bytes))
        case .exit(let exit): .exit(exit)
        }
    }
}
