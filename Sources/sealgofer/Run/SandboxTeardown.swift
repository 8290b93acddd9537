import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Removes what a run leaves behind once `runsc run` has returned (normally, after an error,
/// or killed): the container's state, any runsc process of this run still alive, the bundle.
///
/// Every runsc process of a run (the `run` itself, the sandbox's `boot`, the `gofer`) carries
/// the run's private `--root=STATE` flag on its command line, which is how leftovers are found.
/// The sealgofer server is not among them: it lives in the gofer's PID namespace, whose init
/// is the gofer, so the kernel kills it when the gofer dies.
enum SandboxTeardown {
    static func run(runscCommand: [String], containerID: String, stateRoot: String) {
        ChildProcess.runQuietly(runscCommand + ["delete", "--force", containerID], environment: ChildProcess.runscEnvironment)
        let marker = "--root=" + stateRoot
        var deadline = 50  // × 100 ms
        while true {
            let leftovers = processes(withArgument: marker)
            if leftovers.isEmpty { return }
            for pid in leftovers { kill(pid, SIGKILL) }
            deadline -= 1
            if deadline == 0 {
                fputs("sealgofer run: processes \(leftovers) of this run did not exit\n", stderr)
                return
            }
            usleep(100_000)
        }
    }

    /// PIDs whose command line has `argument` as one of its arguments.
    static func processes(withArgument argument: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let needle = Array(argument.utf8)
        var found: [pid_t] = []
        for entry in entries {
            guard let pid = pid_t(entry), pid != getpid(),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            if cmdline.split(separator: 0, omittingEmptySubsequences: true).contains(where: { Array($0) == needle }) {
                found.append(pid)
            }
        }
        return found
    }
}
