import Foundation
import Hardening
import Logging

/// The gofer's own view of the host, narrowed with Landlock at lock-down: the
/// served tree (or the store) and the scratch directory read-write,
/// /proc/self read-only (libdispatch reads /proc/self/task), nothing else.
/// Descriptors opened earlier (the socket, the key file's contents already
/// read, held directory FDs) are unaffected; paths reached through them or
/// through /proc/self/fd are checked by where they really are.
///
/// Landlock applies to the calling thread and the threads it starts later:
/// every connection and channel thread, hence all request handling. Threads
/// started before lock-down (the termination-signal waiter, the periodic
/// committer) keep the wider view; they act only on the store.
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
        if let proc = try? Landlock.open("/proc/self") {
            opened.append(proc)
            rules.append(Landlock.Rule(descriptor: proc, access: .readOnly))
        }
        try Landlock.restrictThread(to: rules)
        logger.info("Landlock ABI \(abi): filesystem access confined to \(readWrite.count) directories and /proc/self")
    }
}
