import Foundation
import Hardening
import Logging

/// The gofer's own view of the host, narrowed with Landlock at lock-down: the
/// served tree (or the store) and the scratch directory read-write, /proc
/// read-only (`Landlock.runtimeReadOnly`), nothing else.
/// Descriptors opened earlier (the socket, the key file's contents already
/// read, held directory FDs) are unaffected; paths reached through them or
/// through /proc/self/fd are checked by where they really are.
///
/// Every thread is confined: the ones running at lock-down (the
/// termination-signal waiter, the periodic committer) through a signal, the
/// connection and channel threads started later by inheritance.
struct ServeConfinement {
    /// Directories the gofer reads and writes beneath.
    var readWrite: [Target] = []

    enum Target {
        case path(String)
        /// An already open directory (the private scratch tmpfs has no path).
        case descriptor(Int32)
    }

    /// Confines the calling thread. Without Landlock in the kernel: one warning.
    func apply(logger: Logger) throws {
        guard let abi = Landlock.abi else {
            logger.warning("Landlock is not available in this kernel: the gofer's own view of the host is not confined")
            return
        }
        // Read before the view narrows: the log's local time zone.
        tzset()
        var opened: [Int32] = []
        defer { opened.forEach { _ = close($0) } }
        var rules: [Landlock.Rule] = []
        for target in readWrite {
            switch target {
            case .path(let path):
                let fd = try Landlock.open(path)
                opened.append(fd)
                rules.append(Landlock.Rule(descriptor: fd, access: .readWrite(abi: abi)))
            case .descriptor(let fd):
                rules.append(Landlock.Rule(descriptor: fd, access: .readWrite(abi: abi)))
            }
        }
        for path in Landlock.runtimeReadOnly {
            guard let fd = try? Landlock.open(path) else { continue }
            opened.append(fd)
            rules.append(Landlock.Rule(descriptor: fd, access: .readOnly))
        }
        let done = try Landlock.restrictProcess(to: rules)
        logger.info("Landlock ABI \(abi): filesystem access of \(done.threads) threads confined to \(readWrite.count) directories and /proc (read-only)")
        if done.unconfirmed > 0 {
            logger.warning("Landlock: \(done.unconfirmed) of \(done.threads) threads block the confining signal; they confine themselves when they unblock it")
        }
    }
}
