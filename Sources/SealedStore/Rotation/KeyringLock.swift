#if canImport(Glibc)
import Glibc
#endif

/// `flock` on `meta/keyring.lock`: held exclusively by every process that rewrites the keyring
/// (`rekey`, and `rotate` for its whole run: it adds and removes epochs).
///
/// Why a second lock next to `meta/lock`: the store lock is held by a serving gofer for hours, and
/// `rekey` is allowed while a gofer serves (it only replaces the keyring atomically; the gofer
/// keeps its unwrapped master keys in memory and never writes the keyring). What `rekey` must not
/// race with is another keyring writer, whose rewrite from a stale in-memory copy would silently
/// undo it. `rotate` takes this lock *before* opening the store, so the keyring it unwraps cannot
/// change under it.
public final class KeyringLock {
    private var fd: Int32

    /// Why a lock could not be taken (a `SealedStoreError.storeInUse` is thrown for the store lock).
    public struct Busy: Error, CustomStringConvertible {
        public var description: String {
            "another rekey or rotate is changing this store's keyring (meta/keyring.lock is held)"
        }
    }

    /// Takes the lock, polling for up to `waitSeconds` (a rekey holds it for well under a second);
    /// throws `Busy` if it is still held then.
    public static func acquire(storePath: String, waitSeconds: Double = 2) throws -> KeyringLock {
        let root = open(storePath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SealedStoreError.notAStore("cannot open \(storePath): \(String(cString: strerror(errno)))") }
        defer { close(root) }
        let meta = openAt(root, StoreLayout.metaName, O_RDONLY | O_DIRECTORY)
        guard meta >= 0 else { throw SealedStoreError.notAStore("\(storePath) has no meta/ directory") }
        defer { close(meta) }
        let fd = openAt(meta, lockName, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw SealedStoreError.io("open meta/\(lockName)", errno) }
        var waited = 0.0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let e = errno; close(fd); throw SealedStoreError.io("flock meta/\(lockName)", e)
            }
            guard waited < waitSeconds else { close(fd); throw Busy() }
            usleep(50_000); waited += 0.05
        }
        return KeyringLock(fd: fd)
    }

    static let lockName = "keyring.lock"

    private init(fd: Int32) { self.fd = fd }

    public func release() { if fd >= 0 { close(fd); fd = -1 } }

    deinit { release() }
}
