import DeferredHTTP
import Foundation

// deferred-bench artifacts [MiB] [--no-s3]   moving one large artifact, beside scp
// deferred-bench listeners [N] [ROUNDS]     N event-stream listeners on one running job (medians of ROUNDS, 3)
// deferred-bench dispatch [N] [M]           N jobs of `true` through one host with max_jobs M, beside xargs -P M ssh
// deferred-bench intake [S] [C] [R]         signed pushes under wrk for S seconds over C connections, R rounds, beside adnanh/webhook
// deferred-bench intake-floor [S] [C] [R]   the HTTP path alone (HMAC, 202): a Hummingbird route and bare SwiftNIO, beside adnanh/webhook
// deferred-bench exec [N]                  N execs of `true` over one connection, beside ssh over a ControlMaster
// deferred-bench reattach [N]               N running jobs followed again after a kill -9; 20 dropped connections
// deferred-bench soak [S] [STORE]         S seconds of posted scripts while servers are killed, disks fill, SSH stalls…: none lost, none run twice (STORE: sqlite or postgres)
// deferred-bench push [N]                  a push's parse (beside Foundation's JSONDecoder) and decision, N times
// deferred-bench stores [S] [C] [T]         intake on SQLite, PostgreSQL with 1 and 3 servers, beside adnanh/webhook; takeover time, median of T
// As `deferred` does: `listener-round` serves event streams in this process.
EventLoopThreads.choose()
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "listeners":
    exit(try await listenerBench(arguments.dropFirst()))
case "listener-floor":
    exit(try await fanOutHere(arguments.dropFirst(), hummingbirdFloor))
case "listener-round":
    exit(try await fanOutHere(arguments.dropFirst(), deferredFanOut))
case "dispatch":
    exit(try await dispatchBench(arguments.dropFirst()))
case "intake":
    exit(try await intakeBench(arguments.dropFirst()))
case "intake-floor":
    exit(try await intakeFloorBench(arguments.dropFirst()))
case "intake-floor-server":
    exit(try await intakeFloorServer(arguments.dropFirst()))
case "exec":
    exit(try await execBench(arguments.dropFirst()))
case "reattach":
    exit(try await reattachBench(arguments.dropFirst()))
case "soak":
    exit(try await soakRun(arguments.dropFirst()))
case "stores":
    exit(try await storesBench(arguments.dropFirst()))
case "store-intake":
    exit(try await storeIntakeBench(arguments.dropFirst()))
case "push":
    exit(try await pushBench(arguments.dropFirst()))
case "artifacts":
    exit(try await artifactBench(arguments.dropFirst()))
default:
    exit(try await artifactBench(arguments))
}
