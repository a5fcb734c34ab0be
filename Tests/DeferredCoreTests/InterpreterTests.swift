import DeferredCore
import Testing

@Suite struct InterpreterTests {
    let allowed = ["/bin/sh", "python3"]

    @Test func theRequestedInterpreterMustBeListed() throws {
        #expect(try Interpreter.choose(for: "print(1)", requested: "python3", allowed: allowed) == .program("python3"))
        #expect(throws: Interpreter.Refusal.notAllowed("perl", allowed: allowed)) {
            try Interpreter.choose(for: "print 1", requested: "perl", allowed: allowed)
        }
    }

    @Test func aShebangRunsWhenItsProgramIsListed() throws {
        #expect(try Interpreter.choose(for: "#!/bin/sh\necho", requested: nil, allowed: allowed) == .shebang("/bin/sh"))
        #expect(try Interpreter.choose(for: "#!/usr/bin/env python3\n", requested: nil, allowed: allowed) == .shebang("python3"))
        // A listed name allows that program at any path; a listed path only itself.
        #expect(try Interpreter.choose(for: "#!/usr/bin/python3 -u\n", requested: nil, allowed: allowed) == .shebang("/usr/bin/python3"))
        #expect(throws: Interpreter.Refusal.self) { try Interpreter.choose(for: "#!/usr/bin/sh\n", requested: nil, allowed: allowed) }
        #expect(throws: Interpreter.Refusal.self) { try Interpreter.choose(for: "#!/usr/bin/env -S perl -w\n", requested: nil, allowed: allowed) }
    }

    @Test func withoutEitherTheFirstListedInterpreterRuns() throws {
        #expect(try Interpreter.choose(for: "echo hi\n", requested: nil, allowed: allowed) == .program("/bin/sh"))
        #expect(Interpreter.program("python3").remoteArgument == "python3")
        #expect(Interpreter.shebang("python3").remoteArgument == "")
    }

    @Test func onlyPlainPathsAndNamesAreWellFormed() {
        #expect(Interpreter.isWellFormed("/usr/bin/python3"))
        #expect(Interpreter.isWellFormed("node"))
        #expect(!Interpreter.isWellFormed("sh -c"))
        #expect(!Interpreter.isWellFormed("bin/sh"))
        #expect(!Interpreter.isWellFormed("$(reboot)"))
    }
}
