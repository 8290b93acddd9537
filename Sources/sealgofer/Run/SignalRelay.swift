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

    /// Blocks the handled signals in the calling thread, and so in every thread created after
    /// this call. Call first thing, before starting any thread.
    static func blockHandledSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in handled { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
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

    private func relay(runscCommand: [String], containerID: String, runsc: pid_t) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in Self.handled { sigaddset(&set, s) }
        var stage = 0
        var deadline: Double = .infinity
        while !isFinished {
            var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
            let signal = sigtimedwait(&set, nil, &timeout)
            guard !isFinished else { return }
            let timedOut = signal < 0 && now() >= deadline
            guard signal > 0 || timedOut else { continue }
            if signal > 0 {
                lock.lock(); if receivedSignal == 0 { receivedSignal = signal }; lock.unlock()
            }
            switch stage {
            case 0:
                let name = Self.name(of: signal)
                fputs("sealgofer run: \(name): stopping the container (again to force)\n", stderr)
                ChildProcess.runQuietly(runscCommand + ["kill", "--all", containerID, name])
                deadline = now() + 5
            case 1:
                fputs("sealgofer run: killing the container\n", stderr)
                ChildProcess.runQuietly(runscCommand + ["kill", containerID, "KILL"])
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
