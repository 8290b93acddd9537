@testable import Lisafs

/// Handle type for small in-memory test providers.
final class TestHandle {
    let label: String
    init(_ label: String = "") { self.label = label }
}

/// A provider whose every operation fails with ENOSYS unless the test type
/// implements it: tests write only the methods they exercise.
protocol MinimalTestProvider: Provider where Node == TestHandle, OpenFile == TestHandle {}

extension MinimalTestProvider {
    func mountRoot() throws -> Created<TestHandle> {
        Created(node: TestHandle("root"), stat: Statx(mode: UInt16(FileType.directory) | 0o755))
    }
    func walk(_ dir: TestHandle, _ name: FileName) throws -> Created<TestHandle> { throw Errno.ENOENT }
    func stat(_ node: TestHandle) throws -> Statx { throw Errno.ENOSYS }
    func stat(openFile: TestHandle) throws -> Statx { throw Errno.ENOSYS }
    func setStat(_ node: TestHandle, _ changes: SetStatChanges) -> SetStatResult { SetStatResult() }
    func close(node: TestHandle) {}
    func open(_ node: TestHandle, flags: OpenFlags) throws -> Opened<TestHandle> { throw Errno.ENOSYS }
    func openCreate(in dir: TestHandle, _ name: FileName, attributes: CreateAttributes,
                    flags: OpenFlags) throws -> CreatedOpen<TestHandle, TestHandle> { throw Errno.ENOSYS }
    func read(_ file: TestHandle, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int { throw Errno.ENOSYS }
    func write(_ file: TestHandle, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int { throw Errno.ENOSYS }
    func flush(_ file: TestHandle) throws {}
    func fsync(_ file: TestHandle) throws {}
    func allocate(_ file: TestHandle, mode: UInt64, offset: UInt64, length: UInt64) throws { throw Errno.ENOSYS }
    func getdents(_ dir: TestHandle, byteBudget: Int, restart: Bool) throws -> [DirectoryEntry] { [] }
    func close(openFile: TestHandle) {}
    func mkdir(in dir: TestHandle, _ name: FileName, attributes: CreateAttributes) throws -> Created<TestHandle> { throw Errno.ENOSYS }
    func mknod(in dir: TestHandle, _ name: FileName, attributes: CreateAttributes,
               major: UInt32, minor: UInt32) throws -> Created<TestHandle> { throw Errno.ENOSYS }
    func symlink(in dir: TestHandle, _ name: FileName, target: [UInt8], uid: UID, gid: GID) throws -> Created<TestHandle> { throw Errno.ENOSYS }
    func link(_ target: TestHandle, in dir: TestHandle, _ name: FileName) throws -> Created<TestHandle> { throw Errno.ENOSYS }
    func unlink(in dir: TestHandle, _ name: FileName, flags: UInt32) throws { throw Errno.ENOSYS }
    func rename(from oldDir: TestHandle, _ oldName: FileName, to newDir: TestHandle, _ newName: FileName, flags: UInt32) throws { throw Errno.ENOSYS }
    func readlink(_ node: TestHandle) throws -> [UInt8] { throw Errno.ENOSYS }
    func statfs(_ node: TestHandle) throws -> StatFS { throw Errno.ENOSYS }
}
