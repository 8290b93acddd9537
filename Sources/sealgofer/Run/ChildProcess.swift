import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child started with posix_spawn, with the descriptors and signal state `run` needs:
/// its own process group (a Ctrl-C at the terminal reaches `sealgofer run` only, which then
/// stops the container in order instead of letting the terminal kill runsc mid-teardown),
/// an empty signal mask and default dispositions (`run` ignores SIGPIPE in itself).
struct ChildProcess {
    let pid: pid_t

    /// Signals whose disposition or mask `run` changes in itself; reset in every child.
    static let resetSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE]

    /// Starts `arguments[0]` (a path) with `arguments`. `stdio` maps child fd 0…2 to our
    /// descriptors (nil: inherit ours); `environment` nil: ours. Throws with the errno text
    /// when the spawn fails.
    static func spawn(_ arguments: [String], stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil,
                      environment: [String]? = nil, ownProcessGroup: Bool = true) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            if let source { posix_spawn_file_actions_adddup2(&actions, source, target) }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if ownProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in resetSignals { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer { envp?.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = envp.map { posix_spawn(&pid, arguments[0], &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard rc == 0 else {
            throw CLIError.usage("cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child and returns its status the way a shell reports it
    /// (exit code, or 128 + signal number).
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 128 }
        }
        return Self.shellStatus(status)
    }

    static func shellStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }   // WIFEXITED → WEXITSTATUS
        return 128 + signal                               // WIFSIGNALED → 128 + WTERMSIG
    }

    /// Runs a short helper command to completion with its output discarded (or to our stderr).
    @discardableResult
    static func runQuietly(_ arguments: [String], environment: [String]? = nil, showErrors: Bool = false) -> Int32 {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devNull >= 0 { close(devNull) } }
        let sink: Int32? = devNull >= 0 ? devNull : nil
        guard let child = try? spawn(arguments, stdin: sink, stdout: sink, stderr: showErrors ? nil : sink,
                                       environment: environment) else {
            return 127
        }
        return child.wait()
    }
}

extension ChildProcess {
    /// Our environment for runsc, without TMPDIR: runsc's sandbox process builds its chroot
    /// under os.TempDir() after dropping privileges, and fails ("error setting up chroot …
    /// permission denied") when TMPDIR is a private directory such as a mktemp -d. TMPDIR is
    /// for `sealgofer run`'s own bundle only.
    static var runscEnvironment: [String] {
        ProcessInfo.processInfo.environment.filter { $0.key != "TMPDIR" }.map { "\($0.key)=\($0.value)" }
    }
}
