import Glibc
import Lisafs

extension SealedProvider {
    /// A control-FD handle: an O_PATH descriptor of the file under data/.
    public final class Node: @unchecked Sendable {
        let fd: Int32
        let fileType: UInt32
        let key: InodeKey

        init(fd: Int32, fileType: UInt32, key: InodeKey) {
            self.fd = fd
            self.fileType = fileType
            self.key = key
        }
    }

    /// An open-FD handle: a directory stream, or a reference on a file's inode state.
    public final class OpenFile: @unchecked Sendable {
        enum Kind {
            case directory(fd: Int32)
            case file(SealedInode)
        }

        let kind: Kind
        let flags: OpenFlags
        /// Serialises getdents on one directory stream.
        let streamLock = Mutex()

        init(kind: Kind, flags: OpenFlags) {
            self.kind = kind
            self.flags = flags
        }
    }
}
