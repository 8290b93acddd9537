@testable import Lisafs

/// A provider that records which handles were closed, in order, and fails
/// every file operation. Used to test FD bookkeeping without a filesystem.
final class ServerStubProvider: Provider, @unchecked Sendable {
    final class Handle {
        let label: String
        init(_ label: String) { self.label = label }
    }

    private let lock = Mutex()
    private var closedLog: [String] = []
    var closed: [String] { lock.withLock { closedLog } }

    var supportedMIDs: Set<MID> { [] }

    func mountRoot() throws -> Created<Handle> { throw Errno.ENOSYS }
    func walk(_ dir: Handle, _ name: FileName) throws -> Created<Handle> { throw Errno.ENOSYS }
    func stat(_ node: Handle) throws -> Statx { throw Errno.ENOSYS }
    func stat(openFile: Handle) throws -> Statx { throw Errno.ENOSYS }
    func setStat(_ node: Handle, _ changes: SetStatChanges) -> SetStatResult { SetStatResult() }
    func close(node: Handle) { lock.withLock { closedLog.append("node:\(node.label)") } }
    func open(_ node: Handle, flags: OpenFlags) throws -> Opened<Handle> { throw Errno.ENOSYS }
    func openCreate(in dir: Handle, _ name: FileName, attributes: CreateAttributes,
                    flags: OpenFlags) throws -> CreatedOpen<Handle, Handle> { throw Errno.ENOSYS }
    func read(_ file: Handle, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int { throw Errno.ENOSYS }
    func write(_ file: Handle, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int { throw Errno.ENOSYS }
    func flush(_ file: Handle) throws {}
    func fsync(_ file: Handle) throws {}
    func allocate(_ file: Handle, mode: UInt64, offset: UInt64, length: UInt64) throws { throw Errno.ENOSYS }
    func getdents(_ dir: Handle, byteBudget: Int, restart: Bool) throws -> [DirectoryEntry] { [] }
    func close(openFile: Handle) { lock.withLock { closedLog.append("open:\(openFile.label)") } }
    func mkdir(in dir: Handle, _ name: FileName, attributes: CreateAttributes) throws -> Created<Handle> { throw Errno.ENOSYS }
    func mknod(in dir: Handle, _ name: FileName, attributes: CreateAttributes,
               major: UInt32, minor: UInt32) throws -> Created<Handle> { throw Errno.ENOSYS }
    func symlink(in dir: Handle, _ name: FileName, target: [UInt8], uid: UID, gid: GID) throws -> Created<Handle> { throw Errno.ENOSYS }
    func link(_ target: Handle, in dir: Handle, _ name: FileName) throws -> Created<Handle> { throw Errno.ENOSYS }
    func unlink(in dir: Handle, _ name: FileName, flags: UInt32) throws { throw Errno.ENOSYS }
    func rename(from oldDir: Handle, _ oldName: FileName, to newDir: Handle, _ newName: FileName, flags: UInt32) throws { throw Errno.ENOSYS }
    func readlink(_ node: Handle) throws -> [UInt8] { throw Errno.ENOSYS }
    func statfs(_ node: Handle) throws -> StatFS { throw Errno.ENOSYS }
    func close(boundSocket: Handle) { lock.withLock { closedLog.append("socket:\(boundSocket.label)") } }
}
