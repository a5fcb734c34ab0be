import CLibSSH

/// Receives a channel's `exit-status` and `exit-signal` requests. libssh reports a signal only
/// through channel callbacks, so every exec channel gets one of these as its callbacks' userdata.
/// Touched only on the owning session's queue.
final class ChannelExitRecord {
    var status: Int?
    var signal: String?
    let callbacks: UnsafeMutablePointer<ssh_channel_callbacks_struct>

    init() {
        callbacks = .allocate(capacity: 1)
        callbacks.initialize(to: ssh_channel_callbacks_struct())
        // ssh_callbacks_init is a macro: it sets the struct's size so libssh knows its version.
        callbacks.pointee.size = MemoryLayout<ssh_channel_callbacks_struct>.size
        callbacks.pointee.channel_exit_status_function = { _, _, status, userdata in
            guard let userdata else { return }
            Unmanaged<ChannelExitRecord>.fromOpaque(userdata).takeUnretainedValue().status = Int(status)
        }
        callbacks.pointee.channel_exit_signal_function = { _, _, signal, _, _, _, userdata in
            guard let userdata else { return }
            Unmanaged<ChannelExitRecord>.fromOpaque(userdata).takeUnretainedValue().signal = signal.map { String(cString: $0) }
        }
        callbacks.pointee.userdata = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        callbacks.deinitialize(count: 1)
        callbacks.deallocate()
    }

    var exit: SSHExit { SSHExit(status: signal == nil ? status : nil, signal: signal) }
}
