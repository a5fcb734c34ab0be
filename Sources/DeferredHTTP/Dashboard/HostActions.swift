import DeferredCore
import Foundation
import Logging

/// The dashboard's wake and sleep buttons. A wake waits for SSH, which can take minutes, so
/// it goes on in the background and the host's row says how it went; one wake of a host at
/// a time. A sleep is quick and is waited for.
actor HostActions {
    struct Note: Sendable, Equatable {
        var text: String
        var failed: Bool
        var at: Date
    }

    enum Refusal: Error, Equatable {
        case busy(String)
    }

    private let commands: any HostCommands
    private let logger: Logger
    private var notes: [String: Note] = [:]
    private var waking: Set<String> = []

    init(commands: any HostCommands, logger: Logger) {
        self.commands = commands
        self.logger = logger
    }

    func note(for host: String) -> Note? { notes[host] }

    /// Starts waking `host`; its note says when SSH answered or why it did not.
    func startWake(_ host: String) throws(Refusal) {
        guard !waking.contains(host) else { throw .busy("\(host) is being woken already") }
        waking.insert(host)
        notes[host] = Note(text: "waking: starting its machine, then waiting for SSH", failed: false, at: Date())
        let commands = self.commands
        Task {
            do {
                try await commands.wake(host)
                self.finishWake(host, Note(text: "woken by hand; SSH answers", failed: false, at: Date()))
            } catch {
                self.logger.warning("waking \(host) from the dashboard failed: \(error)")
                self.finishWake(host, Note(text: "could not wake it: \(error)", failed: true, at: Date()))
            }
        }
    }

    /// Stops `host`; what happened is both returned and kept as its note.
    func sleep(_ host: String) async -> Note {
        let note: Note
        do {
            try await commands.sleep(host)
            note = Note(text: "put to sleep by hand", failed: false, at: Date())
        } catch {
            note = Note(text: "not put to sleep: \(error)", failed: true, at: Date())
        }
        notes[host] = note
        return note
    }

    func isWaking(_ host: String) -> Bool { waking.contains(host) }

    private func finishWake(_ host: String, _ note: Note) {
        waking.remove(host)
        notes[host] = note
    }
}
