import Glibc
import Lisafs

/// Identity of a ciphertext file: hard links and repeated walks of one file map
/// to the same key, hence the same scratch.
struct InodeKey: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ stat: Statx) {
        device = UInt64(stat.devMajor) << 32 | UInt64(stat.devMinor)
        inode = stat.ino
    }
}
