import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to `sealgofer run` into an orderly stop of the
/// container, escalating while runsc has not exited:
///   1st signal:           `runsc kill --all ID SIG` (the command's processes get the signal;
///                          the container's PID 1 ignores signals it has no handler for)
///   5 s later or 2nd:     `runsc kill ID KILL` (the whole container)
///   3 s later or 3rd:     SIGKILL to `runsc run` itself (its sandbox and gofer die with it:
///                          runsc gives them PDEATHSIG=SIGKILL)
/// Teardown after that (delete, leftover processes, bundle) is RunCommand's, which runs
/// whatever way runsc ended.
final class SignalRelay {
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    private let lock = NSLock()
    private var finished = false
    private var receivedSignal: Int32 = 0

    /// Installs a handler for the handled signals that writes the signal number into a pipe
    /// read by the relay thread. A handler, not a blocked mask and sigwait: the runtime may
    /// already have threads that do not block them, and a process-directed signal picks any
    /// thread. Handlers do not survive exec, so children start with default dispositions.
    static func install() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw CLIError.usage("pipe: \(String(cString: strerror(errno)))") }
        for fd in ends {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        signalPipeReadEnd = ends[0]
        signalPipeWriteEnd = ends[1]
        for s in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                var byte = UInt8(truncatingIfNeeded: signal)
                let saved = errno
                _ = write(signalPipeWriteEnd, &byte, 1)
                errno = saved
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(s, &action, nil)
        }
    }

    /// The first signal received, or 0.
    var signalReceived: Int32 { lock.lock(); defer { lock.unlock() }; return receivedSignal }

    /// Starts relaying to the container `id` run by `runsc` (the `runsc run` process).
    func start(runscCommand: [String], containerID: String, runsc: pid_t) {
        Thread { [self] in relay(runscCommand: runscCommand, containerID: containerID, runsc: runsc) }.start()
    }

    /// Tells the relay that runsc has exited: no more escalation.
    func markFinished() { lock.lock(); finished = true; lock.unlock() }

    private var isFinished: Bool { lock.lock(); defer { lock.unlock() }; return finished }

    /// The next signal from the pipe, or nil after 200 ms.
    private func nextSignal() -> Int32? {
        var poller = pollfd(fd: signalPipeReadEnd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 200) == 1 else { return nil }
        var byte: UInt8 = 0
        return read(signalPipeReadEnd, &byte, 1) == 1 ? Int32(byte) : nil
    }

    private func relay(runscCommand: [String], containerID: String, runsc: pid_t) {
        let environment = ChildProcess.runscEnvironment
        var stage = 0
        var deadline: Double = .infinity
        while !isFinished {
            let signal = nextSignal()
            guard !isFinished else { return }
            guard signal != nil || now() >= deadline else { continue }
            if let signal {
                lock.lock(); if receivedSignal == 0 { receivedSignal = signal }; lock.unlock()
            }
            switch stage {
            case 0:
                let name = Self.name(of: signal ?? SIGTERM)
                fputs("sealgofer run: SIG\(name): stopping the container (again to force)\n", stderr)
                ChildProcess.runQuietly(runscCommand + ["kill", "--all", containerID, name], environment: environment)
                deadline = now() + 5
            case 1:
                fputs("sealgofer run: killing the container\n", stderr)
                ChildProcess.runQuietly(runscCommand + ["kill", containerID, "KILL"], environment: environment)
                deadline = now() + 3
            case 2:
                fputs("sealgofer run: killing runsc\n", stderr)
                kill(runsc, SIGKILL)
                deadline = .infinity
            default:
                continue
            }
            stage += 1
        }
    }

    private func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: return "INT"
        case SIGTERM: return "TERM"
        case SIGHUP: return "HUP"
        case SIGQUIT: return "QUIT"
        default: return "TERM"
        }
    }
}

/// The self-pipe of the signal handler: set once by `install()` before any handler runs
/// (plain integers: the handler must not touch reference-counted storage).
private var signalPipeReadEnd: Int32 = -1
private var signalPipeWriteEnd: Int32 = -1
