import CLinux
import Glibc
import Lisafs

/// Opening a ciphertext file to read its header without moving its access time: the client
/// sees the ciphertext's times, and a stat (or a read-ahead) is no access to the file's
/// content. O_NOATIME needs the file's owner or CAP_FOWNER; without, plain O_RDONLY.
enum HeaderReading {
    private static let noAtimeRefused = SetOnceFlag()
    private static let noAtime: Int32 = 0o1000000 // O_NOATIME (glibc defines it for _GNU_SOURCE only)

    static func open(in directory: Int32, _ name: [UInt8]) -> Int32? {
        let flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        return (name + [0]).withUnsafeBufferPointer { n in
            n.withMemoryRebound(to: CChar.self) { cName -> Int32? in
                if !noAtimeRefused.isSet {
                    let fd = clinux_openat(directory, cName.baseAddress!, flags | noAtime, 0)
                    if fd >= 0 { return fd }
                    guard errno == EPERM else { return nil }
                    noAtimeRefused.set()
                }
                let fd = clinux_openat(directory, cName.baseAddress!, flags, 0)
                return fd >= 0 ? fd : nil
            }
        }
    }
}

/// A flag that is set once, read from any thread.
final class SetOnceFlag: @unchecked Sendable {
    private let lock = Mutex()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
